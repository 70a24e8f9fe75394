"""Time render_response for a 50-instance DescribeInstances against building the same XML with lxml.

Run: `python bench/bench_ec2_render.py [iterations]`. The result dict is built once (like a cached
listing), then only rendering is timed, in-process (STYLE.md item 12). Prints µs/op and the ratio.
"""

from __future__ import annotations

import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from botocore.model import Shape
from botocore.parsers import EC2QueryParser
from lxml import etree

from frontends.ec2.render import render_response
from frontends.ec2.service import find_operation


def instance(i: int) -> dict[str, Any]:
    """One realistic instance, roughly what a backend listing fills in."""
    return {
        "InstanceId": f"i-{i:017x}",
        "ImageId": "ami-0abcdef1234567890",
        "State": {"Code": 16, "Name": "running"},
        "PrivateDnsName": f"ip-10-0-0-{i}.eu-west-1.compute.internal",
        "PublicDnsName": f"ec2-203-0-113-{i}.eu-west-1.compute.amazonaws.com",
        "KeyName": "deploy",
        "AmiLaunchIndex": 0,
        "InstanceType": "m5.large",
        "LaunchTime": datetime(2026, 11, 21, 10, 0, i % 60, tzinfo=UTC),
        "Placement": {"AvailabilityZone": "eu-west-1a", "GroupName": "", "Tenancy": "default"},
        "Monitoring": {"State": "disabled"},
        "SubnetId": "subnet-0123456789abcdef0",
        "VpcId": "vpc-0123456789abcdef0",
        "PrivateIpAddress": f"10.0.0.{i}",
        "PublicIpAddress": f"203.0.113.{i}",
        "Architecture": "x86_64",
        "RootDeviceType": "ebs",
        "RootDeviceName": "/dev/xvda",
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {
                    "AttachTime": datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
                    "DeleteOnTermination": True,
                    "Status": "attached",
                    "VolumeId": f"vol-{i:017x}",
                },
            }
        ],
        "VirtualizationType": "hvm",
        "Tags": [{"Key": "Name", "Value": f"web-{i} <prod & blue>"}, {"Key": "team", "Value": "infra"}],
        "SecurityGroups": [{"GroupName": "web", "GroupId": "sg-0123456789abcdef0"}],
        "SourceDestCheck": True,
        "Hypervisor": "xen",
        "EbsOptimized": False,
        "EnaSupport": True,
        "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 2},
        "PlatformDetails": "Linux/UNIX",
    }


RESULT = {
    "Reservations": [
        {"ReservationId": f"r-{i:017x}", "OwnerId": "123456789012", "Groups": [], "Instances": [instance(i)]}
        for i in range(50)
    ]
}


def lxml_render(operation: Any, result: dict[str, Any], request_id: str) -> bytes:
    """The per-request tree a straightforward implementation builds: walk the shape, SubElement per value."""
    root = etree.Element(f"{operation.name}Response", nsmap={None: "http://ec2.amazonaws.com/doc/2016-11-15/"})
    etree.SubElement(root, "requestId").text = request_id

    def text(shape: Shape, value: Any) -> str:
        if shape.type_name == "boolean":
            return "true" if value else "false"
        if shape.type_name == "timestamp":
            return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return str(value)

    def walk(parent: Any, shape: Shape, value: Any) -> None:
        if shape.type_name == "structure":
            for name, member in shape.members.items():
                if value.get(name) is not None:
                    child = etree.SubElement(parent, member.serialization.get("name") or name)
                    walk(child, member, value[name])
        elif shape.type_name == "list":
            for item in value:
                walk(
                    etree.SubElement(parent, shape.member.serialization.get("name") or "item"),
                    shape.member,
                    item,
                )
        else:
            parent.text = text(shape, value)

    walk(root, operation.output_shape, result)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    operation = find_operation("DescribeInstances")
    assert operation is not None
    ours = render_response(operation, RESULT, "bench")  # also compiles the renderer, outside the timing
    theirs = lxml_render(operation, RESULT, "bench")
    parser = EC2QueryParser()
    a = parser.parse({"body": ours, "headers": {}, "status_code": 200}, operation.output_shape)
    b = parser.parse({"body": theirs, "headers": {}, "status_code": 200}, operation.output_shape)
    assert a == b, "both renderers must produce the same document"

    t_ours = min(timeit.repeat(lambda: render_response(operation, RESULT, "bench"), number=iterations, repeat=5))
    t_lxml = min(timeit.repeat(lambda: lxml_render(operation, RESULT, "bench"), number=iterations, repeat=5))
    us_ours, us_lxml = t_ours / iterations * 1e6, t_lxml / iterations * 1e6
    print(f"document: {len(ours):,} bytes, 50 instances")
    print(f"render_response: {us_ours:8.1f} µs/op")
    print(f"lxml tree:       {us_lxml:8.1f} µs/op")
    print(f"ratio lxml/ours: {us_lxml / us_ours:8.1f}x")


if __name__ == "__main__":
    main()
