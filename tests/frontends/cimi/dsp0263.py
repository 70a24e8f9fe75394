"""DSP0263's attribute tables as data: what each resource type may carry and what we must render.

Written from the specification's tables (2.0 spellings; the codec reads 1.1's into them), not from our
vocabulary, so a renderer that drops or invents an attribute fails ``check``. Extensions we add on purpose are
listed apart, each with why.
"""

from __future__ import annotations

from typing import Any

COMMON = frozenset({"resourceURI", "id", "name", "description", "created", "updated", "properties", "operations"})

ALLOWED: dict[str, frozenset[str]] = {
    "CloudEntryPoint": COMMON
    | {
        "baseURI",
        "resourceMetadata",
        "systems",
        "systemTemplates",
        "machines",
        "machineTemplates",
        "machineConfigs",
        "machineImages",
        "credentials",
        "credentialTemplates",
        "volumes",
        "volumeTemplates",
        "volumeConfigs",
        "volumeImages",
        "networks",
        "networkTemplates",
        "networkConfigs",
        "networkPorts",
        "networkPortTemplates",
        "networkPortConfigs",
        "addresses",
        "addressTemplates",
        "forwardingGroups",
        "forwardingGroupTemplates",
        "jobs",
        "meters",
        "meterTemplates",
        "meterConfigs",
        "eventLogs",
        "eventLogTemplates",
    },
    "Machine": COMMON
    | {"state", "cpu", "memory", "cpuArch", "cpuSpeed", "disks", "volumes", "networkInterfaces", "latestSnapshot"}
    | {"meters", "eventLog"}
    | {"machineConfig", "machineImage"},  # ours: what it was made from (DSP0263 leaves it to the template)
    "MachineConfiguration": COMMON | {"cpu", "memory", "cpuArch", "cpuSpeed", "disks"},
    "MachineImage": COMMON | {"state", "type", "imageLocation", "relatedImage"},
    "MachineTemplate": COMMON
    | {"machineConfig", "machineImage", "credential", "volumes", "volumeTemplates", "networkInterfaces"}
    | {"userData", "initialState", "meterTemplates", "eventLogTemplate"},
    "MachineDisk": COMMON | {"capacity", "initialLocation"},
    "MachineVolume": COMMON | {"initialLocation", "volume"},
    "MachineNetworkInterface": COMMON
    | {"addresses", "network", "networkPort", "networkType", "macAddress", "state", "mtu"},
    "MachineNetworkInterfaceAddress": COMMON | {"address"},
    "Credential": COMMON | {"username", "password", "key", "privateKey"},  # privateKey: ours, once, on create
    "Volume": COMMON | {"state", "type", "capacity", "bootable", "images", "meters", "eventLog"},
    "VolumeConfiguration": COMMON | {"type", "format", "capacity"},
    "VolumeImage": COMMON | {"state", "imageLocation", "imageData", "bootable"},
    "Network": COMMON
    | {"state", "networkType", "mtu", "classOfService", "networkPorts", "forwardingGroup", "meters", "eventLog"}
    | {"cidr"},  # ours: the network's address block (DSP0263 has no address plan; every cloud network needs one)
    "NetworkConfiguration": COMMON | {"networkType", "mtu", "classOfService"} | {"cidr"},  # ours, as Network's
    "Address": COMMON
    | {"ip", "hostname", "allocation", "defaultGateway", "dns", "protocol", "mask", "network", "resource"},
    "System": COMMON
    | {"state", "systems", "machines", "credentials", "volumes", "networks", "networkPorts", "addresses"}
    | {"forwardingGroups", "meters", "eventLog"},
    "SystemTemplate": COMMON | {"componentDescriptors", "meterTemplates", "eventLogTemplate"},
    "SystemMachine": COMMON | {"machine"},
    "Job": COMMON
    | {"state", "targetResource", "affectedResources", "action", "returnCode", "progress", "statusMessage"}
    | {"timeOfStatusChange", "parentJob", "nestedJobs", "isCancellable"},
    "ResourceMetadata": COMMON
    | {"typeURI", "attributes", "capabilities", "actions"}
    | {"initialStates"},  # ours: the states a Machine may be created in
}

REQUIRED: dict[str, frozenset[str]] = {
    "CloudEntryPoint": frozenset({"resourceURI", "id", "baseURI", "created", "updated", "machines", "jobs"}),
    "Machine": frozenset({"resourceURI", "id", "created", "state", "cpu", "memory", "disks", "volumes"})
    | {"networkInterfaces", "operations"},
    "MachineConfiguration": frozenset({"resourceURI", "id", "cpu", "memory"}),
    "MachineImage": frozenset({"resourceURI", "id", "state", "type", "imageLocation"}),
    "MachineTemplate": frozenset({"resourceURI", "id", "created"}),
    "MachineVolume": frozenset({"resourceURI", "id", "volume"}),
    "Volume": frozenset({"resourceURI", "id", "state", "type", "capacity"}),
    "Job": frozenset({"resourceURI", "id", "state", "action", "targetResource", "timeOfStatusChange", "progress"}),
    "System": frozenset({"resourceURI", "id", "state", "machines"}),
    "Credential": frozenset({"resourceURI", "id", "key"}),
    "ResourceMetadata": frozenset({"resourceURI", "id", "typeURI"}),
}

#: DSP0263's state values per type
STATES: dict[str, frozenset[str]] = {
    "Machine": frozenset(
        {"CREATING", "STARTING", "STARTED", "STOPPING", "STOPPED", "PAUSING", "PAUSED", "SUSPENDING", "SUSPENDED"}
        | {"CAPTURING", "RESTORING", "DELETING", "ERROR", "FAILED"}
    ),
    "Job": frozenset({"QUEUED", "RUNNING", "SUCCESS", "FAILED", "STOPPING", "STOPPED"}),
    "Volume": frozenset({"CREATING", "AVAILABLE", "CAPTURING", "DELETING", "ERROR"}),
    "MachineImage": frozenset({"CREATING", "AVAILABLE", "DELETING", "ERROR"}),
}


def check(type_name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Assert a document carries only DSP0263's attributes (and our declared extensions) and the required ones."""
    keys = set(doc)
    unknown = keys - ALLOWED[type_name]
    assert not unknown, f"{type_name} has attributes DSP0263 does not define: {sorted(unknown)}"
    missing = REQUIRED.get(type_name, frozenset()) - keys
    assert not missing, f"{type_name} lacks {sorted(missing)}: {doc}"
    if type_name in STATES and "state" in doc:
        assert doc["state"] in STATES[type_name], doc["state"]
    for op in doc.get("operations", ()):
        assert set(op) == {"rel", "href"} and op["href"].startswith("http"), op
    return doc


def check_collection(type_name: str, doc: dict[str, Any], attribute: str) -> list[dict[str, Any]]:
    """A collection document: its count matches its members, each member checked."""
    members = doc.get(attribute, [])
    assert doc["count"] == len(members), doc
    for member in members:
        check(type_name, member)
    return members
