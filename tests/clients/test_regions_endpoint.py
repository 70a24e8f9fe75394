"""DescribeRegions names, for each region, the endpoint to call it at, as EC2 does.

A gateway serves every region at one URL: its ``public_endpoint`` when one is configured, else the scheme
and host the request itself came to (what the client already uses).
"""

from __future__ import annotations

from typing import Any

import requests
from clientutil import NS, sigv4_headers, success, wire
from gateway_process import GatewayProcess, StartGateway

PUBLIC = "https://cloud.example.com"


def test_each_region_names_the_url_the_client_called(ec2: Any, gateway: GatewayProcess) -> None:
    regions = ec2.describe_regions()["Regions"]
    assert [(r["RegionName"], r["Endpoint"]) for r in regions] == [("local-1", gateway.url)]


def test_each_region_names_the_public_endpoint_when_one_is_configured(start_gateway: StartGateway) -> None:
    public = start_gateway(f'public_endpoint = "{PUBLIC}/"')
    body = wire({"Action": "DescribeRegions", "Version": "2016-11-15"})
    headers = sigv4_headers(f"{PUBLIC}/", body)  # signed for the public host, sent to loopback
    root = success(requests.post(f"{public.url}/", data=body, headers=headers, timeout=30), "DescribeRegions")
    items = list(root.iterfind(f"{NS}regionInfo/{NS}item"))
    assert [(i.findtext(f"{NS}regionName"), i.findtext(f"{NS}regionEndpoint")) for i in items] == [("local-1", PUBLIC)]
