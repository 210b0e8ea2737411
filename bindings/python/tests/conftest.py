"""Shared fixtures: every KV test runs once per backend.

mem:// always; NATS too when COORDKV_TEST_NATS_URL is set (scripts/test.sh sets it when
it has started a server). On NATS each test opens its own bucket, named uniquely, so
tests never see each other's keys or revisions.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from coordkv import Store

NATS_URL = os.environ.get("COORDKV_TEST_NATS_URL", "").strip()
if not NATS_URL and os.environ.get("COORDKV_REQUIRE_NATS") == "1":
    # The test command promised a server: running on mem:// alone would pass silently.
    raise RuntimeError("COORDKV_REQUIRE_NATS=1 but COORDKV_TEST_NATS_URL is not set")
BACKENDS = ["mem"] + (["nats"] if NATS_URL else [])

REPO = Path(__file__).resolve().parents[3]


def load_vectors(name: str) -> Dict[str, Any]:
    """One of the shared vector files of tests/vectors, which every language reads."""
    path = REPO / "tests" / "vectors" / name
    vectors: Dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vectors


KEY_VECTORS = load_vectors("keys.json")
OPS_VECTORS = load_vectors("ops.json")
HEADER = REPO / "include" / "coordkv.h"

OpenStore = Callable[..., Store]


def backend_config(backend: str, **options: Any) -> Dict[str, Any]:
    """A config for a fresh, empty store on `backend`, plus any extra options."""
    if backend == "mem":
        return {"url": "mem://", **options}
    return {"url": NATS_URL, "bucket": f"py_{uuid.uuid4().hex}", **options}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def open_store(backend: str) -> Iterator[OpenStore]:
    """Opens fresh stores on the test's backend (extra keyword arguments become config
    fields) and closes them all when the test ends."""
    opened: List[Store] = []

    def open_fresh(**options: Any) -> Store:
        store = Store.open_config(backend_config(backend, **options))
        opened.append(store)
        return store

    yield open_fresh
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    return open_store()
