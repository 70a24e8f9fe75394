"""The document store over a real Redis: ETags, paging without SCAN, members, tenancy, one slot per tenant."""

from __future__ import annotations

import threading

import pytest
from redis.crc import key_slot

from translator.documents import DocumentStore
from translator.errors import Conflict, InvalidParameter, NotFound, PreconditionFailed


@pytest.fixture
def docs(redis_client) -> DocumentStore:
    return DocumentStore(redis_client)


def test_create_get_replace_delete_with_etags(docs: DocumentStore) -> None:
    made = docs.create("demo", "machine_template", {"name": "small", "cpu": 1})
    assert made.version == 1 and made.etag and made.created == made.updated
    assert docs.get("demo", "machine_template", made.id) == made

    changed = docs.replace("demo", "machine_template", made.id, {"name": "small", "cpu": 2}, if_match=made.etag)
    assert (changed.version, changed.body, changed.created) == (2, {"name": "small", "cpu": 2}, made.created)
    assert changed.etag != made.etag and changed.updated >= made.updated

    with pytest.raises(PreconditionFailed) as stale:
        docs.replace("demo", "machine_template", made.id, {"cpu": 3}, if_match=made.etag)
    assert isinstance(stale.value, Conflict) and stale.value.reason == "etag" and stale.value.status == 412
    with pytest.raises(PreconditionFailed):
        docs.delete("demo", "machine_template", made.id, if_match=made.etag)
    assert docs.get("demo", "machine_template", made.id).body["cpu"] == 2

    unconditional = docs.replace("demo", "machine_template", made.id, {"cpu": 4})
    assert unconditional.version == 3
    docs.delete("demo", "machine_template", made.id, if_match=unconditional.etag)
    with pytest.raises(NotFound):
        docs.get("demo", "machine_template", made.id)
    with pytest.raises(NotFound):
        docs.replace("demo", "machine_template", made.id, {"cpu": 5})
    with pytest.raises(NotFound):
        docs.delete("demo", "machine_template", made.id)


def test_a_document_made_again_under_the_same_id_does_not_match_an_old_etag(docs: DocumentStore) -> None:
    first = docs.create("demo", "mixin", {"title": "a"}, doc_id="http://example.com/occi/my#web")
    with pytest.raises(Conflict) as dup:
        docs.create("demo", "mixin", {"title": "b"}, doc_id=first.id)
    assert dup.value.reason == "duplicate"
    docs.delete("demo", "mixin", first.id)
    again = docs.create("demo", "mixin", {"title": "a"}, doc_id=first.id)
    assert again.version == 1 and again.etag != first.etag
    with pytest.raises(PreconditionFailed):
        docs.replace("demo", "mixin", first.id, {"title": "c"}, if_match=first.etag)


def test_concurrent_conditional_replaces_let_exactly_one_win(docs: DocumentStore) -> None:
    made = docs.create("demo", "system", {"n": 0})
    outcomes: list[str] = []
    lock = threading.Lock()

    def replace(n: int) -> None:
        try:
            docs.replace("demo", "system", made.id, {"n": n}, if_match=made.etag)
            result = "won"
        except PreconditionFailed:
            result = "stale"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=replace, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcomes) == ["stale"] * 7 + ["won"]
    assert docs.get("demo", "system", made.id).version == 2


def test_listing_pages_in_creation_order_from_a_sorted_index(docs: DocumentStore, redis_client) -> None:
    made = [docs.create("demo", "system_template", {"i": i}).id for i in range(25)]
    docs.create("other", "system_template", {"i": -1})
    docs.create("demo", "machine_template", {"i": -2})

    seen, cursor, pages = [], None, 0
    while True:
        page = docs.list("demo", "system_template", cursor=cursor, limit=10)
        seen += [d.id for d in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == made and pages == 3
    assert docs.count("demo", "system_template") == 25
    assert redis_client.type("cg:docs:{demo}:system_template") == b"zset"
    # A page that ends exactly at the last document says so (no empty page after it).
    assert docs.list("demo", "system_template", cursor=made[14], limit=10).next_cursor is None
    assert [d.body for d in docs.list("other", "system_template").items] == [{"i": -1}]


def test_tenants_do_not_see_each_others_documents(docs: DocumentStore) -> None:
    mine = docs.create("demo", "system", {"secret": True})
    with pytest.raises(NotFound):
        docs.get("other", "system", mine.id)
    with pytest.raises(NotFound):
        docs.delete("other", "system", mine.id)
    with pytest.raises(NotFound):
        docs.add_members("other", "system", mine.id, ["m1"])
    assert docs.list("other", "system").items == []


def test_members_page_and_go_with_their_document(docs: DocumentStore, redis_client) -> None:
    mixin = docs.create("demo", "mixin", {"title": "web tier"}, doc_id="http://example.com/occi/my#web")
    entities = [f"/occi/compute/{i:03d}" for i in range(12)]
    assert docs.add_members("demo", "mixin", mixin.id, entities) == 12
    assert docs.add_members("demo", "mixin", mixin.id, entities[:3]) == 0
    assert docs.remove_members("demo", "mixin", mixin.id, [entities[0], "/occi/compute/none"]) == 1
    first = docs.members("demo", "mixin", mixin.id, limit=5)
    rest = docs.members("demo", "mixin", mixin.id, cursor=first.next_cursor, limit=100)
    assert first.items + rest.items == entities[1:] and rest.next_cursor is None
    assert docs.is_member("demo", "mixin", mixin.id, entities[5])
    assert not docs.is_member("demo", "mixin", mixin.id, entities[0])

    keys = [k.decode() for k in redis_client.keys("cg:doc*")]
    assert len(keys) == 3 and len({key_slot(k.encode()) for k in keys}) == 1

    docs.delete("demo", "mixin", mixin.id)
    assert redis_client.keys("cg:doc*") == []
    with pytest.raises(NotFound):
        docs.members("demo", "mixin", mixin.id)
    with pytest.raises(NotFound):
        docs.add_members("demo", "mixin", mixin.id, ["x"])


def test_many_members_in_one_call(docs: DocumentStore) -> None:
    system = docs.create("demo", "system", {})
    members = [f"m{i:05d}" for i in range(1200)]
    assert docs.add_members("demo", "system", system.id, members) == 1200
    assert docs.members("demo", "system", system.id, cursor="m01198").items == ["m01199"]


@pytest.mark.parametrize(
    "call",
    [
        lambda d: d.create("demo", "system", ["not", "an", "object"]),
        lambda d: d.create("demo", "system", {"when": object()}),
        lambda d: d.create("demo", "system", {"big": "x" * 1_100_000}),
        lambda d: d.create("demo", "Bad Kind", {}),
        lambda d: d.create("demo", "system", {}, doc_id="has space"),
        lambda d: d.create("demo", "system", {}, doc_id=""),
        lambda d: d.list("demo", "system", limit=0),
        lambda d: d.list("demo", "system", limit=1001),
        lambda d: d.add_members("demo", "system", "x", ["bad member"]),
    ],
)
def test_bad_input_is_an_invalid_parameter(docs: DocumentStore, call) -> None:
    with pytest.raises(InvalidParameter):
        call(docs)
