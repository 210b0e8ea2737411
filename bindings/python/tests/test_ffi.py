"""coordkv/_ffi.py against include/coordkv.h: every function declared, with the
header's arity and void-ness, every constant with the header's value, and every group of
codes (statuses, event kinds, cancel reasons, operations) matching the binding's classes
and enums, under the names the library gives them."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Tuple

import pytest

import coordkv
from coordkv import _ffi

from conftest import HEADER


def header_text() -> str:
    text = HEADER.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def header_functions() -> Dict[str, Tuple[bool, List[str]]]:
    """name -> (returns void, parameter list) for every function prototype."""
    functions = {}
    pattern = re.compile(r"([\w\s\*]+?)\b(ckv_\w+)\(([^()]*)\);")
    for match in pattern.finditer(header_text()):
        returns, name, parameters = match.groups()
        params = [p.strip() for p in parameters.split(",") if p.strip()]
        if params == ["void"]:
            params = []
        functions[name] = (returns.split()[-1] == "void", params)
    return functions


def header_constants() -> Dict[str, int]:
    return {
        name: int(value)
        for name, value in re.findall(r"#define (CKV_\w+) (\d+)", header_text())
    }


def test_the_header_parses_into_functions_and_constants() -> None:
    assert "ckv_open" in header_functions()
    assert "ckv_read_modify_write" in header_functions()
    assert header_constants()["CKV_OK"] == 0


@pytest.mark.parametrize("name", sorted(header_functions()))
def test_every_header_function_is_declared_with_its_arity(name: str) -> None:
    returns_void, params = header_functions()[name]
    function = getattr(_ffi.lib, name)
    assert function.argtypes is not None, f"{name} has no argtypes"
    assert len(function.argtypes) == len(params), params
    assert (function.restype is None) == returns_void


@pytest.mark.parametrize("name", sorted(header_constants()))
def test_every_header_constant_has_its_value(name: str) -> None:
    assert getattr(_ffi, name) == header_constants()[name]


# The vocabulary: each group of constants in the header, the binding's table for it, and
# the library's own names. A constant added to the header without its member here (or
# the other way round), or a name that differs from the library's, fails the suite.
NAMED_GROUPS = [
    ("CKV_EVENT_", coordkv.EventKind, "ckv_event_kind_name"),
    ("CKV_CANCEL_", coordkv.CancelReason, "ckv_cancel_reason_name"),
    ("CKV_OP_", coordkv.Operation, "ckv_operation_name"),
]


def header_group(prefix: str) -> Dict[str, int]:
    return {
        name[len(prefix) :]: value
        for name, value in header_constants().items()
        if name.startswith(prefix)
    }


@pytest.mark.parametrize(
    "prefix, enum, name_function", NAMED_GROUPS, ids=[g[0] for g in NAMED_GROUPS]
)
def test_each_enum_is_its_header_group_named_by_the_library(
    prefix: str, enum: Any, name_function: str
) -> None:
    assert {member.name: member.value for member in enum} == header_group(prefix)
    library_name = getattr(_ffi.lib, name_function)
    for member in enum:
        assert library_name(member.value) == member.name.encode("ascii")
    assert library_name(0) == b"UNKNOWN"


def test_the_error_classes_are_the_header_statuses_named_by_the_library() -> None:
    groups = tuple(prefix for prefix, _, _ in NAMED_GROUPS)
    statuses = {
        name[len("CKV_") :]: value
        for name, value in header_constants().items()
        if not name.startswith(groups)
    }
    for name, value in statuses.items():
        assert _ffi.lib.ckv_status_name(value) == name.encode("ascii")
    assert {cls.status for cls in coordkv.ERROR_CLASSES} | {_ffi.CKV_OK} == set(
        statuses.values()
    )
