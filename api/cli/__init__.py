"""The `signoff` command: run the stack's processes, and act on requests through the API.

One module per command group: `processes` (dev, worker, api), `transitions` (request, approve,
reject, cancel, requests, activities), `evidence` (evidence), `policy` (policy check, explain,
test, diff), `audit` (export, verify), `db` (db upgrade), `tokens` (token).
"""

from __future__ import annotations

import inspect

import typer

from api.cli import evidence, processes, tokens, transitions
from api.cli.audit import audit_app
from api.cli.client import WHERE_FROM
from api.cli.db import db_app
from api.cli.helptext import SignoffCommand, SignoffGroup
from api.cli.policy import policy_app

app = typer.Typer(
    cls=SignoffGroup,
    help=(
        "Signoff: governed, audited MLflow registry transitions.\n\n"
        "`signoff dev` runs the whole stack on this machine. " + WHERE_FROM
    ),
    no_args_is_help=True,
    add_completion=False,
    # Markdown: paragraphs are reflowed and `code` is shown as code.
    rich_markup_mode="markdown",
)
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")

for command in (processes.dev, processes.worker, processes.api, tokens.token):
    app.command(cls=SignoffCommand)(command)

CLIENT_COMMANDS = (
    transitions.request,
    transitions.rollback,
    transitions.approve,
    transitions.reject,
    transitions.cancel,
    transitions.requests,
    transitions.activities,
    evidence.evidence,
)
"""The commands that call the API: their help says where the URL and the token come from."""

for command in CLIENT_COMMANDS:
    app.command(cls=SignoffCommand, help=f"{inspect.getdoc(command)}\n\n{WHERE_FROM}")(command)

__all__ = ["app"]
