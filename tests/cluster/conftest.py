"""Fixtures of the cluster checks: nginx in front of nodes, nodes that are all stopped at the end, and the checks'
figures, printed where they are made (seen with ``-s``) and again in pytest's terminal summary (seen always)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from cluster_nodes import Nginx
from gateway_process import GatewayProcess

#: the figures of this session's checks, as "test name: figures" lines
FIGURES = pytest.StashKey[list[str]]()


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
    with ThreadPoolExecutor(max(1, len(started))) as pool:  # each stop waits for its node's graceful exit
        list(pool.map(GatewayProcess.stop, started))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Report a check's figures: printed now, and listed under "cluster figures" at the end of the run."""
    lines = request.config.stash.setdefault(FIGURES, [])

    def report(text: str) -> None:
        print(f"\n{text}")
        lines.append(f"{request.node.name}: {text.strip()}")

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("cluster figures")
        for line in lines:
            terminalreporter.write_line(line)
