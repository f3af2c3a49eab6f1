"""Imports point one way: domain → store/chain → services → api/web/workers/cli (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "traceability"
FORBIDDEN = {
    "domain": (
        "sqlalchemy",
        "fastapi",
        "web3",
        "traceability.store",
        "traceability.chain",
        "traceability.services",
        "alembic",
        "psycopg",
        "requests",
    ),
    "store": ("fastapi", "web3", "traceability.services", "traceability.api", "traceability.web"),
    "chain": ("sqlalchemy", "fastapi", "traceability.store", "traceability.services"),
    "services": (
        "fastapi",
        "traceability.api",
        "traceability.web",
        "traceability.workers",
        "traceability.cli",
    ),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_layers_import_only_downwards():
    violations = []
    for layer, banned in FORBIDDEN.items():
        for path in sorted((SRC / layer).rglob("*.py")):
            for name in imports_of(path):
                if any(name == b or name.startswith(b + ".") for b in banned):
                    violations.append(f"{path.relative_to(SRC)} imports {name}")
    assert violations == []


def test_the_checker_sees_imports(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("from sqlalchemy import select\nimport web3\n")
    assert {"sqlalchemy", "web3"} <= imports_of(bad)
