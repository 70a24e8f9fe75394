"""Every CIMI collection's controller, in the order the entry point names them."""

from __future__ import annotations

from frontends.cimi.controller import Controller
from frontends.cimi.jobs import Jobs
from frontends.cimi.resources.addresses import Addresses
from frontends.cimi.resources.configs import MachineConfigs, VolumeConfigs
from frontends.cimi.resources.credentials import Credentials
from frontends.cimi.resources.images import MachineImages
from frontends.cimi.resources.machines import Machines
from frontends.cimi.resources.metadata import ResourceMetadataCollection
from frontends.cimi.resources.networks import NetworkConfigs, Networks
from frontends.cimi.resources.systems import Systems, SystemTemplates
from frontends.cimi.resources.templates import (
    AddressTemplates,
    CredentialTemplates,
    MachineTemplates,
    NetworkTemplates,
    VolumeTemplates,
)
from frontends.cimi.resources.volume_images import VolumeImages
from frontends.cimi.resources.volumes import Volumes

REGISTRY: tuple[Controller, ...] = (
    Machines(),
    MachineTemplates(),
    MachineConfigs(),
    MachineImages(),
    Credentials(),
    CredentialTemplates(),
    Volumes(),
    VolumeTemplates(),
    VolumeConfigs(),
    VolumeImages(),
    Networks(),
    NetworkTemplates(),
    NetworkConfigs(),
    Addresses(),
    AddressTemplates(),
    Systems(),
    SystemTemplates(),
    Jobs(),
    ResourceMetadataCollection(),
)
