"""coordkv/_ffi.py against include/coordkv.h: every function declared, with the
header's arity, void-ness and parameter and result types, every struct with the header's
fields in the header's order and types, every callback type with the header's signature,
every constant with the header's value, and every group of codes (statuses, event kinds,
cancel reasons, operations) matching the binding's classes and enums, under the names
the library gives them."""

from __future__ import annotations

import ctypes
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


def header_results() -> Dict[str, str]:
    """name -> result type for every function prototype (which starts on its own line)."""
    pattern = re.compile(r"([\w\s\*]+?)\b(ckv_\w+)\(([^()]*)\);")
    return {
        name: returns.strip().splitlines()[-1].strip()
        for returns, name, _ in pattern.findall(header_text())
    }


def header_structs() -> Dict[str, List[str]]:
    """name -> its fields ("type name"), in order, for every struct with a body."""
    structs = {}
    pattern = re.compile(r"typedef struct (ckv_\w+) \{(.*?)\} \1;", re.S)
    for name, body in pattern.findall(header_text()):
        structs[name] = [f.strip() for f in body.split(";") if f.strip()]
    return structs


def header_callbacks() -> Dict[str, Tuple[str, List[str]]]:
    """name -> (result type, parameter list) for every function pointer typedef."""
    callbacks = {}
    pattern = re.compile(r"typedef ([\w\s\*]+?)\s*\(\*(ckv_\w+)\)\(([^()]*)\);")
    for returns, name, parameters in pattern.findall(header_text()):
        params = [" ".join(p.split()) for p in parameters.split(",") if p.strip()]
        callbacks[name] = (returns.strip(), params)
    return callbacks


_SCALARS = {
    "bool": ctypes.c_bool,
    "uint64_t": ctypes.c_uint64,
    "int64_t": ctypes.c_int64,
    "size_t": ctypes.c_size_t,
    "int32_t": ctypes.c_int32,
    "ckv_status": ctypes.c_int32,
    "ckv_operation": ctypes.c_int32,
    "ckv_event_type": ctypes.c_int32,
    "ckv_cancel_reason": ctypes.c_int32,
}


def split_declaration(declaration: str) -> Tuple[str, str]:
    """"const struct ckv_entry *entry" -> ("const struct ckv_entry *", "entry")."""
    match = re.fullmatch(r"(.*?)(\w+)", " ".join(declaration.split()))
    assert match, declaration
    return match.group(1).strip(), match.group(2)


def check_type(c_type: str, declared: Any, where: str) -> None:
    """The ctypes type `declared` carries the C type `c_type` faithfully.

    Byte buffers (char, uint8_t) may be c_char_p or c_void_p (see _ffi's docstring), an
    opaque `void *` is c_void_p, function pointers are their _ffi CFUNCTYPE, and every
    other pointer is POINTER(...) of exactly what it points to."""
    words = c_type.replace("*", " * ").split()
    stars = words.count("*")
    base = [w for w in words if w not in ("const", "struct", "*")]
    assert len(base) == 1, f"{where}: cannot read {c_type!r}"
    name = base[0]
    if name.endswith("_fn"):
        assert stars == 0 and declared is getattr(_ffi, name), f"{where}: {c_type}"
        return
    if stars == 1 and name in ("char", "uint8_t"):
        assert declared in (ctypes.c_char_p, ctypes.c_void_p), f"{where}: {c_type}"
        return
    if stars == 1 and name == "void":
        assert declared is ctypes.c_void_p, f"{where}: {c_type}"
        return
    expected = _SCALARS.get(name) or getattr(_ffi, name)
    for _ in range(stars):
        expected = ctypes.POINTER(expected)
    assert declared is expected, f"{where}: {c_type} is declared as {declared}"


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


@pytest.mark.parametrize("name", sorted(header_functions()))
def test_every_header_function_has_its_types(name: str) -> None:
    returns_void, params = header_functions()[name]
    function = getattr(_ffi.lib, name)
    for index, param in enumerate(params):
        c_type, _ = split_declaration(param)
        check_type(c_type, function.argtypes[index], f"{name} parameter {index}")
    if not returns_void:
        check_type(header_results()[name], function.restype, f"{name} result")


def test_the_header_parses_into_structs_and_callbacks() -> None:
    assert "ckv_write_options" in header_structs()
    assert "ckv_lease_lost_fn" in header_callbacks()


@pytest.mark.parametrize("name", sorted(header_structs()))
def test_every_header_struct_has_its_fields_in_order(name: str) -> None:
    fields = [split_declaration(field) for field in header_structs()[name]]
    declared = getattr(_ffi, name)._fields_
    assert [n for _, n in fields] == [n for n, _ in declared]
    for (c_type, field), (_, ctype) in zip(fields, declared):
        check_type(c_type, ctype, f"{name}.{field}")


@pytest.mark.parametrize("name", sorted(header_callbacks()))
def test_every_header_callback_type_has_its_signature(name: str) -> None:
    returns, params = header_callbacks()[name]
    declared = getattr(_ffi, name)
    if returns == "void":
        assert declared._restype_ is None
    else:
        check_type(returns, declared._restype_, f"{name} result")
    assert len(declared._argtypes_) == len(params), params
    for index, param in enumerate(params):
        c_type, _ = split_declaration(param)
        check_type(c_type, declared._argtypes_[index], f"{name} parameter {index}")


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
