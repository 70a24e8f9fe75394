"""EC2 XML responses rendered by functions compiled from botocore's output shapes.

Each operation's output shape is compiled once (lazily, or all at start-up with `precompile`) into nested
closures that append pre-built tag strings and escaped text to a list (STYLE.md items 1 and 12).
PERF: ARCHITECTURE.md measured ~10x over building an lxml tree per request; `bench/bench_ec2_render.py`.

Element names follow what botocore's `EC2QueryParser` reads: a member's `locationName` if set, else the
member name unchanged (every EC2 output member has a locationName); a flattened list uses its member's
locationName. Lists nest their items as `<item>` (or the list member's locationName); an empty list
renders as an empty element (`<tagSet/>`), which botocore reads back as `[]`; None members are omitted.
Scalars: booleans `true`/`false`; timestamps ISO 8601 UTC with milliseconds (`2026-11-21T10:00:00.000Z`)
unless the shape asks for `unixTimestamp`/`rfc822`; blobs base64; floats use EC2's `NaN`/`Infinity`.

Handlers hand over plain dicts in boto3's output shape; values are coerced leniently (an int for a string
member is rendered with str(), a str for a timestamp member is trusted as already formatted) so a sloppy
handler degrades to odd text, never to a 500.
"""

from __future__ import annotations

import base64
import email.utils
import math
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

import orjson
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

__all__ = ["Fragments", "Rendered", "escape_text", "precompile", "render_error", "render_response"]

_XML_DECL: Final = '<?xml version="1.0" encoding="UTF-8"?>\n'
_DEFAULT_NS: Final = "http://ec2.amazonaws.com/doc/2016-11-15/"

# --------------------------------------------------------------------------- escaping

# Characters illegal in XML 1.0 (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF) become U+FFFD;
# CR is kept as a character reference because parsers normalise a literal CR to LF.
_ESCAPES: dict[int, str] = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord("\r"): "&#13;"}
_ESCAPES.update({c: "\ufffd" for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)})
_ESCAPES.update({c: "\ufffd" for c in range(0xD800, 0xE000)})
_ESCAPES.update({0xFFFE: "\ufffd", 0xFFFF: "\ufffd"})
_NEEDS_ESCAPE: Final = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape_text(text: str) -> str:
    """Escape text for an XML 1.0 element body, replacing characters XML cannot carry."""
    # PERF: most EC2 values (ids, states, names) need no escaping; one regex scan beats translate().
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return text.translate(_ESCAPES)


# --------------------------------------------------------------------------- scalar formatting
# Each formatter turns a Python value into escaped element text.


def _fmt_string(value: Any) -> str:
    return escape_text(value if type(value) is str else str(value))


def _fmt_integer(value: Any) -> str:
    if type(value) is int:
        return str(value)
    try:
        return str(int(value))
    except (TypeError, ValueError, OverflowError):
        return escape_text(str(value))


def _fmt_boolean(value: Any) -> str:
    if isinstance(value, str):
        return escape_text(value.lower())
    return "true" if value else "false"


def _fmt_float(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return escape_text(str(value))


def _as_utc(value: Any) -> datetime | None:
    """Coerce a datetime (naive = UTC) or epoch number to an aware UTC datetime; None if impossible."""
    try:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return None


def _fmt_iso8601(value: Any) -> str:
    d = _as_utc(value)
    if d is None:
        return escape_text(value.isoformat() if isinstance(value, date) else str(value))
    # PERF: an f-string is ~3x faster than strftime and zero-pads years < 1000, which strftime does not.
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        f".{d.microsecond // 1000:03d}Z"
    )


def _fmt_epoch(value: Any) -> str:
    d = _as_utc(value)
    if d is None:
        return escape_text(str(value))
    seconds = d.timestamp()
    return str(int(seconds)) if seconds.is_integer() else repr(round(seconds, 3))


def _fmt_rfc822(value: Any) -> str:
    d = _as_utc(value)
    if d is None:
        return escape_text(str(value))
    return email.utils.format_datetime(d, usegmt=True)


def _fmt_blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, bytes | bytearray | memoryview):
        value = str(value).encode("utf-8")
    return base64.b64encode(value).decode("ascii")


_TIMESTAMP_FORMATS: Final = {"iso8601": _fmt_iso8601, "unixTimestamp": _fmt_epoch, "rfc822": _fmt_rfc822}
_FORMATTERS: Final[dict[str, Callable[[Any], str]]] = {
    "string": _fmt_string,
    "character": _fmt_string,
    "integer": _fmt_integer,
    "long": _fmt_integer,
    "boolean": _fmt_boolean,
    "float": _fmt_float,
    "double": _fmt_float,
    "blob": _fmt_blob,
}


def _formatter(shape: Shape) -> Callable[[Any], str]:
    if shape.type_name == "timestamp":
        return _TIMESTAMP_FORMATS.get(shape.serialization.get("timestampFormat", "iso8601"), _fmt_iso8601)
    return _FORMATTERS.get(shape.type_name, _fmt_string)


# --------------------------------------------------------------------------- compilation

_Emit = Callable[[Any, list[str]], None]  # (value, output list) → appends one or more elements


class _StructBody:
    """Compiled structure: renders its members (not its own tag) into the output list."""

    __slots__ = ("members",)

    def __init__(self) -> None:
        # member name → (open tag, close tag, scalar formatter or None, complex emitter or None)
        self.members: dict[str, tuple[str, str, Callable[[Any], str] | None, _Emit | None]] = {}

    def __call__(self, value: dict[str, Any], out: list[str]) -> None:
        # PERF: walk the result's keys, not the shape's members: EC2 shapes declare far more members than
        # a backend fills (Instance has ~90), and dict lookups per absent member dominated the profile.
        # Elements therefore follow the result dict's order; botocore and EC2 clients read by name.
        members = self.members
        append = out.append
        search = _NEEDS_ESCAPE.search
        for name, member in value.items():
            entry = members.get(name)
            if entry is None or member is None:
                continue  # not in the model (handler extras) or explicitly absent
            open_tag, close_tag, fmt, emit = entry
            if fmt is None:
                emit(member, out)  # type: ignore[misc]  # fmt is None ⇒ emit is set
            elif fmt is _fmt_string and type(member) is str and search(member) is None:
                append(open_tag + member + close_tag)  # PERF: inlined common case, no call frame
            else:
                append(open_tag + fmt(member) + close_tag)


def _member_tag(shape: Shape, member_name: str) -> str:
    """Element name botocore's XML parser looks up for a structure member (`_member_key_name`)."""
    if isinstance(shape, ListShape) and shape.serialization.get("flattened"):
        member_location = shape.member.serialization.get("name")
        if member_location:
            return member_location
    return shape.serialization.get("name") or member_name


class _Compiler:
    """Compiles output shapes of one service model; structure bodies are shared by shape name."""

    def __init__(self, bodies: dict[str, _StructBody]) -> None:
        self._bodies = bodies

    def body(self, shape: StructureShape) -> _StructBody:
        body = self._bodies.get(shape.name)
        if body is not None:
            return body
        # Registered before its members are compiled, so recursive shapes refer back to it.
        body = self._bodies[shape.name] = _StructBody()
        for member_name, member in shape.members.items():
            if member.serialization.get("location") in ("header", "headers", "statusCode"):
                continue
            tag = _member_tag(member, member_name)
            if isinstance(member, StructureShape | ListShape | MapShape):
                body.members[member_name] = (f"<{tag}>", f"</{tag}>", None, self.emitter(member, tag))
            else:
                body.members[member_name] = (f"<{tag}>", f"</{tag}>", _formatter(member), None)
        return body

    def emitter(self, shape: Shape, tag: str) -> _Emit:
        """Build a function writing `value` as element(s) named `tag`."""
        open_tag, close_tag = f"<{tag}>", f"</{tag}>"
        if isinstance(shape, StructureShape):
            body = self.body(shape)

            def emit_struct(value: Any, out: list[str]) -> None:
                if type(value) is Rendered:  # rendered already, tags included (``Fragments``)
                    out.append(value)
                    return
                out.append(open_tag)
                body(value, out)
                out.append(close_tag)

            return emit_struct
        if isinstance(shape, ListShape):
            return self._list(shape, tag)
        if isinstance(shape, MapShape):
            return self._map(shape, tag)
        fmt = _formatter(shape)

        def emit_scalar(value: Any, out: list[str]) -> None:
            out.append(open_tag + fmt(value) + close_tag)

        return emit_scalar

    def _list(self, shape: ListShape, tag: str) -> _Emit:
        member = shape.member
        if shape.serialization.get("flattened"):
            item = self.emitter(member, tag)

            def emit_flat(value: Any, out: list[str]) -> None:
                for element in value:
                    if element is not None:
                        item(element, out)

            return emit_flat
        open_tag, close_tag, empty_tag = f"<{tag}>", f"</{tag}>", f"<{tag}/>"
        item_tag = member.serialization.get("name") or "item"
        if not isinstance(member, StructureShape | ListShape | MapShape):
            fmt = _formatter(member)
            item_open, item_close = f"<{item_tag}>", f"</{item_tag}>"

            def emit_scalar_list(value: Any, out: list[str]) -> None:
                # PERF: lists of ids/strings render as one joined string.
                inner = "".join([item_open + fmt(e) + item_close for e in value if e is not None])
                out.append(open_tag + inner + close_tag if inner else empty_tag)

            return emit_scalar_list
        item = self.emitter(member, item_tag)

        def emit_list(value: Any, out: list[str]) -> None:
            if not value:
                out.append(empty_tag)
                return
            out.append(open_tag)
            for element in value:
                if element is not None:
                    item(element, out)
            out.append(close_tag)

        return emit_list

    def _map(self, shape: MapShape, tag: str) -> _Emit:
        key = self.emitter(shape.key, shape.key.serialization.get("name") or "key")
        val = self.emitter(shape.value, shape.value.serialization.get("name") or "value")
        open_tag, close_tag = f"<{tag}>", f"</{tag}>"
        flattened = bool(shape.serialization.get("flattened"))

        def emit_map(value: Any, out: list[str]) -> None:
            if not flattened:
                out.append(open_tag)
            for k, v in value.items():
                if v is None:
                    continue
                out.append(open_tag if flattened else "<entry>")
                key(k, out)
                val(v, out)
                out.append(close_tag if flattened else "</entry>")
            if not flattened:
                out.append(close_tag)

        return emit_map


class _OperationRenderer:
    """Everything render_response needs for one operation, precomputed."""

    __slots__ = ("body", "close", "open")

    def __init__(self, operation: OperationModel, bodies: dict[str, _StructBody]) -> None:
        namespace = _namespace(operation.service_model)
        self.open = f'{_XML_DECL}<{operation.name}Response xmlns="{namespace}"><requestId>'
        self.close = f"</{operation.name}Response>"
        shape = operation.output_shape
        self.body = _Compiler(bodies).body(shape) if isinstance(shape, StructureShape) else None


def _namespace(model: ServiceModel) -> str:
    version = model.metadata.get("apiVersion")
    return f"http://ec2.amazonaws.com/doc/{version}/" if version else _DEFAULT_NS


_RENDERERS: weakref.WeakKeyDictionary[OperationModel, _OperationRenderer] = weakref.WeakKeyDictionary()
_BODIES: weakref.WeakKeyDictionary[ServiceModel, dict[str, _StructBody]] = weakref.WeakKeyDictionary()


def _renderer(operation: OperationModel) -> _OperationRenderer:
    try:
        return _RENDERERS[operation]
    except KeyError:
        pass
    bodies = _BODIES.setdefault(operation.service_model, {})
    renderer = _RENDERERS[operation] = _OperationRenderer(operation, bodies)
    return renderer


def precompile(model: ServiceModel) -> int:
    """Compile the renderer of every operation of `model` (call at start-up); returns the count."""
    for name in model.operation_names:
        _renderer(model.operation_model(name))
    return len(model.operation_names)


def render_response(operation: OperationModel, result: dict[str, Any] | None, request_id: str) -> bytes:
    """Render a boto3-shaped result dict as the EC2 XML response document for `operation`."""
    renderer = _renderer(operation)
    out = [renderer.open, escape_text(request_id), "</requestId>"]
    if renderer.body is not None and result:
        renderer.body(result, out)
    elif operation.output_shape is None:
        # Actions the model gives no output (DeleteVpc, CreateTags...) still answer <return>true</return> on EC2.
        out.append("<return>true</return>")
    out.append(renderer.close)
    return "".join(out).encode("utf-8")


class Rendered(str):
    """One element rendered already, its tags included (``Fragments``): written out as it is."""

    __slots__ = ()


class Fragments:
    """The elements of one list of an operation's output, each rendered once per distinct value and kept by this
    process (at most ``size``, the least recently used dropped first).

    PERF: a listing read from the cloud on every request (no cache, or a cache just lapsed) holds mostly the
    same resources again; rendering one costs some 30 us, and ``orjson`` spells its value (the key) in 3.
    A value orjson cannot spell is rendered every time.
    """

    def __init__(self, operation: OperationModel, path: Sequence[str], size: int = 1024) -> None:
        shape: Shape = operation.output_shape  # type: ignore[assignment]
        for name in path:  # structure members, through lists to their items
            shape = shape.members[name]  # type: ignore[attr-defined]
            while isinstance(shape, ListShape):
                shape = shape.member
        if not isinstance(shape, StructureShape):
            raise TypeError(f"{'/'.join(path)} of {operation.name} does not hold structures")
        self._emit = _Compiler(_BODIES.setdefault(operation.service_model, {})).emitter(
            shape, shape.serialization.get("name") or "item"
        )
        self._kept: OrderedDict[bytes, Rendered] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def __call__(self, value: dict[str, Any]) -> Rendered | dict[str, Any]:
        """``value`` rendered as one list item."""
        try:
            key = orjson.dumps(value)
        except TypeError:
            return value
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found
        out: list[str] = []
        self._emit(value, out)
        made = Rendered("".join(out))
        with self._lock:
            self._kept[key] = made
            if len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return made


def render_error(code: str, message: str, request_id: str) -> bytes:
    """Render EC2's error document (`Response/Errors/Error` with `Code` and `Message`, then `RequestID`)."""
    return (
        f"{_XML_DECL}<Response><Errors><Error><Code>{escape_text(code)}</Code>"
        f"<Message>{escape_text(message)}</Message></Error></Errors>"
        f"<RequestID>{escape_text(request_id)}</RequestID></Response>"
    ).encode()
