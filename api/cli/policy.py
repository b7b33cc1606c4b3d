"""`signoff policy ...`: work with policy files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.client import plain
from api.cli.helptext import SignoffCommand, SignoffGroup
from policies import check_policy_file

policy_app = typer.Typer(
    cls=SignoffGroup,
    help="Work with policy files.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@policy_app.command("check", cls=SignoffCommand)
def policy_check(
    file: Annotated[Path, typer.Argument(help="The policy YAML file.", metavar="FILE")],
) -> None:
    """Validate a policy file; print every problem with its line."""
    issues = check_policy_file(file)
    if issues:
        for issue in issues:
            typer.secho(plain(str(issue)), fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.secho(f"{file}: OK", fg=typer.colors.GREEN)
