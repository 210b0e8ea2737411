#!/usr/bin/env python3
"""Turns tests/vectors/ops.json into a C include for tests/c/test_kv.c.

The shared scenarios are the one statement of the KV contract that every language runs;
generating the include at test time (instead of committing a copy) keeps C in step with
them. Names of revisions ("as": "r1", then "$r1") become slot numbers here, so the C
runner only indexes an array; statuses and operations stay the library's names, which
the runner compares with ckv_status_name and ckv_operation_name.

usage: gen_ops_vectors.py <ops.json> <out.h>
"""

import json
import sys
from typing import Any, Dict, List, Tuple

from gen_key_vectors import c_bytes, c_text, write_include

PREAMBLE = """\
#include <stddef.h>
#include <stdint.h>
/* A key, prefix or value: exactly `len` bytes. */
struct ops_bytes { const char *bytes; size_t len; };
/* A revision: slot > 0 is the one an earlier write named, slot 0 the number itself. */
struct ops_rev { int slot; uint64_t number; };
struct ops_entry { struct ops_bytes key, value; struct ops_rev rev; const char *op; };
/* What read_modify_write's function must be given. */
enum ops_saw { OPS_NOT_CALLED, OPS_SAW_NOTHING, OPS_SAW_VALUE };
struct ops_step {
    const char *op, *json, *status, *message_has;
    struct ops_bytes key; /* or prefix */
    struct ops_bytes value;
    struct ops_rev rev, current;
    int as; /* the slot this write's revision goes to; 0: none */
    enum ops_saw saw;
    struct ops_bytes saw_value;
    /* expect: keys; entries (get's one, list, history); a count or a revision */
    const struct ops_bytes *keys;
    size_t n_keys;
    const struct ops_entry *entries;
    size_t n_entries;
    struct ops_rev number;
};
struct ops_scenario { const char *name, *config; const struct ops_step *steps; size_t n_steps; };
"""


def c_data(data: bytes) -> str:
    return f"{{{c_bytes(data)}, {len(data)}}}"


def value_of(fields: Dict[str, Any]) -> bytes:
    if "value_hex" in fields:
        return bytes.fromhex(fields["value_hex"])
    text: str = fields.get("value", "")
    return text.encode("utf-8")


class Scenario:
    def __init__(self, index: int) -> None:
        self.prefix = f"OPS_{index}"
        self.slots: Dict[str, int] = {}
        self.arrays: List[str] = []

    def rev(self, reference: Any) -> str:
        if isinstance(reference, str):
            name = reference[1:]
            if not reference.startswith("$") or name not in self.slots:
                raise SystemExit(f"{self.prefix}: no revision {reference!r} before its use")
            return f"{{{self.slots[name]}, 0}}"
        return f"{{0, UINT64_C({int(reference)})}}"

    def array(self, kind: str, items: List[str]) -> Tuple[str, str]:
        """Declares a static array; returns its pointer and length for a step's fields."""
        if not items:
            return "NULL", "0"
        name = f"{self.prefix}_{len(self.arrays)}"
        body = ",\n    ".join(items)
        self.arrays.append(f"static const struct {kind} {name}[] = {{\n    {body},\n}};")
        return name, str(len(items))

    def step(self, step: Dict[str, Any]) -> str:
        op, expect = step["op"], step.get("expect")
        target = (step.get("key") or step.get("prefix") or "").encode("utf-8")
        fields = {
            "op": c_text(op),
            "json": c_text(json.dumps(step)),
            "status": c_text(step.get("status", "OK")),
            "message_has": c_text(step.get("message_has", "")),
            "key": c_data(target),
            "value": c_data(value_of(step)),
            "rev": self.rev(step.get("rev", 0)),
            "current": self.rev(step.get("current", 0)),
        }
        if "saw" in step:
            seen = step["saw"]
            fields["saw"] = "OPS_SAW_NOTHING" if seen is None else "OPS_SAW_VALUE"
            fields["saw_value"] = c_data((seen or "").encode("utf-8"))
        if expect is None:
            pass  # a failure, a write or close
        elif op in ("get", "list", "history"):
            entries = [expect] if op == "get" else expect
            items = [self.entry(e, step) for e in entries]
            fields["entries"], fields["n_entries"] = self.array("ops_entry", items)
        elif op == "keys":
            keys = [c_data(key.encode("utf-8")) for key in expect]
            fields["keys"], fields["n_keys"] = self.array("ops_bytes", keys)
        else:
            fields["number"] = self.rev(expect)
        if "as" in step:  # after the step's own references, which name earlier writes
            self.slots[step["as"]] = len(self.slots) + 1
            fields["as"] = str(self.slots[step["as"]])
        return "{" + ", ".join(f".{name} = {value}" for name, value in fields.items()) + "}"

    def entry(self, entry: Dict[str, Any], step: Dict[str, Any]) -> str:
        key = entry.get("key", step.get("key")).encode("utf-8")
        return (
            f"{{{c_data(key)}, {c_data(value_of(entry))}, "
            f"{self.rev(entry['rev'])}, {c_text(entry['op'])}}}"
        )


def ops_vectors(vectors: Dict[str, Any]) -> List[str]:
    lines, scenarios, max_slots = [PREAMBLE], [], 0
    for index, scenario in enumerate(vectors["scenarios"]):
        generated = Scenario(index)
        steps = [generated.step(step) for step in scenario["steps"]]
        lines += generated.arrays
        lines.append(f"static const struct ops_step {generated.prefix}_STEPS[] = {{")
        lines += [f"    {step}," for step in steps]
        lines.append("};")
        config = json.dumps(scenario.get("config", {}), separators=(",", ":"))[1:-1]
        scenarios.append(
            f"    {{{c_text(scenario['name'])}, {c_text(',' + config if config else '')}, "
            f"{generated.prefix}_STEPS, {len(steps)}}},"
        )
        max_slots = max(max_slots, len(generated.slots))
    return lines + [
        "static const struct ops_scenario OPS_SCENARIOS[] = {",
        *scenarios,
        "};",
        "#define N_OPS_SCENARIOS (sizeof OPS_SCENARIOS / sizeof OPS_SCENARIOS[0])",
        f"#define OPS_MAX_SLOTS {max_slots}",
    ]


if __name__ == "__main__":
    write_include(sys.argv, "CKV_OPS_VECTORS_H", ops_vectors)
