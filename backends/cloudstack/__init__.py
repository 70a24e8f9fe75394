"""The CloudStack backend: an account's (or project's) zones, offerings, templates and VMs, through libcloud."""

from backends.cloudstack.backend import CloudStackBackend
from backends.cloudstack.machines import NATIVE_STATES, STATE_MAP

__all__ = ["NATIVE_STATES", "STATE_MAP", "CloudStackBackend"]
