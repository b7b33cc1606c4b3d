"""Change windows and freezes: when a rule lets an approved move be applied.

    windows: [{days: [mon-thu], from: "09:00", to: "16:00", tz: Europe/Zurich}]
    freezes: [{from: 2026-12-20, to: 2027-01-04, reason: "year-end freeze"}]

A move may be applied at an instant that lies inside at least one window (when the rule has
any) and inside no freeze. `next_opening` computes the first such instant from a given one:
pure code over `zoneinfo`, so the workflow can call it with `workflow.now()` and wait on a
timer for the answer. Each window's days and hours are read on its own time zone's wall
clock, so a window keeps its local hours across daylight-saving changes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

__all__ = [
    "DAYS",
    "ChangeWindow",
    "Freeze",
    "active_freeze",
    "closed_because",
    "local_time",
    "in_window",
    "next_opening",
]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names as a window writes them, in `date.weekday()` order."""

HORIZON = timedelta(days=800)
"""How far ahead `next_opening` looks past now (and past the last freeze) before it says
that no window ever opens."""

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _expand_days(value: Any) -> Any:
    """`[mon-thu, sat]` → `[mon, tue, wed, thu, sat]`; a single string is one entry."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return value
    days: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a day; write mon, tue, ... sun or a range mon-thu")
        text = item.strip().lower()
        first, _, last = text.partition("-")
        for name in (first, last) if last else (first,):
            if name not in DAYS:
                raise ValueError(
                    f"{item!r} is not a day; write {', '.join(DAYS)} or a range such as mon-thu"
                )
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise ValueError(f"the day range {item!r} runs backwards; write e.g. mon-thu")
        days.extend(day for day in DAYS[start : end + 1] if day not in days)
    return days


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 09:00 as the sexagesimal number 540.
        value = f"{value // 60:02d}:{value % 60:02d}"
    match = _CLOCK.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'{value!r} is not a time of day; write it as "HH:MM", e.g. "09:00"')
    return time(int(match.group(1)), int(match.group(2)))


Clock = Annotated[
    time, BeforeValidator(_clock), PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str)
]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone; use an IANA name such as Europe/Zurich or UTC"
        ) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ChangeWindow(_Strict):
    """On `days`, from `from` (inclusive) to `to` (exclusive), on the wall clock of `tz`."""

    days: Annotated[list[str], BeforeValidator(_expand_days)] = Field(
        default_factory=lambda: list(DAYS), min_length=1
    )
    start: Clock = Field(alias="from")
    end: Clock = Field(alias="to")
    tz: str = "UTC"

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @model_validator(mode="after")
    def _forwards(self) -> ChangeWindow:
        if self.end <= self.start:
            raise ValueError(
                f"a window must end after it starts (from {self.start:%H:%M} to "
                f"{self.end:%H:%M}); for one across midnight write two windows"
            )
        return self

    def contains(self, instant: datetime) -> bool:
        local = instant.astimezone(_zone(self.tz))
        return DAYS[local.weekday()] in self.days and self.start <= local.time() < self.end

    def openings(self, first: date, last: date) -> list[datetime]:
        """The instants (UTC) this window opens on each of its days from `first` to `last`.
        A start inside a daylight-saving gap is read with the offset before the gap (02:30 on
        a spring-forward night opens at 03:30 local time)."""
        zone = _zone(self.tz)
        found: list[datetime] = []
        day = first
        while day <= last:
            if DAYS[day.weekday()] in self.days:
                found.append(datetime.combine(day, self.start, tzinfo=zone).astimezone(UTC))
            day += timedelta(days=1)
        return found


class Freeze(_Strict):
    """No move is applied from the start of `from` to the end of `to` (both days included),
    on the calendar of `tz`."""

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    reason: str = Field(min_length=1)
    tz: str = "UTC"

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @model_validator(mode="after")
    def _forwards(self) -> Freeze:
        if self.end < self.start:
            raise ValueError(f"the freeze ends ({self.end}) before it starts ({self.start})")
        return self

    @property
    def begins(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=_zone(self.tz)).astimezone(UTC)

    @property
    def ends(self) -> datetime:
        """The first instant after the freeze (midnight after its last day)."""
        after = self.end + timedelta(days=1)
        return datetime.combine(after, time(0), tzinfo=_zone(self.tz)).astimezone(UTC)

    def contains(self, instant: datetime) -> bool:
        return self.begins <= instant < self.ends


def active_freeze(freezes: list[Freeze], instant: datetime) -> Freeze | None:
    return next((freeze for freeze in freezes if freeze.contains(instant)), None)


def in_window(windows: list[ChangeWindow], instant: datetime) -> bool:
    """Inside some window; with no windows, always."""
    return not windows or any(window.contains(instant) for window in windows)


def _allowed(windows: list[ChangeWindow], freezes: list[Freeze], instant: datetime) -> bool:
    return in_window(windows, instant) and active_freeze(freezes, instant) is None


def next_opening(
    windows: list[ChangeWindow], freezes: list[Freeze], now: datetime
) -> datetime | None:
    """The first instant at or after `now` (timezone-aware) at which a move may be applied:
    `now` itself when it may be applied now, None when no window opens within `HORIZON`.

    The answer is `now`, a window's opening or a freeze's end, whichever comes first and is
    allowed: a window is open at its opening unless a freeze holds it, and a freeze's end
    opens a move at once when it falls inside a window."""
    now = now.astimezone(UTC)
    if _allowed(windows, freezes, now):
        return now
    last = max([now, *(freeze.ends for freeze in freezes)]) + HORIZON
    candidates = [freeze.ends for freeze in freezes if freeze.ends > now]
    first_day = (now - timedelta(days=2)).date()
    for window in windows:
        candidates.extend(window.openings(first_day, last.date() + timedelta(days=2)))
    for candidate in sorted(c for c in candidates if c > now):
        if _allowed(windows, freezes, candidate):
            return candidate
    return None


def local_time(instant: datetime, windows: list[ChangeWindow], freezes: list[Freeze]) -> str:
    """An instant on the clock of the rule's first window (or freeze):
    "Mon 2026-03-16 09:00 Europe/Zurich"."""
    zone = windows[0].tz if windows else (freezes[0].tz if freezes else "UTC")
    return instant.astimezone(_zone(zone)).strftime(f"%a %Y-%m-%d %H:%M {zone}")


def closed_because(
    windows: list[ChangeWindow], freezes: list[Freeze], instant: datetime
) -> str | None:
    """Why no move may be applied at `instant`, in words; None when one may."""
    freeze = active_freeze(freezes, instant)
    if freeze is not None:
        return f"inside the freeze {freeze.reason!r} ({freeze.start} to {freeze.end})"
    if in_window(windows, instant):
        return None
    described = "; ".join(
        f"{','.join(w.days)} {w.start:%H:%M}-{w.end:%H:%M} {w.tz}" for w in windows
    )
    return f"outside the change window ({described})"
