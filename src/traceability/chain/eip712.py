"""EIP-712 typed data for TraceRegistry certifications: build, hash, sign, recover.

An officer signs, with their own key, the typed data (domain ``TraceRegistry`` version ``1``, the chain id and
the registry's address)::

    Certification(bytes32 lot,bytes32 certificateHash,bytes32 authority,address officer,uint64 expires,
                  uint256 nonce,uint256 deadline)

where ``lot = keccak256(utf8(lot_code))`` and ``authority = keccak256(utf8(authority_code))``. The EIP-712
digest ``keccak256(0x19 0x01 || domainSeparator || hashStruct(message))`` is also the id the contract
records the certification under. :func:`typed_data` is the full JSON (``types``, ``primaryType``,
``domain``, ``message``) that proof bundles carry, so anyone can recompute the id and recover the signer.
In that JSON, ``bytes32`` values are 0x-prefixed hex, the officer a checksummed address, numbers integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from eth_utils.hexadecimal import encode_hex

DOMAIN_NAME = "TraceRegistry"
DOMAIN_VERSION = "1"
PRIMARY_TYPE = "Certification"

EIP712_DOMAIN_FIELDS: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
CERTIFICATION_FIELDS: list[dict[str, str]] = [
    {"name": "lot", "type": "bytes32"},
    {"name": "certificateHash", "type": "bytes32"},
    {"name": "authority", "type": "bytes32"},
    {"name": "officer", "type": "address"},
    {"name": "expires", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
CERTIFICATION_TYPE = (
    "Certification(bytes32 lot,bytes32 certificateHash,bytes32 authority,address officer,uint64 expires,"
    "uint256 nonce,uint256 deadline)"
)
CERTIFICATION_TYPEHASH = keccak(CERTIFICATION_TYPE.encode())

_UINT64_MAX = 2**64 - 1
_UINT256_MAX = 2**256 - 1


def code_id(code: str) -> bytes:
    """``keccak256(utf8(code))``: the bytes32 the contract knows a lot or an authority by."""
    if not code:
        raise ValueError("code must not be empty")
    return keccak(code.encode("utf-8"))


def lot_id(lot_code: str) -> bytes:
    """The contract's ``lot``: ``keccak256(utf8(lot_code))``."""
    return code_id(lot_code)


def authority_id(code: str) -> bytes:
    """The contract's ``authority``: ``keccak256(utf8(code))``."""
    return code_id(code)


@dataclass(frozen=True)
class CertificationData:
    """What an officer certifies.

    ``expires``: unix time the certification lapses (0 = never); ``deadline``: the last block time the
    signature may be recorded at; ``nonce``: must equal the officer's ``nonces(officer)`` on chain then.
    """

    lot_code: str
    certificate_hash: bytes
    authority_code: str
    officer: str
    expires: int
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        if not isinstance(self.certificate_hash, bytes) or len(self.certificate_hash) != 32:
            raise ValueError("certificate_hash must be 32 bytes")
        if not 0 <= self.expires <= _UINT64_MAX:
            raise ValueError("expires must fit in uint64")
        if not 0 <= self.nonce <= _UINT256_MAX or not 0 <= self.deadline <= _UINT256_MAX:
            raise ValueError("nonce and deadline must fit in uint256")
        object.__setattr__(self, "officer", to_checksum_address(self.officer))
        object.__setattr__(self, "certificate_hash", bytes(self.certificate_hash))

    @property
    def lot(self) -> bytes:
        return lot_id(self.lot_code)

    @property
    def authority(self) -> bytes:
        return authority_id(self.authority_code)

    def as_tuple(self) -> tuple[bytes, bytes, bytes, str, int, int, int]:
        """The ``Certification`` struct as the contract's ABI takes it."""
        return (
            self.lot,
            self.certificate_hash,
            self.authority,
            self.officer,
            self.expires,
            self.nonce,
            self.deadline,
        )

    def message(self) -> dict[str, Any]:
        return {
            "lot": encode_hex(self.lot),
            "certificateHash": encode_hex(self.certificate_hash),
            "authority": encode_hex(self.authority),
            "officer": self.officer,
            "expires": self.expires,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


def domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(contract),
    }


def typed_data(cert: CertificationData, chain_id: int, contract: str) -> dict[str, Any]:
    """The complete EIP-712 document (``eth_signTypedData_v4`` shape) for ``cert`` on ``contract``."""
    return {
        "types": {
            "EIP712Domain": [dict(f) for f in EIP712_DOMAIN_FIELDS],
            PRIMARY_TYPE: [dict(f) for f in CERTIFICATION_FIELDS],
        },
        "primaryType": PRIMARY_TYPE,
        "domain": domain(chain_id, contract),
        "message": cert.message(),
    }


def _signable(document: dict[str, Any]) -> SignableMessage:
    return encode_typed_data(full_message=document)


def typed_data_digest(document: dict[str, Any]) -> bytes:
    """The EIP-712 digest of a full typed-data document (for a certification: its id on chain)."""
    signable = _signable(document)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def certification_digest(cert: CertificationData, chain_id: int, contract: str) -> bytes:
    """The EIP-712 digest of ``cert``: equals the contract's ``certificationDigest`` and the recorded id."""
    return typed_data_digest(typed_data(cert, chain_id, contract))


def sign_certification(account: LocalAccount, cert: CertificationData, chain_id: int, contract: str) -> bytes:
    """The officer's 65-byte signature (r || s || v) over ``cert``. ``account`` must be ``cert.officer``."""
    if account.address != cert.officer:
        raise ValueError(f"account {account.address} is not the certification's officer {cert.officer}")
    signed = account.sign_message(_signable(typed_data(cert, chain_id, contract)))
    return bytes(signed.signature)


def recover_signer(
    document: dict[str, Any] | CertificationData,
    signature: bytes,
    chain_id: int | None = None,
    contract: str | None = None,
) -> str:
    """The checksummed address that signed with ``signature``: ``document`` is a full typed-data dict (as in a
    proof bundle), or a :class:`CertificationData` together with ``chain_id`` and ``contract``."""
    if isinstance(document, CertificationData):
        if chain_id is None or contract is None:
            raise ValueError("recovering from CertificationData needs chain_id and contract")
        document = typed_data(document, chain_id, contract)
    return str(Account.recover_message(_signable(document), signature=signature))
