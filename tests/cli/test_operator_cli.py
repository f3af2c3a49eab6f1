"""The operator commands end to end on SQLite and a real Anvil: `trace authority add`, `trace officer add` and
`trace officer revoke`. What the commands claim is checked where it lands: on chain through a TraceRegistry
client of the test's own, and in the database through the services."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from argon2 import PasswordHasher
from eth_account import Account
from pydantic import SecretStr
from sqlalchemy import select

from factories import AUTHORITY_ADMIN_KEY, ID_BASE, days_ago, q
from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry, authority_id
from traceability.cli import main
from traceability.config import ANVIL_DEV_KEY, ANVIL_DEV_KEYS, Settings
from traceability.domain.events import Harvest, Place, Planting
from traceability.domain.states import ChainOpKind, PartyStatus
from traceability.errors import ConfigurationError, Forbidden
from traceability.services.certify import certify_lot
from traceability.services.events import record_event
from traceability.services.parties import authority_by_code, enrol_farmer, enrol_plot, unlock_officer_key
from traceability.services.parties import officer as find_officer
from traceability.services.runtime import Runtime, registrar_account
from traceability.store import models
from traceability.store.database import transaction

ADMIN = Account.from_key(AUTHORITY_ADMIN_KEY).address
# Anvil's dev account #2: a valid key that administers none of these authorities.
OTHER_KEY = sorted(ANVIL_DEV_KEYS - {ANVIL_DEV_KEY, AUTHORITY_ADMIN_KEY})[0]
PASSWORD = "officer-login-ลับมาก"
PASSPHRASE = "ลายมือชื่อ-ทดสอบ-ปฏิบัติการ-2026"


@pytest.fixture(scope="module")
def settings(anvil, tmp_path_factory) -> Settings:
    var = tmp_path_factory.mktemp("var")
    out = io.StringIO()
    settings = Settings(var_dir=var, rpc_url=anvil.rpc_url, confirmations=0)
    with contextlib.redirect_stdout(out):
        assert main(["migrate"], settings=settings) == 0
        assert main(["deploy"], settings=settings) == 0
    return settings


@pytest.fixture(scope="module")
def rt(settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def registry(rt) -> TraceRegistry:
    """A read-only client of the deployed registry: what the chain says, independent of the commands."""
    return TraceRegistry(rt.w3, rt.registry.address)


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    paths = {
        "admin_key": tmp_path / "admin.key",
        "other_key": tmp_path / "other.key",
        "password": tmp_path / "password",
        "passphrase": tmp_path / "passphrase",
    }
    paths["admin_key"].write_text(AUTHORITY_ADMIN_KEY + "\n")
    paths["other_key"].write_text(OTHER_KEY + "\n")
    paths["password"].write_text(PASSWORD + "\n")
    paths["passphrase"].write_text(PASSPHRASE + "\n")
    for path in paths.values():
        path.chmod(0o600)
    return {name: str(path) for name, path in paths.items()}


def run(settings: Settings, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), settings=settings)
    out = capsys.readouterr()
    return code, out.out, out.err


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12].upper()}"


def add_authority(settings: Settings, capsys, code: str, *extra: str) -> tuple[int, str, str]:
    return run(
        settings,
        capsys,
        "authority",
        "add",
        code,
        "--name-th",
        "องค์การบริหารส่วนตำบลทดสอบ",
        "--name-en",
        "Thot Sop SAO",
        "--district-th",
        "อำเภอจอมพระ",
        "--province-th",
        "จังหวัดสุรินทร์",
        *extra,
    )


def add_officer(settings: Settings, capsys, files, username: str, code: str, *extra: str) -> dict[str, Any]:
    rc, out, err = run(
        settings,
        capsys,
        "officer",
        "add",
        username,
        "--authority",
        code,
        "--display-name",
        "นางสาวสมศรี ตรวจสอบ",
        "--admin-key-file",
        files["admin_key"],
        "--password-file",
        files["password"],
        "--passphrase-file",
        files["passphrase"],
        "--json",
        *extra,
    )
    assert rc == 0, err
    assert PASSWORD not in out + err and PASSPHRASE not in out + err
    return dict(json.loads(out))


def officer_row(rt: Runtime, username: str) -> models.Officer:
    with transaction(rt.sessions) as s:
        return find_officer(s, username)


def revoke_ops(rt: Runtime, address: str) -> list[models.ChainOp]:
    with transaction(rt.sessions) as s:
        return list(
            s.scalars(
                select(models.ChainOp).where(
                    models.ChainOp.kind == ChainOpKind.REVOKE_OFFICER, models.ChainOp.subject == address
                )
            )
        )


def chain_now(rt: Runtime) -> int:
    return int(rt.w3.eth.get_block("latest")["timestamp"])


def iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


# ------------------------------------------------------------------ trace authority add


def test_authority_add_registers_on_chain_and_refuses_a_duplicate(settings, rt, registry, capsys):
    code = unique("LAO-OPS")
    rc, out, err = add_authority(settings, capsys, code, "--admin", ADMIN.lower(), "--json")
    assert rc == 0, err
    made = json.loads(out)
    assert made["code"] == code and made["admin"] == ADMIN and made["status"] == PartyStatus.ACTIVE
    assert registry.authority_admin(authority_id(code)) == ADMIN
    with transaction(rt.sessions) as s:
        row = authority_by_code(s, code)
        assert (row.status, row.name_en, row.admin_address) == (PartyStatus.ACTIVE, "Thot Sop SAO", ADMIN)

    rc, out, err = add_authority(settings, capsys, code, "--admin", ADMIN)
    assert rc == 2 and out == ""
    assert err.startswith(f"trace authority add: error: authority {code} already exists")


def test_authority_add_refuses_a_bad_address_and_a_bad_code(settings, rt, registry, capsys):
    code = unique("LAO-BAD")
    for bad in ("0x1234", "not-an-address", "0x" + "00" * 20):
        rc, _, err = add_authority(settings, capsys, code, "--admin", bad)
        assert rc == 2 and err.startswith("trace authority add: error: --admin is not an address"), err
    rc, _, err = add_authority(settings, capsys, "ไม่ใช่รหัส", "--admin", ADMIN)
    assert rc == 2 and "trace authority add: error: authority code" in err
    assert registry.authority_admin(authority_id(code)) is None
    with transaction(rt.sessions) as s, pytest.raises(Exception, match="unknown authority"):
        authority_by_code(s, code)


def test_authority_add_refuses_a_registrar_key_without_the_role(settings, registry, capsys):
    code = unique("LAO-NOROLE")
    wrong = settings.model_copy(update={"registrar_key": SecretStr(OTHER_KEY)})
    rc, _, err = add_authority(wrong, capsys, code, "--admin", ADMIN)
    assert rc == 2 and "does not hold REGISTRAR_ROLE" in err
    assert OTHER_KEY[2:] not in err  # the key itself is never printed
    assert registry.authority_admin(authority_id(code)) is None


def test_registrar_key_rules():
    anchor = Account.create()
    on_dev = Settings(registrar_key=None)
    assert registrar_account(on_dev, 31337, anchor) is anchor  # the dev chain: the anchor key by default
    with pytest.raises(ConfigurationError, match="TRACE_REGISTRAR_KEY is required on chain 10"):
        registrar_account(Settings(registrar_key=None), 10, anchor)
    same = Settings(registrar_key=SecretStr(anchor.key.hex()))
    with pytest.raises(ConfigurationError, match="is the anchor key"):
        registrar_account(same, 10, anchor)
    assert registrar_account(same, 31337, anchor).address == anchor.address
    with pytest.raises(ConfigurationError, match="public development key"):
        registrar_account(Settings(registrar_key=SecretStr(OTHER_KEY)), 10, anchor)
    cold = Account.create()
    assert registrar_account(Settings(registrar_key=SecretStr(cold.key.hex())), 10, anchor).address == (
        cold.address
    )
    with pytest.raises(ConfigurationError, match="not a valid private key") as caught:
        registrar_account(Settings(registrar_key=SecretStr("0xnot-a-key-secret")), 10, anchor)
    assert "not-a-key-secret" not in str(caught.value) and caught.value.__cause__ is None


def test_authority_add_off_the_dev_chain_requires_a_registrar_key(tmp_path, capsys):
    node = AnvilNode(chain_id=4242).start()
    try:
        off = Settings(
            var_dir=tmp_path, rpc_url=node.rpc_url, anchor_key=SecretStr(Account.create().key.hex())
        )
        rc, out, err = add_authority(off, capsys, "LAO-MAINNET", "--admin", ADMIN)
        assert rc == 2 and out == ""
        assert err.startswith("trace authority add: error: TRACE_REGISTRAR_KEY is required on chain 4242")
        anchor = Account.create()
        same = off.model_copy(
            update={"anchor_key": SecretStr(anchor.key.hex()), "registrar_key": SecretStr(anchor.key.hex())}
        )
        rc, _, err = add_authority(same, capsys, "LAO-MAINNET", "--admin", ADMIN)
        assert rc == 2 and "TRACE_REGISTRAR_KEY is the anchor key" in err
        assert anchor.key.hex()[2:] not in err
    finally:
        node.stop()


# ------------------------------------------------------------------ trace officer add


def test_officer_add_makes_a_key_of_their_own_registered_on_chain(
    settings, rt, registry, capsys, files, caplog
):
    caplog.set_level(logging.DEBUG)
    code = unique("LAO-OFF")
    assert add_authority(settings, capsys, code, "--admin", ADMIN)[0] == 0
    username = unique("officer").lower()
    made = add_officer(settings, capsys, files, username, code)
    address = made["address"]
    assert made["username"] == username and made["authority"] == code and made["status"] == "active"

    status = registry.officer_status(authority_id(code), address)
    assert status.valid_from == made["valid_from"] != 0 and status.revoked_at == 0
    row = officer_row(rt, username)
    assert row.address == address and row.status == PartyStatus.ACTIVE
    assert unlock_officer_key(row, PASSPHRASE).address == address  # only the passphrase opens it
    with pytest.raises(Forbidden):
        unlock_officer_key(row, PASSWORD)
    assert PasswordHasher().verify(row.password_hash, PASSWORD)
    assert PASSWORD not in json.dumps(row.keystore) and PASSPHRASE not in json.dumps(row.keystore)
    assert PASSWORD not in caplog.text and PASSPHRASE not in caplog.text
    assert AUTHORITY_ADMIN_KEY[2:] not in caplog.text

    # Without --json: a sentence, then the address alone on the last line.
    other = unique("officer").lower()
    rc, out, err = run(
        settings,
        capsys,
        "officer",
        "add",
        other,
        "--authority",
        code,
        "--display-name",
        "นายสมชาย ประจำตำบล",
        "--admin-key-file",
        files["admin_key"],
        "--password-file",
        files["password"],
        "--passphrase-file",
        files["passphrase"],
    )
    assert rc == 0, err
    assert out.splitlines()[-1] == officer_row(rt, other).address
    assert PASSWORD not in out + err and PASSPHRASE not in out + err

    rc, _, err = run(
        settings,
        capsys,
        "officer",
        "add",
        username,
        "--authority",
        code,
        "--display-name",
        "x",
        "--admin-key-file",
        files["admin_key"],
        "--password-file",
        files["password"],
        "--passphrase-file",
        files["passphrase"],
    )
    assert rc == 2 and err.startswith(f"trace officer add: error: officer {username} already exists")


def test_officer_add_reads_secrets_from_stdin_and_the_terminal(settings, rt, capsys, files, monkeypatch):
    code = unique("LAO-IN")
    assert add_authority(settings, capsys, code, "--admin", ADMIN)[0] == 0
    base = ["officer", "add", "--authority", code, "--display-name", "นางสาวสมศรี ตรวจสอบ"]
    base += ["--admin-key-file", files["admin_key"]]

    piped = unique("stdin").lower()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n{PASSPHRASE}\n"))
    rc, out, err = run(settings, capsys, *base, piped, "--stdin")
    assert rc == 0, err
    assert unlock_officer_key(officer_row(rt, piped), PASSPHRASE).address == out.splitlines()[-1]
    assert PasswordHasher().verify(officer_row(rt, piped).password_hash, PASSWORD)

    typed = unique("tty").lower()
    answers = iter([PASSWORD, PASSWORD, PASSPHRASE, PASSPHRASE])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    rc, out, err = run(settings, capsys, *base, typed)
    assert rc == 0, err
    assert len(prompts) == 4 and "password" in prompts[0] and "passphrase" in prompts[2]
    assert unlock_officer_key(officer_row(rt, typed), PASSPHRASE).address == out.splitlines()[-1]
    assert PASSWORD not in out + err and PASSPHRASE not in out + err


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        (f"{PASSWORD}\n", "the passphrase is missing"),
        (f"short\n{PASSPHRASE}\n", "password must be at least 8"),
        (f"{PASSWORD}\nshort-one\n", "passphrase must be at least 12"),
        (f"{PASSPHRASE}\n{PASSPHRASE}\n", "must differ from the login password"),
    ],
)
def test_officer_add_refuses_bad_secrets_with_nothing_written(
    settings, rt, capsys, files, monkeypatch, stdin, expected
):
    code = unique("LAO-SEC")
    assert add_authority(settings, capsys, code, "--admin", ADMIN)[0] == 0
    username = unique("refused").lower()
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc, out, err = run(
        settings,
        capsys,
        "officer",
        "add",
        username,
        "--authority",
        code,
        "--display-name",
        "x",
        "--admin-key-file",
        files["admin_key"],
        "--stdin",
    )
    assert rc == 2 and out == "" and err.startswith("trace officer add: error: ") and expected in err
    assert PASSWORD not in err and PASSPHRASE not in err
    with transaction(rt.sessions) as s, pytest.raises(Exception, match="unknown officer"):
        find_officer(s, username)


def test_officer_add_refuses_mismatched_entries_and_the_wrong_admin_key(settings, capsys, files, monkeypatch):
    code = unique("LAO-MIS")
    assert add_authority(settings, capsys, code, "--admin", ADMIN)[0] == 0
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    base = ["officer", "add", unique("o").lower(), "--authority", code, "--display-name", "x"]
    rc, _, err = run(settings, capsys, *base, "--admin-key-file", files["admin_key"])
    assert rc == 2 and "do not match" in err and PASSWORD not in err

    rc, _, err = run(settings, capsys, *base, "--admin-key-file", files["other_key"], "--stdin")
    other = Account.from_key(OTHER_KEY).address
    assert rc == 2 and err.startswith(f"trace officer add: error: the key given ({other}) is not the admin")
    assert OTHER_KEY[2:] not in err
    rc, _, err = run(settings, capsys, *base, "--admin-key-file", "/nonexistent/admin.key", "--stdin")
    assert rc == 2 and "cannot read --admin-key-file /nonexistent/admin.key" in err
    rc, _, err = run(
        settings,
        capsys,
        "officer",
        "add",
        "o",
        "--authority",
        "LAO-NOPE",
        "--display-name",
        "x",
        "--admin-key-file",
        files["admin_key"],
    )
    assert rc == 2 and "unknown authority LAO-NOPE" in err


# ------------------------------------------------------------------ trace officer revoke


def make_lot(rt: Runtime, code: str, lot: str) -> None:
    """A farmer, a plot and a harvested lot of authority ``code``, so its officer has something to certify."""
    farmer, plot = unique("F"), unique("PLOT")
    with transaction(rt.sessions) as s:
        authority = authority_by_code(s, code)
        f = enrol_farmer(
            s, code=farmer, authority=authority, display_name="นางสมพร ใจดี", phone="0811111111", pin="1234"
        )
        enrol_plot(
            s,
            code=plot,
            farmer=f,
            village_th="บ้านหนองสนิท",
            village_en="Ban Nong Sanit",
            area_rai=Decimal("2.5"),
        )
    for event in (
        Planting(
            kind="planting",
            lot_code=lot,
            plot_id=plot,
            crop="organic-veg",
            variety="ผักคะน้า",
            area_rai=Decimal("2.5"),
            event_id=uuid.uuid4(),
            actor=farmer,
            place=Place(id=plot),
            event_time=days_ago(60),
        ),
        Harvest(
            kind="harvest",
            lot_code=lot,
            plot_id=plot,
            crop="organic-veg",
            variety="ผักคะน้า",
            quantity=q("500"),
            event_id=uuid.uuid4(),
            actor=farmer,
            place=Place(id=plot),
            event_time=days_ago(20),
        ),
    ):
        with transaction(rt.sessions) as s:
            record_event(s, event, id_base=ID_BASE)


def certify(rt: Runtime, username: str, lot: str) -> str:
    return certify_lot(
        rt.sessions,
        rt.registry,
        officer_username=username,
        passphrase=PASSPHRASE,
        lot_code=lot,
        standard="Organic Thailand PGS",
        certificate_hash="0x" + uuid.uuid4().hex * 2,
        place_id="LAO-T",
        id_base=ID_BASE,
    ).cert_id


def test_revoke_as_of_a_past_time(settings, rt, registry, capsys, files, caplog):
    caplog.set_level(logging.DEBUG)
    code, lot = unique("LAO-REV"), unique("REV")[:20]
    assert add_authority(settings, capsys, code, "--admin", ADMIN)[0] == 0
    username = unique("revoked").lower()
    term_began = chain_now(rt) - 3 * 86400
    made = add_officer(settings, capsys, files, username, code, "--valid-from", iso(term_began))
    assert made["valid_from"] == term_began
    make_lot(rt, code, lot)
    before = certify(rt, username, lot)  # the officer can certify while valid
    assert registry.is_valid(before)

    compromised = chain_now(rt) - 86400  # the key was stolen a day ago
    rc, out, err = run(
        settings,
        capsys,
        "officer",
        "revoke",
        username,
        "--effective-at",
        iso(compromised),
        "--admin-key-file",
        files["admin_key"],
        "--json",
    )
    assert rc == 0, err
    done = json.loads(out)
    assert done["revoked_at"] == compromised and done["address"] == made["address"] and done["tx_hash"]
    status = registry.officer_status(authority_id(code), made["address"])
    assert (status.valid_from, status.revoked_at) == (term_began, compromised)
    assert officer_row(rt, username).status == PartyStatus.REVOKED
    # What the key signed after the compromise no longer counts, and the service refuses it new work.
    assert not registry.is_valid(before)
    with pytest.raises(Forbidden, match="revoked"):
        certify(rt, username, lot)
    assert [op.status for op in revoke_ops(rt, made["address"])] == ["done"]

    rc, _, err = run(settings, capsys, "officer", "revoke", username, "--admin-key-file", files["admin_key"])
    assert rc == 2 and err.startswith(f"trace officer revoke: error: officer {username} is already revoked")
    assert AUTHORITY_ADMIN_KEY[2:] not in caplog.text and PASSPHRASE not in caplog.text


def test_revoke_now_is_the_default(settings, rt, registry, capsys, files):
    code = unique("LAO-NOW")
    assert add_authority(settings, capsys, code, "--admin", ADMIN)[0] == 0
    username = unique("now").lower()
    address = add_officer(settings, capsys, files, username, code)["address"]
    start = chain_now(rt)
    rc, out, err = run(
        settings, capsys, "officer", "revoke", username, "--admin-key-file", files["admin_key"]
    )
    assert rc == 0, err
    revoked_at = registry.officer_status(authority_id(code), address).revoked_at
    assert start <= revoked_at <= chain_now(rt)
    assert f"revoked on chain as of {iso(revoked_at)}" in out and address in out
    assert officer_row(rt, username).status == PartyStatus.REVOKED


def test_revoke_refuses_a_time_before_valid_from_with_nothing_changed(settings, rt, registry, capsys, files):
    code = unique("LAO-EARLY")
    assert add_authority(settings, capsys, code, "--admin", ADMIN)[0] == 0
    username = unique("early").lower()
    term_began = chain_now(rt) - 86400
    address = add_officer(settings, capsys, files, username, code, "--valid-from", iso(term_began))["address"]
    revoke = ["officer", "revoke", username, "--admin-key-file", files["admin_key"]]

    rc, out, err = run(settings, capsys, *revoke, "--effective-at", iso(term_began - 3600))
    assert rc == 2 and out == ""
    assert err.startswith("trace officer revoke: error: the revocation time ")
    assert f"is before officer {username}'s validFrom {iso(term_began)}" in err
    rc, _, err = run(settings, capsys, *revoke, "--effective-at", iso(chain_now(rt) + 86400))
    assert rc == 2 and "is in the future" in err
    rc, _, err = run(settings, capsys, *revoke, "--effective-at", "yesterday")
    assert rc == 2 and "--effective-at is not an ISO 8601 time" in err
    rc, _, err = run(settings, capsys, "officer", "revoke", username, "--admin-key-file", files["other_key"])
    assert rc == 2 and "is not the admin of authority" in err
    rc, _, err = run(settings, capsys, "officer", "revoke", "nobody", "--admin-key-file", files["admin_key"])
    assert rc == 2 and "unknown officer nobody" in err

    assert registry.officer_status(authority_id(code), address).revoked_at == 0
    assert officer_row(rt, username).status == PartyStatus.ACTIVE
    assert revoke_ops(rt, address) == []


def test_naive_times_are_read_in_the_configured_time_zone(settings, capsys, files):
    code = unique("LAO-TZ")
    assert add_authority(settings, capsys, code, "--admin", ADMIN)[0] == 0
    made = add_officer(
        settings, capsys, files, unique("tz").lower(), code, "--valid-from", "2026-01-01T07:00:00"
    )
    assert made["valid_from"] == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())  # Asia/Bangkok, +07:00


def test_help_names_no_secret_option(capsys):
    with pytest.raises(SystemExit):
        main(["officer", "add", "--help"], settings=Settings())
    text = capsys.readouterr().out
    assert "--password-file" in text and "--stdin" in text
    assert "--password " not in text and "--passphrase " not in text
    with pytest.raises(SystemExit) as exited:
        main(["officer", "revoke", "someone"], settings=Settings())
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "trace officer revoke: error:" in err and "--admin-key-file" in err
