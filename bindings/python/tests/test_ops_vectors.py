"""The shared KV scenarios of tests/vectors/ops.json (its "comment" is the format),
through the Python binding on every backend: the same calls and answers the Rust, C and
Go suites check. What only Python can get wrong stays in the other test files."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from coordkv import CoordkvError, Entry, Store, _ffi

from conftest import OPS_VECTORS, OpenStore

CLOCK_SLACK_NS = 5 * 10**9  # the NATS server stamps entries with its own clock
SCENARIOS: List[Dict[str, Any]] = OPS_VECTORS["scenarios"]
WRITES = {"put", "create", "update", "delete", "purge", "read_modify_write"}

Step = Dict[str, Any]
EntryTuple = Tuple[str, bytes, int, str]


def value_of(fields: Dict[str, Any]) -> bytes:
    """A `value` (text) or `value_hex` field as bytes; neither is the empty value."""
    if "value_hex" in fields:
        return bytes.fromhex(fields["value_hex"])
    text: str = fields.get("value", "")
    return text.encode("utf-8")


def call(store: Store, step: Step, revision: int, saw: List[Optional[bytes]]) -> Any:
    """Makes the step's call; read_modify_write's function records what it saw."""
    key, prefix = step.get("key"), step.get("prefix")

    def modify(current: Optional[bytes]) -> bytes:
        saw.append(current)
        return value_of(step)

    calls: Dict[str, Callable[[], Any]] = {
        "put": lambda: store.put(key, value_of(step)),
        "create": lambda: store.create(key, value_of(step)),
        "update": lambda: store.update(key, value_of(step), revision),
        "delete": lambda: store.delete(key, revision),
        "purge": lambda: store.purge(key),
        "read_modify_write": lambda: store.read_modify_write(key, modify),
        "get": lambda: [store.get(key)],
        "list": lambda: store.list(prefix),
        "history": lambda: store.history(key),
        "keys": lambda: store.keys(prefix),
        "delete_prefix": lambda: store.delete_prefix(prefix),
        "last_revision": store.last_revision,
        "close": store.close,
    }
    return calls[step["op"]]()


class Scenario:
    """One run of one scenario: the revisions its writes named, and what it has seen."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.named: Dict[str, int] = {}
        self.latest = 0
        self.started_ns = time.time_ns()

    def revision(self, reference: Any) -> int:
        """A number, or "$name" for the revision a write named."""
        if isinstance(reference, str):
            assert reference.startswith("$") and reference[1:] in self.named, reference
            return self.named[reference[1:]]
        number: int = reference
        return number

    def entry(self, entry: Entry) -> EntryTuple:
        assert (
            self.started_ns - CLOCK_SLACK_NS
            <= entry.timestamp_ns
            <= time.time_ns() + CLOCK_SLACK_NS
        ), entry
        operation: bytes = _ffi.lib.ckv_operation_name(entry.operation)
        return (entry.key, entry.value, entry.revision, operation.decode("ascii"))

    def expected(self, step: Step) -> Any:
        """The step's `expect`, in the form `run_step` compares results."""
        expect = step.get("expect")

        def entry(fields: Dict[str, Any]) -> EntryTuple:
            key = fields.get("key", step.get("key"))
            return (key, value_of(fields), self.revision(fields["rev"]), fields["op"])

        if step["op"] == "get":
            return [entry(expect)]
        if step["op"] in ("list", "history"):
            return [entry(fields) for fields in expect]
        if step["op"] == "last_revision":
            return self.revision(expect)
        return expect

    def run_step(self, step: Step) -> None:
        saw: List[Optional[bytes]] = []
        want_status = step.get("status", "OK")
        try:
            got = call(self.store, step, self.revision(step.get("rev", 0)), saw)
        except CoordkvError as error:
            assert error.status_name == want_status, error.message
            assert error.message.startswith(f"{want_status}: ")
            assert step.get("message_has", "") in error.message
            assert error.current_revision == self.revision(step.get("current", 0))
        else:
            assert want_status == "OK", f"succeeded with {got!r}"
            if step["op"] in WRITES:
                assert got > self.latest, "revisions strictly increase"
                self.latest = got
                if "as" in step:
                    self.named[step["as"]] = got
            elif step["op"] in ("get", "list", "history"):
                assert [self.entry(e) for e in got] == self.expected(step)
            else:
                assert got == self.expected(step)
        if "saw" not in step:
            assert saw == [], "the function must not run"
        else:
            want = None if step["saw"] is None else value_of({"value": step["saw"]})
            assert saw == [want]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(open_store: OpenStore, scenario: Dict[str, Any]) -> None:
    run = Scenario(open_store(**scenario.get("config", {})))
    for index, step in enumerate(scenario["steps"]):
        try:
            run.run_step(step)
        except AssertionError as failure:
            raise AssertionError(f"step {index} {json.dumps(step)}: {failure}") from None
