"""The committed contract artifact is exactly what the pinned compiler makes of the sources today."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from traceability.chain.artifacts import artifact_path, load_artifact
from traceability.chain.compile import (
    SOLC_VERSION,
    SOLC_WRAPPER,
    collect_sources,
    compile_registry,
    dump_artifact,
)


@pytest.fixture(scope="module")
def fresh() -> dict[str, Any]:
    return compile_registry()  # about 4 s with solcjs


def test_fresh_compile_equals_committed_artifact(fresh: dict[str, Any]) -> None:
    committed = load_artifact("TraceRegistry")
    assert fresh["abi"] == committed["abi"]
    assert fresh["bytecode"] == committed["bytecode"]
    assert fresh["deployedBytecode"] == committed["deployedBytecode"]
    assert fresh["immutableReferences"] == committed["immutableReferences"]
    # Byte for byte, so `make compile-contracts` on a clean tree leaves no diff.
    assert dump_artifact(fresh) == artifact_path("TraceRegistry").read_text(encoding="utf-8")


def test_artifact_records_the_pinned_toolchain() -> None:
    compiler = load_artifact()["compiler"]
    assert compiler["version"].startswith(SOLC_VERSION + "+commit.")
    assert compiler["openzeppelin"] == "5.4.0"
    assert compiler["settings"] == {
        "evmVersion": "cancun",
        "metadata": {"bytecodeHash": "none"},
        "optimizer": {"enabled": True, "runs": 200},
    }


def test_abi_has_the_interface_the_client_uses() -> None:
    abi = load_artifact()["abi"]
    names = {item.get("name") for item in abi}
    for name in (
        "anchor", "anchoredAt", "verifyEvent", "addAuthority", "proposeAuthorityAdmin",
        "acceptAuthorityAdmin", "authorityAdmin", "authorityAdminSince", "authorityAddedAt",
        "pendingAuthorityAdmin", "addOfficer", "revokeOfficer", "officerStatus", "isOfficerAt", "certify",
        "cancelNonce", "revoke", "isValid", "certificationOf", "nonces", "beginDefaultAdminTransfer",
        "acceptDefaultAdminTransfer", "Anchored", "Certified", "Revoked", "NonceCancelled",
        "AuthorityAdminProposed", "NotAnOfficer", "InvalidAccountNonce", "RevocationBeforeValidFrom",
        "NotPendingAuthorityAdmin",
    ):  # fmt: skip
        assert name in names, name
    assert "setAuthorityAdmin" not in names  # one-step takeover of an authority: removed
    assert all(item["type"] != "error" or item["name"][0].isupper() for item in abi)


def test_immutable_references_point_at_zeroed_words_of_the_runtime_code() -> None:
    artifact = load_artifact()
    runtime = bytes.fromhex(artifact["deployedBytecode"][2:])
    ranges = [r for refs in artifact["immutableReferences"].values() for r in refs]
    # OpenZeppelin's EIP712: cached domain separator, chain id and address, hashed name and version, and
    # the name and version as short strings.
    assert len(ranges) == 7
    for r in ranges:
        assert r["length"] == 32 and r["start"] + r["length"] <= len(runtime)
        assert runtime[r["start"] : r["start"] + r["length"]] == bytes(32)


def test_load_artifact_returns_a_fresh_copy() -> None:
    first = load_artifact()
    first["abi"].clear()
    assert load_artifact()["abi"]


def test_openzeppelin_sources_are_resolved_transitively() -> None:
    sources = collect_sources()
    assert "contracts/TraceRegistry.sol" in sources
    # Imported indirectly (EIP712 -> MessageHashUtils -> Strings -> math/Math) under solc's own unit names.
    assert "@openzeppelin/contracts/utils/math/Math.sol" in sources
    assert not any(".." in name or name.startswith("/") for name in sources)


def test_wrapper_answers_like_native_solc() -> None:
    out = subprocess.run([str(SOLC_WRAPPER), "--version"], capture_output=True, text=True, check=True).stdout
    assert re.search(rf"{re.escape(SOLC_VERSION)}\+commit\.\w+", out)
    unknown = subprocess.run([str(SOLC_WRAPPER), "--bin", "x.sol"], capture_output=True, text=True)
    assert unknown.returncode == 2
