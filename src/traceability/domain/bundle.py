"""The proof bundle: one self-contained JSON document per lot that another implementation can check against
the chain alone. One pydantic model, used by the service that builds it and by the verifier that reads it;
its JSON Schema is ``docs/proof-bundle.schema.json`` (``scripts/write_bundle_schema.py``) and
``docs/proof-bundle.md`` says how to check a bundle by hand.

Numbers inside ``epcis`` bodies are exact decimals: read a bundle with ``codec.loads`` (or any JSON parser
that keeps decimals) and write it with ``codec.dumps``; ``ProofBundle.to_json`` gives the dict to write.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from traceability.domain.events import Address, HashHex, LotCode, PartyCode, Signature

BUNDLE_FORMAT: Final = "thai-trace-proof-bundle/2"
HASH_ALGORITHM = "GS1 CBV 2.0 Event Hash ID (sha-256), anchored as bytes32"
MERKLE = "OpenZeppelin MerkleProof: leaf = keccak256(keccak256(abi.encode(bytes32))), sorted pairs"
MAX_EVENTS = 100_000


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class BundleAnchor(_Strict):
    """Where an event's batch root was anchored: the transaction that emitted ``Anchored(root)`` and its
    block, and the Merkle proof from the event's hash to the root."""

    root: HashHex
    proof: Annotated[list[HashHex], Field(max_length=64)]
    tx_hash: HashHex
    block_number: Annotated[int, Field(ge=0)]
    block_hash: HashHex


class BundleEvent(_Strict):
    """One event: its EPCIS 2.0 body as stored and hashed, its hash, and its anchor (null until anchored)."""

    epcis: dict[str, Any] = Field(description="The event's EPCIS 2.0 JSON-LD body (no @context)")
    hash: HashHex = Field(description="sha-256 of the CBV 2.0 pre-hash string, as 0x hex (bytes32)")
    anchor: BundleAnchor | None


class BundleCertification(_Strict):
    """An officer's signed certification as relayed to the chain: the EIP-712 typed data and signature."""

    id: HashHex = Field(description="The EIP-712 digest, the id the contract records it under")
    lot_code: LotCode
    authority: PartyCode
    officer: Address
    standard: Annotated[str, Field(max_length=80)]
    typed_data: dict[str, Any] = Field(description="The EIP-712 document: types, domain, message")
    signature: Signature
    tx_hash: HashHex | None = None


class ProofBundle(_Strict):
    """A lot's proof bundle (DESIGN §7)."""

    format: Literal["thai-trace-proof-bundle/2"] = BUNDLE_FORMAT
    chain_id: Annotated[int, Field(ge=1)]
    contract: Address = Field(description="The TraceRegistry the anchors and certifications are on")
    lot_code: LotCode
    lineage_lots: list[LotCode] = Field(description="The lot and every lot it was packed from")
    generated_at: AwareDatetime
    context: list[Any] = Field(alias="@context", description="The JSON-LD @context of the EPCIS bodies")
    hash_algorithm: str = HASH_ALGORITHM
    merkle: str = MERKLE
    events: Annotated[list[BundleEvent], Field(min_length=1, max_length=MAX_EVENTS)]
    certifications: list[BundleCertification] = []

    def to_json(self) -> dict[str, Any]:
        """The bundle as a JSON-ready dict (exact decimals kept: write it with ``codec.dumps``)."""
        data: dict[str, Any] = self.model_dump(by_alias=True, mode="python")
        data["generated_at"] = self.generated_at.isoformat(timespec="seconds")
        return data


def bundle_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a proof bundle, as committed in docs/proof-bundle.schema.json."""
    schema = ProofBundle.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://thai-trace.org/schemas/proof-bundle-2.json"
    return schema
