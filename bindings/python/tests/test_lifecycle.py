"""Opening, closing, `with` blocks and the finalizer: a store's handle is released
exactly once, and any use afterwards is a ClosedError from the library."""

from __future__ import annotations

import ctypes
import gc
import json
from typing import Any, Dict

import pytest

import coordkv
from coordkv import (
    ClosedError,
    InvalidArgumentError,
    NotFoundError,
    Store,
    UnavailableError,
    _ffi,
    errors,
)

from conftest import NATS_URL, backend_config


def test_open_defaults_to_mem() -> None:
    with Store.open() as store:
        store.put("/a", b"v")
        assert store.get("/a").value == b"v"


def test_open_by_url() -> None:
    with Store.open("mem://") as store:
        assert store.last_revision() == 0


def test_the_module_level_open_functions_open_stores(backend: str) -> None:
    with coordkv.open("mem://") as by_url:
        assert isinstance(by_url, Store)
        by_url.put("/a", b"v")
    with coordkv.open_config(backend_config(backend)) as by_config:
        assert isinstance(by_config, Store)
        by_config.put("/a", b"v")
    assert by_url.closed and by_config.closed


def test_star_import_does_not_shadow_the_builtin_open() -> None:
    namespace: Dict[str, Any] = {}
    exec("from coordkv import *", namespace)
    assert "open" not in namespace


def test_open_config_accepts_a_mapping_and_a_json_str(backend: str) -> None:
    config = backend_config(backend)
    with Store.open_config(config) as from_mapping:
        from_mapping.put("/a", b"1")
    with Store.open_config(json.dumps(backend_config(backend))) as from_text:
        from_text.put("/a", b"1")


def test_open_config_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Store.open_config(["url", "mem://"])  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["", "http://example", "mem", "redis://x"])
def test_a_bad_url_is_invalid(url: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        Store.open(url)
    assert raised.value.message.startswith("INVALID_ARGUMENT")


def test_a_url_with_a_nul_is_refused_instead_of_truncated() -> None:
    with pytest.raises(InvalidArgumentError):
        Store.open("mem://\0nats://elsewhere")


@pytest.mark.parametrize(
    "config",
    [
        "{not json",
        '{"url": "mem://", "no_such_option": 1}',
        '{"url": "mem://", "history": "many"}',
    ],
)
def test_a_bad_config_is_invalid(config: str) -> None:
    with pytest.raises(InvalidArgumentError):
        Store.open_config(config)


def test_close_is_idempotent(store: Store) -> None:
    assert not store.closed
    store.close()
    store.close()
    assert store.closed
    assert "closed" in repr(store)


def test_a_with_block_closes_the_store(backend: str) -> None:
    with Store.open_config(backend_config(backend)) as store:
        store.put("/a", b"v")
        assert not store.closed
    assert store.closed
    with pytest.raises(ClosedError):
        store.get("/a")


def test_a_with_block_closes_the_store_when_it_raises(backend: str) -> None:
    with pytest.raises(NotFoundError):
        with Store.open_config(backend_config(backend)) as store:
            store.get("/missing")
    assert store.closed
    with pytest.raises(ClosedError):
        store.last_revision()


def raw_last_revision(handle: Any) -> int:
    revision = ctypes.c_uint64()
    errors.call(_ffi.lib.ckv_last_revision, handle, ctypes.byref(revision))
    return revision.value


def test_a_forgotten_store_is_closed_by_its_finalizer(backend: str) -> None:
    store = Store.open_config(backend_config(backend))
    store.put("/a", b"v")
    handle = ctypes.cast(store._handle, ctypes.POINTER(_ffi.ckv_store))
    assert raw_last_revision(handle) == 1

    del store
    gc.collect()

    with pytest.raises(ClosedError):
        raw_last_revision(handle)


if NATS_URL:

    def test_a_nats_url_with_no_server_is_unavailable() -> None:
        # Port 1 on localhost: nothing listens there in a test environment.
        config = {"url": "nats://127.0.0.1:1", "connect_timeout_ms": 500}
        with pytest.raises(UnavailableError):
            Store.open_config(config)
