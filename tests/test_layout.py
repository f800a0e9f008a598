"""The layout's promises, checked on the source: three paths over shared ground."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "invert"
MODULES = sorted(PACKAGE.rglob("*.py"))
SHARED = ("embedders", "stores", "data", "models", "training", "reporting", "configs")
PATHS = ("inversion", "memorization", "privacy")


def _imports(path: Path) -> list[ast.ImportFrom]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]


def test_the_top_level_holds_only_the_api_env_and_errors() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "api.py", "env.py", "errors.py"]


def test_no_module_imports_a_private_name_from_another() -> None:
    private = [
        f"{path.relative_to(PACKAGE)}: {node.module}.{alias.name}"
        for path in MODULES
        for node in _imports(path)
        if node.module.startswith("invert")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not private, f"private names imported across modules (make them public): {private}"


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}  # fmt: skip
    assert not long, f"modules over 400 lines (split them by job): {long}"


def test_shared_ground_imports_none_of_the_three_paths() -> None:
    upward = [
        f"{path.relative_to(PACKAGE)} -> {node.module}"
        for path in MODULES
        if path.relative_to(PACKAGE).parts[0] in SHARED
        for node in _imports(path)
        if node.module.split(".")[:2] in [["invert", p] for p in PATHS]
    ]
    assert not upward, upward


@pytest.mark.parametrize(("path_pkg", "other"), [("inversion", "memorization"),
                                                 ("memorization", "inversion"),
                                                 ("inversion", "privacy"),
                                                 ("memorization", "privacy")])  # fmt: skip
def test_paths_one_and_two_stand_alone(path_pkg: str, other: str) -> None:
    found = [
        f"{p.relative_to(PACKAGE)} -> {n.module}"
        for p in (PACKAGE / path_pkg).rglob("*.py")
        for n in _imports(p)
        if n.module.startswith(f"invert.{other}")
    ]
    assert not found, found
