"""Deploy the TraceRegistry once per chain and remember where (``var/deployment.json``).

The anchor key (a hot key on the server) deploys and gets ANCHORER_ROLE only. DEFAULT_ADMIN_ROLE and
REGISTRAR_ROLE go to the cold keys' addresses in the settings (``TRACE_ADMIN_ADDRESS``,
``TRACE_REGISTRAR_ADDRESS``): off the development chain (31337) both are required and the three keys must
differ, so a stolen server key can anchor but never appoint authorities or grant roles, and the
admin role passes to a new key only after ``TRACE_ADMIN_TRANSFER_DELAY_S``. On 31337 both default to the
anchor account and the delay is 0, so the demo runs with one key.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.address import is_address, to_checksum_address

from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_CHAIN_ID, Settings
from traceability.errors import ConfigurationError
from traceability.services.runtime import Runtime, read_deployment, write_deployment


@dataclass(frozen=True)
class DeploymentRoles:
    admin: str
    registrar: str
    admin_delay: int


def deployment_roles(settings: Settings, chain_id: int, anchor_address: str) -> DeploymentRoles:
    """Who gets DEFAULT_ADMIN_ROLE and REGISTRAR_ROLE, and the admin transfer delay; ConfigurationError when
    the settings would leave those roles with the anchor key off the development chain."""
    if chain_id == ANVIL_CHAIN_ID:
        return DeploymentRoles(
            admin=_role_address("TRACE_ADMIN_ADDRESS", settings.admin_address or anchor_address),
            registrar=_role_address("TRACE_REGISTRAR_ADDRESS", settings.registrar_address or anchor_address),
            admin_delay=0,
        )
    roles = {
        "TRACE_ADMIN_ADDRESS": settings.admin_address,
        "TRACE_REGISTRAR_ADDRESS": settings.registrar_address,
    }
    checked: dict[str, str] = {}
    for name, value in roles.items():
        if not value:
            raise ConfigurationError(
                f"{name} is required to deploy on chain {chain_id}: the address of a cold key,"
                " not the anchor key's"
            )
        address = _role_address(name, value)
        if address.lower() == anchor_address.lower():
            raise ConfigurationError(
                f"{name} is the anchor key's address {anchor_address}: on chain {chain_id} the admin and the"
                " registrar must be cold keys kept off the server"
            )
        checked[name] = address
    if checked["TRACE_ADMIN_ADDRESS"] == checked["TRACE_REGISTRAR_ADDRESS"]:
        raise ConfigurationError(
            f"TRACE_ADMIN_ADDRESS and TRACE_REGISTRAR_ADDRESS are the same address: on chain {chain_id} the"
            " admin, the registrar and the anchorer must be three different keys"
        )
    return DeploymentRoles(
        admin=checked["TRACE_ADMIN_ADDRESS"],
        registrar=checked["TRACE_REGISTRAR_ADDRESS"],
        admin_delay=settings.admin_transfer_delay_s,
    )


def _role_address(name: str, value: str) -> str:
    if not is_address(value) or int(value, 16) == 0:
        raise ConfigurationError(f"{name} is not a usable address: {value!r}")
    return to_checksum_address(value)


def ensure_deployed(rt: Runtime) -> tuple[str, bool]:
    """(address, created). A registry on file is kept if its code is this version's TraceRegistry.

    An address on file whose code is gone (a fresh chain) is deployed anew; one holding other code is
    redeployed on the development chain (the contract changed) and refused elsewhere, as is a configured
    ``TRACE_CONTRACT_ADDRESS`` that is not a TraceRegistry: a live registry is never silently replaced.
    """
    existing = read_deployment(rt.settings, rt.chain_id)
    if existing:
        registry = TraceRegistry(rt.w3, existing)
        if registry.is_trace_registry():
            return registry.address, False
        if rt.settings.contract_address:
            raise ConfigurationError(
                f"TRACE_CONTRACT_ADDRESS {existing} holds no TraceRegistry of this version"
                f" on chain {rt.chain_id}"
            )
        if rt.chain_id != ANVIL_CHAIN_ID and rt.w3.eth.get_code(registry.address):
            raise ConfigurationError(
                f"{existing}, on file for chain {rt.chain_id} in {rt.settings.deployment_file}, holds other"
                " code than this version's TraceRegistry; remove the entry to deploy a new registry"
            )
    roles = deployment_roles(rt.settings, rt.chain_id, rt.account.address)
    registry = TraceRegistry.deploy(
        rt.w3,
        rt.account,
        admin=roles.admin,
        registrar=roles.registrar,
        anchorer=rt.account.address,
        admin_delay=roles.admin_delay,
    )
    write_deployment(rt.settings, rt.chain_id, registry.address, int(rt.w3.eth.block_number))
    rt.__dict__.pop("registry", None)
    return registry.address, True
