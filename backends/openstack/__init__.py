"""The OpenStack backend: Keystone v3 identity, Nova through libcloud, Glance/Cinder/Neutron or Nova's proxies."""

from backends.openstack.backend import OpenStackBackend
from backends.openstack.machines import STATE_MAP

__all__ = ["STATE_MAP", "OpenStackBackend"]
