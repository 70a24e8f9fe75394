"""botocore's EC2 service model, loaded once per process, and case-insensitive action lookup.

The model is the single source of truth for the EC2 wire format (STYLE.md item 1): the Query parser
(:mod:`frontends.ec2.query`) and the XML renderer (:mod:`frontends.ec2.render`) both walk its shapes.
"""

from __future__ import annotations

import functools

import botocore.session
from botocore.model import OperationModel, ServiceModel

EC2_MODEL: ServiceModel  # resolved lazily by the module __getattr__ below (PEP 562)

__all__ = ["EC2_MODEL", "action_names", "find_operation", "get_model", "session"]


@functools.cache
def session() -> botocore.session.Session:
    """The process's botocore session the model is loaded through (the gateway lends it to the EC2 backend, so
    a worker holds botocore's EC2 model once, not once per user of it)."""
    return botocore.session.get_session()


@functools.cache
def get_model() -> ServiceModel:
    """Load botocore's EC2 model once; parsing the ~5 MB JSON costs ~0.1-1 s, never per request."""
    return session().get_service_model("ec2")


@functools.cache
def _lower_to_name() -> dict[str, str]:
    """Lower-cased action name → model operation name, built once (old tools send `describeinstances`)."""
    return {name.lower(): name for name in get_model().operation_names}


def action_names() -> tuple[str, ...]:
    """All EC2 action names the model knows, in model order."""
    return tuple(get_model().operation_names)


def find_operation(name: str) -> OperationModel | None:
    """Return the operation for an `Action` value matched case-insensitively, or None if unknown."""
    if not name or len(name) > 128:
        return None
    real = _lower_to_name().get(name.lower())
    # NOTE: ServiceModel.operation_model is instance-cached by botocore, so the same OperationModel
    # object comes back every time; the parser and renderer key their compiled plans on it.
    return get_model().operation_model(real) if real is not None else None


def __getattr__(name: str) -> ServiceModel:
    # PEP 562 module __getattr__: `from frontends.ec2.service import EC2_MODEL` returns the real,
    # cached ServiceModel (loaded on first import of the name), so isinstance checks keep working.
    if name == "EC2_MODEL":
        return get_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
