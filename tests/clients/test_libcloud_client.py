"""Apache libcloud's EC2 driver used as a client of the gateway, signing with SigV2 and with SigV4.

libcloud's ``EC2NodeDriver`` only accepts AWS region names and takes its endpoint from them, so the test
subclass below sets the region (``local-1``, used in the SigV4 credential scope) and the host itself;
everything else is libcloud's own code: its query building (``GET`` with every parameter in the query
string, ``Tag.0.Key``/``ResourceId.0`` numbered from zero by ``ex_create_tags``), its signers and its
XML parsing. Results are cross-checked with a boto3 client where libcloud's objects say too little.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ec2util import unique
from gateway_process import GatewayProcess
from libcloud.common.types import InvalidCredsError
from libcloud.compute.base import Node, NodeImage, NodeLocation, NodeSize, StorageVolume
from libcloud.compute.drivers.ec2 import BaseEC2NodeDriver, EC2NodeDriver
from libcloud.compute.types import NodeState, StorageVolumeState

REGION = "local-1"


class GatewayEC2NodeDriver(EC2NodeDriver):
    """libcloud's EC2 driver for a non-AWS region and endpoint.

    ``EC2NodeDriver.__init__`` rejects regions missing from libcloud's AWS table; the attributes it would
    set from that table are set here instead, then the base constructor builds the connection.
    """

    def __init__(self, key: str, secret: str, *, host: str, port: int, signature_version: str) -> None:
        self.region_name = REGION
        self.api_name = "ec2_cloudgate"
        self.country = ""
        self.token = None
        self.signature_version = signature_version
        BaseEC2NodeDriver.__init__(self, key=key, secret=secret, secure=False, host=host, port=port)

    def list_sizes(self, location: Any = None) -> list[NodeSize]:
        """libcloud lists sizes from its bundled AWS catalogue (no API call); use us-east-1's entries."""
        region, self.region_name = self.region_name, "us-east-1"
        try:
            return super().list_sizes(location)
        finally:
            self.region_name = region


def _driver(gateway: GatewayProcess, version: str, key: str = "demo", secret: str = "demo-secret") -> Any:
    return GatewayEC2NodeDriver(key, secret, host="127.0.0.1", port=gateway.port, signature_version=version)


@pytest.fixture(scope="module", params=["2", "4"], ids=["sigv2", "sigv4"])
def driver(request: pytest.FixtureRequest, gateway: GatewayProcess) -> Any:
    return _driver(gateway, request.param)


@pytest.fixture(scope="module")
def image(driver: Any) -> NodeImage:
    return next(i for i in driver.list_images() if i.name == "ubuntu-24.04")


@pytest.fixture(scope="module")
def size(driver: Any) -> NodeSize:
    return next(s for s in driver.list_sizes() if s.id == "t3.micro")


@pytest.fixture(scope="module")
def zone(driver: Any) -> NodeLocation:
    return next(loc for loc in driver.list_locations() if loc.name == "local-1b")


@pytest.fixture(scope="module")
def key_name(driver: Any) -> Iterator[str]:
    pair = driver.create_key_pair(unique("lc-node-key"))
    yield pair.name
    driver.delete_key_pair(pair)


def _poll(check: Callable[[], Any], attempts: int = 60, delay: float = 0.5) -> Any:
    """The first truthy ``check()``; None if it never became truthy."""
    for _ in range(attempts):
        value = check()
        if value:
            return value
        time.sleep(delay)
    return None


def _node(driver: Any, node_id: str) -> Node | None:
    nodes = driver.list_nodes(ex_node_ids=[node_id])
    return nodes[0] if nodes else None


def _volume(driver: Any, volume_id: str) -> StorageVolume | None:
    return next((v for v in driver.list_volumes() if v.id == volume_id), None)


def test_list_images(driver: Any) -> None:
    images = driver.list_images()
    names = {i.name for i in images}
    assert {"ubuntu-24.04", "debian-12"} <= names
    for image in images:
        assert re.fullmatch(r"ami-[0-9a-f]{17}", image.id), image.id
        assert image.extra["state"] == "available"
    ubuntu = next(i for i in images if i.name == "ubuntu-24.04")
    assert [i.name for i in driver.list_images(ex_image_ids=[ubuntu.id])] == ["ubuntu-24.04"]


def test_list_images_with_filters(driver: Any) -> None:
    # DescribeImages documents the `name` filter; libcloud sends Filter.1.Name=name.
    assert [i.name for i in driver.list_images(ex_filters={"name": "debian-12"})] == ["debian-12"]


def test_list_locations_are_the_zones(driver: Any) -> None:
    locations = driver.list_locations()
    assert sorted(loc.name for loc in locations) == ["local-1a", "local-1b"]
    assert {loc.availability_zone.region_name for loc in locations} == {REGION}


def test_list_sizes_ids_are_accepted_by_run_instances(driver: Any, image: NodeImage, gateway: GatewayProcess) -> None:
    """libcloud's sizes come from its own catalogue; the ones the gateway offers must launch under their ids."""
    offered = {t["InstanceType"] for t in gateway.client().describe_instance_types()["InstanceTypes"]}
    sizes = {s.id: s for s in driver.list_sizes()}
    assert {"t3.micro", "t3.small"} <= offered
    for type_name in ("t3.micro", "t3.small"):
        node = driver.create_node(name=unique("lc-size"), size=sizes[type_name], image=image)
        try:
            assert node.extra["instance_type"] == type_name
        finally:
            driver.destroy_node(node)


def test_node_lifecycle(
    driver: Any, gateway: GatewayProcess, image: NodeImage, size: NodeSize, zone: NodeLocation, key_name: str
) -> None:
    name = unique("lc-node")
    node = driver.create_node(name=name, size=size, image=image, location=zone, ex_keyname=key_name)
    assert re.fullmatch(r"i-[0-9a-f]{17}", node.id), node.id
    assert node.state in (NodeState.PENDING, NodeState.RUNNING)
    assert node.extra["key_name"] == key_name
    assert node.extra["availability"] == "local-1b"
    assert node.extra["image_id"] == image.id
    # create_node tags the instance with Name through TagSpecification.1.Tag.N.
    described = gateway.client().describe_instances(InstanceIds=[node.id])["Reservations"][0]["Instances"][0]
    assert {"Key": "Name", "Value": name} in described["Tags"]

    running = _poll(lambda: (n := _node(driver, node.id)) is not None and n.state == NodeState.RUNNING and n)
    assert running, "the node never reached running"
    assert running.name == name
    assert running.private_ips, "a running instance has a private address"

    assert driver.reboot_node(running) is True
    assert _poll(lambda: (n := _node(driver, node.id)) is not None and n.state == NodeState.RUNNING)

    assert driver.destroy_node(running) is True
    gone = _poll(lambda: (n := _node(driver, node.id)) is not None and n.state == NodeState.TERMINATED and n)
    assert gone, "the node never reached terminated"
    names = [n.name for n in driver.list_nodes(ex_filters={"tag:Name": name, "instance-state-name": "running"})]
    assert names == []


def test_values_with_spaces_and_symbols(driver: Any) -> None:
    """libcloud sends the query through ``urlencode`` (space as ``+``) but signs it RFC 3986-encoded (``%20``).

    AWS reads ``+`` in a query string as a space, as form encoding says, so such requests verify there.
    """
    name = unique("no such node") + " a+b&c=d/é"
    assert driver.list_nodes(ex_filters={"tag:Name": name}) == []
    assert driver.list_images(ex_filters={"name": "no such image *"}) == []


def test_ex_create_tags_numbers_from_zero(
    driver: Any, gateway: GatewayProcess, image: NodeImage, size: NodeSize
) -> None:
    """``ex_create_tags`` sends ``ResourceId.0`` and ``Tag.0.Key``; EC2 accepts lists numbered from 0."""
    node = driver.create_node(name=unique("lc-tags"), size=size, image=image)
    try:
        tags = {"team": "clients", "empty": "", "odd chars": "a&b<c>=d"}
        assert driver.ex_create_tags(node, tags) is True
        described = gateway.client().describe_tags(Filters=[{"Name": "resource-id", "Values": [node.id]}])["Tags"]
        got = {t["Key"]: t["Value"] for t in described}
        assert {k: got.get(k) for k in tags} == tags
        listed = _node(driver, node.id)
        assert listed is not None
        assert {k: listed.extra["tags"].get(k) for k in tags} == tags
    finally:
        driver.destroy_node(node)


def test_volume_lifecycle(driver: Any, image: NodeImage, size: NodeSize, zone: NodeLocation) -> None:
    node = driver.create_node(name=unique("lc-vol-node"), size=size, image=image, location=zone)
    try:
        assert _poll(lambda: (n := _node(driver, node.id)) is not None and n.state == NodeState.RUNNING)
        name = unique("lc-vol")
        volume = driver.create_volume(size=2, name=name, location=zone)
        assert re.fullmatch(r"vol-[0-9a-f]{17}", volume.id), volume.id
        assert volume.size == 2
        # create_volume names the volume with ex_create_tags (ResourceId.0 / Tag.0.Key=Name).
        assert volume.extra["tags"].get("Name") == name
        available = _poll(
            lambda: (v := _volume(driver, volume.id)) is not None and v.state == StorageVolumeState.AVAILABLE and v
        )
        assert available, "the volume never became available"
        assert available.name == name
        assert available.extra["zone"] == "local-1b"

        assert driver.attach_volume(node, available, "/dev/sdf") is True

        def attached() -> StorageVolume | None:
            return next((v for v in driver.list_volumes(node=node) if v.id == volume.id), None)

        in_use = _poll(lambda: (v := attached()) is not None and v.state == StorageVolumeState.INUSE and v)
        assert in_use, "the volume never became in-use on the node"
        assert in_use.extra["instance_id"] == node.id
        assert in_use.extra["device"] == "/dev/sdf"

        assert driver.detach_volume(in_use) is True
        assert _poll(
            lambda: (v := _volume(driver, volume.id)) is not None and v.state == StorageVolumeState.AVAILABLE
        ), "the volume never came back available after detaching"
        assert attached() is None

        assert driver.destroy_volume(available) is True
        assert _poll(lambda: (v := _volume(driver, volume.id)) is None or v.state == StorageVolumeState.DELETED)
    finally:
        driver.destroy_node(node)


def _der_public_md5(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def test_key_pairs(driver: Any) -> None:
    created = driver.create_key_pair(unique("lc-key"))
    try:
        assert created.private_key.startswith("-----BEGIN")
        # EC2: a created RSA key's fingerprint is the SHA-1 of its DER PKCS#8 private key.
        private = serialization.load_pem_private_key(created.private_key.encode(), password=None)
        pkcs8 = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        sha1 = hashlib.sha1(pkcs8).hexdigest()
        assert created.fingerprint == ":".join(sha1[i : i + 2] for i in range(0, len(sha1), 2))

        local = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        openssh = local.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        imported = driver.import_key_pair_from_string(unique("lc-imported"), openssh.decode() + " me@host")
        try:
            # EC2: an imported RSA key's fingerprint is the MD5 of its DER SubjectPublicKeyInfo.
            assert imported.fingerprint == _der_public_md5(local.public_key())
            listed = {k.name: k.fingerprint for k in driver.list_key_pairs()}
            assert listed[created.name] == created.fingerprint
            assert listed[imported.name] == imported.fingerprint
        finally:
            assert driver.delete_key_pair(imported) is True
        assert imported.name not in {k.name for k in driver.list_key_pairs()}
    finally:
        driver.delete_key_pair(created)
    assert created.name not in {k.name for k in driver.list_key_pairs()}


def test_import_of_garbage_key_is_refused(driver: Any) -> None:
    with pytest.raises(Exception, match=r"InvalidKeyPair\.Format"):
        driver.import_key_pair_from_string(unique("lc-bad"), "ssh-rsa " + base64.b64encode(b"nonsense").decode())


@pytest.mark.parametrize("version", ["2", "4"])
def test_wrong_secret_is_invalid_creds(gateway: GatewayProcess, version: str) -> None:
    # libcloud turns EC2's AuthFailure into InvalidCredsError.
    with pytest.raises(InvalidCredsError, match="AuthFailure"):
        _driver(gateway, version, secret="not-the-secret").list_images()


@pytest.mark.parametrize("version", ["2", "4"])
def test_reader_cannot_create(gateway: GatewayProcess, version: str) -> None:
    reader = _driver(gateway, version, key="reader", secret="reader-secret")
    assert reader.list_locations()
    with pytest.raises(Exception, match="UnauthorizedOperation"):
        reader.create_key_pair(unique("lc-reader"))
