"""Settings: environment variables prefixed ``TRACE_``; nothing else reads os.environ."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ANVIL_CHAIN_ID = 31337
# Anvil's first public development account. Public knowledge; accepted only on chain id 31337.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_DEV_KEYS = frozenset(
    {
        ANVIL_DEV_KEY,
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    }
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACE_", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str = ""
    rpc_url: str = "http://127.0.0.1:8545"
    # The service's hot key (ANCHORER_ROLE). Kept as SecretStr so it never shows in a repr or a log.
    anchor_key: SecretStr | None = None
    # Or that key in an encrypted Ethereum JSON keystore (never both), opened with the passphrase given in the
    # environment or, better, in a file (systemd credentials, docker secrets): services/anchor_keys.py.
    anchor_keystore: Path | None = None
    anchor_keystore_passphrase: SecretStr | None = None
    anchor_keystore_passphrase_file: Path | None = None
    # The block TraceRegistry was deployed in: `trace reconcile` reads its Anchored logs from there (default:
    # the block in deployment.json, else 0).
    contract_block: int | None = Field(default=None, ge=0)
    contract_address: str | None = None
    # Cold keys' addresses for `trace deploy` (DEFAULT_ADMIN_ROLE and REGISTRAR_ROLE). Off chain 31337 both
    # are required and must differ from the anchor key's address; on the dev chain they default to it.
    admin_address: str | None = None
    registrar_address: str | None = None
    # The registrar's key, needed only by `trace authority add` (a cold key: set it just for that command).
    registrar_key: SecretStr | None = None
    # Delay before a proposed DEFAULT_ADMIN_ROLE transfer can be accepted (AccessControlDefaultAdminRules).
    admin_transfer_delay_s: int = Field(default=3 * 24 * 3600, ge=0, le=2**48 - 1)
    # 1024 events a batch: about 49 gas an event (256: about 190) and fewer, larger writes; latency is not
    # the batch's but batch_interval_s's when events come slowly, and under load 1024 fill in a moment.
    batch_max: int = Field(default=1024, ge=1, le=4096)
    batch_interval_s: float = Field(default=5.0, ge=0, le=3600)
    confirmations: int = Field(default=2, ge=0, le=1000)
    receipt_timeout_s: float = Field(default=120.0, gt=0)
    stuck_tx_s: float = Field(default=90.0, gt=0)
    # `trace worker --once` logs what it waits for this often, and says the chain has stalled when no new
    # block has come for stall_warning_s (a node that mines only on transactions never adds confirmations).
    worker_progress_s: float = Field(default=5.0, gt=0)
    stall_warning_s: float = Field(default=30.0, gt=0)
    public_base_url: str = "http://127.0.0.1:8000"
    # The base of lot, place and party URIs inside hashed events. Recorded in the database on first use and
    # refused if later changed (the anchored hashes depend on it); unset = the recorded one, or the default.
    id_base: str | None = None
    timezone: str = "Asia/Bangkok"
    # Plausible yield ceiling multiplier: a harvest above (crop yield per rai x plot area x this) is flagged.
    yield_tolerance: Decimal = Decimal("1.5")
    # Rate limits (requests a minute per client address on public pages and proof downloads, per API key on
    # the importer API), each with a burst of a tenth of a minute's worth (at least 10). Per process.
    public_rate_per_min: int = Field(default=120, ge=1, le=1_000_000)
    importer_rate_per_min: int = Field(default=600, ge=1, le=1_000_000)
    # PostgreSQL connections per process. `trace serve` runs its routes in AnyIO's thread pool of 40, so
    # pool + overflow = 40 lets no request wait for a connection; two servers and a worker (3 × 40 at most)
    # fit PostgreSQL's default max_connections of 100 only while the overflow is not all in use at once.
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_max_overflow: int = Field(default=20, ge=0, le=1000)
    # `trace serve` and `trace worker` log JSON objects, one a line (json), or plain lines (text).
    log_format: Literal["json", "text"] = "json"
    # Below this balance (wei) of the anchor account, /readyz says low_balance and the worker warns.
    min_balance_wei: int = Field(default=5 * 10**16, ge=0)
    # Test hook: the worker SIGKILLs itself at this step of a batch (services/anchoring.py CRASH_POINTS);
    # refused off the dev chain (31337) by workers/anchor.py. Empty (the default): no hook.
    test_crash_at: str = ""

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @field_validator("id_base")
    @classmethod
    def _strip_id_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'trace.db').resolve()}"

    @property
    def deployment_file(self) -> Path:
        return self.var_dir / "deployment.json"

    @property
    def evidence_dir(self) -> Path:
        """Where photo evidence is kept, by content hash (services/evidence.py)."""
        return self.var_dir / "evidence"


@lru_cache
def get_settings() -> Settings:
    return Settings()
