"""The simulator backend: a faithful small IaaS whose whole state lives in the gateway's Redis."""

from backends.simulator.backend import SimulatorBackend
from backends.simulator.machines import STATE_MAP

__all__ = ["STATE_MAP", "SimulatorBackend"]
