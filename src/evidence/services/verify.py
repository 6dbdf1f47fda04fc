"""``evidence verify``: recompute everything and report each problem by item and kind.

The store copy is what proves; the database is an index checked against it;
the witness file (the newest checkpoint seen, kept outside the database)
catches a history rolled back as a whole. Verification streams: contents are
hashed chunk by chunk, and only a content that fails is read again to tell a
``modified`` one (still canonical JSON lines) from a ``malformed`` one.

One tampering is reported once, at the item it touched. Consequences that
follow from an item already reported are not reported again: a root that no
longer matches because an entry is gone, the link after a damaged entry, the
index row of a damaged checkpoint, the blobs of an entry that is unreadable.
How each kind is decided:

- ``modified``: bytes that are canonical but do not hash to what names them
  (content, envelope, or an entry whose index digest and signed root agree on
  other bytes);
- ``malformed``: bytes that are not the canonical form of what they should be;
- ``missing``: named by a record (ledger, index, a checkpoint's ``prev``) but gone;
- ``unrecorded``: in the store, named by no record;
- ``chain-broken``: an entry's ``prev`` does not name its predecessor;
- ``key-unknown`` / ``signature-invalid``: a checkpoint's signature;
- ``inconsistent``: entries a valid checkpoint covers no longer hash to its root
  (reported at the oldest such checkpoint; later ones are consequences);
- ``rollback``: the store is behind the witness, or a checkpoint is replaced by
  an older one;
- ``stale-checkpoint``: the entries are all there, but the newest checkpoints
  that the witness or the index know of are gone;
- ``not-included``: an entry that no checkpoint covers (pending uploads aside);
- ``index-mismatch``: the database index disagrees with the store.

Exit codes: 0 when something was checked and nothing is wrong, 1 when a problem
was found, 3 when verification could not complete or found nothing to check
(an empty store, including one whose only artifacts still wait in the outbox).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
from evidence.domain.merkle import LineTree, MerkleBuilder
from evidence.errors import EvidenceError
from evidence.services._locks import file_lock
from evidence.services.ledger import leaf_data, write_witness
from evidence.services.runtime import Runtime

log = logging.getLogger(__name__)

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
WITNESS_ITEM = "witness-checkpoint.json"
# What parsing untrusted JSON into our types may raise (binascii.Error is a ValueError).
_PARSE_ERRORS = (ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError)


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
        if not self.has(item, kind):
            self.problems.append(Problem(kind, item, detail))

    def has(self, item: str, kind: str | None = None) -> bool:
        return any(p.item == item and kind in (None, p.kind) for p in self.problems)

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
        elif self.nothing_checked and not self.problems:
            out["incomplete"] = "nothing to check: the store holds no ledger entry yet"
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
        keys, index, witness = _snapshot(rt)
    except (EvidenceError, sa.exc.SQLAlchemyError, OSError) as exc:
        report.incomplete = f"cannot read the store or the database: {exc}"
        return report
    if not rt.trusted and any(k.startswith("ledger/checkpoints/") for k in keys):
        report.incomplete = (
            "no public key to check checkpoint signatures with: configure [signing] key_path "
            "(the signing key) or [signing] trusted_keys (its public key, PEM)"
        )
        return report
    checker = _Checker(rt, report, index, keys, witness)
    try:
        checker.run()
    except (EvidenceError, OSError, sa.exc.SQLAlchemyError) as exc:
        report.incomplete = f"verification could not complete: {exc}"
    except Exception as exc:  # fail closed: never a traceback, never a pass
        log.debug("verification failed unexpectedly", exc_info=True)
        report.incomplete = f"verification could not complete: {type(exc).__name__}: {exc}"
    if remember and report.ok and checker.newest is not None:
        with _ledger_lock(rt):
            write_witness(rt, checker.newest)
    return report


@contextlib.contextmanager
def _ledger_lock(rt: Runtime) -> Iterator[None]:
    """The ledger lock, when the state folder allows it (a read-only copy does not)."""
    with contextlib.ExitStack() as held:
        with contextlib.suppress(OSError):
            held.enter_context(
                file_lock(rt.state_dir / "ledger.lock", wait=True, what="verification")
            )
        yield


def _snapshot(rt: Runtime) -> tuple[list[str], _Index, bytes | None]:
    """The store's keys, the index and the witness, as one consistent picture while
    collections go on: under the ledger lock no append is half done, and the store is
    listed before the index is read, so a blob being published is already named by
    its pending artifact row. Without a usable lock (a read-only copy), unlocked."""
    with _ledger_lock(rt):
        keys = sorted(rt.store.list())
        index = _load_index(rt)
        try:
            witness: bytes | None = rt.witness_path.read_bytes()
        except FileNotFoundError:
            witness = None
    return keys, index, witness


def _load_index(rt: Runtime) -> _Index:
    with rt.engine.connect() as conn:
        entries = {
            int(r.seq): str(r.entry_sha256)
            for r in conn.execute(
                sa.select(t.ledger_entries.c.seq, t.ledger_entries.c.entry_sha256)
            )
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


def _number_in(key: str) -> int | None:
    """The sequence or tree size a ledger key is named for (None for a foreign name)."""
    name = key.rsplit("/", 1)[-1]
    stem = name[: -len(".json")] if name.endswith(".json") else ""
    return int(stem) if stem.isdigit() and len(stem) == 12 else None


def _parse_digest(text: Any) -> Digest | None:
    try:
        return Digest.parse(text)
    except ValueError:
        return None


def _root_text(digests: Iterable[Digest]) -> str:
    tree = MerkleBuilder()
    for digest in digests:
        tree.add(leaf_data(digest))
    return str(Digest.from_bytes(tree.root()))


class _Checker:
    def __init__(
        self, rt: Runtime, report: Report, index: _Index, keys: list[str], witness: bytes | None
    ) -> None:
        self.rt = rt
        self.witness_raw = witness
        self.report = report
        self.index = index
        self.keys = set(keys)
        self.entry_keys = sorted(k for k in keys if k.startswith("ledger/entries/"))
        self.checkpoint_keys = sorted(k for k in keys if k.startswith("ledger/checkpoints/"))
        self.entries: dict[int, Entry] = {}
        self.entry_digests: dict[int, Digest] = {}
        self.bad_entries: set[int] = set()  # reported already: no consequences reported
        self.referenced: set[str] = set()  # store keys that some record accounts for
        self.present: dict[int, str] = {}  # checkpoint size (from its name) -> key
        self.valid: dict[int, SignedCheckpoint] = {}  # named right, signed by a trusted key
        self.newest: SignedCheckpoint | None = None
        self.tail_gone = False  # stale-checkpoint or rollback reported: the tail is gone
        # One thread for content hashes, beside the Merkle leaves (see _check_content).
        self.hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-content")

    def run(self) -> None:
        self._read_entries()
        self._read_checkpoints()
        self._check_chain()
        self._check_entry_digests()
        with self.hasher:
            self._check_envelopes()
        self._check_checkpoint_chain()
        self._check_roots()
        self._check_witness()
        self._check_coverage()
        self._check_index()
        self._reference_index()
        self._check_unrecorded()
        self.report.checked["pending"] = len(self.index.pending)

    # ---- entries -------------------------------------------------------------------
    def _read_entries(self) -> None:
        for key in self.entry_keys:
            seq = _number_in(key)
            if seq is None:
                continue  # a foreign name under ledger/: reported as unrecorded
            self.referenced.add(key)
            raw = self.rt.store.get(key)
            self.report.checked["entries"] += 1
            try:
                entry = Entry.from_json(orjson.loads(raw))
                envelope_ok = _parse_digest(entry.envelope) is not None
                prev_ok = entry.prev is None or _parse_digest(entry.prev) is not None
            except _PARSE_ERRORS as exc:
                self.report.add("malformed", key, f"not a ledger entry: {exc}")
                self.bad_entries.add(seq)
                continue
            if entry.canonical() != raw or not (envelope_ok and prev_ok):
                self.report.add("malformed", key, "not a ledger entry in canonical JSON form")
                self.bad_entries.add(seq)
                continue
            if entry.seq != seq:
                self.report.add("malformed", key, f"holds entry {entry.seq}")
                self.bad_entries.add(seq)
                continue
            self.entries[seq] = entry
            self.entry_digests[seq] = entry.digest()

    @property
    def size(self) -> int:
        """The ledger's length: what the store shows, or more if a record says so."""
        seqs = set(self.entries) | self.bad_entries
        length = max(seqs) + 1 if seqs else 0
        return max(length, max(self.valid, default=0), max(self.index.entries, default=-1) + 1)

    def _check_chain(self) -> None:
        for seq in range(self.size):
            if seq not in self.entries and seq not in self.bad_entries:
                self.report.add("missing", entry_key(seq), "ledger entry is gone")
                self.bad_entries.add(seq)
        if 0 in self.entries and self.entries[0].prev is not None:
            self.report.add("chain-broken", entry_key(0), "first entry names a predecessor")
            self.bad_entries.add(0)
        for seq in range(1, self.size):
            if seq in self.bad_entries or seq - 1 in self.bad_entries:
                continue
            if self.entries[seq].prev == str(self.entry_digests[seq - 1]):
                continue
            # Which side changed? The index remembers the digest it recorded for each.
            indexed = self.index.entries.get(seq - 1)
            changed = seq - 1 if indexed not in (None, str(self.entry_digests[seq - 1])) else seq
            self.report.add("chain-broken", entry_key(changed), "the hash chain does not link here")
            self.bad_entries.add(changed)

    def _check_entry_digests(self) -> None:
        """An entry whose bytes differ from the index, where the index and the signed root
        agree on the recorded digest: the store copy was modified (not the index)."""
        for seq, digest in sorted(self.entry_digests.items()):
            indexed = _parse_digest(self.index.entries.get(seq))
            if seq in self.bad_entries or indexed is None or indexed == digest:
                continue
            covering = min((s for s in self.valid if s > seq), default=None)
            if covering is None or any(b < covering for b in self.bad_entries):
                continue
            leaves = [indexed if i == seq else self.entry_digests.get(i) for i in range(covering)]
            if None in leaves:
                continue
            signed_root = self.valid[covering].checkpoint.root
            if _root_text(d for d in leaves if d is not None) == signed_root:
                self.report.add(
                    "modified", entry_key(seq), "entry bytes differ from the signed, indexed ones"
                )
                self.bad_entries.add(seq)

    # ---- envelopes and contents ----------------------------------------------------
    def _check_envelopes(self) -> None:
        checked_envelopes: set[str] = set()
        checked_contents: set[str] = set()
        for _seq, entry in sorted(self.entries.items()):
            digest = Digest.parse(entry.envelope)  # checked in _read_entries
            if str(digest) in checked_envelopes:
                continue
            checked_envelopes.add(str(digest))
            self._check_envelope(digest, checked_contents)

    def _check_envelope(self, digest: Digest, checked_contents: set[str]) -> None:
        key = envelope_key(digest)
        self.referenced.add(key)
        if key not in self.keys:
            self.report.add("missing", key, "envelope named by the ledger is gone")
            return
        raw = self.rt.store.get(key)
        self.report.checked["envelopes"] += 1
        try:
            envelope: Envelope | None = Envelope.from_json(orjson.loads(raw))
            content = _parse_digest(envelope.content_sha256) if envelope else None
        except _PARSE_ERRORS:
            envelope, content = None, None
        if content is not None:
            self.referenced.add(content_key(content))
        if Digest.of(raw) != digest:
            kind = "modified" if envelope is not None and is_canonical(raw) else "malformed"
            self.report.add(kind, key, "envelope bytes do not match the ledger's hash")
            return
        if envelope is None or content is None or envelope.canonical() != raw:
            self.report.add("malformed", key, "not an envelope in canonical JSON form")
            return
        ckey = content_key(content)
        if ckey not in checked_contents:
            checked_contents.add(ckey)
            self._check_content(ckey, envelope)

    def _check_content(self, key: str, envelope: Envelope) -> None:
        if key not in self.keys:
            self.report.add("missing", key, "artifact content is gone")
            return
        self.report.checked["contents"] += 1
        content = hashlib.sha256()
        tree = LineTree()
        size = 0
        with self.rt.store.open(key) as handle:
            while chunk := handle.read(CHUNK):
                # Both hashes release the GIL on a chunk this size: the content
                # hash runs on the helper thread while the leaves hash here.
                done = self.hasher.submit(content.update, chunk)
                tree.update(chunk)
                done.result()
                size += len(chunk)
        self.report.checked["records"] += tree.count
        self.report.checked["bytes"] += size
        if (
            tree.pending
            or str(Digest(content.hexdigest())) != envelope.content_sha256
            or str(Digest.from_bytes(tree.root())) != envelope.merkle_root
            or tree.count != envelope.record_count
        ):
            kind = "modified" if self._lines_canonical(key) else "malformed"
            self.report.add(kind, key, "content does not match its envelope's hashes")

    def _lines_canonical(self, key: str) -> bool:
        """Read again, line by line (only for a content that failed), to classify it."""
        with self.rt.store.open(key) as handle:
            for line in handle:
                if not line.endswith(b"\n") or not is_canonical(line[:-1]):
                    return False
        return True

    # ---- checkpoints ---------------------------------------------------------------
    def _read_checkpoints(self) -> None:
        for key in self.checkpoint_keys:
            size = _number_in(key)
            if size is None:
                continue
            self.referenced.add(key)
            self.present[size] = key
            raw = self.rt.store.get(key)
            self.report.checked["checkpoints"] += 1
            try:
                signed = SignedCheckpoint.from_json(orjson.loads(raw))
                if signed.canonical() != raw or _parse_digest(signed.checkpoint.root) is None:
                    raise ValueError("not in canonical JSON form")
            except _PARSE_ERRORS as exc:
                self.report.add("malformed", key, f"not a signed checkpoint: {exc}")
                continue
            public = self.rt.trusted.get(signed.checkpoint.key_id)
            if public is None:
                self.report.add("key-unknown", key, f"signed by {signed.checkpoint.key_id}")
                continue
            if not signed.signature_valid(public):
                self.report.add("signature-invalid", key, "signature does not verify")
                continue
            real = signed.checkpoint.tree_size
            if real != size:
                # A validly signed checkpoint under another size's name: an older one
                # replayed in place of a newer is a rollback; anything else is malformed.
                kind = "rollback" if real < size else "malformed"
                self.report.add(kind, key, f"holds the checkpoint of size {real}")
                continue
            self.valid[size] = signed

    def _check_checkpoint_chain(self) -> None:
        by_digest = {str(s.digest()): size for size, s in self.valid.items()}
        indexed_by_digest = {digest: size for size, digest in self.index.checkpoints.items()}
        sizes = sorted(self.present)
        for position, size in enumerate(sizes):
            signed = self.valid.get(size)
            if signed is None:
                continue
            prev = signed.checkpoint.prev
            before = sizes[position - 1] if position else None
            if before is not None and before not in self.valid:
                continue  # its predecessor is reported already
            expected = None if before is None else str(self.valid[before].digest())
            if prev == expected:
                continue
            if prev is None:
                self.report.add("rollback", self.present[size], "a checkpoint restarts history")
            elif prev in by_digest:
                self.report.add(
                    "rollback", self.present[size], "the checkpoint sequence goes backwards"
                )
            else:
                gone = indexed_by_digest.get(prev)
                item = checkpoint_key(gone) if gone is not None else f"checkpoint before {size}"
                self.report.add("missing", item, f"{self.present[size]} follows it ({prev})")

    def _check_roots(self) -> None:
        failing: list[int] = []
        good: list[int] = []
        damaged = min(self.bad_entries, default=None)
        usable = [s for s in self.valid if damaged is None or s <= damaged]
        # Entries beyond the store's end have no root here: the witness check decides.
        roots = self._prefix_roots(usable)
        for size in sorted(usable):
            root = roots.get(size)
            if root is None:
                continue
            if root == self.valid[size].checkpoint.root:
                good.append(size)
            else:
                failing.append(size)
        if failing:
            later = len(failing) - 1
            self.report.add(
                "inconsistent",
                checkpoint_key(failing[0]),
                "the entries it covers no longer hash to its signed root"
                + (f" (and {later} later checkpoint{'s' if later > 1 else ''})" if later else ""),
            )
        self.newest = self.valid.get(max(good, default=0))

    def _prefix_roots(self, sizes: Iterable[int]) -> dict[int, str]:
        """The root over entries [0, size) for each size, in one pass over the entries
        (a checkpoint per run: recomputing each root from scratch would be quadratic)."""
        wanted = set(sizes)
        roots: dict[int, str] = {}
        if 0 in wanted:
            roots[0] = str(Digest.from_bytes(MerkleBuilder().root()))
        tree = MerkleBuilder()
        for seq in range(max(wanted, default=0)):
            digest = self.entry_digests.get(seq)
            if digest is None:
                break
            tree.add(leaf_data(digest))
            if seq + 1 in wanted:
                roots[seq + 1] = str(Digest.from_bytes(tree.root()))
        return roots

    def _check_witness(self) -> None:
        path = self.rt.witness_path
        raw = self.witness_raw
        if raw is None:
            return
        try:
            witness = SignedCheckpoint.from_json(orjson.loads(raw))
        except _PARSE_ERRORS as exc:
            self.report.add("malformed", WITNESS_ITEM, f"{path} is not a checkpoint: {exc}")
            return
        public = self.rt.trusted.get(witness.checkpoint.key_id)
        if public is None:
            self.report.add("key-unknown", WITNESS_ITEM, f"signed by {witness.checkpoint.key_id}")
            return
        if not witness.signature_valid(public):
            self.report.add("signature-invalid", WITNESS_ITEM, f"{path} does not verify")
            return
        size = witness.checkpoint.tree_size
        digests = [self.entry_digests.get(seq) for seq in range(size)]
        whole = None not in digests and not any(seq < size for seq in self.bad_entries)
        if max(self.present, default=0) >= size:
            if whole and not self.report.has(checkpoint_key(size)) and not any(
                p.kind == "inconsistent" for p in self.report.problems
            ) and _root_text(d for d in digests if d is not None) != witness.checkpoint.root:
                self.report.add(
                    "inconsistent", WITNESS_ITEM, "history differs from the witness checkpoint"
                )
            return
        self.tail_gone = True
        if whole and _root_text(d for d in digests if d is not None) == witness.checkpoint.root:
            self.report.add(
                "stale-checkpoint",
                checkpoint_key(size),
                f"the newest checkpoint in the store covers {max(self.present, default=0)} "
                f"entries; the witness holds one of size {size}",
            )
        elif not any(seq < size for seq in self.bad_entries):  # else reported as such
            self.report.add(
                "rollback",
                "ledger",
                f"the store's history is behind the witness checkpoint of size {size}",
            )

    # ---- coverage, index, strays ---------------------------------------------------
    def _check_coverage(self) -> None:
        if self.tail_gone:
            return
        covered = max(self.present, default=0)
        pending = self.index.pending
        uncovered = [
            seq
            for seq in range(covered, self.size)
            if seq in self.entries and self.entries[seq].envelope not in pending
        ]
        known = max(self.index.checkpoints, default=0)
        if uncovered and known > covered:
            self.report.add(
                "stale-checkpoint",
                checkpoint_key(known),
                f"the index knows checkpoints up to size {known}; the store's newest "
                f"covers {covered}",
            )
            self.tail_gone = True
            return
        for seq in uncovered:
            self.report.add("not-included", entry_key(seq), "no signed checkpoint covers it")

    def _check_index(self) -> None:
        pending = self.index.pending
        for seq, digest in sorted(self.index.entries.items()):
            if seq in self.bad_entries or seq not in self.entry_digests:
                continue  # reported as missing or damaged already
            if str(self.entry_digests[seq]) != digest:
                self.report.add("index-mismatch", entry_key(seq), "database digest differs")
        for seq, entry in sorted(self.entries.items()):
            if seq in self.bad_entries:
                continue
            if seq not in self.index.entries and entry.envelope not in pending:
                self.report.add("index-mismatch", entry_key(seq), "not in the database index")
            if entry.envelope not in self.index.artifacts:
                self.report.add(
                    "index-mismatch",
                    envelope_key(Digest.parse(entry.envelope)),
                    "artifact is not in the database",
                )
        in_ledger = {e.envelope for e in self.entries.values()}
        for env, row in sorted(self.index.artifacts.items()):
            env_digest = _parse_digest(env)
            if env_digest is None or _parse_digest(row["content"]) is None:
                self.report.add("index-mismatch", f"artifacts row {env!r}", "not a digest")
            elif row["state"] == "stored" and env not in in_ledger and not self.bad_entries:
                self.report.add(
                    "index-mismatch", envelope_key(env_digest), "stored, but not in the ledger"
                )
        self._check_checkpoint_index()

    def _check_checkpoint_index(self) -> None:
        newest_present = max(self.present, default=0)
        for size, digest in sorted(self.index.checkpoints.items()):
            key = checkpoint_key(size)
            if size in self.present:
                if self.report.has(key) or size not in self.valid:
                    continue
                if str(self.valid[size].digest()) != digest:
                    self.report.add("index-mismatch", key, "database digest differs")
            elif size < newest_present and not self.report.has(key):
                self.report.add("missing", key, "indexed checkpoint is gone from the store")
        # A checkpoint in the store only is fine while it covers entries still waiting
        # to be indexed (a crash between the store and the database; adopted next run).
        indexed_entries = len(self.index.entries)
        for size, key in sorted(self.present.items()):
            if size in self.index.checkpoints or self.report.has(key):
                continue
            if size > indexed_entries:
                continue
            self.report.add("index-mismatch", key, "not in the database index")

    def _reference_index(self) -> None:
        """Blobs the database accounts for (pending uploads, artifacts of damaged entries)
        are recorded, not strays."""
        for env, row in self.index.artifacts.items():
            digest, content = _parse_digest(env), _parse_digest(row["content"])
            if digest is not None:
                self.referenced.add(envelope_key(digest))
            if content is not None:
                self.referenced.add(content_key(content))

    def _check_unrecorded(self) -> None:
        for key in sorted(self.keys - self.referenced):
            if key.startswith(IGNORED_PREFIXES):
                continue
            self.report.add("unrecorded", key, "in the store, in no record")


def summarize(problems: Iterable[Problem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return counts
