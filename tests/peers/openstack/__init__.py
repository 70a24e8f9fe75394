"""OpenStack test peers: real Keystone, Neutron, Cinder, Nova and Glance servers on loopback, from cached
virtualenvs.

    from peers.openstack import start_cinder, start_glance, start_keystone, start_neutron, start_nova

    keystone = start_keystone(workdir / "keystone")     # Keystone(url, admin, stop())
    neutron = start_neutron(workdir / "neutron", keystone)  # "network"; shared "private", external "public"
    cinder = start_cinder(workdir / "cinder", keystone)  # "volumev3"; API, scheduler and volume service
    nova = start_nova(workdir / "nova", keystone, neutron=neutron, cinder=cinder)  # "compute", on those two
    glance = start_glance(workdir / "glance", keystone)  # Glance(url, region, stop()); "image" in its region
    tenant = keystone.create_project_user("acme")        # Credentials: auth_url, username, password, project_*
    sess = tenant.session()                              # keystoneauth1 Session, project-scoped
    sess.get(nova.url + "/flavors")
    nova.stop(); cinder.stop(); neutron.stop(); keystone.stop()

In pytest, the session fixtures ``keystone``, ``neutron``, ``cinder``, ``nova`` and ``glance``
(``peers.openstack.fixtures``) do the starting and stopping, and ``openstack_project`` gives each test a
fresh project and member user.
"""

from .cinder_peer import Cinder, start_cinder
from .glance_peer import Glance, start_glance
from .keystone_peer import Credentials, Keystone, start_keystone
from .neutron_peer import Neutron, start_neutron
from .nova_peer import PROXY_REGION, Nova, start_nova
from .venvs import cache_dir, ensure_venv

__all__ = [
    "PROXY_REGION",
    "Cinder",
    "Credentials",
    "Glance",
    "Keystone",
    "Neutron",
    "Nova",
    "cache_dir",
    "ensure_venv",
    "start_cinder",
    "start_glance",
    "start_keystone",
    "start_neutron",
    "start_nova",
]
