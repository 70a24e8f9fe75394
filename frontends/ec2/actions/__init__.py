"""The action table: EC2 action name -> handler, built once at import (STYLE.md item 2).

A handler takes the call context and the botocore-shaped input dict and returns the botocore-shaped
output dict; the renderer turns that into XML. Handlers speak only to the translator.
"""

from __future__ import annotations

from frontends.ec2.actions import (
    account,
    addresses,
    images,
    instance_details,
    instances,
    keypairs,
    networks,
    regions,
    security_groups,
    tags,
    volumes,
)
from frontends.ec2.actions.base import Call, Handler

ACTIONS: dict[str, Handler] = {}
_MODULES = (regions, account, instances, instance_details, images, keypairs)
_MODULES += (security_groups, volumes, addresses, tags, networks)
for _module in _MODULES:
    for _name, _handler in _module.ACTIONS.items():
        assert _name not in ACTIONS, _name
        ACTIONS[_name] = _handler

__all__ = ["ACTIONS", "Call", "Handler"]
