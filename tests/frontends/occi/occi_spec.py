"""The OCCI 1.2 Core and Infrastructure tables as data (written from the documents, not from our
categories): every kind with its parent, location suffix, attributes (name -> mutable) and actions."""

from __future__ import annotations

CORE = "http://schemas.ogf.org/occi/core#"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"

#: kind id -> (parent id, attribute name -> mutable, action terms)
KINDS: dict[str, tuple[str | None, dict[str, bool], tuple[str, ...]]] = {
    CORE + "entity": (None, {"occi.core.id": False, "occi.core.title": True}, ()),
    CORE + "resource": (CORE + "entity", {"occi.core.summary": True}, ()),
    CORE + "link": (CORE + "entity", {"occi.core.source": False, "occi.core.target": False}, ()),
    INFRA + "compute": (
        CORE + "resource",
        {
            "occi.compute.architecture": True,
            "occi.compute.cores": True,
            "occi.compute.hostname": True,
            "occi.compute.share": True,
            "occi.compute.memory": True,
            "occi.compute.state": False,
            "occi.compute.state.message": False,
        },
        ("start", "stop", "restart", "suspend", "save"),
    ),
    INFRA + "network": (
        CORE + "resource",
        {
            "occi.network.vlan": True,
            "occi.network.label": True,
            "occi.network.state": False,
            "occi.network.state.message": False,
        },
        ("up", "down"),
    ),
    INFRA + "storage": (
        CORE + "resource",
        {"occi.storage.size": True, "occi.storage.state": False, "occi.storage.state.message": False},
        ("online", "offline", "backup", "snapshot", "resize"),
    ),
    INFRA + "networkinterface": (
        CORE + "link",
        {
            "occi.networkinterface.interface": False,
            "occi.networkinterface.mac": True,
            "occi.networkinterface.state": False,
            "occi.networkinterface.state.message": False,
        },
        (),
    ),
    INFRA + "storagelink": (
        CORE + "link",
        {
            "occi.storagelink.deviceid": True,
            "occi.storagelink.mountpoint": True,
            "occi.storagelink.state": False,
            "occi.storagelink.state.message": False,
        },
        (),
    ),
}

#: mixin id -> its attributes (name -> mutable)
MIXINS: dict[str, dict[str, bool]] = {
    "http://schemas.ogf.org/occi/infrastructure/network#ipnetwork": {
        "occi.network.address": True,
        "occi.network.gateway": True,
        "occi.network.allocation": True,
    },
    "http://schemas.ogf.org/occi/infrastructure/networkinterface#ipnetworkinterface": {
        "occi.networkinterface.address": True,
        "occi.networkinterface.gateway": True,
        "occi.networkinterface.allocation": True,
    },
    INFRA + "os_tpl": {},
    INFRA + "resource_tpl": {},
    "http://schemas.ogf.org/occi/infrastructure/credentials#ssh_key": {"occi.credentials.ssh.publickey": True},
    "http://schemas.ogf.org/occi/infrastructure/compute#user_data": {"occi.compute.userdata": True},
}

ACTION_SCHEMES = {
    "compute": "http://schemas.ogf.org/occi/infrastructure/compute/action#",
    "network": "http://schemas.ogf.org/occi/infrastructure/network/action#",
    "storage": "http://schemas.ogf.org/occi/infrastructure/storage/action#",
}
#: compute states, network states, storage states (Infrastructure document)
COMPUTE_STATES = {"active", "inactive", "suspended", "error"}
