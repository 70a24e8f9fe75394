"""EC2 Query protocol input: strict form decoding and model-driven parameter parsing.

`parse_params` turns the flat `Name.N.Sub=value` map of an EC2 Query request into the dict a boto3 caller
would have passed, by walking the operation's botocore input shape (STYLE.md item 1). Each operation's
input shape is compiled once into a tree of small parse functions (cached per `OperationModel`), so a
request only pays for a dict lookup per parameter.

EC2 naming rules (botocore `EC2Serializer`): a member's wire name is its `queryName`, else its
`locationName` with the first letter upper-cased, else the member name; lists are always flattened as
`Name.N` (`Name.N.Sub` for structures), whatever the list member's own locationName says.

Leniency, on purpose: names match case-insensitively (old tools send `instanceid.1`); list indices may be
any non-negative integer (EC2 starts at 1, libcloud sends 0) and are applied in numeric order; unknown
parameters (`Action`, `Version`, auth parameters, typos) are ignored, as EC2 does; enum values are not
checked (handlers return EC2's specific error codes for those).

Strictness, on purpose: the same parameter given twice (exactly, or differing only in case or in index
zero-padding) is rejected rather than silently picking one, since a signature may cover one spelling and a
handler read the other; malformed percent escapes and invalid UTF-8 are rejected.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

__all__ = [
    "MAX_PARAMETERS",
    "QueryError",
    "compile_input",
    "parse_form",
    "parse_params",
    "parse_query_string",
]

MAX_PARAMETERS: Final = 10_000
"""Most parameters one request may carry; EC2's largest legitimate requests use a few hundred."""

_MAX_INDEX_DIGITS: Final = 9  # list index up to 999,999,999; longer digit runs are not indices
_MAX_SEGMENTS: Final = 32  # deeper keys match no EC2 parameter; ignoring them bounds parse recursion
_MAX_ECHO: Final = 100  # longest value echoed back in an error message

_INT_RANGES: Final = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_INT_RE: Final = re.compile(r"[+-]?[0-9]{1,20}", re.ASCII)
_FLOAT_RE: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)
_FLOAT_SPECIAL: Final = {
    "nan": float("nan"),
    "infinity": float("inf"),
    "inf": float("inf"),
    "+infinity": float("inf"),
    "-infinity": float("-inf"),
    "-inf": float("-inf"),
}
_EPOCH_RE: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?", re.ASCII)
_NOT_UTF8: Final = "The request contains text that is not valid UTF-8."
_BAD_ESCAPE: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class QueryError(Exception):
    """A request the EC2 Query layer rejects; `code` is the EC2 error code sent back to the client."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# --------------------------------------------------------------------------- form decoding


def _duplicate(key: str) -> str:
    return f"The parameter {key[:_MAX_ECHO]} is given more than once."


def _decode_component(raw: bytes) -> str:
    """Percent-decode one key or value strictly: `+` is a space, escapes must be `%XX`, text must be UTF-8."""
    if b"%" in raw or b"+" in raw:
        if _BAD_ESCAPE.search(raw):
            shown = raw[:_MAX_ECHO].decode("utf-8", "replace")
            raise QueryError("MalformedQueryString", f"Malformed percent-encoding in: {shown}")
        raw = unquote_to_bytes(raw.replace(b"+", b" "))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise QueryError("InvalidParameterValue", _NOT_UTF8) from None


def parse_form(body: bytes) -> dict[str, str]:
    """Decode an `application/x-www-form-urlencoded` body strictly (see module doc for the rules).

    Empty `&&` segments are skipped, a segment without `=` is a key with an empty value, a key given twice
    is a `MalformedQueryString` error, more than MAX_PARAMETERS parameters is an `InvalidParameterValue`.
    """
    result: dict[str, str] = {}
    if not body:
        return result
    parts = body.split(b"&")
    if len(parts) > MAX_PARAMETERS and sum(1 for p in parts if p) > MAX_PARAMETERS:
        raise QueryError("InvalidParameterValue", f"The request has more than {MAX_PARAMETERS} parameters.")
    for part in parts:
        if not part:
            continue
        raw_key, _, raw_value = part.partition(b"=")
        key = _decode_component(raw_key)
        if key in result:
            raise QueryError("MalformedQueryString", _duplicate(key))
        result[key] = _decode_component(raw_value)
    return result


def parse_query_string(qs: str) -> dict[str, str]:
    """Decode a URL query string with the rules of `parse_form`; literal non-ASCII text is kept as is.

    NOTE: under WSGI pass `environ["QUERY_STRING"].encode("latin-1")` to `parse_form` instead, since
    PEP 3333 delivers the raw bytes as latin-1 text.
    """
    try:
        raw = qs.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        raise QueryError("InvalidParameterValue", _NOT_UTF8) from None
    return parse_form(raw)


# --------------------------------------------------------------------------- parameter tree

_Node = dict[str | None, Any]  # child segment → node; the key None holds the leaf value, if any
_Parse = Callable[[_Node, str], Any]
_MISSING: Final = object()


def _build_tree(params: Mapping[str, str]) -> _Node:
    """Split `Filter.1.Value.2` keys into a case-folded tree; index segments are normalised (`01` → `1`)."""
    root: _Node = {}
    for key, value in params.items():
        segments = key.lower().split(".")
        if len(segments) > _MAX_SEGMENTS:
            continue
        node = root
        for seg in segments:
            if seg.isdigit() and seg.isascii() and 1 < len(seg) <= _MAX_INDEX_DIGITS:
                seg = str(int(seg))
            child = node.get(seg)
            if child is None:
                child = node[seg] = {}
            node = child
        if None in node:
            raise QueryError("InvalidParameterValue", _duplicate(key))
        node[None] = value
    return root


def _echo(value: str) -> str:
    return value if len(value) <= _MAX_ECHO else value[:_MAX_ECHO] + "..."


def _invalid(value: str, path: str, why: str) -> QueryError:
    message = f"Value ({_echo(value)}) for parameter {path} is invalid. {why}"
    return QueryError("InvalidParameterValue", message)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --------------------------------------------------------------------------- scalar converters
# Each takes (text, wire path, shape) and returns the Python value or raises QueryError.


def _conv_string(text: str, path: str, shape: Shape) -> str:
    return text


def _conv_integer(text: str, path: str, shape: Shape) -> int:
    if not _INT_RE.fullmatch(text):
        raise _invalid(text, path, "Expected an integer.")
    value = int(text)
    lo, hi = _INT_RANGES.get(shape.type_name, _INT_RANGES["long"])
    lo = max(lo, shape.metadata.get("min", lo))
    hi = min(hi, shape.metadata.get("max", hi))
    if not lo <= value <= hi:
        raise _invalid(text, path, f"It must be between {lo} and {hi}.")
    return value


def _conv_boolean(text: str, path: str, shape: Shape) -> bool:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise _invalid(text, path, "Expected a boolean (true or false).")


def _conv_float(text: str, path: str, shape: Shape) -> float:
    special = _FLOAT_SPECIAL.get(text.lower())
    if special is not None:
        return special
    if not _FLOAT_RE.fullmatch(text):
        raise _invalid(text, path, "Expected a number.")
    return float(text)


def _conv_timestamp(text: str, path: str, shape: Shape) -> datetime:
    fmt = shape.serialization.get("timestampFormat", "iso8601")
    epoch_like = _EPOCH_RE.fullmatch(text) is not None
    try:
        if epoch_like and fmt == "unixTimestamp":
            return datetime.fromtimestamp(float(text), UTC)
        if fmt == "rfc822" and "," in text:
            parsed = email.utils.parsedate_to_datetime(text)
        else:
            try:
                # NOTE: 3.11's fromisoformat takes every ISO 8601 form botocore and EC2 tools send, `Z` too.
                parsed = datetime.fromisoformat(text)
            except ValueError:
                if not epoch_like:
                    raise
                return datetime.fromtimestamp(float(text), UTC)  # epoch seconds where ISO was modelled
    except (ValueError, TypeError, OverflowError, OSError, IndexError):
        raise _invalid(text, path, "Expected an ISO 8601 timestamp.") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _conv_blob(text: str, path: str, shape: Shape) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(text, path, "Expected base64-encoded data.") from None


_CONVERTERS: Final[dict[str, Callable[[str, str, Shape], Any]]] = {
    "string": _conv_string,
    "character": _conv_string,
    "integer": _conv_integer,
    "long": _conv_integer,
    "boolean": _conv_boolean,
    "float": _conv_float,
    "double": _conv_float,
    "timestamp": _conv_timestamp,
    "blob": _conv_blob,
}


# --------------------------------------------------------------------------- compilation


def _wire_name(shape: Shape, member_name: str) -> str:
    """EC2 input name of a structure member (botocore EC2Serializer._get_serialized_name)."""
    query_name = shape.serialization.get("queryName")
    if query_name:
        return query_name
    location = shape.serialization.get("name")
    if location:
        return location[0].upper() + location[1:]
    return member_name


class _StructPlan:
    """Compiled structure: lower-cased wire name → (member name, wire name, parser); required members."""

    __slots__ = ("members", "required")

    def __init__(self) -> None:
        self.members: dict[str, tuple[str, str, _Parse]] = {}
        self.required: tuple[tuple[str, str], ...] = ()

    def parse(self, node: _Node, path: str, top: bool = False) -> Any:
        out: dict[str, Any] = {}
        members = self.members
        for key, child in node.items():
            entry = members.get(key) if key is not None else None
            if entry is None:
                continue  # unknown parameter: ignored, as EC2 does
            name, wire, parse = entry
            value = parse(child, _join(path, wire))
            if value is not _MISSING:
                out[name] = value
        if not out and not top:
            return _MISSING  # only unknown sub-parameters: treat the structure as absent
        for name, wire in self.required:
            if name not in out:
                message = f"The request must contain the parameter {_join(path, wire)}"
                raise QueryError("MissingParameter", message)
        return out


class _Compiler:
    """Compiles one operation's input shape; structures are memoised by name so recursion terminates."""

    def __init__(self) -> None:
        self._structs: dict[str, _StructPlan] = {}

    def structure(self, shape: StructureShape) -> _StructPlan:
        plan = self._structs.get(shape.name)
        if plan is not None:
            return plan
        plan = self._structs[shape.name] = _StructPlan()
        for member_name, member in shape.members.items():
            wire = _wire_name(member, member_name)
            # NOTE: the model never has two members whose wire names differ only in case; if one ever
            # did, the first would win here and the test suite's model walk would flag it.
            plan.members.setdefault(wire.lower(), (member_name, wire, self.compile(member)))
        required = shape.required_members
        plan.required = tuple((m, _wire_name(shape.members[m], m)) for m in required if m in shape.members)
        return plan

    def compile(self, shape: Shape) -> _Parse:
        if isinstance(shape, StructureShape):
            plan = self.structure(shape)
            return plan.parse
        if isinstance(shape, ListShape):
            return self._list(shape)
        if isinstance(shape, MapShape):
            return self._map(shape)
        return self._scalar(shape)

    def _list(self, shape: ListShape) -> _Parse:
        item = self.compile(shape.member)

        def parse_list(node: _Node, path: str) -> Any:
            indexed = sorted(
                (int(key), key, child)
                for key, child in node.items()
                if key is not None and key.isdigit() and key.isascii() and len(key) <= _MAX_INDEX_DIGITS
            )
            out = []
            for _, key, child in indexed:
                value = item(child, f"{path}.{key}")
                if value is not _MISSING:
                    out.append(value)
            return out if out else _MISSING

        return parse_list

    def _map(self, shape: MapShape) -> _Parse:
        key_parse, value_parse = self.compile(shape.key), self.compile(shape.value)
        key_name = _wire_name(shape.key, "key").lower()
        value_name = _wire_name(shape.value, "value").lower()
        flattened = bool(shape.serialization.get("flattened"))

        def parse_map(node: _Node, path: str) -> Any:
            entries = node if flattened else node.get("entry", {})
            base = path if flattened else f"{path}.entry"
            out: dict[Any, Any] = {}
            for _, index, child in sorted(
                (int(k), k, c) for k, c in entries.items() if k is not None and k.isdigit() and k.isascii()
            ):
                key = key_parse(child.get(key_name, {}), f"{base}.{index}.key")
                value = value_parse(child.get(value_name, {}), f"{base}.{index}.value")
                if key is not _MISSING and value is not _MISSING:
                    out[key] = value
            return out if out else _MISSING

        return parse_map

    def _scalar(self, shape: Shape) -> _Parse:
        convert = _CONVERTERS.get(shape.type_name, _conv_string)

        def parse_scalar(node: _Node, path: str) -> Any:
            text = node.get(None)
            if text is None:
                return _MISSING  # only `Name.sub` keys under a scalar: unknown parameters
            return convert(text, path, shape)

        return parse_scalar


_PLANS: weakref.WeakKeyDictionary[OperationModel, _StructPlan | None] = weakref.WeakKeyDictionary()


def compile_input(operation: OperationModel) -> _StructPlan | None:
    """Compile (once) and return the parse plan of an operation's input shape; None if it takes no input."""
    try:
        return _PLANS[operation]
    except KeyError:
        pass
    shape = operation.input_shape
    plan = _Compiler().structure(shape) if isinstance(shape, StructureShape) else None
    _PLANS[operation] = plan
    return plan


def parse_params(operation: OperationModel, params: Mapping[str, str]) -> dict[str, Any]:
    """Turn flat EC2 Query parameters into the botocore-shaped input dict for `operation`.

    Raises QueryError (`MissingParameter`, `InvalidParameterValue`) for what EC2 would reject.
    """
    plan = compile_input(operation)
    if plan is None:
        return {}
    if len(params) > MAX_PARAMETERS:
        raise QueryError("InvalidParameterValue", f"The request has more than {MAX_PARAMETERS} parameters.")
    result: dict[str, Any] = plan.parse(_build_tree(params), "", top=True)
    return result
