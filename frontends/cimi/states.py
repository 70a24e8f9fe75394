"""Canonical states in CIMI's words (DSP0263's state tables), one table per resource type.

Every canonical state has a row (a test checks it). Where CIMI has no word for a canonical state the
nearest one is used and said here: ``rebooting`` is STARTING (a restart ends started), ``terminated``
DELETED (a deleted machine some clouds still list for a while; CIMI listings leave them out), a volume
``in-use`` AVAILABLE (CIMI shows the attachment as a MachineVolume, not as a state).
"""

from __future__ import annotations

from translator.model import ImageState, JobState, MachineState, NetworkState, SnapshotState, VolumeState

MACHINE: dict[MachineState, str] = {
    MachineState.PENDING: "CREATING",
    MachineState.RUNNING: "STARTED",
    MachineState.STOPPING: "STOPPING",
    MachineState.STOPPED: "STOPPED",
    MachineState.SUSPENDED: "SUSPENDED",
    MachineState.PAUSED: "PAUSED",
    MachineState.REBOOTING: "STARTING",
    MachineState.CAPTURING: "CAPTURING",
    MachineState.TERMINATING: "DELETING",
    MachineState.TERMINATED: "DELETED",
    MachineState.ERROR: "ERROR",
}

VOLUME: dict[VolumeState, str] = {
    VolumeState.CREATING: "CREATING",
    VolumeState.AVAILABLE: "AVAILABLE",
    VolumeState.IN_USE: "AVAILABLE",
    VolumeState.DELETING: "DELETING",
    VolumeState.DELETED: "DELETED",
    VolumeState.ERROR: "ERROR",
}

IMAGE: dict[ImageState, str] = {
    ImageState.PENDING: "CREATING",
    ImageState.AVAILABLE: "AVAILABLE",
    ImageState.FAILED: "ERROR",
    ImageState.DEREGISTERED: "DELETED",
}

SNAPSHOT: dict[SnapshotState, str] = {
    SnapshotState.PENDING: "CREATING",
    SnapshotState.COMPLETED: "AVAILABLE",
    SnapshotState.ERROR: "ERROR",
}

NETWORK: dict[NetworkState, str] = {
    NetworkState.PENDING: "CREATING",
    NetworkState.AVAILABLE: "STARTED",
    NetworkState.DOWN: "STOPPED",
    NetworkState.ERROR: "ERROR",
}

JOB: dict[JobState, str] = {
    JobState.QUEUED: "QUEUED",
    JobState.RUNNING: "RUNNING",
    JobState.SUCCESS: "SUCCESS",
    JobState.FAILED: "FAILED",
}

#: every table, by the canonical enum it maps (for the completeness test)
TABLES: dict[type, dict] = {
    MachineState: MACHINE,
    VolumeState: VOLUME,
    ImageState: IMAGE,
    SnapshotState: SNAPSHOT,
    NetworkState: NETWORK,
    JobState: JOB,
}
