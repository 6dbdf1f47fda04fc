"""The ledger: hash-chained entries, one per envelope, and signed checkpoints.

Entry = {seq, envelope, prev} where prev is the SHA-256 of the previous entry's
canonical bytes. The entries' canonical bytes are also the leaves of an RFC 6962
tree; a checkpoint signs (tree size, root, time, previous checkpoint, key id)
with Ed25519. Store keys: ``ledger/entries/<seq>.json`` and
``ledger/checkpoints/<tree size>.json``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from evidence.domain.canonical import canonicalize
from evidence.domain.digest import Digest

ENTRY_SCHEMA = "evidence.ledger-entry/1"
CHECKPOINT_SCHEMA = "evidence.checkpoint/1"


def entry_key(seq: int) -> str:
    return f"ledger/entries/{seq:012d}.json"


def checkpoint_key(tree_size: int) -> str:
    return f"ledger/checkpoints/{tree_size:012d}.json"


def envelope_key(digest: Digest) -> str:
    return f"envelopes/{digest.hex[:2]}/{digest.hex}.json"


def content_key(digest: Digest) -> str:
    return f"content/{digest.hex[:2]}/{digest.hex}.jsonl"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + Digest.of(raw).hex[:16]


@dataclass(frozen=True)
class Entry:
    seq: int
    envelope: str
    prev: str | None
    recorded_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": ENTRY_SCHEMA,
            "seq": self.seq,
            "envelope": self.envelope,
            "prev": self.prev,
            "recorded_at": self.recorded_at,
        }

    def canonical(self) -> bytes:
        return canonicalize(self.to_json())

    def digest(self) -> Digest:
        return Digest.of(self.canonical())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        if data.get("schema") != ENTRY_SCHEMA:
            raise ValueError(f"not a ledger entry (schema {data.get('schema')!r})")
        prev = data["prev"]
        return cls(
            seq=int(data["seq"]),
            envelope=str(data["envelope"]),
            prev=None if prev is None else str(prev),
            recorded_at=str(data["recorded_at"]),
        )


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root: str
    signed_at: str
    prev: str | None
    key_id: str

    def body(self) -> dict[str, Any]:
        return {
            "schema": CHECKPOINT_SCHEMA,
            "tree_size": self.tree_size,
            "root": self.root,
            "signed_at": self.signed_at,
            "prev": self.prev,
            "key_id": self.key_id,
        }

    def signed_bytes(self) -> bytes:
        return canonicalize(self.body())


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint.body(),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    def canonical(self) -> bytes:
        return canonicalize(self.to_json())

    def digest(self) -> Digest:
        return Digest.of(self.canonical())

    @classmethod
    def sign(cls, checkpoint: Checkpoint, private: Ed25519PrivateKey) -> SignedCheckpoint:
        return cls(checkpoint, private.sign(checkpoint.signed_bytes()))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignedCheckpoint:
        body = data["checkpoint"]
        if body.get("schema") != CHECKPOINT_SCHEMA:
            raise ValueError(f"not a checkpoint (schema {body.get('schema')!r})")
        prev = body["prev"]
        checkpoint = Checkpoint(
            tree_size=int(body["tree_size"]),
            root=str(body["root"]),
            signed_at=str(body["signed_at"]),
            prev=None if prev is None else str(prev),
            key_id=str(body["key_id"]),
        )
        return cls(checkpoint, base64.b64decode(data["signature"], validate=True))

    def signature_valid(self, public: Ed25519PublicKey) -> bool:
        try:
            public.verify(self.signature, self.checkpoint.signed_bytes())
        except InvalidSignature:
            return False
        return True
