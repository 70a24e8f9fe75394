"""Pytest fixtures for the OpenStack peers; register with ``pytest_plugins = ["peers.openstack.fixtures"]``.

``keystone``, ``neutron``, ``cinder``, ``nova`` and ``glance`` are session-wide: the first test that asks
builds the venvs if the machine has none cached (about a minute each) and starts the servers (seconds);
the session's end stops them.
``openstack_project`` is a fresh Keystone project with a ``member`` user for one test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from .cinder_peer import Cinder, start_cinder
from .glance_peer import Glance, start_glance
from .keystone_peer import Credentials, Keystone, start_keystone
from .neutron_peer import Neutron, start_neutron
from .nova_peer import PROXY_REGION, Nova, start_nova
from .venvs import Progress


def _progress(config: pytest.Config) -> Progress:
    """Print progress on the terminal even while pytest captures output: a cold venv build takes a while."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def report(message: str) -> None:
        if capture is None:
            print(message, file=sys.stderr)
            return
        with capture.global_and_fixture_disabled():
            print(f"\n{message}", file=sys.stderr, flush=True)

    return report


@pytest.fixture(scope="session")
def keystone(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """A real Keystone on loopback for the whole session (bootstrap admin in ``keystone.admin``)."""
    server = start_keystone(tmp_path_factory.mktemp("keystone"), _progress(request.config))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nova(
    keystone: Keystone,
    neutron: Neutron,
    cinder: Cinder,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Nova]:
    """The real Nova API on loopback for the whole session, on the real Neutron and Cinder.

    ``compute`` in ``keystone``'s catalog in ``RegionOne`` (with Neutron and Cinder), and alone in ``PROXY_REGION``.
    """
    server = start_nova(
        tmp_path_factory.mktemp("nova"),
        keystone,
        _progress(request.config),
        neutron=neutron,
        cinder=cinder,
        regions=(PROXY_REGION,),
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def glance(
    keystone: Keystone, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Glance]:
    """A real Glance API for the whole session, the ``image`` endpoint of its own region (``glance.region``).

    Region ``RegionOne`` keeps compute only, so Nova's image proxy serves the tests that do not ask for this.
    """
    server = start_glance(tmp_path_factory.mktemp("glance"), keystone, _progress(request.config))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cinder(
    keystone: Keystone, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cinder]:
    """A real Cinder (API, scheduler and volume service) for the whole session, ``volumev3`` in ``RegionOne``."""
    server = start_cinder(tmp_path_factory.mktemp("cinder"), keystone, _progress(request.config))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def neutron(
    keystone: Keystone, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Neutron]:
    """A real Neutron server (ML2, L3) for the whole session, ``network`` in the catalog's ``RegionOne``."""
    server = start_neutron(tmp_path_factory.mktemp("neutron"), keystone, _progress(request.config))
    yield server
    server.stop()


@pytest.fixture
def openstack_project(keystone: Keystone) -> Iterator[Credentials]:
    """A new project and a ``member`` user on it, deleted after the test (servers left in Nova stay)."""
    credentials = keystone.create_project_user()
    yield credentials
    keystone.delete_project_user(credentials)
