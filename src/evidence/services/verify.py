"""``evidence verify``: recompute everything and report each problem by item and kind.

The store copy is what proves; the database is an index checked against it;
the witness file (the newest checkpoint seen, kept outside the database)
catches a history rolled back as a whole. One tampering is reported once, at
the item it touched: consequences that follow from an item already reported
(a root that no longer matches because an entry changed, say) are not
reported again. Verification fails closed: anything unreadable is a problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from evidence.db import tables as t
from evidence.domain.artifact import Envelope
from evidence.domain.canonical import is_canonical
from evidence.domain.digest import Digest
from evidence.domain.ledger import (
    Entry,
    SignedCheckpoint,
    checkpoint_key,
    content_key,
    entry_key,
    envelope_key,
)
from evidence.domain.merkle import MerkleBuilder, leaf_hashes
from evidence.errors import EvidenceError
from evidence.services.ledger import leaf_data, read_witness, write_witness
from evidence.services.runtime import Runtime

KINDS = (
    "modified",
    "missing",
    "unrecorded",
    "chain-broken",
    "signature-invalid",
    "key-unknown",
    "not-included",
    "inconsistent",
    "rollback",
    "stale-checkpoint",
    "malformed",
    "index-mismatch",
)
IGNORED_PREFIXES = ("doctor/", "keys/")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Problem:
    kind: str
    item: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "item": self.item, "detail": self.detail}


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(
        default_factory=lambda: {
            "entries": 0,
            "envelopes": 0,
            "contents": 0,
            "records": 0,
            "bytes": 0,
            "checkpoints": 0,
            "pending": 0,
        }
    )
    incomplete: str = ""

    def add(self, kind: str, item: str, detail: str) -> None:
        assert kind in KINDS, kind
        self.problems.append(Problem(kind, item, detail))

    @property
    def nothing_checked(self) -> bool:
        return self.checked["entries"] == 0 and self.checked["envelopes"] == 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.incomplete and not self.nothing_checked

    @property
    def exit_code(self) -> int:
        if self.problems:
            return 1
        if self.incomplete or self.nothing_checked:
            return 3
        return 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "checked": self.checked,
            "problems": [p.to_json() for p in self.problems],
        }
        if self.incomplete:
            out["incomplete"] = self.incomplete
        return out


@dataclass
class _Index:
    """What the database says; compared with the store, never trusted over it."""

    entries: dict[int, str]
    artifacts: dict[str, dict[str, Any]]
    checkpoints: dict[int, str]

    @property
    def pending(self) -> set[str]:
        return {env for env, row in self.artifacts.items() if row["state"] == "pending"}


def verify(rt: Runtime, *, remember: bool = True) -> Report:
    """Verify the store and the index. ``remember``: a clean result updates the witness."""
    report = Report()
    try:
        index = _load_index(rt)
        keys = sorted(rt.store.list())
    except (EvidenceError, sa.exc.SQLAlchemyError, OSError) as exc:
        report.incomplete = f"cannot read the store or the database: {exc}"
        return report
    checker = _Checker(rt, report, index, keys)
    try:
        checker.run()
    except (EvidenceError, OSError) as exc:
        report.incomplete = f"verification could not complete: {exc}"
    if remember and report.ok and checker.newest is not None:
        write_witness(rt, checker.newest)
    return report


def _load_index(rt: Runtime) -> _Index:
    with rt.engine.connect() as conn:
        entries = {
            int(r.seq): str(r.entry_sha256)
            for r in conn.execute(sa.select(t.ledger_entries.c.seq, t.ledger_entries.c.entry_sha256))
        }
        artifacts = {
            str(r.envelope_sha256): {"content": str(r.content_sha256), "state": str(r.state)}
            for r in conn.execute(
                sa.select(
                    t.artifacts.c.envelope_sha256, t.artifacts.c.content_sha256, t.artifacts.c.state
                )
            )
        }
        checkpoints = {
            int(r.tree_size): str(r.checkpoint_sha256)
            for r in conn.execute(
                sa.select(t.checkpoints.c.tree_size, t.checkpoints.c.checkpoint_sha256)
            )
        }
    return _Index(entries, artifacts, checkpoints)


class _Checker:
    def __init__(self, rt: Runtime, report: Report, index: _Index, keys: list[str]) -> None:
        self.rt = rt
        self.report = report
        self.index = index
        self.keys = set(keys)
        self.entry_keys = sorted(k for k in keys if k.startswith("ledger/entries/"))
        self.checkpoint_keys = sorted(k for k in keys if k.startswith("ledger/checkpoints/"))
        self.entries: dict[int, Entry] = {}
        self.entry_digests: dict[int, Digest] = {}
        self.bad_entries: set[int] = set()  # reported already: no consequences reported
        self.referenced: set[str] = set()  # store keys that some record accounts for
        self.newest: SignedCheckpoint | None = None

    def run(self) -> None:
        self._read_entries()
        self._check_chain()
        self._check_envelopes()
        covered = self._check_checkpoints()
        self._check_coverage(covered)
        self._check_index()
        self._check_unrecorded()
        self.report.checked["pending"] = len(self.index.pending)

    # ---- entries -------------------------------------------------------------------
    def _read_entries(self) -> None:
        for key in self.entry_keys:
            raw = self.rt.store.get(key)
            self.referenced.add(key)
            self.report.checked["entries"] += 1
            try:
                entry = Entry.from_json(orjson.loads(raw))
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
                self.report.add("malformed", key, f"not a ledger entry: {exc}")
                self._mark_bad_at(key)
                continue
            if entry.canonical() != raw:
                self.report.add("malformed", key, "not in canonical JSON form")
                self._mark_bad_at(key)
                continue
            if entry_key(entry.seq) != key:
                self.report.add("malformed", key, f"holds entry {entry.seq}")
                self._mark_bad_at(key)
                continue
            self.entries[entry.seq] = entry
            self.entry_digests[entry.seq] = entry.digest()

    def _mark_bad_at(self, key: str) -> None:
        try:
            self.bad_entries.add(int(key.rsplit("/", 1)[1].split(".")[0]))
        except ValueError:
            pass

    @property
    def size(self) -> int:
        """The ledger's length as the store shows it (highest sequence + 1)."""
        seqs = set(self.entries) | self.bad_entries
        return max(seqs) + 1 if seqs else 0

    def _check_chain(self) -> None:
        for seq in range(self.size):
            if seq not in self.entries and seq not in self.bad_entries:
                self.report.add("missing", entry_key(seq), "ledger entry is gone")
                self.bad_entries.add(seq)
        for seq in range(1, self.size):
            if seq in self.bad_entries or seq - 1 in self.bad_entries:
                continue
            if self.entries[seq].prev != str(self.entry_digests[seq - 1]):
                # Which side changed? The index remembers the digests it recorded.
                changed = seq - 1 if self.index.entries.get(seq - 1) not in (
                    None,
                    str(self.entry_digests[seq - 1]),
                ) else seq
                self.report.add(
                    "chain-broken", entry_key(changed), "hash chain does not link here"
                )
                self.bad_entries.add(changed)
        if self.size and 0 in self.entries and self.entries[0].prev is not None:
            self.report.add("chain-broken", entry_key(0), "first entry names a predecessor")
            self.bad_entries.add(0)

    # ---- envelopes and contents ----------------------------------------------------
    def _check_envelopes(self) -> None:
        checked_contents: dict[str, bool] = {}
        for seq, entry in sorted(self.entries.items()):
            try:
                digest = Digest.parse(entry.envelope)
            except ValueError:
                self.report.add("malformed", entry_key(seq), "envelope digest is not sha256")
                continue
            self._check_envelope(digest, checked_contents)
        for env in self.index.pending:
            try:
                digest = Digest.parse(env)
            except ValueError:
                continue
            # A pending artifact may have reached the store partly; account for it.
            self.referenced.add(envelope_key(digest))
            content = self.index.artifacts[env]["content"]
            self.referenced.add(content_key(Digest.parse(content)))

    def _check_envelope(self, digest: Digest, checked_contents: dict[str, bool]) -> None:
        key = envelope_key(digest)
        self.referenced.add(key)
        indexed = self.index.artifacts.get(str(digest))
        if indexed is not None:
            self.referenced.add(content_key(Digest.parse(indexed["content"])))
        if key not in self.keys:
            self.report.add("missing", key, "envelope named by the ledger is gone")
            return
        raw = self.rt.store.get(key)
        self.report.checked["envelopes"] += 1
        try:
            envelope = Envelope.from_json(orjson.loads(raw))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            self.report.add("malformed", key, f"not an envelope: {exc}")
            return
        self.referenced.add(content_key(Digest.parse(envelope.content_sha256)))
        if Digest.of(raw) != digest:
            kind = "modified" if is_canonical(raw) else "malformed"
            self.report.add(kind, key, "envelope bytes do not match the ledger's hash")
            return
        ckey = content_key(Digest.parse(envelope.content_sha256))
        if ckey in checked_contents:
            return
        checked_contents[ckey] = self._check_content(ckey, envelope)

    def _check_content(self, key: str, envelope: Envelope) -> bool:
        if key not in self.keys:
            self.report.add("missing", key, "artifact content is gone")
            return False
        self.report.checked["contents"] += 1
        content = hashlib.sha256()
        tree = MerkleBuilder()
        records = 0
        size = 0
        tail = b""
        with self.rt.store.open(key) as handle:
            while chunk := handle.read(CHUNK):
                content.update(chunk)
                size += len(chunk)
                lines = chunk.split(b"\n")
                lines[0] = tail + lines[0]  # not tail + chunk: that copies the chunk
                tail = lines.pop()
                tree.extend(leaf_hashes(lines))
                records += len(lines)
        self.report.checked["records"] += records
        self.report.checked["bytes"] += size
        if (
            tail
            or str(Digest(content.hexdigest())) != envelope.content_sha256
            or str(Digest.from_bytes(tree.root())) != envelope.merkle_root
            or records != envelope.record_count
        ):
            kind = "modified" if self._lines_canonical(key) else "malformed"
            self.report.add(kind, key, "content does not match its envelope's hashes")
            return False
        return True

    def _lines_canonical(self, key: str) -> bool:
        with self.rt.store.open(key) as handle:
            data = handle.read()
        if data and not data.endswith(b"\n"):
            return False
        return all(is_canonical(line) for line in data.split(b"\n")[:-1])

    # ---- checkpoints ---------------------------------------------------------------
    def _check_checkpoints(self) -> int:
        """Check every checkpoint; return the tree size the newest valid one covers."""
        valid: dict[int, SignedCheckpoint] = {}
        by_digest: dict[str, int] = {}
        for key in self.checkpoint_keys:
            self.referenced.add(key)
            raw = self.rt.store.get(key)
            self.report.checked["checkpoints"] += 1
            try:
                signed = SignedCheckpoint.from_json(orjson.loads(raw))
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
                self.report.add("malformed", key, f"not a signed checkpoint: {exc}")
                continue
            if signed.canonical() != raw or checkpoint_key(signed.checkpoint.tree_size) != key:
                self.report.add("malformed", key, "not canonical, or named for another size")
                continue
            public = self.rt.trusted.get(signed.checkpoint.key_id)
            if public is None:
                self.report.add("key-unknown", key, f"signed by {signed.checkpoint.key_id}")
                continue
            if not signed.signature_valid(public):
                self.report.add("signature-invalid", key, "signature does not verify")
                continue
            valid[signed.checkpoint.tree_size] = signed
            by_digest[str(signed.digest())] = signed.checkpoint.tree_size
        self._check_checkpoint_chain(valid, by_digest)
        roots_ok = self._check_roots(valid)
        newest = max(roots_ok, default=0)
        self.newest = valid.get(newest)
        self._check_witness(valid)
        return newest

    def _check_checkpoint_chain(
        self, valid: dict[int, SignedCheckpoint], by_digest: dict[str, int]
    ) -> None:
        sizes = sorted(valid)
        for position, size in enumerate(sizes):
            prev = valid[size].checkpoint.prev
            expected = None if position == 0 else str(valid[sizes[position - 1]].digest())
            if prev == expected:
                continue
            if prev is not None and prev not in by_digest:
                self.report.add(
                    "missing",
                    f"checkpoint before {checkpoint_key(size)}",
                    f"the checkpoint it follows ({prev}) is gone",
                )
            elif prev is None and position > 0:
                self.report.add("rollback", checkpoint_key(size), "a checkpoint restarts history")
            else:
                self.report.add(
                    "rollback", checkpoint_key(size), "checkpoint sequence goes backwards"
                )

    def _leaf_prefix_root(self, size: int) -> bytes | None:
        """Root over entries [0, size) as the store holds them; None if one is unusable."""
        if size > self.size:
            return None
        tree = MerkleBuilder()
        for seq in range(size):
            digest = self.entry_digests.get(seq)
            if digest is None:
                return None
            tree.add(leaf_data(digest))
        return tree.root()

    def _check_roots(self, valid: dict[int, SignedCheckpoint]) -> list[int]:
        good: list[int] = []
        damaged = min(self.bad_entries, default=None)
        for size, signed in sorted(valid.items()):
            if damaged is not None and damaged < size:
                continue  # the damaged entry is reported already
            root = self._leaf_prefix_root(size)
            if root is None:
                self.report.add(
                    "rollback", checkpoint_key(size), f"covers {size} entries; the store has fewer"
                )
                continue
            if str(Digest.from_bytes(root)) != signed.checkpoint.root:
                self.report.add(
                    "inconsistent",
                    checkpoint_key(size),
                    "entries it covers no longer hash to its root",
                )
                continue
            good.append(size)
        return good

    def _check_witness(self, valid: dict[int, SignedCheckpoint]) -> None:
        witness = read_witness(self.rt)
        if witness is None:
            return
        size = witness.checkpoint.tree_size
        public = self.rt.trusted.get(witness.checkpoint.key_id)
        if public is None or not witness.signature_valid(public):
            self.report.add("signature-invalid", str(self.rt.witness_path), "witness does not verify")
            return
        newest = max(valid, default=0)
        if newest >= size:
            return
        root = self._leaf_prefix_root(size)
        if root is not None and str(Digest.from_bytes(root)) == witness.checkpoint.root:
            self.stale_tail = True
            self.report.add(
                "stale-checkpoint",
                checkpoint_key(newest) if newest else "ledger/checkpoints",
                f"newest checkpoint covers {newest} entries; {size} were checkpointed before",
            )
        else:
            self.report.add(
                "rollback",
                "ledger",
                f"the store's history is behind the witness checkpoint of size {size}",
            )
            self.rolled_back = True

    stale_tail = False
    rolled_back = False

    # ---- coverage, index, strays ---------------------------------------------------
    def _check_coverage(self, covered: int) -> None:
        if self.stale_tail or self.rolled_back:
            return
        pending = self.index.pending
        uncovered = [
            seq
            for seq in range(covered, self.size)
            if seq in self.entries
            and seq not in self.bad_entries
            and self.entries[seq].envelope not in pending
        ]
        if uncovered and self.index.checkpoints and max(self.index.checkpoints) > covered:
            self.report.add(
                "stale-checkpoint",
                checkpoint_key(covered) if covered else "ledger/checkpoints",
                f"the index knows checkpoints up to {max(self.index.checkpoints)}; "
                f"the store's newest valid one covers {covered}",
            )
            self.stale_tail = True
            return
        for seq in uncovered:
            self.report.add("not-included", entry_key(seq), "no signed checkpoint covers it")

    def _check_index(self) -> None:
        pending = self.index.pending
        for seq, digest in sorted(self.index.entries.items()):
            if seq in self.bad_entries or entry_key(seq) not in self.keys:
                continue  # reported as missing or damaged already
            if seq in self.entry_digests and str(self.entry_digests[seq]) != digest:
                self.report.add("index-mismatch", entry_key(seq), "database digest differs")
        for seq, entry in sorted(self.entries.items()):
            if seq not in self.index.entries and entry.envelope not in pending:
                self.report.add("index-mismatch", entry_key(seq), "not in the database index")
            if entry.envelope not in self.index.artifacts and seq not in self.bad_entries:
                self.report.add(
                    "index-mismatch",
                    envelope_key(Digest.parse(entry.envelope)),
                    "artifact is not in the database",
                )
        in_ledger = {e.envelope for e in self.entries.values()}
        for env, row in sorted(self.index.artifacts.items()):
            if row["state"] == "stored" and env not in in_ledger and not self.bad_entries:
                self.report.add(
                    "index-mismatch", envelope_key(Digest.parse(env)), "stored, but not in the ledger"
                )
        if self.stale_tail or self.rolled_back:
            return
        for size, digest in sorted(self.index.checkpoints.items()):
            key = checkpoint_key(size)
            if key in self.keys:
                raw = self.rt.store.get(key)
                if str(Digest.of(raw)) != digest and not _reported(self.report, key):
                    self.report.add("index-mismatch", key, "database digest differs")

    def _check_unrecorded(self) -> None:
        for key in sorted(self.keys - self.referenced):
            if key.startswith(IGNORED_PREFIXES):
                continue
            self.report.add("unrecorded", key, "in the store, in no record")


def _reported(report: Report, item: str) -> bool:
    return any(p.item == item for p in report.problems)


def summarize(problems: Iterable[Problem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return counts
