"""An audit export on the wire and on disk: JSON Lines or CSV, written a record at a time and
read back into records for `workflows.ledger.chain.ChainVerifier`. Pure, like the chain.

- JSON Lines (`application/x-ndjson`): one record per line, as `workflows.ledger.chain`
  builds them (`"record"`: `header`, `entry`, `link`, `end`).
- CSV (`text/csv`, RFC 4180): a header row of `CSV_COLUMNS`, then one row per record. An entry
  fills the content columns and its hashes (`roles` as a JSON list); a link its `chain_seq`
  and hashes; the header and end records carry their fields as a JSON object in `meta`. An
  empty cell is an absent value. A cell whose text begins with `=`, `+`, `-`, `@`, a tab or a
  carriage return (what a spreadsheet runs as a formula) or with `'` is written with one `'`
  before it, which the reader takes off: the file opens safely and still verifies.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from workflows.ledger.chain import CONTENT_FIELDS

JSONL = "jsonl"
CSV = "csv"
MEDIA_TYPES = {JSONL: "application/x-ndjson", CSV: "text/csv; charset=utf-8"}
HASH_COLUMNS = ("content_hash", "prev_hash", "entry_hash")
CSV_COLUMNS = ("record", *CONTENT_FIELDS, *HASH_COLUMNS, "meta")
META_RECORDS = frozenset({"header", "end"})
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
"""OWASP's CSV-injection characters, and the quote mark that escapes them."""


def jsonl_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_header() -> str:
    return _csv_text(list(CSV_COLUMNS))


def csv_line(record: dict[str, Any]) -> str:
    kind = record["record"]
    cells = dict.fromkeys(CSV_COLUMNS, "")
    cells["record"] = kind
    if kind in META_RECORDS:
        meta = {key: value for key, value in record.items() if key != "record"}
        cells["meta"] = json.dumps(meta, ensure_ascii=False, separators=(",", ":"))
    else:
        for key, value in record.items():
            if key in cells and key != "record":
                cells[key] = _cell(value)
    return _csv_text([cells[column] for column in CSV_COLUMNS])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # roles
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _uncell(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def _csv_text(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


def encode(record: dict[str, Any], fmt: str) -> str:
    return jsonl_line(record) if fmt == JSONL else csv_line(record)


def read_records(stream: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The records of an export file (text, opened with `newline=""`), with the line each
    ends on; the format is told by the first character. A line that cannot be read is the
    record `{"record": "unreadable", "reason": ...}`."""
    lines = iter(stream)
    first = next(lines, None)
    if first is None:
        return
    rest = _chain_first(first, lines)
    if first.lstrip("\ufeff").startswith("{"):
        yield from _jsonl_records(rest)
    else:
        yield from _csv_records(rest)


def _chain_first(first: str, lines: Iterator[str]) -> Iterator[str]:
    yield first
    yield from lines


def _jsonl_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            yield number, {"record": "unreadable", "reason": f"not JSON: {err}"}
            continue
        if not isinstance(record, dict):
            record = {"record": "unreadable", "reason": "not a JSON object"}
        yield number, record


def _csv_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(lines)
    try:
        columns = next(reader)
    except (csv.Error, StopIteration):
        return
    if columns and columns[0].startswith("\ufeff"):
        columns[0] = columns[0][1:]
    if tuple(columns) != CSV_COLUMNS:
        yield reader.line_num, {"record": "unreadable", "reason": "not an audit export's columns"}
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield reader.line_num, {"record": "unreadable", "reason": f"bad CSV: {err}"}
            return
        if row:
            yield reader.line_num, _csv_record(row)


def _csv_record(row: list[str]) -> dict[str, Any]:
    if len(row) != len(CSV_COLUMNS):
        return {"record": "unreadable", "reason": f"{len(row)} cells, not {len(CSV_COLUMNS)}"}
    cells = dict(zip(CSV_COLUMNS, row, strict=True))
    kind = cells["record"]
    if kind in META_RECORDS:
        try:
            meta = json.loads(cells["meta"])
        except ValueError as err:
            return {"record": "unreadable", "reason": f"meta is not JSON: {err}"}
        return {**(meta if isinstance(meta, dict) else {}), "record": kind}
    wanted = ("chain_seq", *HASH_COLUMNS) if kind == "link" else (*CONTENT_FIELDS, *HASH_COLUMNS)
    return {"record": kind, **{name: _uncell(cells[name]) for name in wanted}}
