"""The anchor key kept in an encrypted Ethereum JSON keystore instead of the environment.

A hot key in an environment variable shows in ``/proc/PID/environ`` and in every child process; a keystore
file (scrypt-encrypted, as eth-account and geth write it) is useless without its passphrase, which comes from
``TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE`` (systemd credentials, docker secrets) or, less well,
``TRACE_ANCHOR_KEYSTORE_PASSPHRASE``. Errors name the file and the setting, never the passphrase or the key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account

from traceability.config import Settings
from traceability.errors import ConfigurationError, InvalidInput

#: Shortest passphrase ``trace anchor-key create`` accepts (the officers' signing passphrases' minimum).
PASSPHRASE_MIN = 12


def keystore_configured(settings: Settings) -> bool:
    """Whether ``TRACE_ANCHOR_KEYSTORE`` names a keystore (an empty value counts as unset)."""
    return settings.anchor_keystore is not None and str(settings.anchor_keystore) not in ("", ".")


def keystore_passphrase(settings: Settings) -> str:
    """The keystore's passphrase from exactly one of its two settings; ConfigurationError otherwise."""
    direct = settings.anchor_keystore_passphrase
    file = settings.anchor_keystore_passphrase_file
    if direct is not None and file is not None:
        raise ConfigurationError(
            "both TRACE_ANCHOR_KEYSTORE_PASSPHRASE and TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE are set: set one"
        )
    if file is not None:
        passphrase = _first_line(file, "TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE")
    elif direct is not None:
        passphrase = direct.get_secret_value()
    else:
        raise ConfigurationError(
            "TRACE_ANCHOR_KEYSTORE needs its passphrase: set TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE (a file "
            "holding it, e.g. a systemd credential or docker secret) or TRACE_ANCHOR_KEYSTORE_PASSPHRASE"
        )
    if not passphrase:
        raise ConfigurationError("the anchor keystore's passphrase is empty")
    return passphrase


def _first_line(path: Path, setting: str) -> str:
    """The first line of ``path`` without its line end: secret files usually end with a newline."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(f"cannot read {setting} {path}: {reason}") from None


def open_keystore(path: Path, passphrase: str) -> str:
    """The hex private key in keystore ``path``. A wrong passphrase, an unreadable file and a file that is not
    a keystore are each a ConfigurationError naming the file (raised from None: eth-account's messages are
    not chained into a log)."""
    try:
        keystore = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the anchor keystore {path} (TRACE_ANCHOR_KEYSTORE): {exc.strerror}"
        ) from None
    except (UnicodeDecodeError, ValueError):
        raise ConfigurationError(f"the anchor keystore {path} is not a JSON keystore") from None
    if not isinstance(keystore, dict) or not isinstance(keystore.get("crypto", keystore.get("Crypto")), dict):
        raise ConfigurationError(
            f"the anchor keystore {path} is not an Ethereum JSON keystore (no crypto section)"
        )
    try:
        key = bytes(Account.decrypt(keystore, passphrase))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise ConfigurationError(
                f"wrong passphrase for the anchor keystore {path}: it does not decrypt (check "
                "TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE or TRACE_ANCHOR_KEYSTORE_PASSPHRASE)"
            ) from None
        raise ConfigurationError(
            f"the anchor keystore {path} cannot be opened: {type(exc).__name__}"
        ) from None
    except (KeyError, TypeError, NotImplementedError) as exc:
        raise ConfigurationError(
            f"the anchor keystore {path} cannot be opened: {type(exc).__name__}"
        ) from None
    stated = keystore.get("address")
    derived = Account.from_key(key).address
    if isinstance(stated, str) and stated.lower().removeprefix("0x") != derived.lower().removeprefix("0x"):
        raise ConfigurationError(
            f"the anchor keystore {path} says address {stated} but holds the key of {derived}"
        )
    return "0x" + key.hex()


def create_keystore(path: Path, passphrase: str) -> str:
    """Make a new random key, write it to ``path`` as a keystore encrypted with ``passphrase`` (mode 0600,
    never over an existing file) and return its address: the only thing about it that may be shown."""
    if len(passphrase) < PASSPHRASE_MIN:
        raise InvalidInput(f"the keystore passphrase must be at least {PASSPHRASE_MIN} characters")
    account = Account.create()
    keystore = Account.encrypt(account.key, passphrase)  # scrypt: about a second, by design
    body = json.dumps(keystore, indent=2) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"{path} exists: a keystore is never overwritten (move it away first)") from None
    except OSError as exc:
        raise InvalidInput(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(body)
    return str(account.address)
