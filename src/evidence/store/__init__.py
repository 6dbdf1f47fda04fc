"""Evidence stores: filesystem (default), azure_blob, memory (tests)."""

from evidence.store.base import EvidenceStore
from evidence.store.filesystem import FilesystemStore
from evidence.store.memory import MemoryStore

__all__ = ["EvidenceStore", "FilesystemStore", "MemoryStore"]
