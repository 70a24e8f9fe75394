"""CIMI's vocabulary (DMTF DSP0263 1.1 and 2.0) declared once as data: every resource type, its collection and its
typed attributes. The codec, the query layer and ResourceMetadata read these tables; nothing else spells CIMI names.

A document is a dict in the shape of its JSON rendering; its keys are the 2.0 spellings (`Attr.name`). Where 1.1
spells an attribute differently the attribute records it in `Attr.wire` and the codec renames on the way out and in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

VERSIONS = ("1", "2")
DEFAULT_VERSION = "2"

#: version -> the XML namespace, also the prefix of resource and action URIs.
NAMESPACE: Mapping[str, str] = {"1": "http://schemas.dmtf.org/cimi/1", "2": "http://schemas.dmtf.org/cimi/2"}


class Kind(Enum):
    """The value types an attribute can hold."""

    STRING = "string"
    URI = "uri"  # a string holding a URI: surrounding white space is not part of it
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATETIME = "dateTime"
    REF = "ref"  # {"href": ...}, possibly with extra attributes or the referenced document inline
    MAP = "map"  # {str: str}, `properties`
    STRUCT = "struct"  # an embedded document of another declared type
    LIST = "list"


SCALARS = frozenset({Kind.STRING, Kind.URI, Kind.INTEGER, Kind.BOOLEAN, Kind.DATETIME})


@dataclass(frozen=True, slots=True)
class Attr:
    """One attribute: its JSON name (2.0 spelling), value type, and for refs/structs the declared type it holds.

    For a list, `item` describes one item and `item.name` is the XML element name of one item. `extras` are attributes
    a reference carries beside `href` (a template's `volumes[].initialLocation`). `aliases` are older names read on
    input and never written; `wire` maps a version to its spelling where it is not `name`.
    """

    name: str
    kind: Kind
    target: str | None = None
    item: Attr | None = None
    extras: tuple[Attr, ...] = ()
    aliases: tuple[str, ...] = ()
    wire: tuple[tuple[str, str], ...] = ()  # (version, name) pairs

    def wire_name(self, version: str) -> str:
        """The attribute's name in `version`'s renderings."""
        for wire_version, name in self.wire:
            if wire_version == version:
                return name
        return self.name

    def all_names(self) -> tuple[str, ...]:
        """Every name the attribute is read by: its own, its aliases, and every version's spelling."""
        return (self.name, *self.aliases, *(name for _, name in self.wire))


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A declared CIMI type. `collection`/`collection_attr` name its collection type and that collection's item
    attribute; `resource` says it is addressable (has a resource URI); `xml_attributes` renders its scalars as XML
    attributes (only `operation`); `legacy` are CIMI 1.0-draft names accepted on input and dropped."""

    name: str
    attributes: tuple[Attr, ...]
    collection: str | None = None
    collection_attr: str | None = None
    resource: bool = True
    xml_attributes: bool = False
    legacy: frozenset[str] = frozenset()

    def attribute(self, name: str) -> Attr | None:
        """The attribute called `name` (2.0 spelling), or None."""
        for attr in self.attributes:
            if attr.name == name:
                return attr
        return None


# -- attribute constructors ----------------------------------------------------------------------------------


def s(name: str, **kw) -> Attr:
    return Attr(name, Kind.STRING, **kw)


def u(name: str, **kw) -> Attr:
    return Attr(name, Kind.URI, **kw)


def i(name: str, **kw) -> Attr:
    return Attr(name, Kind.INTEGER, **kw)


def b(name: str, **kw) -> Attr:
    return Attr(name, Kind.BOOLEAN, **kw)


def t(name: str, **kw) -> Attr:
    return Attr(name, Kind.DATETIME, **kw)


def ref(name: str, target: str | None = None, extras: tuple[Attr, ...] = (), **kw) -> Attr:
    return Attr(name, Kind.REF, target=target, extras=extras, **kw)


def struct(name: str, target: str) -> Attr:
    return Attr(name, Kind.STRUCT, target=target)


def lst(name: str, item: Attr) -> Attr:
    return Attr(name, Kind.LIST, item=item)


def props(name: str = "properties") -> Attr:
    return Attr(name, Kind.MAP)


# -- the common attributes (DSP0263 "common attributes"; `resourceURI` is handled by the codec) --------------

HEAD = (u("id"), s("name"), s("description"), t("created"), t("updated"), props())
OPERATIONS = lst("operations", struct("operation", "Operation"))
METERS = lst("meters", ref("meter"))  # monitoring is not offered: meters are only referenced


def resource(name: str, *body: Attr, collection_attr: str | None = None, legacy: frozenset[str] = frozenset()):
    """A resource type with the common attributes around `body`, and its collection when it has one."""
    coll = f"{name}Collection" if collection_attr else None
    return ResourceType(name, (*HEAD, *body, OPERATIONS), coll, collection_attr, legacy=legacy)


def part(name: str, *attributes: Attr, xml_attributes: bool = False, legacy: frozenset[str] = frozenset()):
    """A non-addressable part of a document (an operation, a configuration's disk, a component descriptor)."""
    return ResourceType(name, attributes, resource=False, xml_attributes=xml_attributes, legacy=legacy)


# -- the types -----------------------------------------------------------------------------------------------

# Template network interfaces: 1.1 names, plus the 1.0 draft's (`vsp`, `hostname`, `address` ... as in the Deltacloud
# samples) read and dropped; `maxTransmissionUnit` is the draft's name of `mtu`.
_NIC_LEGACY = frozenset({"vsp", "hostname", "protocol", "allocation", "address", "defaultGateway", "dns"})

_DECLARED: tuple[ResourceType, ...] = (
    part("Operation", s("rel"), u("href"), xml_attributes=True),
    ResourceType(
        "CloudEntryPoint",
        (
            *HEAD,
            u("baseURI"),
            ref("resourceMetadata", "ResourceMetadataCollection"),
            ref("systems", "SystemCollection"),
            ref("systemTemplates", "SystemTemplateCollection"),
            ref("machines", "MachineCollection"),
            ref("machineTemplates", "MachineTemplateCollection"),
            # the entry point abbreviates "Configuration" in its collection names (the collections do not)
            ref("machineConfigs", "MachineConfigurationCollection"),
            ref("machineImages", "MachineImageCollection"),
            ref("credentials", "CredentialCollection"),
            ref("credentialTemplates", "CredentialTemplateCollection"),
            ref("volumes", "VolumeCollection"),
            ref("volumeTemplates", "VolumeTemplateCollection"),
            ref("volumeConfigs", "VolumeConfigurationCollection"),
            ref("volumeImages", "VolumeImageCollection"),
            ref("networks", "NetworkCollection"),
            ref("networkTemplates", "NetworkTemplateCollection"),
            ref("networkConfigs", "NetworkConfigurationCollection"),
            ref("addresses", "AddressCollection"),
            ref("addressTemplates", "AddressTemplateCollection"),
            ref("jobs", "JobCollection"),
            OPERATIONS,
        ),
    ),
    # -- machines
    resource(
        "Machine",
        s("state"),
        i("cpu"),
        i("memory"),  # KiB
        s("cpuArch"),
        i("cpuSpeed"),  # MHz
        ref("disks", "MachineDiskCollection"),
        ref("volumes", "MachineVolumeCollection"),
        ref("networkInterfaces", "MachineNetworkInterfaceCollection"),
        # ours, as Deltacloud's: what the machine was made from (DSP0263 leaves it to the template)
        ref("machineConfig", "MachineConfiguration"),
        ref("machineImage", "MachineImage"),
        ref("latestSnapshot", "MachineImage"),
        METERS,
        ref("eventLog"),
        collection_attr="machines",
    ),
    resource(
        "MachineCreate",
        ref("machineTemplate", "MachineTemplate"),
    ),
    resource(
        "MachineTemplate",
        ref("machineConfig", "MachineConfiguration"),
        ref("machineImage", "MachineImage"),
        ref("credential", "Credential"),
        lst("volumes", ref("volume", "Volume", extras=(s("initialLocation"),))),
        lst("volumeTemplates", ref("volumeTemplate", "VolumeTemplate", extras=(s("initialLocation"),))),
        lst("networkInterfaces", struct("networkInterface", "MachineTemplateNetworkInterface")),
        s("userData"),
        s("initialState"),
        lst("meterTemplates", ref("meterTemplate")),
        ref("eventLogTemplate"),
        collection_attr="machineTemplates",
    ),
    part(
        "MachineTemplateNetworkInterface",
        lst("addresses", ref("address", "Address")),
        ref("network", "Network"),
        ref("networkPort"),
        s("networkType"),
        s("state"),
        i("mtu", aliases=("maxTransmissionUnit",)),
        s("macAddress"),
        legacy=_NIC_LEGACY,
    ),
    resource(
        "MachineTemplateCreate",
        ref("machineConfig", "MachineConfiguration"),
        ref("machineImage", "MachineImage"),
        ref("credential", "Credential"),
        lst("volumes", ref("volume", "Volume", extras=(s("initialLocation"),))),
        lst("volumeTemplates", ref("volumeTemplate", "VolumeTemplate", extras=(s("initialLocation"),))),
        lst("networkInterfaces", struct("networkInterface", "MachineTemplateNetworkInterface")),
        s("userData"),
        s("initialState"),
    ),
    resource(
        "MachineConfiguration",
        i("cpu"),
        i("memory"),  # KiB
        s("cpuArch"),
        i("cpuSpeed"),
        lst("disks", struct("disk", "MachineConfigurationDisk")),
        collection_attr="machineConfigurations",
    ),
    part("MachineConfigurationDisk", i("capacity"), s("format"), s("initialLocation")),
    resource(
        "MachineImage",
        s("state"),
        s("type"),  # IMAGE, SNAPSHOT, PARTIAL_SNAPSHOT
        u("imageLocation"),  # capture: the machine's URL
        ref("relatedImage", "MachineImage"),
        collection_attr="machineImages",
    ),
    resource("MachineDisk", i("capacity"), s("initialLocation"), collection_attr="disks"),
    resource("MachineVolume", s("initialLocation"), ref("volume", "Volume"), collection_attr="volumes"),
    resource(
        "MachineNetworkInterface",
        ref("addresses", "MachineNetworkInterfaceAddressCollection"),
        ref("network", "Network"),
        ref("networkPort"),
        s("networkType"),
        s("macAddress"),
        s("state"),
        i("mtu"),
        collection_attr="networkInterfaces",
    ),
    resource("MachineNetworkInterfaceAddress", ref("address", "Address"), collection_attr="addresses"),
    # -- credentials (SSH public keys; `privateKey` is ours: the generated key, returned once)
    resource("Credential", s("username"), s("password"), s("key"), s("privateKey"), collection_attr="credentials"),
    resource("CredentialCreate", ref("credentialTemplate", "CredentialTemplate")),
    resource("CredentialTemplate", s("username"), s("password"), s("key"), collection_attr="credentialTemplates"),
    # -- volumes
    resource(
        "Volume",
        s("state"),
        u("type"),
        i("capacity"),  # KiB
        b("bootable"),
        ref("images", "VolumeVolumeImageCollection"),
        METERS,
        ref("eventLog"),
        collection_attr="volumes",
    ),
    resource("VolumeCreate", ref("volumeTemplate", "VolumeTemplate")),
    resource(
        "VolumeTemplate",
        ref("volumeConfig", "VolumeConfiguration"),
        ref("volumeImage", "VolumeImage"),
        lst("meterTemplates", ref("meterTemplate")),
        ref("eventLogTemplate"),
        collection_attr="volumeTemplates",
    ),
    resource("VolumeConfiguration", u("type"), s("format"), i("capacity"), collection_attr="volumeConfigurations"),
    resource(
        "VolumeImage",
        s("state"),
        u("imageLocation"),  # the 1.0 drafts wrote a reference; read as its href
        s("imageData"),
        b("bootable"),
        collection_attr="volumeImages",
    ),
    resource("VolumeVolumeImage", ref("volumeImage", "VolumeImage"), collection_attr="volumeImages"),
    # -- networks and addresses
    resource(
        "Network",
        s("state"),
        s("networkType"),
        i("mtu"),
        s("classOfService"),
        s("cidr"),  # ours: the network's address block (CIMI has none)
        ref("networkPorts"),
        ref("forwardingGroup"),
        METERS,
        ref("eventLog"),
        collection_attr="networks",
    ),
    resource("NetworkCreate", ref("networkTemplate", "NetworkTemplate")),
    resource(
        "NetworkTemplate",
        ref("networkConfig", "NetworkConfiguration"),
        ref("forwardingGroup"),
        lst("meterTemplates", ref("meterTemplate")),
        ref("eventLogTemplate"),
        collection_attr="networkTemplates",
    ),
    resource(
        "NetworkConfiguration",
        s("networkType"),
        i("mtu"),
        s("classOfService"),
        s("cidr"),  # ours: the address block a network made with it gets
        collection_attr="networkConfigurations",
    ),
    resource(
        "Address",
        s("ip"),
        s("hostname"),
        s("allocation"),  # dynamic, static
        s("defaultGateway"),
        s("dns"),
        s("protocol"),  # IPv4, IPv6
        s("mask"),
        ref("network", "Network"),
        ref("resource"),  # what the address is bound to (a machine's network interface)
        collection_attr="addresses",
    ),
    resource("AddressCreate", ref("addressTemplate", "AddressTemplate")),
    resource(
        "AddressTemplate",
        s("ip"),
        s("hostname"),
        s("allocation"),
        s("defaultGateway"),
        s("dns"),
        s("protocol"),
        s("mask"),
        ref("network", "Network"),
        collection_attr="addressTemplates",
    ),
    # -- systems
    resource(
        "System",
        s("state"),
        ref("systems"),
        ref("machines", "SystemMachineCollection"),
        ref("credentials", "SystemCredentialCollection"),
        ref("volumes", "SystemVolumeCollection"),
        ref("networks", "SystemNetworkCollection"),
        ref("networkPorts"),
        ref("addresses", "SystemAddressCollection"),
        ref("forwardingGroups"),
        METERS,
        ref("eventLog"),
        collection_attr="systems",
    ),
    resource("SystemCreate", ref("systemTemplate", "SystemTemplate")),
    resource(
        "SystemTemplate",
        lst("componentDescriptors", struct("componentDescriptor", "ComponentDescriptor")),
        lst("meterTemplates", ref("meterTemplate")),
        ref("eventLogTemplate"),
        collection_attr="systemTemplates",
    ),
    part(
        "ComponentDescriptor",
        s("name"),
        s("description"),
        props(),
        u("type"),  # the component's resource URI, e.g. .../Machine
        ref("machineTemplate", "MachineTemplate"),
        ref("volumeTemplate", "VolumeTemplate"),
        ref("networkTemplate", "NetworkTemplate"),
        ref("addressTemplate", "AddressTemplate"),
        ref("credentialTemplate", "CredentialTemplate"),
        ref("systemTemplate", "SystemTemplate"),
        i("quantity"),
    ),
    resource("SystemMachine", ref("machine", "Machine"), collection_attr="machines"),
    resource("SystemVolume", s("initialLocation"), ref("volume", "Volume"), collection_attr="volumes"),
    resource("SystemNetwork", ref("network", "Network"), collection_attr="networks"),
    resource("SystemAddress", ref("address", "Address"), collection_attr="addresses"),
    resource("SystemCredential", ref("credential", "Credential"), collection_attr="credentials"),
    # -- jobs
    resource(
        "Job",
        s("state"),  # QUEUED, RUNNING, SUCCESS, FAILED, STOPPING, STOPPED
        ref("targetResource"),
        lst("affectedResources", ref("affectedResource")),
        u("action"),
        i("returnCode"),
        i("progress"),  # percent
        s("statusMessage"),
        t("timeOfStatusChange"),
        ref("parentJob", "Job"),
        lst("nestedJobs", ref("nestedJob", "Job")),
        b("isCancellable"),
        collection_attr="jobs",
    ),
    # -- the body of an action POST: the action's URI and the action's own attributes
    resource(
        "Action",
        u("action"),
        b("force"),  # stop, restart
        ref("machineImage", "MachineImage"),  # capture: the image to make
        ref("volume", "Volume"),  # 2.0 insert/remove on a machine's volumes
        s("initialLocation"),
    ),
    # -- metadata: 1.1 spells the type's URI `typeUri`, 2.0 `typeURI`
    resource(
        "ResourceMetadata",
        u("typeURI", wire=(("1", "typeUri"),)),
        lst("attributes", struct("attribute", "ResourceMetadataAttribute")),
        lst("capabilities", struct("capability", "ResourceMetadataCapability")),
        lst("actions", struct("action", "ResourceMetadataAction")),
        lst("initialStates", s("initialState")),  # ours: the Machine states a template may ask for
        collection_attr="resourceMetadata",
    ),
    part(
        "ResourceMetadataAttribute",
        s("name"),
        u("namespace"),
        s("type"),
        b("required"),
        lst("constraints", s("constraint")),
    ),
    part("ResourceMetadataCapability", s("name"), u("uri"), s("description"), s("value")),
    part(
        "ResourceMetadataAction",
        s("name"),
        u("uri"),
        s("description"),
        s("method"),
        s("inputMessage"),
        s("outputMessage"),
    ),
    # -- our error body. DSP0263 defines no error document; this is the least a client needs, in CIMI's shape.
    ResourceType("Error", (i("status"), s("code"), s("message"))),
)


def _collection(member: ResourceType) -> ResourceType:
    """The `*Collection` type of `member`: id, count, the members (XML elements named like the member type)."""
    assert member.collection is not None and member.collection_attr is not None
    items = lst(member.collection_attr, struct(member.name, member.name))
    return ResourceType(member.name + "Collection", (u("id"), i("count"), items, OPERATIONS))


TYPES: Mapping[str, ResourceType] = {
    **{rt.name: rt for rt in _DECLARED},
    **{rt.collection: _collection(rt) for rt in _DECLARED if rt.collection},
}

# -- URIs ----------------------------------------------------------------------------------------------------

#: Operations whose `rel` is a plain word in CIMI (not an action URI).
PLAIN_RELS = frozenset({"add", "edit", "delete", "insert", "remove"})
#: The actions DSP0263 names (`rel` = NAMESPACE/action/<name>).
ACTIONS = frozenset(
    {"start", "stop", "restart", "pause", "suspend", "capture", "snapshot", "restore", "export", "import", "enable"}
    | {"disable", "insert", "remove"}
)


def resource_uri(type_name: str, version: str) -> str:
    """`http://schemas.dmtf.org/cimi/<v>/<Type>`: a document's `resourceURI` (and ResourceMetadata's typeURI)."""
    return f"{NAMESPACE[version]}/{type_name}"


def action_uri(action: str, version: str) -> str:
    """The `rel` of an operation: an action URI, or the plain word for add/edit/delete."""
    if action in ("add", "edit", "delete"):
        return action
    return f"{NAMESPACE[version]}/action/{action}"


_URI_TYPES: Mapping[str, tuple[str, str]] = {
    resource_uri(name, version): (name, version) for name in TYPES for version in VERSIONS
}


def type_of_uri(uri: str) -> tuple[str, str] | None:
    """(type name, version) of a resource URI in either version's namespace, or None."""
    return _URI_TYPES.get(uri.strip())


def action_of_uri(uri: str) -> str | None:
    """The action named by an operation `rel` or an Action's `action`: either version's URI or a plain word."""
    uri = uri.strip()
    if uri in PLAIN_RELS:
        return uri
    for ns in NAMESPACE.values():
        prefix = ns + "/action/"
        if uri.startswith(prefix) and uri[len(prefix) :] in ACTIONS:
            return uri[len(prefix) :]
    return None


def _check() -> None:
    """Refuse at import a vocabulary the codec could not read unambiguously."""
    for rt in TYPES.values():
        seen: dict[str, str] = {}
        for attr in rt.attributes:
            if attr.kind in (Kind.REF, Kind.STRUCT):
                assert attr.target is None or attr.target in TYPES, f"{rt.name}.{attr.name}: {attr.target}"
            names = list(attr.all_names())
            if attr.kind is Kind.LIST:
                assert attr.item is not None
                names.append(attr.item.name)
                if attr.item.target:
                    assert attr.item.target in TYPES, f"{rt.name}.{attr.name}: {attr.item.target}"
            if attr.kind is Kind.MAP:
                names.append("property")
            for name in set(names):
                assert name not in seen, f"{rt.name}: element {name} of both {seen[name]} and {attr.name}"
                seen[name] = attr.name


_check()
