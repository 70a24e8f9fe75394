"""What of a backend's error message a client may see: its words, on one line, capped."""

from __future__ import annotations

import pytest

from translator.calls import MESSAGE_LIMIT, client_message


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("The key pair 'k' does not exist.", "The key pair 'k' does not exist."),
        ("Value '<b>' is bad;\n  try\tagain", "Value '<b>' is bad; try again"),
        (
            "openstack: HTTP 502: <!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
            "<body><h1>Bad Gateway</h1><p>nginx</p></body></html>",
            "openstack: HTTP 502: 502 Bad Gateway Bad Gateway nginx",
        ),
        (
            'boom: failed\nTraceback (most recent call last):\n  File "/srv/app.py", line 3, in f\nKeyError: pw',
            "boom: failed",
        ),
        ("   ", "The backend failed to process the request."),
    ],
    ids=["plain", "whitespace", "html-page", "traceback", "empty"],
)
def test_client_message(raw: str, shown: str) -> None:
    assert client_message(raw) == shown


def test_long_messages_are_capped() -> None:
    shown = client_message("x" * 10_000)
    assert len(shown) == MESSAGE_LIMIT and shown.endswith("...")
