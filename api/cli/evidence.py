"""`signoff evidence ID`: the evidence packet of a request or a break-glass move."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from api.cli.client import api_client, fail

EVIDENCE = "/api/2.0/signoff/transition-requests/evidence"


def evidence(
    id: Annotated[str, typer.Argument(metavar="ID", help="A request id, or breakglass-….")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write it here (default stdout)."),
    ] = None,
    format: Annotated[
        Literal["json", "pdf"] | None,
        typer.Option("--format", help="json or pdf; default from FILE's suffix, else json."),
    ] = None,
) -> None:
    """The evidence packet of a request (or a break-glass move): the version, the rule in
    words and the pinned policy with its hash, every check with its evidence, every decision
    with the person's roles, comments and the full trail. JSON per
    docs/schemas/evidence.schema.json, or a PDF for people."""
    kind = format or ("pdf" if output and output.suffix.lower() == ".pdf" else "json")
    if kind == "pdf" and output is None and sys.stdout.isatty():
        fail("a PDF is not for a terminal; write it to a file with -o FILE")
    client = api_client()
    if kind == "pdf":
        chunks: list[bytes] = []
        client.download(EVIDENCE, chunks.append, params={"id": id, "format": "pdf"})
        content = b"".join(chunks)
    else:
        packet = client.call("GET", EVIDENCE, params={"id": id, "format": "json"})
        content = (json.dumps(packet, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(content)
        return
    try:
        output.write_bytes(content)
    except OSError as err:
        fail(f"cannot write {output}: {err.strerror or err}")
    typer.echo(f"wrote the evidence packet of {id} to {output} ({kind}, {len(content)} bytes)")
