"""Fixtures of the cluster checks: nginx in front of nodes, and nodes that are all stopped at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
from cluster_nodes import Nginx
from gateway_process import GatewayProcess


@pytest.fixture
def start_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Sequence[int]], Nginx]]:
    """Start nginx in front of the given node ports; all stopped at the end."""
    started: list[Nginx] = []

    def start(node_ports: Sequence[int]) -> Nginx:
        server = Nginx(tmp_path_factory.mktemp("nginx"), node_ports)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def nodes() -> Iterator[list[GatewayProcess]]:
    """A list the test fills with gateway nodes (restarted ones too); every one still running is stopped."""
    started: list[GatewayProcess] = []
    yield started
    for node in started:
        node.stop()
