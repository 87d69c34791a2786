"""Import rules, enforced as tests (after asyncpg's tests/test__sourcecode.py)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IO_LIBRARIES = {
    "aiohttp",
    "aiokafka",
    "asyncpg",
    "faust",
    "mode",
    "redis",
    "socket",
    "requests",
    "urllib.request",
    "http.client",
    "subprocess",
    "os",
    "settings",
    "sinks",
    "streams",
    "ingress",
    "providers",
    "agents",
}
TOP_LEVEL = [
    "domain",
    "schemas",
    "streams",
    "agents",
    "tables",
    "ingress",
    "sinks",
    "providers",
    "stack",
    "bench",
    "settings",
    "cli",
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["domain", "schemas"])
def test_pure_packages_import_no_io(package: str) -> None:
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = {
            name
            for name in _imports(path)
            if any(name == lib or name.startswith(lib + ".") for lib in IO_LIBRARIES)
        }
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}, f"pure code imports IO libraries: {offenders}"


def test_only_settings_reads_the_environment() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".venv", "tests", "bench"} or rel.name == "settings.py":
            continue
        text = path.read_text(encoding="utf-8")
        if "os.environ" in text or "os.getenv" in text:
            offenders.append(str(rel))
    assert offenders == [], f"read the environment outside settings.py: {offenders}"


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_names_resolve_to_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    location = Path(module.__file__ or "").resolve()
    assert ROOT in location.parents, f"{name} resolves to {location}, not this repository"
