"""The dependency rule, as a test: entrypoints -> adapters -> rag_core, never back,
and the core imports nothing outside the standard library and attrs.

The testing kit is in two halves: ``rag_core.testing`` (a fake clock, an id generator)
is as pure as the rest of the core; the contract suites, ``adapters.testing.contracts``,
are the one place that imports pytest. Nothing outside the kit imports it, so the core,
the adapters and the entrypoints never pull pytest in."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
CORE_ALLOWED = {"attrs", "snowballstemmer", "rag_core"}
KIT = "rag_core/testing"
KIT_CONTRACTS = "adapters/testing/contracts"
KIT_ALLOWED = CORE_ALLOWED | {"pytest"}
KIT_MODULES = ("rag_core.testing", "adapters.testing")


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module imported by a file under ``package``: full name -> files."""
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
                found.setdefault(name, set()).add(path.relative_to(SRC).as_posix())
    return found


def imported_top_levels(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module, files in imported_modules(package).items():
        found.setdefault(module.split(".")[0], set()).update(files)
    return found


def outside_the_kit(files: set[str], kit: str = KIT) -> set[str]:
    return {f for f in files if not f.startswith(f"{kit}/")}


def test_core_imports_only_stdlib_and_attrs() -> None:
    # The whole core, its testing half included: no pytest, no vendor.
    outside = {
        module: files
        for module, files in imported_top_levels("rag_core").items()
        if module not in sys.stdlib_module_names and module not in CORE_ALLOWED
    }
    assert outside == {}


def test_the_contract_suites_import_only_the_core_and_pytest() -> None:
    outside = {
        module: files
        for module, files in imported_top_levels(KIT_CONTRACTS).items()
        if module not in sys.stdlib_module_names and module not in KIT_ALLOWED
    }
    assert outside == {}
    pytest_users = imported_top_levels("adapters").get("pytest", set())
    assert outside_the_kit(pytest_users, KIT_CONTRACTS) == set()


@pytest.mark.parametrize("package", ["rag_core", "adapters", "entrypoints"])
def test_nothing_but_tests_imports_the_testing_kit(package: str) -> None:
    importers = {
        module: {f for f in files if not f.startswith(("rag_core/testing/", "adapters/testing/"))}
        for module, files in imported_modules(package).items()
        if any(module == kit or module.startswith(f"{kit}.") for kit in KIT_MODULES)
    }
    assert {module: files for module, files in importers.items() if files} == {}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("rag_core", {"adapters", "entrypoints"}), ("adapters", {"entrypoints"})],
)
def test_no_import_points_back_up_the_layers(package: str, forbidden: set[str]) -> None:
    imports = imported_top_levels(package)
    assert {m: imports[m] for m in forbidden if m in imports} == {}


def test_the_checker_sees_imports() -> None:
    # Guards the tests above against passing vacuously.
    assert "attrs" in imported_top_levels("rag_core")
    assert "rag_core" in imported_top_levels("adapters")
    assert "pytest" in imported_top_levels(KIT_CONTRACTS)
    assert "rag_core.testing" in imported_modules(KIT_CONTRACTS)
    assert outside_the_kit({f"{KIT}/clock.py", "rag_core/ports.py"}) == {"rag_core/ports.py"}
