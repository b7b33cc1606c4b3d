"""The `signoff` command: run the stack's processes, and act on requests through the API.

One module per command group: `processes` (dev, worker, api), `transitions` (request, approve,
reject, cancel, requests, activities), `policy` (policy check), `tokens` (token).
"""

from __future__ import annotations

import typer

from api.cli import processes, tokens, transitions
from api.cli.policy import policy_app

app = typer.Typer(
    help="Signoff: governed, audited MLflow registry transitions.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(policy_app, name="policy")

for command in (
    processes.dev,
    processes.worker,
    processes.api,
    tokens.token,
    transitions.request,
    transitions.approve,
    transitions.reject,
    transitions.cancel,
    transitions.requests,
    transitions.activities,
):
    app.command()(command)

__all__ = ["app"]
