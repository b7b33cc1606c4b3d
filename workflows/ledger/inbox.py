"""The web page's inbox as ledger queries: one keyset page of a tab, with the count of each tab.

- *waiting*: PENDING requests in which one of the viewer's roles may approve (the
  `request_approver_roles` index, written from the pinned policy when the request opens and
  emptied when it leaves PENDING), that the viewer did not request (unless the rule allows
  self-approval) and has not approved already; oldest first.
- *mine*: the viewer's own requests, newest first.
- *decided*: closed requests, most recently changed first.

Every tab is narrowed to the models the viewer may read (`readable`, names decided by the
caller from the policy), and by model, target and state. Pages are keyset pages: the cursor is
the sort key and id of the last row of the page before, so a page costs the same however deep.

Counts are capped at `COUNT_CAP`: a tab holding more is counted as `COUNT_CAP` and named in
`capped` ("1,000+"), so a count reads at most that many rows (in the tab's order, by the index
the page uses) however large the tab grows. The models of a capped tab are those of its first
`COUNT_CAP` + 1 requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, exists, false, func, or_
from sqlalchemy import update as sql_update
from sqlmodel import Session, col, select

from workflows.domain import AuditType, RequestSnapshot, RequestState
from workflows.ledger.engine import Database
from workflows.ledger.requests import OPEN_STATES, index_approver_roles, snapshot_of
from workflows.ledger.tables import AuditEntryRow, RequestApproverRoleRow, TransitionRequestRow

InboxTab = Literal["waiting", "mine", "decided"]
TABS: tuple[InboxTab, ...] = ("waiting", "mine", "decided")

_R = TransitionRequestRow

CLOSED_STATES = sorted(state.value for state in RequestState if state.value not in OPEN_STATES)
COUNT_CAP = 1000
"""A tab's count stops here: more is shown as "1,000+"."""


class InboxQuery(BaseModel):
    """Who asks, for which tab, narrowed how, from where on."""

    model_config = ConfigDict(frozen=True)

    tab: InboxTab
    subject: str
    roles: list[str]
    readable: list[str] | None
    """The model names the viewer may read; None: every model."""
    model: str | None = None
    target: str | None = None
    state: str | None = None
    after: tuple[int, str] | None = None
    """The cursor: (sort key in ms, id) of the last row of the page before."""
    limit: int = 25
    count_cap: int = COUNT_CAP
    """Each tab is counted up to this many requests."""


class InboxSlice(BaseModel):
    """One page of a tab, the cursor of the next one (None: this is the last), and how many
    requests each tab holds under the same filters."""

    rows: list[RequestSnapshot]
    next_after: tuple[int, str] | None
    counts: dict[InboxTab, int]
    """At most the query's `count_cap` each."""
    capped: list[InboxTab]
    """The tabs holding more than `count_cap` requests (their count is `count_cap`)."""
    models: list[str]
    """The models the tab holds, whatever the model filter (for choosing one); of a capped
    tab, those of its first `COUNT_CAP` + 1 requests in the tab's order."""


def _tab_filter(tab: InboxTab, query: InboxQuery) -> list[Any]:
    if tab == "mine":
        return [col(_R.requester) == query.subject]
    if tab == "decided":  # named, not "not open": an index on the state serves it
        return [col(_R.state).in_(CLOSED_STATES)]
    if not query.roles:
        return [false()]
    approved_already = exists().where(
        col(AuditEntryRow.request_id) == _R.id,
        col(AuditEntryRow.user_id) == query.subject,
        col(AuditEntryRow.activity_type) == AuditType.APPROVED_REQUEST.value,
    )
    return [
        col(_R.state) == RequestState.PENDING.value,
        col(_R.id).in_(
            select(RequestApproverRoleRow.request_id).where(
                col(RequestApproverRoleRow.role).in_(sorted(set(query.roles)))
            )
        ),
        or_(col(_R.requester) != query.subject, col(_R.self_approval).is_(True)),
        ~approved_already,
    ]


def _filters(tab: InboxTab, query: InboxQuery) -> list[Any]:
    where = _tab_filter(tab, query)
    if query.readable is not None:
        where.append(col(_R.model_name).in_(query.readable))
    if query.model is not None:
        where.append(col(_R.model_name) == query.model)
    if query.target is not None:
        where.append(col(_R.target) == query.target)
    if query.state is not None:
        where.append(col(_R.state) == query.state)
    return where


def _sort_key(tab: InboxTab) -> Any:
    return col(_R.updated_ms) if tab == "decided" else col(_R.created_ms)


def _order(tab: InboxTab) -> tuple[Any, Any]:
    """Oldest waiting first; the other tabs newest first."""
    key = _sort_key(tab)
    if tab == "waiting":
        return key.asc(), col(_R.id).asc()
    return key.desc(), col(_R.id).desc()


def _first(tab: InboxTab, where: list[Any], column: Any, cap: int, *, ordered: bool = True) -> Any:
    """`column` of the tab's first `cap` + 1 rows, in the tab's order (or any `cap` + 1 rows,
    not `ordered`), as a subquery."""
    statement = select(column).where(*where)
    if ordered:
        statement = statement.order_by(*_order(tab))
    return statement.limit(cap + 1).subquery()


def _page(session: Session, query: InboxQuery) -> tuple[list[RequestSnapshot], Any]:
    tab, key = query.tab, _sort_key(query.tab)
    statement = select(_R).where(*_filters(tab, query))
    ascending = tab == "waiting"  # oldest waiting first; the others newest first
    if query.after is not None:
        at, last_id = query.after
        if ascending:
            statement = statement.where(or_(key > at, and_(key == at, col(_R.id) > last_id)))
        else:
            statement = statement.where(or_(key < at, and_(key == at, col(_R.id) < last_id)))
    found = list(session.exec(statement.order_by(*_order(tab)).limit(query.limit + 1)))
    rows = [snapshot_of(row) for row in found[: query.limit]]
    more = len(found) > query.limit
    last = found[query.limit - 1] if more else None
    next_after = None
    if last is not None:
        next_after = (last.updated_ms if tab == "decided" else last.created_ms, last.id)
    return rows, next_after


class InboxRepository:
    """`ledger.inbox`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def page(self, query: InboxQuery) -> InboxSlice:
        def work(session: Session) -> InboxSlice:
            rows, next_after = _page(session, query)
            # The tab's models and its count in one capped pass (the models ignore the model
            # filter, so without one the count is their sum); the other tabs are counted.
            any_model = query.model_copy(update={"model": None})
            cap = query.count_cap
            seen = _first(query.tab, _filters(query.tab, any_model), _R.model_name, cap)
            per_model = dict(
                session.exec(
                    select(seen.c.model_name, func.count()).group_by(seen.c.model_name)
                ).all()
            )
            found: dict[InboxTab, int] = {}
            for tab in TABS:
                if tab == query.tab and query.model is None:
                    found[tab] = sum(per_model.values())
                else:
                    matching = _first(tab, _filters(tab, query), _R.id, cap, ordered=False)
                    found[tab] = int(session.exec(select(func.count()).select_from(matching)).one())
            return InboxSlice(
                rows=rows,
                next_after=next_after,
                counts={tab: min(n, cap) for tab, n in found.items()},
                capped=[tab for tab, n in found.items() if n > cap],
                models=sorted(per_model),
            )

        return await self._db.run(work)

    async def model_names(self) -> list[str]:
        """Every model the ledger has a request of."""
        statement = select(_R.model_name).distinct()
        return await self._db.run(lambda session: sorted(session.exec(statement)))

    async def unindexed_pending(self, limit: int = 500) -> list[RequestSnapshot]:
        """PENDING requests written before Signoff indexed their approver roles."""
        statement = (
            select(_R)
            .where(col(_R.state) == RequestState.PENDING.value, col(_R.approver_roles).is_(None))
            .limit(limit)
        )
        return await self._db.run(lambda session: [snapshot_of(r) for r in session.exec(statement)])

    async def index_unindexed(
        self, request_id: str, *, approver_roles: Sequence[str], self_approval: bool
    ) -> None:
        """Index a request written before Signoff did (its roles decided by the caller from
        today's policy); a request indexed meanwhile, by its own workflow, is left as it is."""

        def work(session: Session) -> None:
            result = session.exec(
                sql_update(_R)
                .where(col(_R.id) == request_id, col(_R.approver_roles).is_(None))
                .values(approver_roles=list(approver_roles), self_approval=self_approval)
                .execution_options(synchronize_session=False)
            )
            row = session.get(_R, request_id)
            if result.rowcount and row is not None:
                index_approver_roles(session, snapshot_of(row))

        await self._db.run(work, attempts=2)
