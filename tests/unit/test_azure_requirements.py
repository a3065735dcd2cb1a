"""requirements.txt holds exactly the distributions the deployed code imports.

The imports are read from the source (`ast`, so imports inside functions count) of what the
Function App ships: function_app.py, functions/ and shared/. Each is mapped to the installed
distribution that owns the module's files.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"shared", "functions", "function_app", "tests"}
# Imported only by `mlgov demo`, which needs the full mlflow package anyway (its SQLite store):
# requirements-dev.txt brings them; the deployed app never runs the demo.
DEMO_ONLY = {"numpy", "sklearn"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _shipped_sources() -> list[Path]:
    return [
        ROOT / "function_app.py",
        *sorted((ROOT / "functions").rglob("*.py")),
        *sorted((ROOT / "shared").rglob("*.py")),
    ]


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for path in _shipped_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    third_party = set()
    for name in found:
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in OURS or top in DEMO_ONLY:
            continue
        # Namespace packages (azure.*, azure.ai.*, azureml.*) are owned per sub-package.
        depth = 3 if name.startswith("azure.ai.") else 2 if top in {"azure", "azureml"} else 1
        third_party.add(".".join(name.split(".")[:depth]))
    return third_party


def _owners() -> dict[str, set[str]]:
    owners: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        name = _canonical(dist.metadata["Name"])
        for file in dist.files or []:
            owners.setdefault(str(file), set()).add(name)
    return owners


def _owners_of(module: str, owners: dict[str, set[str]]) -> set[str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"{module} is imported but not installed"
    origin = spec.origin or next(iter(spec.submodule_search_locations or []))
    path = Path(origin)
    site = next(p for p in path.parents if p.name in {"site-packages", "dist-packages"})
    return owners.get(str(path.relative_to(site)), set())


def _required() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_canonical(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]))
    return names


def test_every_import_is_required_and_every_requirement_imported() -> None:
    required = _required()
    owners = _owners()
    used: set[str] = set()
    for module in sorted(_imported_modules()):
        owning = _owners_of(module, owners) & required
        assert owning, f"{module} is imported but no requirement provides it"
        used |= owning
    assert required - used == set(), "required but never imported"


def test_requirements_are_pinned() -> None:
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+]+", line), line
