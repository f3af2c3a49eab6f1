"""Merkle trees: fixed vectors recomputed step by step here, proofs for many sizes, input checks.

The same trees are checked against the contract's ``verifyEvent`` on Anvil in tests/chain/test_contract.py.
"""

from __future__ import annotations

import hashlib

import pytest
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from traceability.domain.merkle import MerkleTree, leaf_hash, node_hash, process_proof, verify_proof


def event(i: int) -> bytes:
    return hashlib.sha256(f"event-{i}".encode()).digest()


def k(data: bytes) -> bytes:
    return keccak(data)


def pair(a: bytes, b: bytes) -> bytes:
    lo, hi = sorted([a, b])
    return k(lo + hi)


def fold(leaf: bytes, proof: list[bytes]) -> bytes:
    node = leaf
    for sibling in proof:
        node = pair(node, sibling)
    return node


def test_keccak_is_ethereum_keccak_not_sha3() -> None:
    assert k(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert k(b"") != hashlib.sha3_256(b"").digest()


def test_leaf_is_openzeppelin_standard_leaf_of_a_bytes32() -> None:
    e = event(1)
    # Solidity: keccak256(bytes.concat(keccak256(abi.encode(e)))); abi.encode(bytes32) is the 32 bytes.
    assert abi_encode(["bytes32"], [e]) == e
    assert leaf_hash(e) == k(k(abi_encode(["bytes32"], [e]))) == k(k(e))


def test_node_hash_sorts_the_pair() -> None:
    a, b = leaf_hash(event(1)), leaf_hash(event(2))
    assert node_hash(a, b) == node_hash(b, a) == k(min(a, b) + max(a, b))


def test_fixed_vector_three_events_odd_node_carried_up() -> None:
    events = [event(1), event(2), event(3)]
    l0, l1, l2 = sorted(k(k(e)) for e in events)
    expected = pair(pair(l0, l1), l2)  # l2 has no sibling in layer 0: carried up unchanged
    tree = MerkleTree(events)
    assert tree.leaves == (l0, l1, l2)
    assert tree.root == expected
    assert tree.root.hex() == "ab90dfb9cd72f453f9fff4ea3db49098bf2942b9c4e0e31db075c6e945c8c595"
    top = sorted(events, key=lambda e: k(k(e)))[2]
    assert tree.proof(top) == [pair(l0, l1)]


def test_fixed_vector_four_events() -> None:
    events = [event(i) for i in (1, 2, 3, 4)]
    l0, l1, l2, l3 = sorted(k(k(e)) for e in events)
    tree = MerkleTree(events)
    assert tree.root == pair(pair(l0, l1), pair(l2, l3))
    assert tree.root.hex() == "94bf74ad801dfffd66d49c6c910aac675887d1b6a745c1bd114c6a2993665bd4"


def test_fixed_vector_two_events() -> None:
    tree = MerkleTree([event(1), event(2)])
    assert tree.root == pair(leaf_hash(event(1)), leaf_hash(event(2)))
    assert tree.root.hex() == "8aba83c4afc9fe18e7a52da7a31b2dacfb927eb8324eb3af7c97908accb42b1a"


def test_single_event_root_is_its_leaf_and_proof_is_empty() -> None:
    tree = MerkleTree([event(1)])
    assert tree.root == leaf_hash(event(1))
    assert tree.root.hex() == "8d54e71e9fdb3fd9bbb660027ab51a2312722df76a065519b27f54227132a1c1"
    assert tree.proof(event(1)) == []
    assert verify_proof(event(1), [], tree.root)


def test_order_of_input_does_not_matter() -> None:
    events = [event(i) for i in range(9)]
    assert MerkleTree(events).root == MerkleTree(list(reversed(events))).root


@pytest.mark.parametrize("size", range(1, 34))
def test_every_proof_verifies(size: int) -> None:
    events = [event(i) for i in range(size)]
    tree = MerkleTree(events)
    assert len(tree) == size
    bound = (size - 1).bit_length()
    for e in events:
        proof = tree.proof(e)
        assert len(proof) <= bound
        assert verify_proof(e, proof, tree.root)
        assert fold(k(k(e)), proof) == tree.root  # the fold written out independently
        assert process_proof(leaf_hash(e), proof) == tree.root
    outsider = event(10_000)
    assert not verify_proof(outsider, tree.proof(events[0]), tree.root)


def test_1024_events() -> None:
    events = [event(i) for i in range(1024)]
    tree = MerkleTree(events)
    for e in events:
        proof = tree.proof(e)
        assert len(proof) == 10
        assert verify_proof(e, proof, tree.root)


def test_tampered_proofs_fail() -> None:
    events = [event(i) for i in range(7)]
    tree = MerkleTree(events)
    proof = tree.proof(events[3])
    assert proof
    flipped = bytearray(proof[0])
    flipped[0] ^= 1
    assert not verify_proof(events[3], [bytes(flipped), *proof[1:]], tree.root)
    assert not verify_proof(events[3], proof[:-1], tree.root)
    assert not verify_proof(events[3], proof, leaf_hash(events[3]))


def test_a_leaf_is_not_accepted_as_an_event_hash() -> None:
    # Double hashing: presenting an inner node or a leaf as an "event hash" does not verify.
    events = [event(i) for i in range(4)]
    tree = MerkleTree(events)
    l0, l1, *_ = tree.leaves
    inner = node_hash(l0, l1)
    assert not verify_proof(inner, tree.proof(events[0])[1:], tree.root)


def test_rejects_duplicates_empty_and_bad_sizes() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        MerkleTree([event(1), event(2), event(1)])
    with pytest.raises(ValueError):
        MerkleTree([])
    with pytest.raises(ValueError):
        MerkleTree([b"\x01" * 31])
    with pytest.raises(ValueError):
        verify_proof(event(1), [b"\x00" * 33], MerkleTree([event(1)]).root)


def test_proof_of_unknown_event_is_key_error() -> None:
    tree = MerkleTree([event(1), event(2)])
    assert event(1) in tree
    assert event(3) not in tree
    with pytest.raises(KeyError):
        tree.proof(event(3))


def test_event_hashes_follow_leaf_order() -> None:
    events = [event(i) for i in range(5)]
    tree = MerkleTree(events)
    assert [leaf_hash(e) for e in tree.event_hashes] == list(tree.leaves)
    assert sorted(tree.event_hashes) == sorted(events)


@pytest.mark.parametrize("size", [*range(1, 40), 255, 256, 257, 1000, 1024, 1025])
def test_all_proofs_in_one_pass_equal_each_proof(size: int) -> None:
    events = [event(i) for i in range(size)]
    tree = MerkleTree(events)
    proofs = tree.proofs()
    assert [e for e, _ in proofs] == list(tree.event_hashes)  # tree order, every event once
    for e, proof in proofs:
        assert proof == tree.proof(e)
        assert fold(k(k(e)), proof) == tree.root  # folded independently of the module
