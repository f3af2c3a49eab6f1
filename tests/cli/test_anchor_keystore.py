"""The anchor key from an encrypted keystore file (TRACE_ANCHOR_KEYSTORE) with its passphrase from a file or
the environment: `trace anchor-key create` makes one and prints only the address, `trace worker --once`
anchors with it on a real Anvil, and every misconfiguration is a clear error naming the file, never the
passphrase or the key: a wrong passphrase, both a key and a keystore, no passphrase, and Anvil's public dev
key in a keystore on a chain other than 31337 (a real Anvil started with another chain id)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import SecretStr
from web3 import Web3

from factories import ID_BASE, lifecycle, seed_parties
from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.errors import ConfigurationError
from traceability.services.deploy import ensure_deployed
from traceability.services.events import record_event
from traceability.services.runtime import Runtime, anchor_account

PASSPHRASE = "ข้าวหอมมะลิ-สุรินทร์-2569"  # Thai, to make sure the file is read as UTF-8
OTHER_CHAIN = 31338
DEV_ADDRESS = Account.from_key(ANVIL_DEV_KEY).address


@pytest.fixture(scope="module")
def devnode() -> Iterator[AnvilNode]:
    """A node of its own (chain 31337): the dev account funds the new key without racing other tests."""
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="module")
def othernode() -> Iterator[AnvilNode]:
    """A chain that is not the development chain, as a production chain would be."""
    with AnvilNode(chain_id=OTHER_CHAIN) as node:
        yield node


def trace(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")} | env
    return subprocess.run(
        [sys.executable, "-m", "traceability.cli", *argv],
        env=clean,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def write_passphrase(path: Path, passphrase: str = PASSPHRASE) -> Path:
    path.write_text(passphrase + "\n", encoding="utf-8")  # secret files end with a newline
    return path


def light_keystore(path: Path, key: str, passphrase: str = PASSPHRASE) -> Path:
    """A keystore with a cheap KDF (pbkdf2, 1000 rounds): the same format, opened in milliseconds."""
    path.write_text(json.dumps(Account.encrypt(key, passphrase, kdf="pbkdf2", iterations=1000)))
    return path


def deploy_with_dev_key(node: AnvilNode) -> str:
    return TraceRegistry.deploy(
        Web3(Web3.HTTPProvider(node.rpc_url)), Account.from_key(ANVIL_DEV_KEY)
    ).address


def assert_no_secret(output: str, *secrets: str) -> None:
    for secret in secrets:
        bare = secret.removeprefix("0x")
        assert secret not in output and bare not in output and bare.upper() not in output, "a secret leaked"


def test_keystore_made_by_the_cli_anchors_with_worker_once(devnode, tmp_path):
    passfile = write_passphrase(tmp_path / "anchor-passphrase")
    keystore = tmp_path / "anchor-keystore.json"
    made = trace(
        "anchor-key", "create", "--out", str(keystore), TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE=str(passfile)
    )
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"0x[0-9a-fA-F]{40}", lines[0]), made.stdout
    address = Web3.to_checksum_address(lines[0])
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    key = "0x" + bytes(Account.decrypt(json.loads(keystore.read_text()), PASSPHRASE)).hex()
    assert Account.from_key(key).address == address
    assert_no_secret(made.stdout + made.stderr, key, PASSPHRASE)

    again = trace(
        "anchor-key", "create", "--out", str(keystore), TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE=str(passfile)
    )
    assert again.returncode == 2 and "never overwritten" in again.stderr, again.stderr
    assert Account.decrypt(json.loads(keystore.read_text()), PASSPHRASE) == bytes.fromhex(
        key[2:]
    )  # untouched

    # Fund the new key from a dev account, then deploy, enrol and record with it as the anchor key.
    w3 = Web3(Web3.HTTPProvider(devnode.rpc_url))
    funding = w3.eth.send_transaction({"from": DEV_ADDRESS, "to": address, "value": 10**19})
    assert w3.eth.wait_for_transaction_receipt(funding, timeout=60)["status"] == 1
    env = {
        "TRACE_VAR_DIR": str(tmp_path / "var"),
        "TRACE_RPC_URL": devnode.rpc_url,
        "TRACE_ANCHOR_KEYSTORE": str(keystore),
        "TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE": str(passfile),
    }
    settings = Settings(
        var_dir=tmp_path / "var",
        rpc_url=devnode.rpc_url,
        anchor_keystore=keystore,
        anchor_keystore_passphrase_file=passfile,
    )
    rt = Runtime(settings)
    try:
        assert rt.account.address == address
        rt.migrate()
        ensure_deployed(rt)
        assert rt.registry.has_role("anchorer", address)
        with rt.transaction() as session:
            seed_parties(session, rt.registry)
        with rt.transaction() as session:
            record_event(session, lifecycle()[0], id_base=ID_BASE)
    finally:
        rt.close()

    done = trace("worker", "--once", "--timeout", "120", TRACE_CONFIRMATIONS="0", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "anchored 1 events in 1 batches" in done.stdout
    db = sqlite3.connect(tmp_path / "var" / "trace.db")
    try:
        (tx_hash,) = db.execute("SELECT tx_hash FROM batches WHERE status = 'anchored'").fetchone()
    finally:
        db.close()
    assert w3.eth.get_transaction(tx_hash)["from"] == address  # the keystore's key signed the anchor
    checked = trace("reconcile", TRACE_CONFIRMATIONS="0", **env)
    assert checked.returncode == 0 and "reconcile: OK" in checked.stdout, checked.stdout + checked.stderr
    assert_no_secret(done.stdout + done.stderr + checked.stdout + checked.stderr, key, PASSPHRASE)


def test_wrong_passphrase_exits_non_zero_naming_the_file_not_the_passphrase(devnode, tmp_path):
    keystore = light_keystore(tmp_path / "anchor.json", Account.create().key.hex())
    wrong = "not-the-passphrase-ผิด"
    passfile = write_passphrase(tmp_path / "wrong", wrong)
    done = trace(
        "worker",
        "--once",
        TRACE_VAR_DIR=str(tmp_path / "var"),
        TRACE_RPC_URL=devnode.rpc_url,
        TRACE_CONTRACT_ADDRESS=deploy_with_dev_key(devnode),
        TRACE_ANCHOR_KEYSTORE=str(keystore),
        TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE=str(passfile),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("trace worker: error:")]
    assert len(errors) == 1 and f"wrong passphrase for the anchor keystore {keystore}" in errors[0], (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert_no_secret(done.stdout + done.stderr, wrong, PASSPHRASE)


def test_the_dev_key_in_a_keystore_is_refused_off_the_dev_chain(othernode, tmp_path):
    keystore = light_keystore(tmp_path / "dev.json", ANVIL_DEV_KEY)
    passfile = write_passphrase(tmp_path / "pass")
    done = trace(
        "worker",
        "--once",
        TRACE_VAR_DIR=str(tmp_path / "var"),
        TRACE_RPC_URL=othernode.rpc_url,
        TRACE_CONTRACT_ADDRESS=deploy_with_dev_key(othernode),
        TRACE_ANCHOR_KEYSTORE=str(keystore),
        TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE=str(passfile),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"refusing Anvil's public development key on chain {OTHER_CHAIN}" in done.stderr
    assert str(keystore) in done.stderr and "Traceback" not in done.stderr
    assert_no_secret(done.stdout + done.stderr, ANVIL_DEV_KEY, PASSPHRASE)
    # the same keystore is the dev chain's own key on 31337
    settings = Settings(anchor_keystore=keystore, anchor_keystore_passphrase_file=passfile)
    assert anchor_account(settings, 31337).address == DEV_ADDRESS


def test_keystore_settings_are_checked_one_by_one(tmp_path):
    key = Account.create().key.hex()
    keystore = light_keystore(tmp_path / "anchor.json", key)
    passfile = write_passphrase(tmp_path / "pass")

    def refused(match: str, **settings: object) -> str:
        with pytest.raises(ConfigurationError, match=match) as failure:
            anchor_account(Settings(**settings), 8453)
        message = failure.value.message
        assert_no_secret(message, key, PASSPHRASE)
        return message

    ok = Settings(anchor_keystore=keystore, anchor_keystore_passphrase=SecretStr(PASSPHRASE))
    assert anchor_account(ok, 8453).address == Account.from_key(key).address
    assert PASSPHRASE not in repr(ok) and PASSPHRASE not in str(ok.model_dump())
    crlf = tmp_path / "crlf"
    crlf.write_bytes(PASSPHRASE.encode() + b"\r\n")
    crlf_settings = Settings(anchor_keystore=keystore, anchor_keystore_passphrase_file=crlf)
    assert anchor_account(crlf_settings, 8453).address == Account.from_key(key).address

    refused(
        "both TRACE_ANCHOR_KEY and TRACE_ANCHOR_KEYSTORE",
        anchor_key=SecretStr(key),
        anchor_keystore=keystore,
        anchor_keystore_passphrase_file=passfile,
    )
    refused("TRACE_ANCHOR_KEYSTORE needs its passphrase", anchor_keystore=keystore)
    refused(
        "both TRACE_ANCHOR_KEYSTORE_PASSPHRASE and TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE",
        anchor_keystore=keystore,
        anchor_keystore_passphrase=SecretStr(PASSPHRASE),
        anchor_keystore_passphrase_file=passfile,
    )
    missing = tmp_path / "nowhere.json"
    assert str(missing) in refused(
        "cannot read the anchor keystore", anchor_keystore=missing, anchor_keystore_passphrase_file=passfile
    )
    refused(
        "cannot read TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE",
        anchor_keystore=keystore,
        anchor_keystore_passphrase_file=tmp_path / "no-passphrase",
    )
    junk = tmp_path / "junk.json"
    junk.write_text("not json at all")
    refused("is not a JSON keystore", anchor_keystore=junk, anchor_keystore_passphrase_file=passfile)
    junk.write_text('{"version": 3}')
    refused(
        "is not an Ethereum JSON keystore", anchor_keystore=junk, anchor_keystore_passphrase_file=passfile
    )
    lying = json.loads(keystore.read_text()) | {"address": DEV_ADDRESS[2:].lower()}
    junk.write_text(json.dumps(lying))
    refused("says address", anchor_keystore=junk, anchor_keystore_passphrase_file=passfile)
    message = refused(
        "wrong passphrase for the anchor keystore",
        anchor_keystore=keystore,
        anchor_keystore_passphrase=SecretStr("a wrong passphrase"),
    )
    assert str(keystore) in message and "a wrong passphrase" not in message
