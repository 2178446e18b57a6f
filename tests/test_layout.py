"""The packages import one way: web → {bot, shops} → segments → {recovery, crm} → {catalog, channel} → {models, core}.

A lower package importing a higher one (``channel`` importing ``bot``, ``recovery`` importing ``crm``…) fails here,
with the file and the import, whether the import is at the top of the module or inside a function.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

LAYERS = [
    {"core", "models"},
    {"channel", "catalog"},
    {"recovery", "crm"},
    {"segments"},  # reads the CRM's figures (crm.metrics); the actions over segments will drive crm and channel
    {"bot", "shops"},
    {"web"},
]
LEVEL = {package: level for level, packages in enumerate(LAYERS) for package in packages}
# Packages of one layer that may not import each other: the recoverer and the CRM know nothing of each other, nor
# the transport and the catalog.
PEERS_APART = {frozenset({"recovery", "crm"}), frozenset({"channel", "catalog"}), frozenset({"bot", "shops"})}
# The bottom layer is one toolbox: core's runtime builds the models' Database, models use core's phones and hashing.
SHARED_BOTTOM = {"core", "models"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_no_package_imports_a_higher_one():
    wrong = []
    for package in LEVEL:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            for line, module in _imports(path):
                target = module.split(".")[0]
                if target not in LEVEL or target == package:
                    continue
                if package in SHARED_BOTTOM and target in SHARED_BOTTOM:
                    continue
                upward = LEVEL[target] > LEVEL[package]
                sideways = LEVEL[target] == LEVEL[package] and frozenset({package, target}) in PEERS_APART
                if upward or sideways:
                    wrong.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}")
    assert wrong == []


def test_the_channel_imports_no_feature_package():
    allowed = {"channel", "core", "models"}
    for path in sorted((PROJECT_ROOT / "channel").rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            assert top not in LEVEL or top in allowed, f"{path.name}:{line} imports {module}"


def test_every_periodic_job_names_a_function_that_exists():
    """The scheduler's table is data (dotted paths RQ resolves): each must resolve, so a move cannot orphan one."""
    from core.schedule import periodic_jobs
    from core.runtime import Runtime
    from core.settings import Settings

    for job in periodic_jobs(Runtime(Settings.from_env({"APP_ENV": "test"}))):
        module, _, name = job.func.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), job.func


@pytest.mark.parametrize("package", sorted(LEVEL))
def test_each_package_says_what_it_is_for(package):
    init = PROJECT_ROOT / package / "__init__.py"
    assert init.exists() and ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), package
