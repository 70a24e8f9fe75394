"""Canonical failures -> EC2 error codes and HTTP statuses, in one table."""

from __future__ import annotations

from translator import errors as e


class EC2Error(Exception):
    """An error raised by the EC2 frontend itself, already in EC2's vocabulary."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


#: The gateway's own state store (Redis) failed, is stalled or is loading: EC2's code for "the request has
#: failed due to a temporary failure of the server" (``Unavailable`` is a backend that keeps failing).
SERVICE_UNAVAILABLE = ("ServiceUnavailable", 503, "The service is temporarily unavailable; retry later.")


#: (canonical class, kind, reason) -> (EC2 code, HTTP status). None matches any kind/reason.
ERROR_CODES: dict[tuple[type[e.CloudgateError], str | None, str | None], tuple[str, int]] = {
    (e.NotFound, "machine", None): ("InvalidInstanceID.NotFound", 400),
    (e.NotFound, "image", None): ("InvalidAMIID.NotFound", 400),
    (e.NotFound, "volume", None): ("InvalidVolume.NotFound", 400),
    (e.NotFound, "snapshot", None): ("InvalidSnapshot.NotFound", 400),
    (e.NotFound, "key_pair", None): ("InvalidKeyPair.NotFound", 400),
    (e.NotFound, "security_group", None): ("InvalidGroup.NotFound", 400),
    (e.NotFound, "address", None): ("InvalidAllocationID.NotFound", 400),
    (e.NotFound, "network", None): ("InvalidVpcID.NotFound", 400),
    (e.NotFound, "subnet", None): ("InvalidSubnetID.NotFound", 400),
    (e.NotFound, "flavor", None): ("InvalidParameterValue", 400),
    (e.NotFound, "rule", None): ("InvalidPermission.NotFound", 400),
    (e.NotFound, "attachment", None): ("InvalidAttachment.NotFound", 400),
    (e.NotFound, "region", None): ("InvalidParameterValue", 400),
    (e.NotFound, "zone", None): ("InvalidParameterValue", 400),
    (e.NotFound, None, None): ("InvalidParameterValue", 400),
    (e.InvalidParameter, None, "missing"): ("MissingParameter", 400),
    (e.InvalidParameter, "key_pair", "format"): ("InvalidKeyPair.Format", 400),
    (e.InvalidParameter, None, "combination"): ("InvalidParameterCombination", 400),
    (e.InvalidParameter, None, None): ("InvalidParameterValue", 400),
    (e.Conflict, "key_pair", "duplicate"): ("InvalidKeyPair.Duplicate", 400),
    (e.Conflict, "image", "duplicate"): ("InvalidAMIName.Duplicate", 400),
    (e.Conflict, "security_group", "duplicate"): ("InvalidGroup.Duplicate", 400),
    (e.Conflict, "security_group", "default"): ("CannotDelete", 400),
    (e.Conflict, "rule", "duplicate"): ("InvalidPermission.Duplicate", 400),
    (e.Conflict, "machine", "state"): ("IncorrectInstanceState", 400),
    (e.Conflict, "volume", "in_use"): ("VolumeInUse", 400),
    (e.Conflict, "volume", "state"): ("IncorrectState", 400),
    (e.Conflict, "attachment", "in_use"): ("InvalidParameterValue", 400),
    (e.Conflict, "address", "in_use"): ("InvalidIPAddress.InUse", 400),
    (e.Conflict, None, "idempotency"): ("IdempotentParameterMismatch", 400),
    (e.Conflict, None, "in_use"): ("DependencyViolation", 400),
    (e.Conflict, None, "dependency"): ("DependencyViolation", 400),
    (e.Conflict, "subnet", "duplicate"): ("InvalidSubnet.Conflict", 400),
    (e.InvalidParameter, "subnet", "cidr"): ("InvalidSubnet.Range", 400),
    (e.InvalidParameter, "volume", "zone"): ("InvalidVolume.ZoneMismatch", 400),
    (e.InvalidParameter, "network", "cidr"): ("InvalidVpc.Range", 400),
    (e.Conflict, None, "duplicate"): ("InvalidParameterValue", 400),
    (e.Conflict, None, None): ("IncorrectState", 400),
    (e.QuotaExceeded, "machine", None): ("InstanceLimitExceeded", 400),
    (e.QuotaExceeded, "address", None): ("AddressLimitExceeded", 400),
    (e.QuotaExceeded, "volume", None): ("VolumeLimitExceeded", 400),
    (e.QuotaExceeded, None, None): ("ResourceLimitExceeded", 400),
    (e.Unsupported, None, None): ("UnsupportedOperation", 400),
    (e.Forbidden, None, None): ("UnauthorizedOperation", 403),
    (e.AuthFailure, None, None): ("AuthFailure", 401),
    (e.BackendUnavailable, None, None): ("Unavailable", 503),
    (e.Throttled, None, None): ("RequestLimitExceeded", 503),  # AWS answers its throttling with 503
    (e.BackendError, None, None): ("InternalError", 500),
    (e.CloudgateError, None, None): ("InternalError", 500),
}


def ec2_error(exc: e.CloudgateError) -> tuple[str, int]:
    """The EC2 code and status for a canonical error, most specific row first, then by class MRO."""
    for cls in type(exc).__mro__:
        if not (isinstance(cls, type) and issubclass(cls, e.CloudgateError)):
            continue
        for key in (
            (cls, exc.kind, exc.reason),
            (cls, exc.kind, None),
            (cls, None, exc.reason),
            (cls, None, None),
        ):
            found = ERROR_CODES.get(key)
            if found:
                return found
    return "InternalError", 500
