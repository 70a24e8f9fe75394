"""Security groups over HTTP with boto3: create, describe (filters, pages), rules in and out, delete, errors.

Expectations come from the EC2 API reference: rules grouped one IpPermission per protocol and port range,
protocol numbers answered by name, CIDRs canonicalised, unknown rules reported (default VPC) or refused
(other VPCs), MaxResults 5..1000 and never with GroupIds/GroupNames.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from ec2util import assert_pages_stable, error_of, unique

ACCOUNT = "111111111111"
MISSING_GROUP = "sg-0123456789abcdef0"


def _create(ec2: Any, name: str | None = None, **kw: Any) -> str:
    return ec2.create_security_group(
        GroupName=name or unique("grp"), Description=kw.pop("Description", "a test group"), **kw
    )["GroupId"]


def _group(ec2: Any, gid: str) -> dict[str, Any]:
    (group,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    return group


def _perm(group: dict[str, Any], protocol: str, low: int | None = None, high: int | None = None, egress: bool = False):
    key = "IpPermissionsEgress" if egress else "IpPermissions"
    found = [
        p for p in group[key] if p["IpProtocol"] == protocol and p.get("FromPort") == low and p.get("ToPort") == high
    ]
    assert len(found) <= 1, group[key]  # EC2 groups one permission per protocol and port range
    return found[0] if found else None


def _cidrs(perm: dict[str, Any] | None) -> set[str]:
    return {r["CidrIp"] for r in perm["IpRanges"]} if perm else set()


def _tcp(port: int, *cidrs: str) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": c} for c in cidrs]}


def _default_group(ec2: Any) -> dict[str, Any]:
    """The default VPC's ``default`` group: group names address the default VPC (EC2 API reference)."""
    (group,) = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    return group


# -- create and describe ---------------------------------------------------------------------------


def test_create_then_describe_shows_the_group(ec2: Any) -> None:
    name = unique("web")
    created = ec2.create_security_group(
        GroupName=name,
        Description="web servers",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "blue"}]}],
    )
    gid = created["GroupId"]
    assert gid.startswith("sg-") and len(gid) == 20
    assert created["Tags"] == [{"Key": "team", "Value": "blue"}]
    group = _group(ec2, gid)
    assert group["GroupName"] == name
    assert group["Description"] == "web servers"
    assert group["OwnerId"] == ACCOUNT
    assert group["VpcId"] == _default_group(ec2)["VpcId"]  # no VpcId: the default VPC
    assert group["Tags"] == [{"Key": "team", "Value": "blue"}]
    # A new VPC group allows all outbound traffic and no inbound traffic.
    assert group["IpPermissions"] == []
    (egress,) = group["IpPermissionsEgress"]
    assert egress["IpProtocol"] == "-1"
    assert [r["CidrIp"] for r in egress["IpRanges"]] == ["0.0.0.0/0"]


def test_default_group_allows_its_members_and_all_egress(ec2: Any) -> None:
    default = _default_group(ec2)
    assert default["GroupName"] == "default"
    (ingress,) = default["IpPermissions"]
    assert ingress["IpProtocol"] == "-1"
    assert [p["GroupId"] for p in ingress["UserIdGroupPairs"]] == [default["GroupId"]]
    assert ingress["UserIdGroupPairs"][0]["UserId"] == ACCOUNT
    (egress,) = default["IpPermissionsEgress"]
    assert egress["IpProtocol"] == "-1" and _cidrs(egress) == {"0.0.0.0/0"}


def test_describe_by_name_in_default_vpc(ec2: Any) -> None:
    name = unique("byname")
    gid = _create(ec2, name)
    (group,) = ec2.describe_security_groups(GroupNames=[name])["SecurityGroups"]
    assert group["GroupId"] == gid
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_groups(GroupNames=[unique("nope")])
    assert error_of(exc) == ("InvalidGroup.NotFound", 400)


def test_duplicate_name_in_the_same_vpc_is_refused(ec2: Any) -> None:
    name = unique("dup")
    _create(ec2, name)
    with pytest.raises(ClientError) as exc:
        _create(ec2, name)
    assert error_of(exc) == ("InvalidGroup.Duplicate", 400)


def test_malformed_and_unknown_group_ids(ec2: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_groups(GroupIds=["sg-nothex"])
    assert error_of(exc) == ("InvalidGroupId.Malformed", 400)
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_groups(GroupIds=[MISSING_GROUP])
    assert error_of(exc) == ("InvalidGroup.NotFound", 400)
    with pytest.raises(ClientError) as exc:
        ec2.delete_security_group(GroupId=MISSING_GROUP)
    assert error_of(exc) == ("InvalidGroup.NotFound", 400)


# -- rules -----------------------------------------------------------------------------------------


def test_ingress_rules_group_by_protocol_and_port_range(ec2: Any) -> None:
    gid = _create(ec2)
    out = ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            _tcp(22, "10.0.0.0/8", "192.168.1.0/24"),
            _tcp(80, "0.0.0.0/0"),
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]},
        ],
    )
    assert out["Return"] is True
    rules = out["SecurityGroupRules"]
    assert len(rules) == 4
    assert all(r["SecurityGroupRuleId"].startswith("sgr-") and r["GroupId"] == gid for r in rules)
    assert len({r["SecurityGroupRuleId"] for r in rules}) == 4
    assert all(r["IsEgress"] is False and r["GroupOwnerId"] == ACCOUNT for r in rules)
    assert {r.get("CidrIpv4") or r.get("CidrIpv6") for r in rules} == {
        "10.0.0.0/8",
        "192.168.1.0/24",
        "0.0.0.0/0",
        "2001:db8::/32",
    }

    group = _group(ec2, gid)
    assert len(group["IpPermissions"]) == 2
    ssh = _perm(group, "tcp", 22, 22)
    assert _cidrs(ssh) == {"10.0.0.0/8", "192.168.1.0/24"}
    assert [r["CidrIpv6"] for r in ssh["Ipv6Ranges"]] == ["2001:db8::/32"]
    assert _cidrs(_perm(group, "tcp", 80, 80)) == {"0.0.0.0/0"}


def test_protocol_numbers_and_cidrs_are_canonical_and_duplicates_refused(ec2: Any) -> None:
    gid = _create(ec2)
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "6", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.1.2.3/16"}]},
            {"IpProtocol": "17", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": 0, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        ],
    )
    group = _group(ec2, gid)
    assert _cidrs(_perm(group, "tcp", 443, 443)) == {"10.1.0.0/16"}  # host bits cleared, 6 answered as tcp
    assert _cidrs(_perm(group, "udp", 53, 53)) == {"10.0.0.0/8"}
    assert _cidrs(_perm(group, "icmp", 8, 0)) == {"10.0.0.0/8"}
    # The same rule spelled differently is a duplicate; the description does not make it new.
    for perm in (
        _tcp(443, "10.1.0.0/16"),
        {
            "IpProtocol": "6",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [{"CidrIp": "10.1.9.9/16", "Description": "x"}],
        },
    ):
        with pytest.raises(ClientError) as exc:
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
        assert error_of(exc) == ("InvalidPermission.Duplicate", 400)
    # A request holding one duplicate adds none of its rules.
    with pytest.raises(ClientError) as exc:
        ec2.authorize_security_group_ingress(
            GroupId=gid, IpPermissions=[_tcp(8080, "1.2.3.0/24"), _tcp(443, "10.1.0.0/16")]
        )
    assert error_of(exc) == ("InvalidPermission.Duplicate", 400)
    assert _perm(_group(ec2, gid), "tcp", 8080, 8080) is None


def test_invalid_rules_are_refused(ec2: Any) -> None:
    gid = _create(ec2)
    bad = [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.300/8"}]},
        {"IpProtocol": "tcp", "FromPort": 70000, "ToPort": 70000, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "bogus", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
    ]
    for perm in bad:
        with pytest.raises(ClientError) as exc:
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
        assert error_of(exc) == ("InvalidParameterValue", 400), perm
    assert _group(ec2, gid)["IpPermissions"] == []


def test_all_protocols_rule_has_no_ports(ec2: Any) -> None:
    gid = _create(ec2)
    out = ec2.authorize_security_group_ingress(
        GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "172.16.0.0/12"}]}]
    )
    (rule,) = out["SecurityGroupRules"]
    assert rule["IpProtocol"] == "-1" and rule["FromPort"] == -1 and rule["ToPort"] == -1
    (perm,) = _group(ec2, gid)["IpPermissions"]
    assert perm["IpProtocol"] == "-1" and "FromPort" not in perm and "ToPort" not in perm
    assert _cidrs(perm) == {"172.16.0.0/12"}


def test_flat_form_with_cidr_and_with_source_group_name(ec2: Any) -> None:
    source_name = unique("src")
    source = _create(ec2, source_name)
    gid = _create(ec2)
    ec2.authorize_security_group_ingress(
        GroupId=gid, IpProtocol="tcp", FromPort=443, ToPort=443, CidrIp="203.0.113.0/24"
    )
    # A source group by name alone grants full TCP, UDP and ICMP access from it.
    ec2.authorize_security_group_ingress(GroupId=gid, SourceSecurityGroupName=source_name)
    group = _group(ec2, gid)
    assert _cidrs(_perm(group, "tcp", 443, 443)) == {"203.0.113.0/24"}
    for protocol, low, high in (("tcp", 0, 65535), ("udp", 0, 65535), ("icmp", -1, -1)):
        perm = _perm(group, protocol, low, high)
        assert perm is not None, (protocol, group["IpPermissions"])
        assert [p["GroupId"] for p in perm["UserIdGroupPairs"]] == [source]


def test_group_name_addresses_the_target_group(ec2: Any) -> None:
    name = unique("named")
    gid = _create(ec2, name)
    ec2.authorize_security_group_ingress(GroupName=name, IpPermissions=[_tcp(25, "10.0.0.0/8")])
    assert _cidrs(_perm(_group(ec2, gid), "tcp", 25, 25)) == {"10.0.0.0/8"}
    ec2.revoke_security_group_ingress(GroupName=name, IpPermissions=[_tcp(25, "10.0.0.0/8")])
    assert _group(ec2, gid)["IpPermissions"] == []


def test_rules_referencing_groups(ec2: Any) -> None:
    app, db = _create(ec2), _create(ec2)
    ec2.authorize_security_group_ingress(
        GroupId=db,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": app, "Description": "app servers"}],
                "IpRanges": [{"CidrIp": "10.9.0.0/16"}],
            }
        ],
    )
    perm = _perm(_group(ec2, db), "tcp", 5432, 5432)
    assert _cidrs(perm) == {"10.9.0.0/16"}
    (pair,) = perm["UserIdGroupPairs"]
    assert pair["GroupId"] == app and pair["UserId"] == ACCOUNT and pair["Description"] == "app servers"
    with pytest.raises(ClientError) as exc:
        ec2.authorize_security_group_ingress(
            GroupId=db,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "UserIdGroupPairs": [{"GroupId": MISSING_GROUP}]}
            ],
        )
    assert error_of(exc) == ("InvalidGroup.NotFound", 400)
    # A group another group's rule refers to cannot go.
    with pytest.raises(ClientError) as exc:
        ec2.delete_security_group(GroupId=app)
    assert error_of(exc) == ("DependencyViolation", 400)


def test_egress_authorize_and_revoke(ec2: Any) -> None:
    gid = _create(ec2)
    out = ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[_tcp(443, "198.51.100.0/24")])
    assert out["Return"] is True
    (rule,) = out["SecurityGroupRules"]
    assert rule["IsEgress"] is True and rule["FromPort"] == 443 and rule["CidrIpv4"] == "198.51.100.0/24"
    group = _group(ec2, gid)
    assert _cidrs(_perm(group, "tcp", 443, 443, egress=True)) == {"198.51.100.0/24"}
    assert group["IpPermissions"] == []
    # Remove the default allow-all egress rule, then the new one.
    ec2.revoke_security_group_egress(
        GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    assert [p["IpProtocol"] for p in _group(ec2, gid)["IpPermissionsEgress"]] == ["tcp"]
    out = ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[_tcp(443, "198.51.100.0/24")])
    assert out["Return"] is True
    assert [r["SecurityGroupRuleId"] for r in out["RevokedSecurityGroupRules"]] == [rule["SecurityGroupRuleId"]]
    assert _group(ec2, gid)["IpPermissionsEgress"] == []


def test_revoke_removes_only_the_named_sources(ec2: Any) -> None:
    gid = _create(ec2)
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[_tcp(22, "10.0.0.0/8", "192.168.0.0/16")])
    out = ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[_tcp(22, "10.0.0.0/8")])
    assert out["Return"] is True
    assert not out.get("UnknownIpPermissions")
    assert _cidrs(_perm(_group(ec2, gid), "tcp", 22, 22)) == {"192.168.0.0/16"}


def test_revoke_by_rule_id(ec2: Any) -> None:
    gid = _create(ec2)
    out = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[_tcp(3306, "10.0.0.0/8", "10.1.0.0/16")])
    first = next(r for r in out["SecurityGroupRules"] if r["CidrIpv4"] == "10.0.0.0/8")
    revoked = ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[first["SecurityGroupRuleId"]])
    assert revoked["Return"] is True
    assert _cidrs(_perm(_group(ec2, gid), "tcp", 3306, 3306)) == {"10.1.0.0/16"}
    with pytest.raises(ClientError) as exc:
        ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[first["SecurityGroupRuleId"]])
    assert error_of(exc) == ("InvalidSecurityGroupRuleId.NotFound", 400)


def test_revoking_an_unknown_rule_in_the_default_vpc_reports_it(ec2: Any) -> None:
    gid = _create(ec2)
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[_tcp(22, "10.0.0.0/8")])
    out = ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[_tcp(22, "10.0.0.0/8"), _tcp(23, "10.0.0.0/8")])
    (unknown,) = out["UnknownIpPermissions"]
    assert unknown["IpProtocol"] == "tcp" and unknown["FromPort"] == 23 and _cidrs(unknown) == {"10.0.0.0/8"}
    assert _group(ec2, gid)["IpPermissions"] == []  # the known rule went all the same


def test_revoking_an_unknown_rule_elsewhere_is_refused(ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    gid = _create(ec2, VpcId=vpc)
    assert _group(ec2, gid)["VpcId"] == vpc
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[_tcp(22, "10.0.0.0/8")])
    with pytest.raises(ClientError) as exc:
        ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[_tcp(22, "10.0.0.0/8"), _tcp(23, "10.0.0.0/8")])
    assert error_of(exc) == ("InvalidPermission.NotFound", 400)
    assert _cidrs(_perm(_group(ec2, gid), "tcp", 22, 22)) == {"10.0.0.0/8"}  # nothing was revoked


# -- delete ----------------------------------------------------------------------------------------


def test_delete_by_id_and_by_name(ec2: Any) -> None:
    gid = _create(ec2)
    out = ec2.delete_security_group(GroupId=gid)
    assert out["Return"] is True and out["GroupId"] == gid
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_groups(GroupIds=[gid])
    assert error_of(exc) == ("InvalidGroup.NotFound", 400)
    name = unique("del")
    gid = _create(ec2, name)
    ec2.delete_security_group(GroupName=name)
    assert gid not in {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}


def test_the_default_group_cannot_be_deleted(ec2: Any) -> None:
    default = _default_group(ec2)
    with pytest.raises(ClientError) as exc:
        ec2.delete_security_group(GroupId=default["GroupId"])
    assert error_of(exc) == ("CannotDelete", 400)


# -- filters and pages -----------------------------------------------------------------------------


def test_filters_with_wildcards(ec2: Any) -> None:
    prefix = unique("flt")
    tag = [{"ResourceType": "security-group", "Tags": [{"Key": "suite", "Value": prefix}]}]
    web = _create(ec2, f"{prefix}-web", Description="public web tier", TagSpecifications=tag)
    db = _create(ec2, f"{prefix}-db", Description="private database tier", TagSpecifications=tag)
    other = _create(ec2, unique("elsewhere"))
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[_tcp(443, "0.0.0.0/0")])
    ec2.authorize_security_group_ingress(
        GroupId=db,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}],
    )
    ec2.authorize_security_group_egress(GroupId=db, IpPermissions=[_tcp(25, "192.0.2.0/24")])

    def ids(*filters: tuple[str, list[str]]) -> set[str]:
        mine = [{"Name": "group-id", "Values": [web, db, other]}]
        found = ec2.describe_security_groups(Filters=mine + [{"Name": n, "Values": v} for n, v in filters])
        return {g["GroupId"] for g in found["SecurityGroups"]}

    assert ids(("group-name", [f"{prefix}-*"])) == {web, db}
    assert ids(("group-name", [f"{prefix}-w?b"])) == {web}
    assert ids(("description", ["*database*"])) == {db}
    assert ids(("tag:suite", [prefix])) == {web, db}
    assert ids(("tag-key", ["suite"])) == {web, db}
    assert ids(("ip-permission.from-port", ["443"])) == {web}
    assert ids(("ip-permission.to-port", ["5432"])) == {db}
    assert ids(("ip-permission.cidr", ["0.0.0.0/0"])) == {web}
    assert ids(("ip-permission.group-id", [web])) == {db}
    assert ids(("ip-permission.group-name", [f"{prefix}-web"])) == {db}
    assert ids(("ip-permission.protocol", ["tcp"])) == {web, db}
    assert ids(("ip-permission.protocol", ["6"])) == {web, db}
    assert ids(("egress.ip-permission.cidr", ["192.0.2.*"])) == {db}
    assert ids(("egress.ip-permission.protocol", ["-1"])) == {web, db, other}
    assert ids(("owner-id", [ACCOUNT])) == {web, db, other}
    assert ids(("vpc-id", [_default_group(ec2)["VpcId"]])) == {web, db, other}
    # Values of one filter are OR-ed, filters are AND-ed.
    assert ids(("group-name", [f"{prefix}-web", "nothing"]), ("description", ["public*"])) == {web}
    assert ids(("group-name", [f"{prefix}-web"]), ("description", ["private*"])) == set()
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_groups(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error_of(exc) == ("InvalidParameterValue", 400)


def test_pages_stay_stable_while_groups_are_created(ec2: Any) -> None:
    suite = unique("page")
    spec = [{"ResourceType": "security-group", "Tags": [{"Key": "suite", "Value": suite}]}]
    mine = [{"Name": "tag:suite", "Values": [suite]}]
    assert_pages_stable(
        ec2.describe_security_groups, "SecurityGroups", "GroupId", mine,
        lambda: _create(ec2, TagSpecifications=spec), first=7, later=3,
    )  # fmt: skip


def test_max_results_bounds_and_combinations(gateway: Any, ec2: Any) -> None:
    unchecked = gateway.client(parameter_validation=False)  # boto3 itself refuses MaxResults below 5
    for bad in (4, 1001):
        with pytest.raises(ClientError) as exc:
            unchecked.describe_security_groups(MaxResults=bad)
        assert error_of(exc) == ("InvalidParameterValue", 400)
    gid = _create(ec2)
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_groups(GroupIds=[gid], MaxResults=5)
    assert error_of(exc) == ("InvalidParameterCombination", 400)
    with pytest.raises(ClientError) as exc:
        ec2.describe_security_groups(NextToken="not-a-token")
    assert error_of(exc) == ("InvalidPaginationToken", 400)


def test_paginator_walks_every_group(ec2: Any) -> None:
    suite = unique("pgr")
    spec = [{"ResourceType": "security-group", "Tags": [{"Key": "suite", "Value": suite}]}]
    made = {_create(ec2, TagSpecifications=spec) for _ in range(6)}
    pages = ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": "tag:suite", "Values": [suite]}], PaginationConfig={"PageSize": 5}
    )
    assert {g["GroupId"] for p in pages for g in p["SecurityGroups"]} == made


# -- who may do what -------------------------------------------------------------------------------


def test_reader_may_describe_but_not_change(gateway: Any, ec2: Any) -> None:
    reader = gateway.client("reader", "reader-secret")
    gid = _create(ec2)
    assert _group(reader, gid)["GroupId"] == gid
    attempts = (
        lambda: reader.create_security_group(GroupName=unique("r"), Description="x"),
        lambda: reader.authorize_security_group_ingress(GroupId=gid, IpPermissions=[_tcp(22, "10.0.0.0/8")]),
        lambda: reader.revoke_security_group_egress(
            GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        ),
        lambda: reader.delete_security_group(GroupId=gid),
    )
    for attempt in attempts:
        with pytest.raises(ClientError) as exc:
            attempt()
        assert error_of(exc) == ("UnauthorizedOperation", 403)
    assert _group(ec2, gid)["IpPermissionsEgress"]  # unchanged


def test_dry_run(ec2: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ec2.create_security_group(GroupName=unique("dry"), Description="x", DryRun=True)
    assert error_of(exc) == ("DryRunOperation", 412)


def test_other_tenant_sees_none_of_them(gateway: Any, ec2: Any) -> None:
    other = gateway.client("other", "other-secret")
    gid = _create(ec2)
    assert gid not in {g["GroupId"] for g in other.describe_security_groups()["SecurityGroups"]}
    for attempt in (
        lambda: other.describe_security_groups(GroupIds=[gid]),
        lambda: other.delete_security_group(GroupId=gid),
        lambda: other.authorize_security_group_ingress(GroupId=gid, IpPermissions=[_tcp(22, "10.0.0.0/8")]),
    ):
        with pytest.raises(ClientError) as exc:
            attempt()
        assert error_of(exc) == ("InvalidGroup.NotFound", 400)
    # Its own default group is its own.
    (theirs,) = other.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert theirs["GroupId"] != _default_group(ec2)["GroupId"]
    assert theirs["OwnerId"] == "222222222222"
