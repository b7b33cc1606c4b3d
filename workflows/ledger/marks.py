"""Registry marks: what Signoff expects MLflow to show for each version.

A transition Signoff applies is marked pending (with its target) before MLflow is called and
applied after, so an observation made in between (MLflow's own webhook, the reconciler) is
recognised as Signoff's. Out-of-band changes, once recorded, are marked as observed, so each is
reported once.
"""

from __future__ import annotations

from sqlalchemy import or_
from sqlalchemy import update as sql_update
from sqlmodel import Session, col, select

from workflows.ledger.engine import Database
from workflows.ledger.records import RegistryMark
from workflows.ledger.tables import RegistryMarkRow

PENDING_GRACE_MS = 10 * 60 * 1000
"""How long a pending mark (a transition Signoff is applying) holds: observations of the version
are left alone meanwhile. A mark pending longer belongs to an apply that never came back."""


class RegistryMarkRepository:
    """`ledger.marks`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- reads ----------------------------------------------------------------------------

    async def get(self, model: str, version: str) -> RegistryMark | None:
        def work(session: Session) -> RegistryMark | None:
            row = session.get(RegistryMarkRow, (model, version))
            return _mark(row) if row else None

        return await self._db.run(work)

    async def of_model(self, model: str) -> list[RegistryMark]:
        query = select(RegistryMarkRow).where(RegistryMarkRow.model_name == model)
        return await self._db.run(lambda session: [_mark(r) for r in session.exec(query)])

    async def of_models(self, models: set[str]) -> dict[tuple[str, str], RegistryMark]:
        """The marks of every version of these models, by (model, version): what one page of
        the registry is compared with (a lookup by the key's prefix, whatever the ledger holds
        besides)."""
        if not models:
            return {}
        query = select(RegistryMarkRow).where(col(RegistryMarkRow.model_name).in_(sorted(models)))
        return await self._db.run(
            lambda session: {
                (row.model_name, row.version): _mark(row) for row in session.exec(query)
            }
        )

    async def all(self) -> dict[tuple[str, str], RegistryMark]:
        """Every mark, by (model, version)."""
        return await self._db.run(
            lambda session: {
                (row.model_name, row.version): _mark(row)
                for row in session.exec(select(RegistryMarkRow))
            }
        )

    # -- writes ---------------------------------------------------------------------------

    async def set_pending(
        self,
        *,
        model: str,
        version: str,
        request_id: str,
        target: str,
        stage: str,
        now_ms: int,
        exclusive: bool = False,
    ) -> bool:
        """Signoff is about to move the version (currently in `stage`) to `target`. With
        `exclusive`, only if no other move of the version holds the mark (one not yet stale):
        False then, and nothing changes. One conditional UPDATE, so two callers cannot both
        win, on SQLite as on PostgreSQL."""
        free = or_(
            col(RegistryMarkRow.pending_request).is_(None),
            col(RegistryMarkRow.pending_request) == request_id,
            col(RegistryMarkRow.pending_ms) <= now_ms - PENDING_GRACE_MS,
        )

        def work(session: Session) -> bool:
            query = sql_update(RegistryMarkRow).where(
                col(RegistryMarkRow.model_name) == model,
                col(RegistryMarkRow.version) == version,
            )
            if exclusive:
                query = query.where(free)
            result = session.exec(
                query.values(
                    pending_request=request_id, pending_target=target, pending_ms=now_ms
                ).execution_options(synchronize_session=False)
            )
            if result.rowcount:
                return True
            if session.get(RegistryMarkRow, (model, version)) is not None:
                return False  # held by another move
            session.add(
                RegistryMarkRow(
                    model_name=model,
                    version=version,
                    stage=stage,
                    aliases=[],
                    pending_request=request_id,
                    pending_target=target,
                    pending_ms=now_ms,
                    updated_ms=now_ms,
                )
            )
            return True

        # Created concurrently (IntegrityError): the UPDATE decides on the retry.
        return await self._db.run(work, attempts=2)

    async def set_applied(
        self,
        *,
        model: str,
        version: str,
        target: str,
        archive_others: bool,
        now_ms: int,
        request_id: str | None = None,
    ) -> None:
        """Signoff moved the version to `target` (an alias `@name` or a stage): expect that,
        and for other versions what MLflow did alongside (an alias moves off them; with
        `archive_others` they leave the stage for Archived). The pending mark of `request_id`
        (of any request, without one) ends."""

        def work(session: Session) -> None:
            rows = {
                row.version: row
                for row in session.exec(
                    select(RegistryMarkRow)
                    .where(RegistryMarkRow.model_name == model)
                    .with_for_update()
                )
            }
            row = rows.get(version) or RegistryMarkRow(
                model_name=model, version=version, aliases=[], updated_ms=now_ms
            )
            if target.startswith("@"):
                alias = target[1:]
                for other in rows.values():
                    if other.version != version and alias in (other.aliases or []):
                        other.aliases = [a for a in other.aliases if a != alias]
                        session.add(other)
                row.aliases = sorted({*(row.aliases or []), alias})
            else:
                if archive_others and target in ("Staging", "Production"):
                    for other in rows.values():
                        if other.version != version and other.stage == target:
                            other.stage = "Archived"
                            session.add(other)
                row.stage = target
            if request_id is None or row.pending_request == request_id:
                row.pending_request = row.pending_target = row.pending_ms = None
            row.updated_ms = now_ms
            session.add(row)

        await self._db.run(work)

    async def clear_pending(self, *, model: str, version: str, request_id: str) -> None:
        """The transition `request_id` will not happen (MLflow refused it)."""

        def work(session: Session) -> None:
            row = session.get(RegistryMarkRow, (model, version), with_for_update=True)
            if row is not None and row.pending_request == request_id:
                row.pending_request = row.pending_target = row.pending_ms = None
                session.add(row)

        await self._db.run(work)

    async def set_observed(
        self, *, model: str, version: str, stage: str, aliases: list[str], now_ms: int
    ) -> None:
        """Expect what MLflow shows now (a baseline, or an out-of-band change just recorded).
        An alias lives on one version, so it is taken off the model's other versions."""

        def work(session: Session) -> None:
            for other in session.exec(
                select(RegistryMarkRow).where(
                    RegistryMarkRow.model_name == model, RegistryMarkRow.version != version
                )
            ):
                if set(other.aliases or []) & set(aliases):
                    other.aliases = [a for a in other.aliases if a not in aliases]
                    session.add(other)
            row = session.get(RegistryMarkRow, (model, version), with_for_update=True)
            if row is None:
                row = RegistryMarkRow(model_name=model, version=version, updated_ms=now_ms)
            row.stage, row.aliases, row.updated_ms = stage, sorted(aliases), now_ms
            if row.pending_ms is not None and now_ms - row.pending_ms >= PENDING_GRACE_MS:
                # An apply that never came back: what MLflow shows now is the record.
                row.pending_request = row.pending_target = row.pending_ms = None
            session.add(row)

        await self._db.run(work)


def _mark(row: RegistryMarkRow) -> RegistryMark:
    return RegistryMark.model_validate(row, from_attributes=True)
