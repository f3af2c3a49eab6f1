"""Shared fixtures: a real Anvil node on a free port for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY

CONFORMANCE = Path(__file__).resolve().parent / "conformance"


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    node = AnvilNode().start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def w3(anvil: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="session")
def registry(w3: Web3) -> TraceRegistry:
    """One TraceRegistry for the session, deployed with Anvil's dev key #0 in every role."""
    return TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))


# --- databases: every store/service test runs on SQLite and on PostgreSQL -----------------------------------
import os  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import psycopg  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from traceability.store.database import make_engine, make_sessionmaker, migrate  # noqa: E402

POSTGRES_URL = os.environ.get("TRACE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Database:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def _postgres_schema_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh database built by ``alembic upgrade head``: a SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'trace.db'}"
        migrate(url)
        engine = make_engine(url)
        yield Database(url, engine, make_sessionmaker(engine))
        engine.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required and not reachable at {POSTGRES_URL}: {exc}")
    url = _postgres_schema_url(schema)
    migrate(url)
    engine = make_engine(url)
    try:
        yield Database(url, engine, make_sessionmaker(engine))
    finally:
        engine.dispose()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
