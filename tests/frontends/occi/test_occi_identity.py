"""OCCI, EC2 and CIMI see the same machines; and what the gateway answers in JSON over HTTP passes both
OCCI 1.2 JSON schemas (the specification appendix's, fixed refs, and rOCCI-core's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from gateway_process import GatewayProcess
from jsonschema import Draft4Validator
from occi_spec import INFRA
from occiclient import OCCI_JSON, TEXT_PLAIN, Doc, Occi
from referencing import Registry
from referencing.jsonschema import DRAFT4

COMPUTE = INFRA + "compute"
OS_TPL = "http://schemas.cloudgate.org/occi/template/os#"
RESOURCE_TPL = "http://schemas.cloudgate.org/occi/template/resource#"
CONFORMANCE = Path(__file__).resolve().parents[4] / "shared" / "conformance"
SPEC_SCHEMA = json.loads(
    (CONFORMANCE / "occi-wg" / "occi-1.2-json-schema.from-spec-appendix.fixed-refs.json").read_text()
)
ROCCI = CONFORMANCE / "rOCCI-core" / "lib" / "occi" / "core" / "parsers" / "json" / "validator"
ROCCI_REGISTRY = Registry().with_resource(
    "occi-schema.json", DRAFT4.create_resource(json.loads((ROCCI / "occi-schema.json").read_text()))
)


def spec(definition: str) -> Draft4Validator:
    return Draft4Validator({**SPEC_SCHEMA, "$ref": f"#/definitions/{definition}"})


def rocci(definition: str) -> Draft4Validator:
    return Draft4Validator({"$ref": f"occi-schema.json#/definitions/{definition}"}, registry=ROCCI_REGISTRY)


def valid(validator: Draft4Validator, doc: Any) -> None:
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, errors[:5]


def test_occi_ec2_and_cimi_see_the_same_machines(gateway: GatewayProcess) -> None:
    o = Occi(gateway.url, TEXT_PLAIN)
    ec2 = gateway.client()
    made = o.ok("POST", "compute/", Doc(COMPUTE, attributes={"occi.core.title": "from-occi"}), status=201)
    location = made.headers["Location"]
    gid = location.rsplit("/", 1)[1]
    # EC2 sees it by its name; CIMI by the same gateway id
    found = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["from-occi"]}])["Reservations"]
    assert len([i for r in found for i in r["Instances"]]) == 1
    cimi = requests.get(f"{gateway.url}/cimi/machines/{gid}", auth=("demo", "demo-secret"), timeout=30).json()
    assert cimi["name"] == "from-occi"

    # a machine launched with RunInstances is a compute with the os_tpl of its image and the resource_tpl of its type
    image = ec2.describe_images()["Images"][0]
    launched = ec2.run_instances(
        ImageId=image["ImageId"], InstanceType="t3.small", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "from-ec2"}]}],
    )["Instances"][0]  # fmt: skip
    computes = [o.get(loc) for loc in o.locations(o.ok("GET", "compute/"))]
    (compute,) = [c for c in computes if c.title == "from-ec2"]
    categories = o.categories(o.ok("GET", "-/"))
    titles = {categories[m].title for m in compute.mixins if m in categories}
    assert image["Name"] in titles and "t3.small" in titles
    assert any(m.startswith(OS_TPL) for m in compute.mixins) and any(m.startswith(RESOURCE_TPL) for m in compute.mixins)
    ec2.terminate_instances(InstanceIds=[launched["InstanceId"]])
    o.ok("DELETE", location, status=204)


def test_json_answers_pass_both_schemas(gateway: GatewayProcess) -> None:
    o = Occi(gateway.url, OCCI_JSON)
    model = json.loads(o.ok("GET", "-/").raw)
    valid(spec("model"), model)
    valid(rocci("model"), model)
    location = o.ok("POST", "compute/", Doc(COMPUTE), status=201).headers["Location"]
    o.wait(location, "occi.compute.state", "active")
    resource = json.loads(o.ok("GET", location).raw)
    valid(spec("resource"), resource)
    valid(rocci("resource"), resource)
    collection = json.loads(o.ok("GET", "compute/").raw)
    valid(spec("resource_collection"), collection)
    valid(rocci("entity_collection"), collection)
    link = json.loads(o.ok("GET", resource["links"][0]["location"] if "location" in resource["links"][0] else
                           f"networkinterface/{resource['links'][0]['id']}").raw)  # fmt: skip
    valid(spec("link"), link)
    valid(rocci("link"), link)
    # application/json is the same rendering, named as asked
    plain = requests.get(location, auth=("demo", "demo-secret"), headers={"Accept": "application/json"}, timeout=30)
    assert plain.headers["Content-Type"] == "application/json" and plain.json()["id"] == resource["id"]
    o.ok("DELETE", location, status=204)
