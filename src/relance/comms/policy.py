"""Contact policy (pure): when and how often a debtor may be contacted.

Checked when an action is decided and again just before it is sent (invariant 4). Defaults follow
FR-COL-19 [D]: contacts only in daytime in the debtor's timezone, none on Sundays for SMS and calls,
and a cap of contacts per debtor per rolling 7 days across all creditors and channels (L121-7 3°
C. conso, FR-COL-16: no repeated and unwanted solicitations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

# weekday (0 = Monday) -> (start, end) local time; a missing day means "never on that day".
Window = dict[int, tuple[time, time]]

_WEEKDAYS = dict.fromkeys(range(5), (time(8), time(20)))
DEFAULT_WINDOWS: dict[str, Window] = {
    "email": {**_WEEKDAYS, 5: (time(9), time(18)), 6: (time(10), time(18))},
    "sms": {**_WEEKDAYS, 5: (time(9), time(18))},
    "call": {**_WEEKDAYS, 5: (time(9), time(18))},
    "letter": dict.fromkeys(range(7), (time(0), time(23, 59, 59))),
}


def french_public_holidays(first_year: int = 2020, last_year: int = 2040) -> frozenset[date]:
    """Metropolitan French public holidays (``holidays`` package), for the no-SMS/no-call days."""
    return frozenset(holidays.France(years=range(first_year, last_year + 1)).keys())


@dataclass(frozen=True)
class ContactPolicy:
    windows: dict[str, Window] = field(default_factory=lambda: DEFAULT_WINDOWS)
    max_contacts_per_7_days: int = 3
    min_gap: timedelta = timedelta(hours=48)
    # FR-COL-19 [D]: no SMS or calls on public holidays (as on Sundays).
    closed_days: frozenset[date] = field(default_factory=french_public_holidays)
    closed_day_channels: frozenset[str] = frozenset({"sms", "call"})
    # ``_hours`` of this policy by (channel, debtor's time zone, instant): an engine tick asks the same
    # question for every case of a time zone at the same instant. A policy is not changed once made
    # (frozen; its windows and closed days are read, never written), so an entry never goes stale;
    # the instant is part of the key, so a later ``now`` is always computed afresh.
    _hours_cache: dict[tuple[str, str, datetime], Verdict | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str = ""
    retry_at: datetime | None = None


def next_window_start(
    windows: Window, tz: ZoneInfo, now: datetime, closed_days: frozenset[date] = frozenset()
) -> datetime | None:
    """The first instant at or after ``now`` inside a window (``None`` if the channel never opens)."""
    local = now.astimezone(tz)
    for offset in range(15):
        day = (local + timedelta(days=offset)).date()
        bounds = windows.get(day.weekday())
        if bounds is None or day in closed_days:
            continue
        start = datetime.combine(day, bounds[0], tzinfo=tz)
        end = datetime.combine(day, bounds[1], tzinfo=tz)
        if offset == 0 and local >= end:
            continue
        return max(start, local) if offset == 0 else start
    return None


def check_contact(
    *,
    policy: ContactPolicy,
    channel: str,
    now: datetime,
    debtor_timezone: str,
    recent_contacts: Sequence[datetime],
) -> Verdict:
    """May we contact this debtor through ``channel`` at ``now``? If not, why and when to retry.

    ``recent_contacts`` are the debtor's contacts already sent or queued, across all creditors.
    """
    # Durations (7 days, the minimum gap) are absolute: compute in UTC, never in wall-clock time,
    # or a daylight-saving change in the week shifts them by an hour.
    if now.tzinfo is not UTC:
        now = now.astimezone(UTC)
    cache = policy._hours_cache
    key = (channel, debtor_timezone, now)
    try:
        refused = cache[key]
    except KeyError:
        if len(cache) >= _HOURS_CACHE_SIZE:  # a long simulation asks at many instants: keep it small
            cache.clear()
        refused = cache[key] = _hours(policy, channel, now, debtor_timezone)
    if refused is not None:
        return refused
    if not recent_contacts:
        return _ALLOWED
    recent_contacts = [t.astimezone(UTC) for t in recent_contacts]
    window_start = now - timedelta(days=7)
    in_week = sorted(t for t in recent_contacts if window_start < t <= now)
    if len(in_week) >= policy.max_contacts_per_7_days:
        # Retry when the oldest contact of the rolling week falls out of it.
        oldest = in_week[len(in_week) - policy.max_contacts_per_7_days]
        return Verdict(False, "weekly contact cap reached", retry_at=oldest + timedelta(days=7, minutes=1))
    if in_week and now - in_week[-1] < policy.min_gap:
        return Verdict(False, "too soon after the previous contact", retry_at=in_week[-1] + policy.min_gap)
    return _ALLOWED


_ALLOWED = Verdict(True)
_HOURS_CACHE_SIZE = 4096


def _hours(policy: ContactPolicy, channel: str, now: datetime, debtor_timezone: str) -> Verdict | None:
    """The refusal when ``channel`` is closed at ``now`` (UTC) in the debtor's time zone; None when open."""
    windows = policy.windows.get(channel)
    if not windows:
        return Verdict(False, f"channel {channel} is not allowed by the contact policy")
    closed = policy.closed_days if channel in policy.closed_day_channels else frozenset()
    opens = next_window_start(windows, ZoneInfo(debtor_timezone), now, closed)
    if opens is None:
        return Verdict(False, f"channel {channel} has no allowed hours")
    if opens > now:
        return Verdict(False, "outside allowed hours", retry_at=opens)
    return None
