"""`signoff policy ...`: work with policy files: check, explain, test, diff."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.client import api_client, fail, load_settings, plain
from api.cli.helptext import SignoffCommand, SignoffGroup

if TYPE_CHECKING:
    from policies import Policy

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
    from policies import check_policy_file, policy_warnings_of_file

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


PolicyFile = Annotated[Path, typer.Argument(help="A policy YAML file.", metavar="POLICY")]


def _load(file: Path) -> Policy:
    """The policy in `file`, or every problem with it and exit 1."""
    from policies import PolicyError, load_policy

    try:
        return load_policy(file)
    except PolicyError as err:
        for issue in err.issues:
            typer.secho(plain(str(issue)), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def _tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--tag {pair!r}: write KEY=VALUE")
        tags[key] = value
    return tags


def _explain_remote(model: str, version: str, target: str, params: dict[str, Any]) -> None:
    from policies.explain import Explanation, explanation_lines

    answer = api_client().call(
        "GET",
        "/api/2.0/signoff/policy/explain",
        params={"name": model, "version": version, "target": target, **params},
    )
    explanation = Explanation.model_validate(answer["explanation"])
    typer.echo("\n".join(explanation_lines(explanation)))


@policy_app.command("explain", cls=SignoffCommand)
def policy_explain(
    model: Annotated[str, typer.Argument(metavar="MODEL")],
    version: Annotated[str, typer.Argument(metavar="VERSION")],
    target: Annotated[str, typer.Argument(metavar="TARGET", help="A stage or @alias.")],
    sub: Annotated[
        str | None, typer.Option("--as", help="Explain for this subject.", metavar="SUB")
    ] = None,
    role: Annotated[
        list[str], typer.Option("--role", help="A role of --as (repeat).", metavar="ROLE")
    ] = [],  # noqa: B006
    tag: Annotated[
        list[str], typer.Option("--tag", help="A version tag (repeat).", metavar="KEY=VALUE")
    ] = [],  # noqa: B006
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            metavar="FILE",
            help="The policy file; default SIGNOFF_POLICY_FILE or the packaged default.",
        ),
    ] = None,
    api: Annotated[
        bool, typer.Option("--api", help="Ask the running API (its policy, the version's tags).")
    ] = False,
) -> None:
    """Which rule applies to moving MODEL VERSION to TARGET and why, what it needs, and what
    `--as SUB --role ROLE` may do there (and, where not, why)."""
    from policies import Principal
    from policies.explain import explain, explanation_lines

    tags = _tags(tag)
    if role and not sub:
        fail("--role needs --as SUB")
    if api:
        params: dict[str, Any] = {"tag": tag}
        if sub:
            params |= {"as": sub, "role": role}
        _explain_remote(model, version, target, params)
        return
    loaded = _load(policy or load_settings().resolved_policy_file)
    principal = Principal(sub=sub, roles=role) if sub else None
    try:
        explanation = explain(
            loaded, model=model, target=target, version=version, tags=tags, principal=principal
        )
    except ValueError as err:
        fail(str(err))
    typer.echo("\n".join(explanation_lines(explanation)))


@policy_app.command("test", cls=SignoffCommand)
def policy_test(
    file: PolicyFile,
    cases: Annotated[Path, typer.Argument(help="The cases YAML file.", metavar="CASES")],
) -> None:
    """Check POLICY against the cases in CASES (`{model, version_tags, target, principal,
    expect: {rule, may_approve, quorum}}` each); exit 1 if any fails, with a diff."""
    from policies.cases import CasesError, load_cases, run_cases

    loaded = _load(file)
    try:
        text = cases.read_text(encoding="utf-8")
        results = run_cases(loaded, load_cases(text, str(cases)))
    except (OSError, CasesError) as err:
        fail(str(err))
    for result in results:
        color = typer.colors.GREEN if result.passed else typer.colors.RED
        for line in result.lines():
            typer.secho(line, fg=color)
    failed = sum(not result.passed for result in results)
    summary = f"{len(results) - failed} passed, {failed} failed"
    typer.secho(summary, fg=typer.colors.RED if failed else typer.colors.GREEN)
    if failed:
        raise typer.Exit(1)


@policy_app.command("diff", cls=SignoffCommand)
def policy_diff_command(
    old: Annotated[Path, typer.Argument(help="The policy before.", metavar="OLD")],
    new: Annotated[Path, typer.Argument(help="The policy after.", metavar="NEW")],
) -> None:
    """Which models and targets change requirements from OLD to NEW."""
    from policies.diff import policy_diff

    changes = policy_diff(_load(old), _load(new))
    if not changes:
        typer.echo("no model or target changes its requirements")
        return
    for change in changes:
        typer.echo(change.line())
