"""Compile ``contracts/TraceRegistry.sol`` with the pinned solc (npm ``solc``, i.e. solcjs) through py-solc-x.

Developer tooling only: the application loads the committed artifact (:mod:`traceability.chain.artifacts`)
and never compiles at start. ``scripts/compile_contracts.py`` writes the artifact and
``tests/chain/test_artifact.py`` proves it equals a fresh compile.

solcjs has no ``--allow-paths``, so every imported source (OpenZeppelin from ``node_modules``) is read here,
following imports transitively, and passed inside the standard-JSON ``sources`` under the same source unit
names solc would give them (``@openzeppelin/contracts/...``). ``scripts/solc-wrapper`` makes solcjs answer
py-solc-x like a native solc. The metadata hash is left out of the bytecode (``bytecodeHash: none``) so the
output depends on nothing but the sources and these settings.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

from traceability.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS_DIR = ROOT / "contracts"
NODE_MODULES = ROOT / "node_modules"
SOLC_WRAPPER = ROOT / "scripts" / "solc-wrapper"

CONTRACT_NAME = "TraceRegistry"
CONTRACT_SOURCE = "contracts/TraceRegistry.sol"
SOLC_VERSION = "0.8.30"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.immutableReferences",
                "evm.methodIdentifiers",
            ]
        }
    },
}

# `import "x";`, `import {A, B} from "x";`, `import * as X from "x";`, `import "x" as X;`
_IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]*?\bfrom\s+)?["']([^"']+)["']""", re.MULTILINE)


def _resolve(unit: str, target: str) -> str:
    """The source unit name solc gives ``target`` imported from ``unit`` (relative if it starts with .)."""
    if target.startswith(("./", "../")):
        return posixpath.normpath(posixpath.join(posixpath.dirname(unit), target))
    return target


def _read_unit(unit: str) -> str:
    path = ROOT / unit if unit.startswith("contracts/") else NODE_MODULES / unit
    if not path.is_file():
        raise ConfigurationError(f"Solidity source {unit!r} not found at {path} (run `npm ci`)")
    return path.read_text(encoding="utf-8")


def collect_sources(entry: str = CONTRACT_SOURCE) -> dict[str, dict[str, str]]:
    """``entry`` and everything it imports, transitively, as standard-JSON ``sources`` (sorted by name)."""
    sources: dict[str, str] = {}
    pending = [entry]
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = _read_unit(unit)
        sources[unit] = text
        pending.extend(_resolve(unit, target) for target in _IMPORT.findall(text))
    return {name: {"content": sources[name]} for name in sorted(sources)}


def standard_json_input() -> dict[str, Any]:
    return {"language": "Solidity", "sources": collect_sources(), "settings": SETTINGS}


def _openzeppelin_version() -> str:
    package = json.loads((NODE_MODULES / "@openzeppelin" / "contracts" / "package.json").read_text("utf-8"))
    return str(package["version"])


def compile_registry() -> dict[str, Any]:
    """Compile TraceRegistry; the artifact as written to ``chain/artifacts/TraceRegistry.json``.

    Keys: ``contractName``, ``sourceName``, ``abi``, ``bytecode`` and ``deployedBytecode`` (0x hex),
    ``immutableReferences`` (where the runtime code holds immutables, which the constructor fills in and the
    artifact leaves zero: ``{ast id: [{"start": byte offset, "length": n}]}``), ``methodIdentifiers`` and
    ``compiler`` (version, OpenZeppelin version, settings).
    """
    # Imported here: compiling is developer tooling and stays out of the application's import graph.
    import solcx
    from solcx.exceptions import SolcError
    from solcx.wrapper import get_solc_version

    if not SOLC_WRAPPER.exists():
        raise ConfigurationError(f"{SOLC_WRAPPER} is missing")
    try:
        version = str(get_solc_version(SOLC_WRAPPER, with_commit_hash=True))
        output = solcx.compile_standard(standard_json_input(), solc_binary=SOLC_WRAPPER)
    except SolcError as exc:
        raise ConfigurationError(f"solc failed: {exc}") from exc
    if not version.startswith(SOLC_VERSION + "+"):
        raise ConfigurationError(f"expected solc {SOLC_VERSION}, the wrapper runs {version}")
    # Our own source compiles without warnings; OpenZeppelin's are not ours to fix.
    own = [
        e["formattedMessage"]
        for e in output.get("errors", [])
        if e.get("sourceLocation", {}).get("file", "").startswith("contracts/")
    ]
    if own:
        raise ConfigurationError("solc warnings in contracts/:\n" + "\n".join(own))
    contract = output["contracts"][CONTRACT_SOURCE][CONTRACT_NAME]
    settings = {k: v for k, v in SETTINGS.items() if k != "outputSelection"}
    return {
        "contractName": CONTRACT_NAME,
        "sourceName": CONTRACT_SOURCE,
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
        "immutableReferences": contract["evm"]["deployedBytecode"].get("immutableReferences", {}),
        "methodIdentifiers": contract["evm"]["methodIdentifiers"],
        "compiler": {
            "name": "solc",
            "version": version,
            "openzeppelin": _openzeppelin_version(),
            "settings": settings,
        },
    }


def dump_artifact(artifact: dict[str, Any]) -> str:
    """The artifact's canonical text (stable key order, trailing newline) so recompiles diff cleanly."""
    return json.dumps(artifact, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
