"""`signoff policy ...`: work with policy files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.client import plain
from api.cli.helptext import SignoffCommand, SignoffGroup
from policies import check_policy_file, policy_warnings_of_file

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
    """Validate a policy file; print every problem with its line, then warnings (rules that can
    never match, targets left ungoverned by risk tiers), which do not fail the check."""
    issues = check_policy_file(file)
    if issues:
        for issue in issues:
            typer.secho(plain(str(issue)), fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    warnings = policy_warnings_of_file(file)
    for warning in warnings:
        typer.secho(f"warning: {plain(str(warning))}", fg=typer.colors.YELLOW, err=True)
    note = f" ({len(warnings)} warning(s))" if warnings else ""
    typer.secho(f"{file}: OK{note}", fg=typer.colors.GREEN)
