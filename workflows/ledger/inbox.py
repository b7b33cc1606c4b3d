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

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, bindparam, false, func, or_, text
from sqlalchemy import update as sql_update
from sqlmodel import Session, col, select

from workflows.domain import AuditType, RequestSnapshot, RequestState
from workflows.ledger.engine import Database
from workflows.ledger.requests import OPEN_STATES, index_approver_roles, snapshot_of
from workflows.ledger.tables import AuditEntryRow, RequestApproverRoleRow, TransitionRequestRow

InboxTab = Literal["waiting", "mine", "decided"]
TABS: tuple[InboxTab, ...] = ("waiting", "mine", "decided")

_R, _RR, _A = TransitionRequestRow, RequestApproverRoleRow, AuditEntryRow

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


@dataclass(frozen=True)
class _Shape:
    """Which of a query's narrowings are set: one statement is built per shape, once, with
    its values bound (building a statement costs more than the SQLite lookup it runs)."""

    roles: bool
    readable: bool
    model: bool
    target: bool
    state: bool


def _shape(query: InboxQuery) -> _Shape:
    return _Shape(
        roles=bool(query.roles),
        readable=query.readable is not None,
        model=query.model is not None,
        target=query.target is not None,
        state=query.state is not None,
    )


def _params(query: InboxQuery) -> dict[str, Any]:
    at, last_id = query.after or (None, None)
    values = {
        "subject": query.subject,
        "roles": sorted(set(query.roles)),
        "readable": query.readable,
        "model": query.model,
        "target": query.target,
        "state": query.state,
        "at": at,
        "last_id": last_id,
        "limit": query.limit + 1,
        "cap": query.count_cap + 1,
    }
    return {f"inbox_{key}": value for key, value in values.items() if value is not None}


def _bound(name: str, *, expanding: bool = False) -> Any:
    return bindparam(f"inbox_{name}", expanding=expanding)


def _tab_filter(tab: InboxTab, shape: _Shape) -> list[Any]:
    if tab == "mine":
        return [col(_R.requester) == _bound("subject")]
    if tab == "decided":  # named, not "not open": an index on the state serves it
        return [col(_R.state).in_(CLOSED_STATES)]
    if not shape.roles:
        return [false()]
    # Both probes by key, once per request read (a request's roles by its primary key, a
    # decision by `ix_activities_request_decisions`, covering): no list of every request
    # waiting for a role is built before the first row.
    may_approve = (
        select(_RR.request_id)
        .where(col(_RR.request_id) == _R.id, col(_RR.role).in_(_bound("roles", expanding=True)))
        .exists()
    )
    approved_already = (
        select(_A.request_id)
        .where(
            col(_A.request_id) == _R.id,
            col(_A.activity_type) == AuditType.APPROVED_REQUEST.value,
            col(_A.user_id) == _bound("subject"),
        )
        .exists()
    )
    return [
        col(_R.state) == RequestState.PENDING.value,
        or_(col(_R.requester) != _bound("subject"), col(_R.self_approval).is_(True)),
        may_approve,
        ~approved_already,
    ]


def _filters(tab: InboxTab, shape: _Shape) -> list[Any]:
    where = _tab_filter(tab, shape)
    if shape.readable:
        where.append(col(_R.model_name).in_(_bound("readable", expanding=True)))
    if shape.model:
        where.append(col(_R.model_name) == _bound("model"))
    if shape.target:
        where.append(col(_R.target) == _bound("target"))
    if shape.state:
        where.append(col(_R.state) == _bound("state"))
    return where


def _sort_key(tab: InboxTab) -> Any:
    return col(_R.updated_ms) if tab == "decided" else col(_R.created_ms)


def _order(tab: InboxTab) -> tuple[Any, Any]:
    """Oldest waiting first; the other tabs newest first."""
    key = _sort_key(tab)
    if tab == "waiting":
        return key.asc(), col(_R.id).asc()
    return key.desc(), col(_R.id).desc()


@functools.cache
def _page_statement(tab: InboxTab, shape: _Shape, after: bool) -> Any:
    """The tab's page: its first `limit` + 1 rows after the cursor."""
    statement = select(_R).where(*_filters(tab, shape))
    if after:
        key, at, last_id = _sort_key(tab), _bound("at"), _bound("last_id")
        if tab == "waiting":  # oldest waiting first; the others newest first
            statement = statement.where(or_(key > at, and_(key == at, col(_R.id) > last_id)))
        else:
            statement = statement.where(or_(key < at, and_(key == at, col(_R.id) < last_id)))
    return statement.order_by(*_order(tab)).limit(_bound("limit"))


@functools.cache
def _models_statement(tab: InboxTab, shape: _Shape) -> Any:
    """The models of the tab's first `cap` + 1 requests in its order, each with how many of
    them it has (`shape` without a model filter: the models are for choosing one)."""
    seen = (
        select(_R.model_name)
        .where(*_filters(tab, shape))
        .order_by(*_order(tab))
        .limit(_bound("cap"))
        .subquery()
    )
    return select(seen.c.model_name, func.count()).group_by(seen.c.model_name)


@functools.cache
def _counts_statement(tabs: tuple[InboxTab, ...], shape: _Shape) -> Any:
    """How many of any `cap` + 1 requests of each of `tabs` there are, in one statement."""
    counts = []
    for tab in tabs:
        matching = select(_R.id).where(*_filters(tab, shape)).limit(_bound("cap")).subquery()
        counts.append(select(func.count()).select_from(matching).scalar_subquery().label(tab))
    return select(*counts)


def _page(session: Session, query: InboxQuery, params: dict[str, Any]) -> tuple[Any, Any]:
    tab = query.tab
    statement = _page_statement(tab, _shape(query), query.after is not None)
    found = list(session.exec(statement, params=params))
    rows = [snapshot_of(row) for row in found[: query.limit]]
    last = found[query.limit - 1] if len(found) > query.limit else None
    next_after = None
    if last is not None:
        next_after = (last.updated_ms if tab == "decided" else last.created_ms, last.id)
    return rows, next_after


def _counts(session: Session, query: InboxQuery, params: dict[str, Any]) -> Any:
    """The tab's models (of its first `cap` + 1 requests, whatever the model filter) and each
    tab's count up to `cap` + 1: without a model filter the tab's count is the sum of its
    models' (one pass); the other tabs are counted in one statement."""
    shape = _shape(query)
    any_model = replace(shape, model=False)
    per_model = dict(session.exec(_models_statement(query.tab, any_model), params=params).all())
    others = tuple(tab for tab in TABS if tab != query.tab or shape.model)
    counted = session.exec(_counts_statement(others, shape), params=params).one()
    found: dict[InboxTab, int] = dict(zip(others, (int(n) for n in counted), strict=True))
    if not shape.model:
        found[query.tab] = sum(per_model.values())
    return per_model, {tab: found[tab] for tab in TABS}


_UNINDEXED = (
    select(_R)
    .where(col(_R.state) == RequestState.PENDING.value, col(_R.approver_roles).is_(None))
    .limit(_bound("limit"))
)
_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


def _plan_for_these_values(session: Session) -> None:
    """On PostgreSQL, plan this transaction's statements for their values. psycopg prepares a
    statement run five times, and PostgreSQL may then plan it once for any values: for a limit
    and a viewer it does not know, that plan reads the whole tab and sorts it (120 ms with
    10,000 waiting, against 9 ms for the plan that stops at the cap)."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(_CUSTOM_PLANS)


class InboxRepository:
    """`ledger.inbox`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def page(self, query: InboxQuery) -> InboxSlice:
        params = _params(query)

        def work(session: Session) -> InboxSlice:
            _plan_for_these_values(session)
            rows, next_after = _page(session, query, params)
            per_model, found = _counts(session, query, params)
            cap = query.count_cap
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
        """PENDING requests written before Signoff indexed their approver roles (asked before
        every inbox page: usually none)."""
        params = {"inbox_limit": limit}
        return await self._db.run(
            lambda session: [snapshot_of(r) for r in session.exec(_UNINDEXED, params=params)]
        )

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
