"""Round-trip botocore's EC2 examples (examples-1.json) through our codec (STYLE.md item 11).

Input: botocore's EC2 serializer writes the example input, AWSRequest form-encodes it, our parser must
return the example input. Output: we render the example output, botocore's EC2QueryParser must read it back.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSRequest
from botocore.loaders import Loader
from botocore.model import OperationModel
from botocore.parsers import EC2QueryParser
from botocore.serialize import create_serializer
from shapes import normalise

from frontends.ec2.query import parse_form, parse_params
from frontends.ec2.render import render_response
from frontends.ec2.service import find_operation

REQUIRED_OPERATIONS = (
    "RunInstances",
    "DescribeInstances",
    "DescribeInstanceStatus",
    "StartInstances",
    "StopInstances",
    "RebootInstances",
    "TerminateInstances",
    "DescribeInstanceAttribute",
    "ModifyInstanceAttribute",
    "GetConsoleOutput",
    "DescribeInstanceTypes",
    "DescribeImages",
    "CreateImage",
    "DeregisterImage",
    "CreateKeyPair",
    "ImportKeyPair",
    "DescribeKeyPairs",
    "DeleteKeyPair",
    "CreateSecurityGroup",
    "DescribeSecurityGroups",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "CreateVolume",
    "DescribeVolumes",
    "DeleteVolume",
    "AttachVolume",
    "DetachVolume",
    "CreateSnapshot",
    "DescribeSnapshots",
    "DeleteSnapshot",
    "AllocateAddress",
    "DescribeAddresses",
    "AssociateAddress",
    "DisassociateAddress",
    "ReleaseAddress",
    "CreateTags",
    "DeleteTags",
    "DescribeTags",
    "DescribeVpcs",
    "DescribeSubnets",
    "CreateVpc",
    "DeleteVpc",
    "CreateSubnet",
    "DeleteSubnet",
    "DescribeRegions",
    "DescribeAvailabilityZones",
    "DescribeAccountAttributes",
)

# Required operations botocore ships no example for: hand-written examples following the model's shapes.
HAND_WRITTEN: dict[str, list[dict[str, Any]]] = {
    "DescribeInstanceTypes": [
        {
            "input": {"InstanceTypes": ["t2.micro", "m5.large"], "Filters": [{"Name": "x", "Values": ["1"]}]},
            "output": {
                "InstanceTypes": [
                    {
                        "InstanceType": "t2.micro",
                        "CurrentGeneration": True,
                        "VCpuInfo": {"DefaultVCpus": 1, "ValidCores": [1]},
                        "MemoryInfo": {"SizeInMiB": 1024},
                        "ProcessorInfo": {
                            "SupportedArchitectures": ["x86_64"],
                            "SustainedClockSpeedInGhz": 2.5,
                        },
                    }
                ],
                "NextToken": "tok",
            },
        }
    ],
    "DeregisterImage": [{"input": {"ImageId": "ami-0abcdef1234567890", "DryRun": False}, "output": {}}],
    "ImportKeyPair": [
        {
            "input": {"KeyName": "k1", "PublicKeyMaterial": b"ssh-rsa AAAAB3Nza me@host"},
            "output": {"KeyFingerprint": "1f:51:ae", "KeyName": "k1", "KeyPairId": "key-0123456789abcdef0"},
        }
    ],
    "RevokeSecurityGroupIngress": [
        {
            "input": {
                "GroupId": "sg-1",
                "IpPermissions": [
                    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                ],
            },
            "output": {"Return": True},
        }
    ],
    "RevokeSecurityGroupEgress": [
        {
            "input": {"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "-1", "UserIdGroupPairs": []}]},
            "output": {"Return": True, "UnknownIpPermissions": []},
        }
    ],
}

# Examples whose data violates the model (botocore's own ParamValidator rejects them); the comparison
# coerces the expected value to the modelled type, since the wire cannot tell "100" from 100.
MODEL_VIOLATIONS: dict[str, str] = {
    "CreateImage-0": "input BlockDeviceMappings[0].Ebs.VolumeSize is the string '100', modelled as integer",
    "DescribeInstanceAttribute-1": "output DisableApiTermination.Value is the string 'false', not a boolean",
}


def _cases() -> list[Any]:
    examples: dict[str, list[dict[str, Any]]] = dict(Loader().load_service_model("ec2", "examples-1")["examples"])
    for name, hand in HAND_WRITTEN.items():
        assert name not in examples, f"botocore now has examples for {name}; drop the hand-written one"
        examples[name] = hand
    params = []
    for name in sorted(examples):
        for index, example in enumerate(examples[name]):
            case_id = f"{name}-{index}"
            params.append(pytest.param(name, example, case_id, id=case_id))
    return params


CASES = _cases()


def _operation(name: str) -> OperationModel:
    operation = find_operation(name)
    assert operation is not None
    return operation


def test_required_operations_all_have_cases() -> None:
    covered = {p.values[0] for p in CASES}
    assert set(REQUIRED_OPERATIONS) <= covered, set(REQUIRED_OPERATIONS) - covered


def test_model_violations_name_real_examples() -> None:
    assert set(MODEL_VIOLATIONS) <= {p.id for p in CASES}


@pytest.mark.parametrize(("name", "example", "case_id"), CASES)
def test_example_input_parses_back(name: str, example: dict[str, Any], case_id: str) -> None:
    operation = _operation(name)
    given = example.get("input", {})
    serializer = create_serializer("ec2", include_validation=case_id not in MODEL_VIOLATIONS)
    request = serializer.serialize_to_request(given, operation)
    prepared = AWSRequest(method="POST", url="https://ec2.example.com/", data=request["body"]).prepare()
    form = parse_form(prepared.body.encode() if isinstance(prepared.body, str) else prepared.body or b"")
    assert form.pop("Action") == name
    parsed = parse_params(operation, form)
    shape = operation.input_shape
    coerce = case_id in MODEL_VIOLATIONS
    assert normalise(shape, parsed) == normalise(shape, given, drop_empty=True, coerce=coerce)


@pytest.mark.parametrize(("name", "example", "case_id"), CASES)
def test_example_output_renders_what_botocore_reads(name: str, example: dict[str, Any], case_id: str) -> None:
    operation = _operation(name)
    result = example.get("output", {})
    body = render_response(operation, result, "example-request")
    parsed = EC2QueryParser().parse({"body": body, "headers": {}, "status_code": 200}, operation.output_shape)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "example-request"
    shape = operation.output_shape
    assert normalise(shape, parsed) == normalise(shape, result, coerce=case_id in MODEL_VIOLATIONS)
