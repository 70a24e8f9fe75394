"""OpenStack test peers: a real Keystone and the real Nova API on loopback, from cached virtualenvs.

    from peers.openstack import start_keystone, start_nova

    keystone = start_keystone(workdir / "keystone")     # Keystone(url, admin, stop())
    nova = start_nova(workdir / "nova", keystone)        # Nova(url, stop()); "compute" in the catalog
    glance = start_glance(workdir / "glance", keystone)  # Glance(url, region, stop()); "image" in its region
    tenant = keystone.create_project_user("acme")        # Credentials: auth_url, username, password, project_*
    sess = tenant.session()                              # keystoneauth1 Session, project-scoped
    sess.get(nova.url + "/flavors")
    nova.stop(); keystone.stop()

In pytest, the session fixtures ``keystone``, ``nova`` and ``glance`` (``peers.openstack.fixtures``) do the
starting and stopping, and ``openstack_project`` gives each test a fresh project and member user.
"""

from .glance_peer import Glance, start_glance
from .keystone_peer import Credentials, Keystone, start_keystone
from .nova_peer import Nova, start_nova
from .venvs import cache_dir, ensure_venv

__all__ = [
    "Credentials",
    "Glance",
    "Keystone",
    "Nova",
    "cache_dir",
    "ensure_venv",
    "start_glance",
    "start_keystone",
    "start_nova",
]
