"""The audit chain: the canonical form of an audit entry, its hashes, the records of an export,
and the verifier that proves an export complete and unaltered. Pure (no database, no I/O), so
`signoff audit verify` runs it on a file alone.

Every audit entry has a place in one global chain, `chain_seq` 1, 2, 3, ... in the order the
ledger appended them, and two hashes (SHA-256, lowercase hex):

- `content_hash` = SHA-256 of the entry's canonical form: the JSON object of `CONTENT_FIELDS`
  (keys sorted, no whitespace, UTF-8, strings as `json.dumps(..., ensure_ascii=False)` writes
  them, which for these values is RFC 8785's JSON Canonicalization Scheme), where an empty
  optional text (`OPTIONAL_TEXT`) and an empty `roles` list are `null`;
- `entry_hash` = SHA-256 of the canonical JSON `{"content_hash": ..., "prev_hash": ...}`,
  where `prev_hash` is the previous entry's `entry_hash` (`GENESIS_HASH` for the first).

An entry's content holds its `chain_seq`, so each hash pins the entry's place; each
`entry_hash` covers every entry before it. Because `entry_hash` needs only the content's hash,
an export may show an entry the reader may not see as a *link* (its place and hashes, no
content) and every link of the chain still verifies.

An export is a header record, the entries (or links) of one contiguous run of the chain, and
an end record (see `header_record`, `entry_record`, `link_record`, `end_record`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FORMAT = "signoff-audit-export/1"
GENESIS_HASH = "0" * 64
"""The `prev_hash` of the chain's first entry."""

CONTENT_FIELDS = (
    "chain_seq",
    "recorded_ms",
    "id",
    "request_id",
    "seq",
    "model",
    "version",
    "activity_type",
    "user_id",
    "from_stage",
    "to_stage",
    "comment",
    "system_comment",
    "creation_timestamp",
    "roles",
)
"""What an entry's content hash covers. `recorded_ms` is when the ledger appended it
(non-decreasing along the chain); `creation_timestamp` when what it records happened;
`roles` the roles a decision was made in (a list of texts)."""
INT_FIELDS = frozenset({"chain_seq", "recorded_ms", "seq", "creation_timestamp"})
OPTIONAL_TEXT = frozenset({"request_id", "from_stage", "to_stage", "comment", "system_comment"})
"""Texts that may be absent; an empty one is the same as none (a CSV cell cannot tell)."""
HASH_LENGTH = 64


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a JSON object of strings, integers and nulls."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_of(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical content of an entry from its fields (an export record, a table row's
    values): exactly `CONTENT_FIELDS`, integers as integers, empty optional texts as null.
    Raises ValueError on a missing or mistyped field."""
    content: dict[str, Any] = {}
    for name in CONTENT_FIELDS:
        if name not in fields:
            raise ValueError(f"field {name!r} is missing")
        value = fields[name]
        if name in INT_FIELDS:
            if isinstance(value, str) and value.lstrip("-").isdigit():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"field {name!r} is not an integer: {value!r}")
        elif name == "roles":
            value = _roles(value)
        elif name in OPTIONAL_TEXT and (value is None or value == ""):
            value = None
        elif not isinstance(value, str):
            raise ValueError(f"field {name!r} is not a text: {value!r}")
        content[name] = value
    return content


def _roles(value: Any) -> list[str] | None:
    """A list of texts; none, an empty list or an empty cell is null. A CSV cell holds the
    list as JSON."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else None
        except ValueError:
            raise ValueError(f"field 'roles' is not a JSON list: {value!r}") from None
    if not value:
        return None
    if not isinstance(value, list) or not all(isinstance(role, str) for role in value):
        raise ValueError(f"field 'roles' is not a list of texts: {value!r}")
    return list(value)


def content_hash(content: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json(content))


def entry_hash(prev_hash: str, content_digest: str) -> str:
    return sha256_hex(canonical_json({"content_hash": content_digest, "prev_hash": prev_hash}))


def seal(content: Mapping[str, Any], prev_hash: str) -> str:
    """The `entry_hash` of an entry with this content after an entry hashed `prev_hash`."""
    return entry_hash(prev_hash, content_hash(content))


# -- the records of an export ------------------------------------------------------------------


def header_record(
    *,
    since: int | None,
    until: int | None,
    models: list[str] | None,
    after_seq: int,
    last_seq: int,
    start_hash: str,
    chain_length: int,
    chain_head: str,
    exported_ms: int,
) -> dict[str, Any]:
    """The first record: what was asked for, and the run of the chain that answers it:
    entries `after_seq + 1` .. `last_seq`, the first following the entry hashed `start_hash`
    (`GENESIS_HASH` when it is the chain's first). `chain_length` and `chain_head` are the
    whole chain's when the export began: an anchor worth keeping."""
    return {
        "record": "header",
        "format": FORMAT,
        "since": since,
        "until": until,
        "models": models,
        "after_seq": after_seq,
        "last_seq": last_seq,
        "start_hash": start_hash,
        "chain_length": chain_length,
        "chain_head": chain_head,
        "exported_ms": exported_ms,
    }


def entry_record(content: Mapping[str, Any], prev_hash: str, entry_digest: str) -> dict[str, Any]:
    """An entry in full: its content, its `prev_hash` and `entry_hash` (as stored)."""
    return {"record": "entry", **content, "prev_hash": prev_hash, "entry_hash": entry_digest}


def link_record(
    chain_seq: int, content_digest: str, prev_hash: str, entry_digest: str
) -> dict[str, Any]:
    """An entry the export leaves out (another model's): its place and hashes only."""
    return {
        "record": "link",
        "chain_seq": chain_seq,
        "content_hash": content_digest,
        "prev_hash": prev_hash,
        "entry_hash": entry_digest,
    }


def end_record(count: int, last_seq: int, last_hash: str) -> dict[str, Any]:
    """The last record: how many entries and links came, the last one's place and hash."""
    return {"record": "end", "count": count, "last_seq": last_seq, "last_hash": last_hash}


# -- verification ------------------------------------------------------------------------------


class ChainBroken(Exception):
    """An export that does not verify; the message names the first record that does not
    match, and how."""


@dataclass(frozen=True)
class Anchor:
    """A head hash held elsewhere, optionally with the chain length it was taken at."""

    entry_hash: str
    chain_seq: int | None = None

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """`HASH` or `COUNT:HASH` (as the AUDIT_ANCHOR event gives them)."""
        count, _, digest = text.strip().rpartition(":")
        digest = digest.lower()
        if len(digest) != HASH_LENGTH or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"an anchor is a SHA-256 hex digest, or COUNT:HASH; got {text!r}")
        if count and not count.isdigit():
            raise ValueError(f"an anchor's count is a number; got {count!r}")
        return cls(digest, int(count) if count else None)


@dataclass
class Verdict:
    """What a verified export proves."""

    entries: int
    links: int
    after_seq: int
    last_seq: int
    last_hash: str
    anchored_at: list[int] = field(default_factory=list)
    """The chain positions the anchors were found at."""


@dataclass
class _Seen:
    line: int
    chain_seq: int
    label: str


class ChainVerifier:
    """Checks an export record by record (`feed`), then as a whole (`finish`, which raises
    ChainBroken naming the first record that does not match): edited (its content does not
    hash to its `entry_hash`), removed or reordered (a place in the chain skipped), inserted
    or spliced (it does not follow the entry before it), truncated (no end record, or fewer
    records than the header announced), or not matching an anchor (a history rewritten)."""

    def __init__(self, anchors: Iterable[Anchor] = ()) -> None:
        self.anchors = list(anchors)
        self._header: dict[str, Any] | None = None
        self._ended = False
        self._expected_seq = 0
        self._prev_hash = GENESIS_HASH
        self._previous: _Seen | None = None
        self._entries = self._links = 0
        self._hashes: dict[str, int] = {}
        self._failure: str | None = None
        self._missing: int | None = None
        """After a skipped place: the entry missing there, looked for in the rest."""
        self._missing_at: int | None = None

    def feed(self, record: Mapping[str, Any], line: int) -> None:
        """Check one record (its line number names it). After the first failure, the rest is
        only searched for the entry missing at a skipped place (moved, or removed)."""
        if self._failure is not None:
            if self._missing is not None and self._missing_at is None:
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    if int(record["chain_seq"]) == self._missing:
                        self._missing_at = line
            return
        try:
            self._feed(record, line)
        except ChainBroken as err:
            self._failure = str(err)

    def _feed(self, record: Mapping[str, Any], line: int) -> None:
        kind = record.get("record")
        if self._ended:
            raise ChainBroken(f"line {line}: a record after the end record (inserted)")
        if self._header is None:
            if kind != "header":
                raise ChainBroken(f"line {line}: the export does not start with its header")
            self._start(record, line)
        elif kind == "end":
            self._end(record, line)
        elif kind in ("entry", "link"):
            self._entry(record, line, kind)
        else:
            raise ChainBroken(f"line {line}: unknown record {kind!r}")

    def finish(self) -> Verdict:
        if self._failure is not None:
            if self._missing is None:
                raise ChainBroken(self._failure)
            if self._missing_at is None:
                raise ChainBroken(f"{self._failure}: it is nowhere in the export (removed)")
            raise ChainBroken(
                f"{self._failure}: it comes later, at line {self._missing_at} (reordered)"
            )
        if self._header is None:
            raise ChainBroken("the export is empty: no header")
        if not self._ended:
            after = self._previous.label if self._previous else "the header"
            raise ChainBroken(f"truncated: the export ends after {after} without its end record")
        anchored = [self._check_anchor(anchor) for anchor in self.anchors]
        return Verdict(
            entries=self._entries,
            links=self._links,
            after_seq=int(self._header["after_seq"]),
            last_seq=self._expected_seq,
            last_hash=self._prev_hash,
            anchored_at=anchored,
        )

    def _start(self, record: Mapping[str, Any], line: int) -> None:
        if record.get("format") != FORMAT:
            raise ChainBroken(f"line {line}: not a {FORMAT} export ({record.get('format')!r})")
        try:
            after, last = int(record["after_seq"]), int(record["last_seq"])
            start = str(record["start_hash"])
        except (KeyError, TypeError, ValueError) as err:
            raise ChainBroken(f"line {line}: malformed header ({err})") from None
        if not 0 <= after <= last:
            raise ChainBroken(f"line {line}: the header's range {after}..{last} is not a range")
        self._header = dict(record)
        self._expected_seq = after
        self._prev_hash = start
        self._hashes[start] = after

    def _entry(self, record: Mapping[str, Any], line: int, kind: str) -> None:
        try:
            seq = int(record["chain_seq"])
            prev, stated = str(record["prev_hash"]), str(record["entry_hash"])
            if kind == "entry":
                content = content_of(record)
                digest = content_hash(content)
            else:
                digest = str(record["content_hash"])
        except (KeyError, TypeError, ValueError) as err:
            raise ChainBroken(f"line {line}: malformed {kind} ({err})") from None
        label = f"entry {seq}" + (f" ({record.get('id')})" if kind == "entry" else " (a link)")
        label = f"{label} at line {line}"
        if entry_hash(prev, digest) != stated:
            what = "content does" if kind == "entry" else "hashes do"
            raise ChainBroken(f"{label}: its {what} not match its entry_hash (edited)")
        self._check_place(seq, prev, label)
        if seq > int(self._header["last_seq"]):  # type: ignore[index]
            raise ChainBroken(f"{label}: beyond the header's last entry (inserted)")
        self._expected_seq, self._prev_hash = seq, stated
        self._previous = _Seen(line, seq, label)
        self._hashes[stated] = seq
        if kind == "entry":
            self._entries += 1
        else:
            self._links += 1

    def _check_place(self, seq: int, prev: str, label: str) -> None:
        expected = self._expected_seq + 1
        before = self._previous.label if self._previous else "the header"
        if seq > expected:
            self._missing = expected
            raise ChainBroken(f"{label}: entry {expected} should come before it")
        if seq < expected:
            raise ChainBroken(
                f"{label}: follows {before}, which holds that place or a later one "
                "(reordered, or inserted)"
            )
        if prev != self._prev_hash:
            raise ChainBroken(
                f"{label}: does not follow {before}: its prev_hash is not that entry's hash "
                "(that entry was inserted or replaced, or entries were spliced)"
            )

    def _end(self, record: Mapping[str, Any], line: int) -> None:
        last = int(self._header["last_seq"])  # type: ignore[index]
        count = self._entries + self._links
        if self._expected_seq != last:
            raise ChainBroken(
                f"truncated: the export stops at entry {self._expected_seq}; its header "
                f"announced entries up to {last}"
            )
        try:
            stated = (int(record["count"]), int(record["last_seq"]), str(record["last_hash"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ChainBroken(f"line {line}: malformed end record ({err})") from None
        if stated != (count, self._expected_seq, self._prev_hash):
            raise ChainBroken(
                f"line {line}: the end record announces {stated[0]} entries up to entry "
                f"{stated[1]} ({stated[2][:12]}…); the export holds {count} up to entry "
                f"{self._expected_seq} ({self._prev_hash[:12]}…)"
            )
        self._ended = True

    def _check_anchor(self, anchor: Anchor) -> int:
        """Where the anchor is in this export; ChainBroken when it is not there."""
        after, last = int(self._header["after_seq"]), self._expected_seq  # type: ignore[index]
        found = self._hashes.get(anchor.entry_hash)
        if anchor.chain_seq is None:
            if found is None:
                raise ChainBroken(
                    f"anchor {anchor.entry_hash} is no entry's hash in this export: the history "
                    "was rewritten, or the export does not reach the anchor"
                )
            return found
        if not after <= anchor.chain_seq <= last:
            raise ChainBroken(
                f"anchor at entry {anchor.chain_seq} is outside this export (entries "
                f"{after + 1}..{last}); export a range that includes it"
            )
        if found != anchor.chain_seq:
            raise ChainBroken(
                f"entry {anchor.chain_seq} does not have the anchor's hash "
                f"{anchor.entry_hash}: the history up to entry {anchor.chain_seq} was rewritten"
            )
        return found
