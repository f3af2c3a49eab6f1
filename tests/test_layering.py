"""Imports point one way: domain → store/chain → services → api/web/workers/cli/main (STYLE.md).

The top layers (api, web, workers, cli, main.py) reach the database and the chain only through services:
they import no sqlalchemy, web3 or driver, and of the project only services, domain, config and errors (plus
the top-layer modules each one composes, e.g. main.py mounts api and web). The SQL session they hand to
services is named ``services.runtime.DbSession``; the offline ``trace verify --bundle`` gets its chain client
from ``services.runtime.trusted_registry``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "traceability"

DRIVERS = ("sqlalchemy", "alembic", "psycopg", "web3", "eth_account", "eth_abi", "requests")
TOP_LAYERS = ("traceability.api", "traceability.web", "traceability.workers", "traceability.cli")
TOP_BASE = ("traceability.services", "traceability.domain", "traceability.config", "traceability.errors")

FORBIDDEN: dict[str, tuple[str, ...]] = {
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
        *TOP_LAYERS,
        "traceability.main",
    ),
    "store": ("fastapi", "web3", "traceability.services", *TOP_LAYERS, "traceability.main"),
    "chain": (
        "sqlalchemy",
        "fastapi",
        "traceability.store",
        "traceability.services",
        *TOP_LAYERS,
        "traceability.main",
    ),
    "services": ("fastapi", "starlette", *TOP_LAYERS, "traceability.main"),
    "api": DRIVERS,
    "web": DRIVERS,
    "workers": DRIVERS,
    "cli.py": DRIVERS,
    "main.py": DRIVERS,
}
# The only project modules a top layer may import: any other traceability.* import is a violation.
ALLOWED: dict[str, tuple[str, ...]] = {
    "api": (*TOP_BASE, "traceability.api"),
    # the request-level pieces pages share with the API: dependencies and the rate limiter
    "web": (*TOP_BASE, "traceability.web", "traceability.api.deps", "traceability.api.ratelimit"),
    "workers": (*TOP_BASE, "traceability.workers"),
    # `trace serve` starts the app; `trace worker` runs the worker.
    "cli.py": (*TOP_BASE, "traceability.main", "traceability.workers"),
    "main.py": (*TOP_BASE, "traceability.api", "traceability.web"),
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = SRC) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against its package under ``root``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module:
                    names.add(node.module)
                continue
            package = _module_name(path, root).split(".")
            if path.name != "__init__.py":
                package.pop()
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                names.add(".".join([*base, node.module]))
            else:  # from . import x: each x may be a module
                names.update(".".join([*base, a.name]) for a in node.names)
    return names


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(root: Path = SRC) -> list[str]:
    found = []
    for layer, banned in FORBIDDEN.items():
        target = root / layer
        paths = [target] if target.is_file() else sorted(target.rglob("*.py"))
        allowed = ALLOWED.get(layer)
        for path in paths:
            for name in sorted(imports_of(path, root)):
                if _under(name, banned):
                    found.append(f"{path.relative_to(root)} imports {name}")
                elif allowed is not None and _under(name, ("traceability",)) and not _under(name, allowed):
                    found.append(f"{path.relative_to(root)} imports {name} (not a service)")
    return found


def test_layers_import_only_downwards():
    assert violations() == []


def test_every_layer_is_checked():
    """A new top-level package or module must be given a place in the rule, not slip past it."""
    unchecked = {
        p.name
        for p in SRC.iterdir()
        if ((p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py") and p.name not in FORBIDDEN
    }
    # config and errors sit under every layer; migrations are Alembic's scripts over the store.
    assert unchecked <= {"__init__.py", "config.py", "errors.py", "migrations"}


def test_the_checker_sees_imports(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("from sqlalchemy import select\nimport web3\n")
    assert {"sqlalchemy", "web3"} <= imports_of(bad, tmp_path)


def test_the_checker_flags_top_layers_and_relative_imports(tmp_path):
    root = tmp_path / "traceability"
    for layer in ("domain", "store", "chain", "services", "api", "web", "workers"):
        (root / layer).mkdir(parents=True)
        (root / layer / "__init__.py").write_text("")
    (root / "api" / "routes.py").write_text("from ..store import repository\nfrom sqlalchemy import select\n")
    (root / "workers" / "loop.py").write_text("from traceability.chain.registry import TraceRegistry\n")
    (root / "web" / "pages.py").write_text(
        "from ..services import ledger\nfrom . import i18n\nfrom ..chain import x\n"
    )
    (root / "cli.py").write_text("from traceability.store.database import transaction\n")
    (root / "main.py").write_text("from traceability.api import routes\nfrom sqlalchemy import text\n")
    assert violations(root) == [
        "api/routes.py imports sqlalchemy",
        "api/routes.py imports traceability.store (not a service)",
        "web/pages.py imports traceability.chain (not a service)",
        "workers/loop.py imports traceability.chain.registry (not a service)",
        "cli.py imports traceability.store.database (not a service)",
        "main.py imports sqlalchemy",
    ]
