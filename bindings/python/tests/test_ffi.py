"""coordkv/_ffi.py against include/coordkv.h: every function declared, with the
header's arity and void-ness, and every constant with the header's value."""

from __future__ import annotations

import re
from typing import Dict, List, Tuple

import pytest

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
