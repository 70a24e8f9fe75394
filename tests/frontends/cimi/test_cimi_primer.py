"""The CIMI primer's scenario on the simulator, in both renderings and both CIMI versions."""

from __future__ import annotations

import pytest
from cimiclient import JSON, XML, Cimi
from gateway_process import GatewayProcess
from primer import run_primer


@pytest.mark.parametrize("media", [JSON, XML])
@pytest.mark.parametrize("version", ["2", "1"])
def test_primer_scenario(gateway: GatewayProcess, media: str, version: str) -> None:
    run_primer(Cimi(gateway.url, media, version))
