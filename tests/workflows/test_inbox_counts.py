"""The inbox's tab counts stop at a cap, and say so: a tab holding more than the cap counts as
the cap and is named capped ("1,000+"); its models are those of its first requests, oldest
first for the waiting tab. Below the cap the counts are exact."""

from __future__ import annotations

from pathlib import Path

from policies import Principal, load_policy, policy_hash, rule_for
from policies.loader import default_policy_path
from workflows.ledger import InboxQuery, Ledger
from workflows.ledger.inbox import COUNT_CAP
from workflows.messages import TransitionInput


async def test_counts_stop_at_the_cap_and_say_so(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    await ledger.migrate()
    policy = load_policy(default_policy_path())
    try:
        for n in range(5):  # lee's requests to Production, which risk officers approve
            model = f"model-{n}"
            inp = TransitionInput(
                request_id=f"r{n}",
                model=model,
                version="1",
                target="Production",
                from_stage="None",
                requester=Principal(sub="lee", roles=["ml-lead"]),
                policy=policy,
                rule=rule_for(policy, model, "Production"),
                policy_hash=policy_hash(policy),
                created_ms=1000 + n,
            )
            snapshot = inp.opening_snapshot(f"transition/{model}/1/Production", f"run-{n}")
            await ledger.requests.record(snapshot=snapshot)

        def query(tab: str, cap: int) -> InboxQuery:
            return InboxQuery(
                tab=tab, subject="rita", roles=["risk-officer"], readable=None, count_cap=cap
            )

        capped = await ledger.inbox.page(query("waiting", 3))
        assert capped.counts == {"waiting": 3, "mine": 0, "decided": 0}
        assert capped.capped == ["waiting"]
        assert capped.models == ["model-0", "model-1", "model-2", "model-3"]  # the first 4
        assert [row.id for row in capped.rows] == ["r0", "r1", "r2", "r3", "r4"]  # all of them

        # Narrowed to a model: that model's count, every model still offered.
        one = await ledger.inbox.page(query("waiting", 3).model_copy(update={"model": "model-1"}))
        assert (one.counts["waiting"], one.capped, one.models) == (1, [], capped.models)
        assert [row.id for row in one.rows] == ["r1"]

        # Page after page, oldest first, each request once, the last page saying so.
        paged, after = [], None
        while True:
            page = await ledger.inbox.page(
                query("waiting", 3).model_copy(update={"limit": 2, "after": after})
            )
            paged.append([row.id for row in page.rows])
            if (after := page.next_after) is None:
                break
        assert paged == [["r0", "r1"], ["r2", "r3"], ["r4"]]

        exact = await ledger.inbox.page(query("waiting", 5))
        assert (exact.counts["waiting"], exact.capped) == (5, [])
        assert len(exact.models) == 5
        assert InboxQuery(tab="mine", subject="x", roles=[], readable=None).count_cap == COUNT_CAP
    finally:
        ledger.dispose()
