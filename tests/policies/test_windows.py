"""Change windows and freezes: the schema and `next_opening`, the pure computation the workflow
waits on (local hours across daylight-saving changes, freezes spanning windows)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from policies import (
    ChangeWindow,
    Freeze,
    Policy,
    closed_because,
    load_policy_text,
    local_time,
    next_opening,
)
from tests.policies.test_schema_loader import issues_of

ZURICH = ZoneInfo("Europe/Zurich")
NEW_YORK = ZoneInfo("America/New_York")
MON_THU = ChangeWindow.model_validate(
    {"days": ["mon-thu"], "from": "09:00", "to": "16:00", "tz": "Europe/Zurich"}
)
YEAR_END = Freeze.model_validate(
    {"from": "2026-12-20", "to": "2027-01-04", "reason": "year-end freeze", "tz": "Europe/Zurich"}
)


def zurich(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZURICH)  # type: ignore[misc]


# -- next_opening -----------------------------------------------------------------------------


def test_friday_evening_waits_for_monday_morning() -> None:
    friday_evening = zurich(2026, 3, 13, 18, 30)
    assert next_opening([MON_THU], [], friday_evening) == zurich(2026, 3, 16, 9, 0)


def test_inside_a_window_it_is_now() -> None:
    tuesday_noon = zurich(2026, 3, 17, 12, 0)
    assert next_opening([MON_THU], [], tuesday_noon) == tuesday_noon
    # The end is exclusive: at 16:00 the window is closed until Wednesday 09:00.
    assert next_opening([MON_THU], [], zurich(2026, 3, 17, 16, 0)) == zurich(2026, 3, 18, 9, 0)
    assert next_opening([MON_THU], [], zurich(2026, 3, 17, 8, 59)) == zurich(2026, 3, 17, 9, 0)


def test_windows_keep_their_local_hours_across_daylight_saving() -> None:
    # Europe springs forward on Sunday 29 March 2026: 09:00 is 08:00 UTC before, 07:00 after.
    before = next_opening([MON_THU], [], zurich(2026, 3, 26, 17, 0))  # Thursday evening
    after = next_opening([MON_THU], [], zurich(2026, 3, 27, 10, 0))  # Friday
    assert before == after == zurich(2026, 3, 30, 9, 0)
    assert after is not None and after.astimezone(UTC).hour == 7
    # And falls back on Sunday 25 October: Monday's 09:00 is 08:00 UTC again.
    autumn = next_opening([MON_THU], [], zurich(2026, 10, 23, 12, 0))
    assert autumn == zurich(2026, 10, 26, 9, 0) and autumn.astimezone(UTC).hour == 8


def test_a_window_starting_in_the_spring_forward_gap_opens_after_it() -> None:
    nightly = ChangeWindow.model_validate(
        {"days": ["sun"], "from": "02:30", "to": "04:00", "tz": "Europe/Zurich"}
    )
    opening = next_opening([nightly], [], zurich(2026, 3, 28, 12, 0))
    # 02:30 does not exist that night (02:00 jumps to 03:00): read with the winter offset.
    assert opening == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert opening is not None and opening.astimezone(ZURICH).hour == 3


def test_a_freeze_spanning_windows_defers_to_the_first_window_after_it() -> None:
    inside = zurich(2026, 12, 22, 10, 0)  # a Tuesday, within hours, but frozen
    opening = next_opening([MON_THU], [YEAR_END], inside)
    # The freeze covers Monday 4 January (its last day): Tuesday 5 January, 09:00.
    assert opening == zurich(2027, 1, 5, 9, 0)
    assert closed_because([MON_THU], [YEAR_END], inside) == (
        "inside the freeze 'year-end freeze' (2026-12-20 to 2027-01-04)"
    )


def test_a_freeze_alone_opens_when_it_ends_and_one_ending_mid_window_opens_then() -> None:
    assert next_opening([], [YEAR_END], zurich(2026, 12, 25, 15, 0)) == zurich(2027, 1, 5, 0, 0)
    all_day = ChangeWindow.model_validate({"from": "00:00", "to": "12:00", "tz": "Europe/Zurich"})
    assert next_opening([all_day], [YEAR_END], zurich(2026, 12, 31)) == zurich(2027, 1, 5, 0, 0)


def test_several_windows_and_zones_the_earliest_opening_wins() -> None:
    zurich_morning = MON_THU
    new_york_afternoon = ChangeWindow.model_validate(
        {"days": ["fri"], "from": "13:00", "to": "15:00", "tz": "America/New_York"}
    )
    friday_morning_zurich = zurich(2026, 3, 20, 10, 0)  # Fri: Zurich's window is shut
    opening = next_opening([zurich_morning, new_york_afternoon], [], friday_morning_zurich)
    assert opening == datetime(2026, 3, 20, 13, 0, tzinfo=NEW_YORK)


def test_no_window_and_no_freeze_is_always_open_and_a_closed_moment_is_explained() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_opening([], [], now) == now
    saturday = zurich(2026, 3, 14, 11, 0)
    assert closed_because([MON_THU], [], saturday) == (
        "outside the change window (mon,tue,wed,thu 09:00-16:00 Europe/Zurich)"
    )
    assert closed_because([MON_THU], [], zurich(2026, 3, 16, 11, 0)) is None
    assert local_time(zurich(2026, 3, 16, 9, 0), [MON_THU], []) == (
        "Mon 2026-03-16 09:00 Europe/Zurich"
    )


def test_a_long_freeze_opens_at_the_first_window_after_it() -> None:
    decades = Freeze.model_validate({"from": "2026-01-01", "to": "2099-12-31", "reason": "x"})
    opening = next_opening([MON_THU], [decades], zurich(2026, 3, 16, 10, 0))
    assert opening == zurich(2100, 1, 4, 9, 0)  # a Monday


def test_the_computation_is_the_same_for_the_same_instant_in_any_zone() -> None:
    instant = zurich(2026, 3, 13, 18, 30)
    same = instant.astimezone(NEW_YORK)
    assert next_opening([MON_THU], [YEAR_END], instant) == next_opening([MON_THU], [YEAR_END], same)


# -- the schema -------------------------------------------------------------------------------

POLICY = """
roles:
  ml-lead: {"*": CAN_MANAGE_PRODUCTION_VERSIONS}
transitions:
  - to: Production
    approvals: {quorum: 1}
"""


def with_rule_lines(*lines: str) -> str:
    return POLICY + "".join(f"    {line}\n" for line in lines)


def test_windows_and_freezes_load_and_survive_a_json_round_trip() -> None:
    policy = load_policy_text(
        with_rule_lines(
            'windows: [{days: [mon-wed, fri], from: "09:00", to: "16:00", tz: Europe/Zurich}]',
            "freezes: [{from: 2026-12-20, to: 2027-01-04, reason: year-end freeze}]",
        )
    )
    rule = policy.transitions[0]
    assert rule.windows[0].days == ["mon", "tue", "wed", "fri"]
    assert rule.freezes[0].reason == "year-end freeze" and rule.freezes[0].tz == "UTC"
    assert Policy.model_validate_json(policy.model_dump_json()) == policy


def test_an_unquoted_time_is_read_as_the_time_yaml_meant() -> None:
    # YAML 1.1 reads 09:00 unquoted as the base-60 number 540.
    policy = load_policy_text(with_rule_lines("windows: [{from: 09:00, to: 16:30}]"))
    assert f"{policy.transitions[0].windows[0].start:%H:%M}" == "09:00"
    assert f"{policy.transitions[0].windows[0].end:%H:%M}" == "16:30"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'windows: [{days: [mon-fry], from: "09:00", to: "16:00"}]',
            "is not a day; write mon, tue, wed, thu, fri, sat, sun or a range such as mon-thu",
        ),
        ('windows: [{days: [thu-mon], from: "09:00", to: "16:00"}]', "runs backwards"),
        ('windows: [{from: "9am", to: "16:00"}]', "'9am' is not a time of day"),
        (
            'windows: [{from: "22:00", to: "02:00"}]',
            "a window must end after it starts (from 22:00 to 02:00); for one across midnight "
            "write two windows",
        ),
        (
            'windows: [{from: "09:00", to: "16:00", tz: Mars/Olympus}]',
            "'Mars/Olympus' is not a time zone",
        ),
        (
            "freezes: [{from: 2027-01-04, to: 2026-12-20, reason: x}]",
            "the freeze ends (2026-12-20) before it starts (2027-01-04)",
        ),
        ("freezes: [{from: 2026-12-20, to: 2027-01-04}]", "reason: missing"),
        ('windows: [{from: "09:00", until: "16:00"}]', "allowed keys are days, from, to, tz"),
    ],
)
def test_bad_windows_and_freezes_are_explained_on_their_line(line: str, message: str) -> None:
    issues = issues_of(with_rule_lines(line))
    assert [issue.line for issue in issues] == [7] * len(issues)
    assert any(message in issue.message for issue in issues), [str(i) for i in issues]
