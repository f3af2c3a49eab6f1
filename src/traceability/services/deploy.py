"""Deploy the TraceRegistry once per chain and remember where (``var/deployment.json``)."""

from __future__ import annotations

from web3 import Web3

from traceability.chain.registry import TraceRegistry
from traceability.services.runtime import Runtime, read_deployment, write_deployment


def ensure_deployed(rt: Runtime) -> tuple[str, bool]:
    """(address, created). An address on file whose code is gone (a fresh chain) is deployed anew."""
    existing = read_deployment(rt.settings, rt.chain_id)
    if existing and rt.w3.eth.get_code(Web3.to_checksum_address(existing)):
        return existing, False
    registry = TraceRegistry.deploy(rt.w3, rt.account)
    write_deployment(rt.settings, rt.chain_id, registry.address, int(rt.w3.eth.block_number))
    rt.__dict__.pop("registry", None)
    return registry.address, True
