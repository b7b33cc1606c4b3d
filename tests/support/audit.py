"""Audit exports for tests: verify a text as `signoff audit verify` reads a file, and rewrite
records the way a forger would (recomputing every hash after an edit)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from workflows.ledger.chain import (
    Anchor,
    ChainVerifier,
    Verdict,
    content_hash,
    content_of,
    entry_hash,
)
from workflows.ledger.export_format import CSV, csv_header, encode, read_records


def verify_text(text: str, *anchors: str) -> Verdict:
    """Verify an export held in a string; raises ChainBroken."""
    verifier = ChainVerifier([Anchor.parse(anchor) for anchor in anchors])
    for line, record in read_records(io.StringIO(text, newline="")):
        verifier.feed(record, line)
    return verifier.finish()


def records_of(text: str) -> list[dict[str, Any]]:
    return [record for _, record in read_records(io.StringIO(text, newline=""))]


def write(records: Iterable[dict[str, Any]], fmt: str) -> str:
    head = csv_header() if fmt == CSV else ""
    return head + "".join(encode(record, fmt) for record in records)


def reseal(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recompute every entry's hashes, and the end record, so the chain is consistent again:
    a history rewritten by someone who can write the whole export."""
    out: list[dict[str, Any]] = []
    prev = ""
    count = 0
    for record in records:
        record = dict(record)
        if record["record"] == "header":
            prev = record["start_hash"]
        elif record["record"] in ("entry", "link"):
            digest = (
                content_hash(content_of(record))
                if record["record"] == "entry"
                else record["content_hash"]
            )
            record["prev_hash"] = prev
            record["entry_hash"] = prev = entry_hash(prev, digest)
            count += 1
        elif record["record"] == "end":
            record["count"], record["last_hash"] = count, prev
        out.append(record)
    return out
