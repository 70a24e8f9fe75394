"""Heap handed back after a large listing only: an ordinary request pays a flag test, a large listing one trim."""

from __future__ import annotations

from translator import memory


def test_a_trim_follows_a_large_listing_once() -> None:
    memory.release()  # whatever an earlier test left asked for
    memory.note_listing(memory.LARGE_LISTING - 1)
    assert memory.release() is False  # an ordinary listing asks for nothing
    memory.note_listing(memory.LARGE_LISTING)
    memory.note_listing(memory.LARGE_LISTING * 3)
    assert memory.release() is True
    assert memory.release() is False  # once, however many large listings asked
