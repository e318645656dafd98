"""The dependency rule, as a test: entrypoints -> adapters -> rag_core, never back,
and the core imports nothing outside the standard library and attrs."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
CORE_ALLOWED = {"attrs", "snowballstemmer", "rag_core"}


def imported_top_levels(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (SRC / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(SRC)))
    return found


def test_core_imports_only_stdlib_and_attrs() -> None:
    outside = {
        module: files
        for module, files in imported_top_levels("rag_core").items()
        if module not in sys.stdlib_module_names and module not in CORE_ALLOWED
    }
    assert outside == {}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("rag_core", {"adapters", "entrypoints"}), ("adapters", {"entrypoints"})],
)
def test_no_import_points_back_up_the_layers(package: str, forbidden: set[str]) -> None:
    imports = imported_top_levels(package)
    assert {m: imports[m] for m in forbidden if m in imports} == {}


def test_the_checker_sees_imports() -> None:
    # Guards the two tests above against passing vacuously.
    assert "attrs" in imported_top_levels("rag_core")
    assert "rag_core" in imported_top_levels("adapters")
