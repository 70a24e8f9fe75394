from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway_process import GatewayProcess


@pytest.fixture
def gateways() -> Iterator[Callable[..., GatewayProcess]]:
    """Factory of gateway processes; every one started is stopped when the test ends."""
    started: list[GatewayProcess] = []

    def start(config: Path, data_dir: Path | None = None, workers: int = 2) -> GatewayProcess:
        gw = GatewayProcess(config, data_dir, workers)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
