"""Load the compiled contract artifacts shipped in the package (``chain/artifacts/*.json``).

They are written by ``scripts/compile_contracts.py`` with the pinned compiler and committed, so the
application never compiles at start; ``tests/chain/test_artifact.py`` proves they equal a fresh compile.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from traceability.errors import ConfigurationError

ARTIFACTS_DIR = Path(__file__).resolve().with_name("artifacts")


def artifact_path(name: str) -> Path:
    return ARTIFACTS_DIR / f"{name}.json"


@cache
def _load(name: str) -> str:
    path = artifact_path(name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"contract artifact {path} missing: run `make compile-contracts`") from None


def load_artifact(name: str = "TraceRegistry") -> dict[str, Any]:
    """The artifact ``name`` (abi, bytecode, deployedBytecode, compiler...); a fresh copy on each call."""
    data: dict[str, Any] = json.loads(_load(name))
    return data
