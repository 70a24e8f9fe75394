"""TOML pieces of a gateway configuration whose tenants run on EC2 clouds reached over HTTP (moto's server, or
a gateway serving the simulator over EC2): the parts several test modules write alike, made in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def ec2_backend(
    name: str,
    url: str,
    region: str = "us-east-1",
    instance_types: Iterable[str] | None = ("t3.micro",),
    **more: object,
) -> str:
    """``[backends.<name>]``: the EC2 driver on ``url`` (offering the cloud's own instance types when
    ``instance_types`` is None); ``more`` adds settings (``timeout=5``)."""
    lines = [f"[backends.{name}]", 'driver = "ec2"', f'endpoint_url = "{url}"', f'aws_region = "{region}"']
    if instance_types is not None:
        lines.append(f"instance_types = {_value(list(instance_types))}")
    lines += [f"{key} = {_value(value)}" for key, value in {"connect_timeout": 2, "timeout": 10, **more}.items()]
    return "\n".join(lines) + "\n"


def tenant(name: str, account_id: str = "123456789012") -> str:
    return f'[tenants.{name}]\naccount_id = "{account_id}"\n'


def region(tenant_name: str, name: str, backend: str, zones: Mapping[str, str], key: str, secret: str) -> str:
    """A region of ``tenant_name`` on ``backend``: gateway zone -> the cloud's zone, and the cloud's credentials."""
    zone_map = ", ".join(f'"{ours}" = "{theirs}"' for ours, theirs in zones.items())
    return (
        f"[tenants.{tenant_name}.regions.{name}]\n"
        f'backend = "{backend}"\n'
        f"zones = {_value(list(zones))}\n"
        f"zone_map = {{ {zone_map} }}\n"
        f'access_key_id = "{key}"\n'
        f'secret_access_key = "{secret}"\n'
    )


def admin(access_key: str, secret: str, tenant_name: str) -> str:
    return f'[[users]]\naccess_key = "{access_key}"\nsecret = "{secret}"\ntenant = "{tenant_name}"\nrole = "admin"\n'


def moto_account(
    url: str,
    key: str,
    secret: str,
    zones: Mapping[str, str] | None = None,
    instance_types: Iterable[str] = ("t3.micro",),
    **more: object,
) -> str:
    """Tenant ``acme`` (user ``alice``, admin) with region ``moto-1`` on backend ``aws`` at ``url``."""
    return "\n".join(
        [
            ec2_backend("aws", url, instance_types=instance_types, **more),
            tenant("acme") + region("acme", "moto-1", "aws", zones or {"moto-1a": "us-east-1a"}, key, secret),
            admin("alice", "alice-secret", "acme"),
        ]
    )


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(_value(v) for v in value)}]"
    return str(value)
