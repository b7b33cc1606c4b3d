"""Fill a ledger with audit entries through the code path a request's own ledger writes take
(`ledger.requests.record`, which the workflow's `LedgerActivities.record_ledger` calls) with
real snapshots: each seeded request opens (REQUESTED_TRANSITION), is approved twice and
applied, written in the two batches the workflow's outbox sends for it. Spread over many
models and versions, as a registry of thousands of models would be.

    python -m benchmarks.seed sqlite:////path/to/signoff.db [--entries 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
import uuid

from policies import Policy, Principal, load_policy, policy_hash, rule_for
from policies.loader import default_policy_path
from workflows.domain import Approval, AuditEntry, AuditType, RequestSnapshot, RequestState
from workflows.ledger import Ledger
from workflows.messages import TransitionInput

ENTRIES_PER_REQUEST = 4
VERSIONS_PER_MODEL = 5
REQUESTS_PER_VERSION = 5
START_MS = 1_600_000_000_000


def _entry(inp: TransitionInput, seq: int, kind: AuditType, user: str, at: int) -> AuditEntry:
    return AuditEntry(
        id=f"{inp.request_id}-{seq}",
        request_id=inp.request_id,
        seq=seq,
        model=inp.model,
        version=inp.version,
        activity_type=kind,
        user_id=user,
        from_stage=inp.from_stage,
        to_stage=inp.target,
        comment="seeded" if kind is AuditType.REQUESTED_TRANSITION else None,
        system_comment="Applied by Signoff (seeded)"
        if kind is AuditType.APPLIED_TRANSITION
        else None,
        creation_timestamp=at,
        roles=["ml-lead"] if kind is AuditType.APPROVED_REQUEST else [],
    )


@functools.cache
def _policy() -> tuple[Policy, str]:
    policy = load_policy(default_policy_path())
    return policy, policy_hash(policy)


def request_writes(n: int, *, prefix: str) -> list[tuple[RequestSnapshot, list[AuditEntry]]]:
    """The two ledger writes of the `n`th seeded request: opened, then applied."""
    policy, hashed = _policy()
    per_model = VERSIONS_PER_MODEL * REQUESTS_PER_VERSION
    model, version = f"{prefix}-{n // per_model}", str(n % per_model // REQUESTS_PER_VERSION + 1)
    created = START_MS + n * 1000
    inp = TransitionInput(
        request_id=uuid.uuid4().hex,
        model=model,
        version=version,
        target="Production",
        from_stage="None",
        requester=Principal(sub="lee", roles=["ml-lead"]),
        comment="seeded",
        policy=policy,
        rule=rule_for(policy, model, "Production"),
        policy_hash=hashed,
        created_ms=created,
    )
    opened = inp.opening_snapshot(f"transition/{model}/{version}/Production", uuid.uuid4().hex)
    opened = opened.model_copy(update={"revision": 1})
    approvals = [
        Approval(user_id=user, creation_timestamp=created + k, roles=["ml-lead"])
        for k, user in ((100, "mia"), (200, "rita"))
    ]
    applied = opened.model_copy(
        update={
            "state": RequestState.APPLIED,
            "approvals": approvals,
            "revision": 5,
            "updated_ms": created + 300,
        }
    )
    return [
        (opened, [_entry(inp, 1, AuditType.REQUESTED_TRANSITION, "lee", created)]),
        (
            applied,
            [
                _entry(inp, 2, AuditType.APPROVED_REQUEST, "mia", created + 100),
                _entry(inp, 3, AuditType.APPROVED_REQUEST, "rita", created + 200),
                _entry(inp, 4, AuditType.APPLIED_TRANSITION, "rita", created + 300),
            ],
        ),
    ]


async def seed(ledger: Ledger, entries: int, *, parallel: int = 4) -> float:
    """Write about `entries` audit entries (in whole requests); returns the seconds taken."""
    requests = max(1, entries // ENTRIES_PER_REQUEST)
    prefix = f"seeded-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)

    async def lane() -> None:
        while not queue.empty():
            for snapshot, written in request_writes(queue.get_nowait(), prefix=prefix):
                await ledger.requests.record(snapshot=snapshot, entries=written)

    await asyncio.gather(*(lane() for _ in range(parallel)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the ledger's URL (e.g. sqlite:////tmp/x/signoff.db)")
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()

    async def run() -> float:
        ledger = Ledger(args.url)
        await ledger.migrate()
        try:
            return await seed(ledger, args.entries)
        finally:
            ledger.dispose()

    print(f"seeded {args.entries} audit entries in {asyncio.run(run()):.0f} s")


if __name__ == "__main__":
    main()
