"""How `--help` reads: flags (`--wait/--no-wait`, `--all`, `--help`) show no `<bool>` type
tag, since they take no value; options with a value show a metavar naming it (`--port PORT`)."""

from __future__ import annotations

from typing import Any

import typer.core


def _untagged(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # typer prints the metavar, when set, instead of `<bool>`
    return params


class SignoffCommand(typer.core.TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _untagged(super().get_params(ctx))


class SignoffGroup(typer.core.TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _untagged(super().get_params(ctx))
