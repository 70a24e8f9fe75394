"""The OpenNebula backend: one OpenNebula user's objects, through oned's XML-RPC API (pyone)."""

from backends.opennebula.backend import OpenNebulaBackend
from backends.opennebula.machines import NATIVE_STATES, STATE_MAP

__all__ = ["NATIVE_STATES", "STATE_MAP", "OpenNebulaBackend"]
