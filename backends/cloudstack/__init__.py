"""The CloudStack backend: an account's (or project's) zones, offerings, templates (captured ones too), VMs and
their NICs, volumes, snapshots, guest networks, key pairs, public addresses and security groups, through libcloud."""

from backends.cloudstack.backend import CloudStackBackend
from backends.cloudstack.machines import NATIVE_STATES, STATE_MAP

__all__ = ["NATIVE_STATES", "STATE_MAP", "CloudStackBackend"]
