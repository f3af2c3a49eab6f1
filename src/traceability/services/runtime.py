"""Build the long-lived resources from settings: database engine and sessions, Web3, the anchor account and
the TraceRegistry client. The CLI, the web app's lifespan and the worker all start here."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.types import RPCEndpoint

from traceability.chain.registry import RegistryGone, TraceRegistry
from traceability.config import ANVIL_CHAIN_ID, ANVIL_DEV_KEY, ANVIL_DEV_KEYS, Settings
from traceability.errors import ChainUnavailable, ConfigurationError, InvalidInput
from traceability.services.anchor_keys import keystore_configured, keystore_passphrase, open_keystore
from traceability.store.database import make_engine, make_sessionmaker
from traceability.store.database import migrate as migrate_schema
from traceability.store.database import transaction as store_transaction

# The unit of work handed to services. Callers above services (api, web, workers, cli) name it by this alias,
# never by importing sqlalchemy: they pass it on, they do not query with it.
DbSession = Session


def anchor_account(settings: Settings, chain_id: int) -> LocalAccount:
    """The service's hot key: ``TRACE_ANCHOR_KEY`` or the keystore ``TRACE_ANCHOR_KEYSTORE`` (one of them, so
    there is never a doubt which key anchors). Anvil's public dev keys are accepted on chain id 31337 only,
    from either source."""
    key = settings.anchor_key.get_secret_value() if settings.anchor_key is not None else None
    if keystore_configured(settings):
        if key is not None and key.strip():
            raise ConfigurationError(
                "both TRACE_ANCHOR_KEY and TRACE_ANCHOR_KEYSTORE are set: configure the anchor key one way"
            )
        path = settings.anchor_keystore
        assert path is not None  # keystore_configured
        opened = open_keystore(path, keystore_passphrase(settings))
        return key_account(opened, f"the anchor keystore {path} (TRACE_ANCHOR_KEYSTORE)", chain_id)
    if key is None:
        if chain_id != ANVIL_CHAIN_ID:
            raise ConfigurationError(
                f"TRACE_ANCHOR_KEY or TRACE_ANCHOR_KEYSTORE is required on chain {chain_id}"
            )
        key = ANVIL_DEV_KEY
    return key_account(key, "TRACE_ANCHOR_KEY", chain_id)


def key_account(key: str, source: str, chain_id: int) -> LocalAccount:
    """The account of hex private key ``key`` (from ``source``, named in errors, never the key itself).
    Anvil's public development keys are refused off chain 31337."""
    normalised = key.strip()
    normalised = normalised if normalised.startswith(("0x", "0X")) else "0x" + normalised
    if normalised.lower() in ANVIL_DEV_KEYS and chain_id != ANVIL_CHAIN_ID:
        raise ConfigurationError(
            f"refusing Anvil's public development key on chain {chain_id}: {source} must hold a real key"
        )
    try:
        account: LocalAccount = Account.from_key(normalised)
    except (ValueError, TypeError):
        # The exception text could quote the key: raise from None so it is never chained into a log.
        raise ConfigurationError(f"{source} is not a valid private key") from None
    return account


def registrar_account(settings: Settings, chain_id: int, anchor: LocalAccount) -> LocalAccount:
    """The registrar's key (``TRACE_REGISTRAR_KEY``), which registers authorities. On chain 31337 it defaults
    to the anchor account (what `trace deploy` gives REGISTRAR_ROLE there); elsewhere it is required and must
    not be the anchor key: a stolen server key must not be able to appoint authorities."""
    key = settings.registrar_key.get_secret_value() if settings.registrar_key is not None else None
    if key is None or not key.strip():
        if chain_id != ANVIL_CHAIN_ID:
            raise ConfigurationError(
                f"TRACE_REGISTRAR_KEY is required on chain {chain_id}: the registrar's cold key, set just for"
                " this command"
            )
        return anchor
    account = key_account(key, "TRACE_REGISTRAR_KEY", chain_id)
    if account.address == anchor.address and chain_id != ANVIL_CHAIN_ID:
        raise ConfigurationError(
            f"TRACE_REGISTRAR_KEY is the anchor key ({anchor.address}): on chain {chain_id} the registrar"
            " must be a cold key kept off the server"
        )
    return account


def make_web3(rpc_url: str) -> Web3:
    """A client of the node at ``rpc_url``. web3 asks ``eth_chainId`` before every contract call (a 20-event
    verification sent it about 56 times); it is cached per thread. Nothing else is: block and receipt answers
    must stay live for reorg detection."""
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": 30},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
        request_cache_validation_threshold=None,
    )
    return Web3(provider)


def trusted_registry(settings: Settings, rpc_url: str, address: str | None) -> TraceRegistry:
    """The registry a bundle is checked against: ``address`` if given, else this installation's deployment
    on the RPC's chain. Never the address the bundle itself names: a forger can deploy their own."""
    w3 = make_web3(rpc_url)
    trusted = address or read_deployment(settings, chain_id_of(w3))
    if not trusted:
        raise InvalidInput(
            "no trusted registry for this chain: pass --registry ADDRESS (the TraceRegistry you trust) "
            "or set TRACE_CONTRACT_ADDRESS"
        )
    try:
        return TraceRegistry(w3, trusted)
    except ValueError as exc:
        raise InvalidInput(f"--registry is not an address: {trusted!r}") from exc


def chain_id_of(w3: Web3) -> int:
    try:
        return int(w3.eth.chain_id)
    except Exception as exc:  # requests/aiohttp/OSError: any failure to talk to the node
        raise ChainUnavailable(f"cannot reach the chain at {w3.provider}: {exc}") from exc


def read_deployment(settings: Settings, chain_id: int) -> str | None:
    if settings.contract_address:
        return settings.contract_address
    path = settings.deployment_file
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    entry = data.get(str(chain_id))
    return str(entry["address"]) if entry else None


def deployment_block(settings: Settings, chain_id: int, address: str) -> int:
    """The block to read ``address``'s logs from: ``TRACE_CONTRACT_BLOCK``, else the block deployment.json
    recorded for that very address, else 0 (the whole chain, read in chunks)."""
    if settings.contract_block is not None:
        return settings.contract_block
    path = settings.deployment_file
    if not path.exists():
        return 0
    entry = json.loads(path.read_text()).get(str(chain_id)) or {}
    if str(entry.get("address", "")).lower() != address.lower():
        return 0
    return max(int(entry.get("block", 0)), 0)


def write_deployment(settings: Settings, chain_id: int, address: str, block: int) -> None:
    path = settings.deployment_file
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[str(chain_id)] = {"address": address, "block": block}
    path.write_text(json.dumps(data, indent=2) + "\n")


@dataclass
class Runtime:
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return self._engine or make_engine(
            self.settings.effective_database_url,
            pool_size=self.settings.db_pool_size,
            max_overflow=self.settings.db_max_overflow,
        )

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def w3(self) -> Web3:
        return make_web3(self.settings.rpc_url)

    @cached_property
    def chain_id(self) -> int:
        return chain_id_of(self.w3)

    @cached_property
    def account(self) -> LocalAccount:
        return anchor_account(self.settings, self.chain_id)

    @cached_property
    def registry(self) -> TraceRegistry:
        address = read_deployment(self.settings, self.chain_id)
        if address is None:
            raise ConfigurationError("no TraceRegistry deployed on this chain: run `trace deploy`")
        if not self.w3.eth.get_code(Web3.to_checksum_address(address)):
            # A chain reset (a node restarted without its state), not a bad setting: 503, not 500.
            raise RegistryGone(
                f"no contract code at {address} on chain {self.chain_id}: run `trace deploy`, then"
                " `trace reconcile --repair`",
                contract=address,
            )
        return TraceRegistry(self.w3, address, self.account)

    @cached_property
    def registrar(self) -> TraceRegistry:
        """A client of the deployed registry signing with the registrar's key (:func:`registrar_account`)."""
        account = registrar_account(self.settings, self.chain_id, self.account)
        if account.address == self.account.address:
            return self.registry
        return self.client_for(account)

    def client_for(self, account: LocalAccount) -> TraceRegistry:
        """A client of the deployed registry signing with ``account`` (e.g. an authority admin's key)."""
        return TraceRegistry(
            self.w3, self.registry.address, account, receipt_timeout=self.settings.receipt_timeout_s
        )

    def client_for_key(self, key: str, source: str) -> TraceRegistry:
        """:meth:`client_for` the account of hex key ``key`` read from ``source`` (:func:`key_account`)."""
        return self.client_for(key_account(key, source, self.chain_id))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit at the end, roll back on error. The web request's session and the CLI's
        commands use this; services only add and flush."""
        with store_transaction(self.sessions) as session:
            yield session

    @cached_property
    def _writer(self) -> threading.Lock | None:
        return threading.Lock() if self.engine.dialect.name == "sqlite" else None

    @contextmanager
    def write_transaction(self) -> Iterator[Session]:
        """:meth:`transaction` for a unit of work that writes, taken one at a time in this process on SQLite.

        SQLite lets one writer in at a time: concurrent writers of one process would each poll for its lock
        (the busy handler sleeps 1, 2, 5… ms between tries) while passing the interpreter lock back and forth,
        which costs CPU and orders them by luck. Python code does not run in parallel anyway, so queueing
        them here loses nothing. Other processes (``--workers N``, the anchoring worker) still wait on
        SQLite's own lock. PostgreSQL locks rows, not the database: its writers go straight through."""
        with self._writer or nullcontext(), self.transaction() as session:
            yield session

    def migrate(self) -> None:
        """Upgrade the database schema to the latest migration."""
        migrate_schema(self.settings.effective_database_url)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
