"""Merkle trees of event hashes, checkable by OpenZeppelin's ``MerkleProof`` (``TraceRegistry.verifyEvent``).

Exact bytes hashed (``keccak256`` is Ethereum's Keccak-256, not NIST SHA3-256):

- An **event hash** is the 32-byte digest of the event's CBV 2.0 Event Hash ID (the raw bytes, not hex text).
- **Leaf** of event hash ``e``: ``keccak256(keccak256(e))``: 32 bytes in, 32 out, hashed twice. This is
  OpenZeppelin's StandardMerkleTree leaf for a single ``bytes32`` value,
  ``keccak256(bytes.concat(keccak256(abi.encode(e))))``, because ``abi.encode(bytes32)`` is the 32 bytes
  themselves. Hashing twice keeps a leaf from ever being mistaken for an inner node (64-byte preimage).
- **Inner node** of children ``a`` and ``b``: ``keccak256(min(a, b) || max(a, b))``, the 64 bytes of the two
  children concatenated smaller first (compared as unsigned big-endian integers, i.e. bytewise), as
  OpenZeppelin's ``Hashes.commutativeKeccak256``. Proofs therefore carry no left/right flags.
- **Build**: the leaves sorted ascending are layer 0; each next layer hashes neighbours (0,1), (2,3), ...;
  an odd last node is carried up unchanged. The root is the single node of the last layer; a one-event
  tree's root is its leaf and its proof is empty. Event hashes must be distinct.
- **Verify**: start from the leaf, fold each proof element in with the inner-node rule, compare to the root.

The sorted-pair hashing means any tree shape verifies with ``MerkleProof.verify``. For a power-of-two number
of events the root equals ``@openzeppelin/merkle-tree``'s ``StandardMerkleTree.of(hashes, ["bytes32"])``;
for other sizes that library arranges the leaves differently, so its root differs, while proofs from either
verify the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# pysha3's backend directly: eth_hash.auto would pick pycryptodome first, whose per-call overhead dominates a
# 1,024-leaf tree (three hashes per event).
from eth_hash.backends.pysha3 import keccak256 as keccak

HASH_SIZE = 32


def _check(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {value!r}")
    return bytes(value)


def leaf_hash(event_hash: bytes) -> bytes:
    """``keccak256(keccak256(event_hash))``: the leaf of one 32-byte event hash."""
    return keccak(keccak(_check(event_hash, "event hash")))


def node_hash(a: bytes, b: bytes) -> bytes:
    """``keccak256(min(a, b) || max(a, b))``: the inner node over two 32-byte children."""
    return keccak(a + b) if a <= b else keccak(b + a)


def process_proof(leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """The root reached from ``leaf`` by folding in ``proof`` (``MerkleProof.processProof``)."""
    node = _check(leaf, "leaf")
    for sibling in proof:
        node = node_hash(node, _check(sibling, "proof element"))
    return node


def verify_proof(event_hash: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows ``event_hash`` is in the tree with ``root``."""
    return process_proof(leaf_hash(event_hash), proof) == _check(root, "root")


class MerkleTree:
    """The tree of a batch of distinct event hashes (see the module docstring for the exact construction)."""

    def __init__(self, event_hashes: Sequence[bytes]) -> None:
        if not event_hashes:
            raise ValueError("a Merkle tree needs at least one event hash")
        by_leaf: dict[bytes, bytes] = {}
        for event_hash in event_hashes:
            leaf = leaf_hash(event_hash)
            if leaf in by_leaf:
                raise ValueError(f"duplicate event hash 0x{bytes(event_hash).hex()}")
            by_leaf[leaf] = bytes(event_hash)
        leaves = sorted(by_leaf)
        self._index = {by_leaf[leaf]: i for i, leaf in enumerate(leaves)}
        layers = [leaves]
        while len(layers[-1]) > 1:
            below = layers[-1]
            above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])
            layers.append(above)
        self._layers = layers

    @property
    def root(self) -> bytes:
        return self._layers[-1][0]

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """The leaf hashes in tree order (sorted ascending)."""
        return tuple(self._layers[0])

    @property
    def event_hashes(self) -> tuple[bytes, ...]:
        """The event hashes in tree order (the order of their leaves)."""
        ordered = sorted(self._index, key=self._index.__getitem__)
        return tuple(ordered)

    def __len__(self) -> int:
        return len(self._layers[0])

    def __contains__(self, event_hash: object) -> bool:
        return event_hash in self._index

    def proof(self, event_hash: bytes) -> list[bytes]:
        """The sibling hashes from ``event_hash``'s leaf up to the root; KeyError if it is not in the tree."""
        try:
            index = self._index[bytes(event_hash)]
        except KeyError:
            raise KeyError(f"event hash 0x{bytes(event_hash).hex()} is not in this tree") from None
        proof: list[bytes] = []
        for layer in self._layers[:-1]:
            sibling = index ^ 1
            if sibling < len(layer):
                proof.append(layer[sibling])
            index //= 2
        return proof

    def proofs(self) -> list[tuple[bytes, list[bytes]]]:
        """Every event hash with its proof (each equal to :meth:`proof`'s), in tree order, in one pass.

        A batch stores a proof per event: walking the layers once and handing each sibling to the leaves
        beneath it (leaf ``i``'s ancestor in layer ``d`` is node ``i >> d``, odd nodes being carried up in
        place) costs no lookup per event and no index arithmetic per element.
        """
        count = len(self._layers[0])
        proofs: list[list[bytes]] = [[] for _ in range(count)]
        for depth, layer in enumerate(self._layers[:-1]):
            for node in range(0, len(layer) - 1, 2):
                left, right = layer[node], layer[node + 1]
                first, middle = node << depth, (node + 1) << depth
                for leaf in range(first, middle):
                    proofs[leaf].append(right)
                for leaf in range(middle, min(middle + (1 << depth), count)):
                    proofs[leaf].append(left)
        return list(zip(self.event_hashes, proofs, strict=True))
