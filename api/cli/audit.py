"""`signoff audit ...`: export the audit trail with its hashes, and verify an export offline
(`workflows.ledger.chain`: no API, no database, no token)."""

from __future__ import annotations

import datetime as dt
import inspect
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.client import WHERE_FROM, api_client, fail
from api.cli.helptext import SignoffCommand, SignoffGroup

if TYPE_CHECKING:
    # `workflows.ledger` imports SQLAlchemy and Alembic: only when an export is verified.
    from workflows.ledger.chain import Anchor, Verdict

audit_app = typer.Typer(
    cls=SignoffGroup,
    help="Export the audit trail with its hashes, and prove an export complete and unaltered.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

TIME_HELP = "Epoch milliseconds, or an ISO 8601 time (UTC unless it names its offset)."


def epoch_ms(value: str | None, option: str) -> int | None:
    """`--since`/`--until` as epoch milliseconds."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is neither epoch milliseconds nor an ISO 8601 time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def export(
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write here (default: stdout).", metavar="FILE"),
    ] = None,
    since: Annotated[str | None, typer.Option(help=TIME_HELP, metavar="TIME")] = None,
    until: Annotated[str | None, typer.Option(help=TIME_HELP, metavar="TIME")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Only this model's entries (repeatable).", metavar="NAME"),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="jsonl or csv (default: by FILE's suffix, else jsonl).",
            metavar="FORMAT",
        ),
    ] = None,
) -> None:
    """Export the audit entries (recorded at or after --since, before --until) with their
    hashes; a file written is verified at once. Exporting every model needs CAN_MANAGE on "*"; with
    --model, CAN_MANAGE on each model named."""
    from workflows.ledger.export_format import CSV, JSONL

    fmt = fmt or (CSV if output is not None and output.suffix.lower() == ".csv" else JSONL)
    if fmt not in (JSONL, CSV):
        fail(f"--format is jsonl or csv, not {fmt!r}")
    params: dict[str, Any] = {"format": fmt, "models": model or []}
    for name, value in (("since", since), ("until", until)):
        if (ms := epoch_ms(value, f"--{name}")) is not None:
            params[name] = ms
    client = api_client()
    if output is None:
        client.download("/api/2.0/signoff/audit/export", sys.stdout.buffer.write, params=params)
        sys.stdout.flush()
        return
    with output.open("wb") as sink:
        client.download("/api/2.0/signoff/audit/export", sink.write, params=params)
    typer.echo(f"{output}: {_summary(_verify(output, []), anchored=None)}", err=True)


audit_app.command("export", cls=SignoffCommand, help=f"{inspect.getdoc(export)}\n\n{WHERE_FROM}")(
    export
)


@audit_app.command("verify", cls=SignoffCommand)
def verify(
    file: Annotated[Path, typer.Argument(help="An export (JSON Lines or CSV).", metavar="FILE")],
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            "--anchor",
            help="A head hash kept elsewhere (an AUDIT_ANCHOR event, `audit/anchors/list`, "
            "an earlier export's last hash): `HASH` or `LENGTH:HASH`. Repeatable.",
            metavar="HASH",
        ),
    ] = None,
) -> None:
    """Prove an export complete and unaltered: every entry hashes to its entry_hash, follows
    the one before it, and the end record closes it; each --anchor is in it. Otherwise name
    the first entry that does not match. Offline: needs no API and no token."""
    from workflows.ledger.chain import Anchor

    try:
        anchors = [Anchor.parse(value) for value in anchor or []]
    except ValueError as err:
        fail(str(err))
    typer.echo(f"{file}: {_summary(_verify(file, anchors))}")


def _verify(file: Path, anchors: list[Anchor]) -> Verdict:
    from workflows.ledger.chain import ChainBroken, ChainVerifier
    from workflows.ledger.export_format import read_records

    verifier = ChainVerifier(anchors)
    try:
        with file.open(encoding="utf-8", newline="") as stream:
            for line, record in read_records(stream):
                verifier.feed(record, line)
        return verifier.finish()
    except OSError as err:
        fail(f"cannot read {file}: {err.strerror or err}")
    except UnicodeDecodeError as err:
        fail(f"{file} is not UTF-8 text ({err.reason} at byte {err.start})")
    except ChainBroken as err:
        fail(f"{file} does not verify: {err}")


def _summary(verdict: Verdict, anchored: bool | None = False) -> str:
    """What a verified file proves; `anchored` None: say nothing of anchors."""
    held = f"{verdict.entries} entries" + (f" and {verdict.links} links" if verdict.links else "")
    span = (
        f"chain entries {verdict.after_seq + 1}..{verdict.last_seq}"
        if verdict.last_seq > verdict.after_seq
        else f"no entries after chain entry {verdict.after_seq}"
    )
    lines = [
        f"OK: {held}, {span}, complete and unaltered; last {verdict.last_seq}:{verdict.last_hash}"
    ]
    for place in verdict.anchored_at:
        lines.append(f"anchor matched at chain entry {place}")
    if anchored is not None and not verdict.anchored_at:
        lines.append("no --anchor given: a history rewritten as a whole would also verify")
    return "\n".join(lines)
