"""The shared key vectors (tests/vectors/keys.json), the same ones every language uses."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import pytest

from coordkv import InvalidArgumentError, Store

from conftest import KEY_VECTORS

VALID_KEYS: List[str] = [vector["key"] for vector in KEY_VECTORS["valid"]]
PREFIXES: List[str] = [vector["prefix"] for vector in KEY_VECTORS["prefixes"]]


def invalid_key(vector: Dict[str, Any]) -> bytes:
    """An invalid key as the raw bytes to send: given as text, or as hex when it is
    not valid UTF-8 or holds a NUL."""
    if "key_hex" in vector:
        return bytes.fromhex(vector["key_hex"])
    text: str = vector["key"]
    return text.encode("utf-8")


INVALID_KEYS = [
    pytest.param(invalid_key(vector), id=vector["why"])
    for vector in KEY_VECTORS["invalid"]
]


def short_id(key: str) -> str:
    return key if len(key) <= 40 else f"{key[:20]}...({len(key.encode())} bytes)"


@pytest.mark.parametrize("key", VALID_KEYS, ids=short_id)
def test_a_valid_key_round_trips_as_str_and_as_bytes(store: Store, key: str) -> None:
    revision = store.put(key, key)
    entry = store.get(key)
    assert (entry.key, entry.value, entry.revision) == (key, key.encode(), revision)
    assert store.get(key.encode("utf-8")) == entry
    assert store.keys("/") == [key]
    assert [e.key for e in store.history(key)] == [key]


def test_all_valid_keys_list_back_sorted_by_bytes(store: Store) -> None:
    for key in VALID_KEYS:
        store.put(key, b"v")
    expected = sorted(VALID_KEYS, key=lambda k: k.encode("utf-8"))
    assert store.keys("/") == expected
    assert [e.key for e in store.list("/")] == expected
    assert store.delete_prefix("/") == len(VALID_KEYS)
    assert store.keys("/") == []


KeyOperation = Callable[[Store, bytes], Optional[object]]

KEY_OPERATIONS: Dict[str, KeyOperation] = {
    "put": lambda store, key: store.put(key, b"v"),
    "get": lambda store, key: store.get(key),
    "create": lambda store, key: store.create(key, b"v"),
    "update": lambda store, key: store.update(key, b"v", 1),
    "delete": lambda store, key: store.delete(key),
    "conditional delete": lambda store, key: store.delete(key, 1),
    "purge": lambda store, key: store.purge(key),
    "history": lambda store, key: store.history(key),
    "read_modify_write": lambda store, key: store.read_modify_write(
        key, lambda value: pytest.fail("the function ran for an invalid key")
    ),
}


@pytest.mark.parametrize("operation", KEY_OPERATIONS.values(), ids=KEY_OPERATIONS)
@pytest.mark.parametrize("key", INVALID_KEYS)
def test_an_invalid_key_is_refused_by_every_operation(
    store: Store, key: bytes, operation: KeyOperation
) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        operation(store, key)
    assert raised.value.message.startswith("INVALID_ARGUMENT")
    assert store.last_revision() == 0


@pytest.mark.parametrize(
    "key", [k for k in VALID_KEYS if k.isascii() and len(k) < 100], ids=short_id
)
def test_a_str_with_a_lone_surrogate_is_refused_like_bad_utf8(
    store: Store, key: str
) -> None:
    with pytest.raises(InvalidArgumentError):
        store.put(key + "\udc80", b"v")


# Keys that sit on both sides of every vector prefix: inside, beside, and above it.
PREFIX_PROBE_KEYS = VALID_KEYS + [
    "/nodes",
    "/nodesX/a",
    "/nodes/n-2/deep",
    "/nod",
    "/node",
    "/a b/c/d",
    "/a b/cd",
    "/a b",
]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_prefix_selects_the_keys_that_start_with_it(
    store: Store, prefix: str
) -> None:
    for key in PREFIX_PROBE_KEYS:
        store.put(key, key)
    expected = sorted(
        (k for k in PREFIX_PROBE_KEYS if k.startswith(prefix)),
        key=lambda k: k.encode("utf-8"),
    )
    assert expected, "each vector prefix should match some probe key"

    assert store.keys(prefix) == expected
    assert [(e.key, e.value) for e in store.list(prefix)] == [
        (k, k.encode()) for k in expected
    ]
    assert store.delete_prefix(prefix) == len(expected)
    assert set(store.keys("/")) == set(PREFIX_PROBE_KEYS) - set(expected)


# The other invalid prefixes are in the shared scenarios (test_ops_vectors.py).
@pytest.mark.parametrize("prefix", [b"/\xff", b"/a\xc3("])
def test_a_prefix_that_is_not_utf8_is_refused(store: Store, prefix: bytes) -> None:
    with pytest.raises(InvalidArgumentError):
        store.keys(prefix)
    with pytest.raises(InvalidArgumentError):
        store.list(prefix)
    with pytest.raises(InvalidArgumentError):
        store.delete_prefix(prefix)
