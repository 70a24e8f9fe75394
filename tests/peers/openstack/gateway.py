"""cloudgate configurations over the OpenStack peers, shared by the frontends' peer tests.

``over_project``: one tenant (``acme``, user ``alice``) whose one region is a fresh Keystone project of the
peers behind the ``openstack`` backend. ``keystone_identity``: a gateway on the simulator whose callers log
in with Keystone tokens of a project bound to that tenant.
"""

from __future__ import annotations

import json

from .keystone_peer import Credentials, Keystone

#: an image of the peer Glance that Nova's fake virt driver boots (most others ask for a trait the fake
#: hypervisor lacks, ephemeral encryption, and end in NoValidHost)
BOOTABLE = "fakeimage7"
#: the gateway user of both configurations
AUTH = ("alice", "alice-secret")

_OVER_PROJECT = """
[gateway]
workers = 2
threads = 4

[translator]
cache_ttl = 2.0
transitional_cache_ttl = 0.5
retry_attempts = 2
retry_initial_wait = 0.05
retry_max_wait = 0.2

[backends.os]
driver = "openstack"
auth_url = "{auth_url}"
region_name = "{region}"
nova_proxies = ["images"]
network = "private"
timeout = 20
delete_wait = 5

[tenants.acme]
account_id = "123456789012"
{default_image}
[tenants.acme.regions.os-1]
backend = "os"
zones = ["nova"]
username = "{username}"
password = "{password}"
project_name = "{project}"
user_domain_name = "{user_domain}"
project_domain_name = "{project_domain}"

[[users]]
access_key = "{access_key}"
secret = "{secret}"
tenant = "acme"
role = "admin"
"""

_KEYSTONE_IDENTITY = """
[gateway]
workers = 1
threads = 4

[backends.sim]
driver = "simulator"
boot_delay = 0.1

[tenants.acme]
account_id = "123456789012"
keystone_project_id = "{project_id}"
[tenants.acme.regions.local-1]
backend = "sim"

[identity.keystone]
auth_url = "{auth_url}"
username = "{username}"
password = "{password}"
project_name = "{project}"
"""


def _toml_text(value: str) -> str:
    """``value`` as the inside of a TOML basic string (Keystone's generated passwords have any character)."""
    return json.dumps(value)[1:-1]


def over_project(creds: Credentials, default_image: str | None = None) -> str:
    """Tenant ``acme``'s region ``os-1`` is the project of ``creds``; ``default_image`` its CIMI/OCCI default."""
    return _OVER_PROJECT.format(
        auth_url=creds.auth_url,
        region=creds.region_name,
        username=creds.username,
        password=_toml_text(creds.password),
        project=creds.project_name,
        user_domain=creds.user_domain_name,
        project_domain=creds.project_domain_name,
        default_image=f'default_image = "{default_image}"' if default_image else "",
        access_key=AUTH[0],
        secret=AUTH[1],
    )


def keystone_identity(keystone: Keystone, member: Credentials) -> str:
    """Tenant ``acme`` on the simulator, bound to ``member``'s project; the admin checks tokens."""
    admin = keystone.admin
    return _KEYSTONE_IDENTITY.format(
        project_id=member.project_id,
        auth_url=keystone.url,
        username=admin.username,
        password=_toml_text(admin.password),
        project=admin.project_name,
    )
