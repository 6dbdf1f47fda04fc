"""SHA-256 digests as a type, written ``sha256:<64 hex>`` everywhere."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_TEXT = re.compile(r"^sha256:([0-9a-f]{64})$")
_HEX_DIGITS = "0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Digest:
    """A SHA-256 digest. Compare digests, never hex strings of unknown origin."""

    hex: str

    def __post_init__(self) -> None:
        if not isinstance(self.hex, str) or len(self.hex) != 64 or self.hex.strip(_HEX_DIGITS):
            raise ValueError(f"not a SHA-256 hex digest: {self.hex!r}")

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls(hashlib.sha256(data).hexdigest())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Digest:
        return cls(raw.hex())

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``sha256:<hex>``; raise ValueError on anything else."""
        match = _TEXT.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"not a digest (expected 'sha256:<64 hex>'): {text!r}")
        return cls(match.group(1))

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.hex)

    def __str__(self) -> str:
        return f"sha256:{self.hex}"
