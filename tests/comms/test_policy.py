"""Contact policy (pure): when and how often a debtor may be contacted.

FR-COL-19 [D]: contacts only in daytime in the debtor's timezone, no SMS or call on Sundays.
FR-COL-16 / C. conso L121-7 3°: no repeated and unwanted solicitations, hence a cap per rolling
7 days across all creditors and channels, and a minimum gap between two contacts.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.comms.policy import (
    DEFAULT_WINDOWS,
    ContactPolicy,
    Verdict,
    check_contact,
    french_public_holidays,
    next_window_start,
)

FRENCH_HOLIDAYS = french_public_holidays()

PARIS = ZoneInfo("Europe/Paris")
MARTINIQUE = ZoneInfo("America/Martinique")
POLICY = ContactPolicy()

# June 2025, a week without public holidays: Monday 16, Friday 20, Saturday 21, Sunday 22, Monday 23.
MONDAY, FRIDAY, SATURDAY, SUNDAY, NEXT_MONDAY = 16, 20, 21, 22, 23


def paris(day: int, hour: int, minute: int = 0, *, month: int = 6) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=PARIS)


def check(
    channel: str,
    now: datetime,
    *,
    contacts: tuple[datetime, ...] = (),
    tz: str = "Europe/Paris",
    policy: ContactPolicy = POLICY,
) -> Verdict:
    return check_contact(policy=policy, channel=channel, now=now, debtor_timezone=tz, recent_contacts=contacts)


# --- FR-COL-19 windows -----------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["email", "sms", "call"])
@pytest.mark.parametrize(("hour", "minute"), [(8, 0), (12, 30), (19, 59)])
def test_weekday_daytime_is_allowed(channel: str, hour: int, minute: int) -> None:
    assert check(channel, paris(MONDAY, hour, minute)) == Verdict(True)


@pytest.mark.parametrize("channel", ["email", "sms", "call"])
def test_weekday_before_eight_waits_for_eight(channel: str) -> None:
    verdict = check(channel, paris(MONDAY, 7, 59))
    assert not verdict.allowed
    assert verdict.reason == "outside allowed hours"
    assert verdict.retry_at == paris(MONDAY, 8)


@pytest.mark.parametrize("channel", ["email", "sms", "call"])
def test_weekday_from_twenty_waits_for_the_next_morning(channel: str) -> None:
    verdict = check(channel, paris(MONDAY, 20, 0))
    assert not verdict.allowed
    assert verdict.retry_at == paris(17, 8)


@pytest.mark.parametrize("channel", ["sms", "call"])
def test_friday_evening_waits_for_saturday_opening(channel: str) -> None:
    assert check(channel, paris(FRIDAY, 21)).retry_at == paris(SATURDAY, 9)


@pytest.mark.parametrize("channel", ["sms", "call"])
def test_saturday_has_shorter_hours(channel: str) -> None:
    # Inside FR-COL-19's Mon–Sat 08:00–20:00, narrower on Saturday (configurable only downward).
    assert check(channel, paris(SATURDAY, 8, 30)).retry_at == paris(SATURDAY, 9)
    assert check(channel, paris(SATURDAY, 9)).allowed
    assert check(channel, paris(SATURDAY, 17, 59)).allowed
    late = check(channel, paris(SATURDAY, 18))
    assert not late.allowed
    # Sunday is skipped: the next opening is Monday morning.
    assert late.retry_at == paris(NEXT_MONDAY, 8)


@pytest.mark.parametrize("channel", ["sms", "call"])
@pytest.mark.parametrize("hour", [0, 8, 10, 12, 15, 19, 23])
def test_no_sms_or_call_on_sunday(channel: str, hour: int) -> None:
    # FR-COL-19 [D]: none on Sundays.
    verdict = check(channel, paris(SUNDAY, hour))
    assert not verdict.allowed
    assert verdict.retry_at == paris(NEXT_MONDAY, 8)


def test_email_on_sunday_only_in_its_own_hours() -> None:
    assert check("email", paris(SUNDAY, 9)).retry_at == paris(SUNDAY, 10)
    assert check("email", paris(SUNDAY, 11)).allowed
    assert check("email", paris(SUNDAY, 18)).retry_at == paris(NEXT_MONDAY, 8)


@pytest.mark.parametrize("hour", [0, 3, 12, 23])
def test_letters_are_allowed_at_any_hour(hour: int) -> None:
    assert check("letter", paris(SUNDAY, hour)).allowed


def test_unknown_channel_is_refused_without_retry() -> None:
    verdict = check("fax", paris(MONDAY, 10))
    assert not verdict.allowed
    assert verdict.retry_at is None
    assert "fax" in verdict.reason


def test_a_channel_switched_off_by_policy_is_refused_without_retry() -> None:
    policy = ContactPolicy(windows={**DEFAULT_WINDOWS, "call": {}})
    verdict = check("call", paris(MONDAY, 10), policy=policy)
    assert not verdict.allowed
    assert verdict.retry_at is None


def test_retry_at_is_inside_the_window_and_allowed_then() -> None:
    early = check("sms", paris(MONDAY, 6))
    assert early.retry_at is not None
    assert check("sms", early.retry_at).allowed


def test_window_across_daylight_saving_change() -> None:
    # Sunday 30 March 2025 Paris moves to summer time; Saturday night's retry is Monday 08:00 CEST.
    verdict = check("sms", paris(29, 22, month=3))
    assert verdict.retry_at == paris(31, 8, month=3)
    assert verdict.retry_at.utcoffset() == timedelta(hours=2)


def test_next_window_start_is_now_when_inside() -> None:
    now = paris(MONDAY, 10, 15)
    assert next_window_start(DEFAULT_WINDOWS["sms"], PARIS, now) == now


def test_next_window_start_none_when_the_channel_never_opens() -> None:
    assert next_window_start({}, PARIS, paris(MONDAY, 10)) is None


def test_no_sms_on_a_french_public_holiday() -> None:
    # Monday 14 July 2025 (Fête nationale) at 10:00 in Paris (FR-COL-19): SMS and calls wait for
    # Tuesday morning; e-mail is not a solicitation at the door and stays allowed.
    verdict = check("sms", paris(14, 10, month=7))
    assert not verdict.allowed
    assert verdict.retry_at == paris(15, 8, month=7)
    assert not check("call", paris(14, 10, month=7)).allowed
    assert check("email", paris(14, 10, month=7)).allowed


# --- debtor's timezone ---------------------------------------------------------------------------


def test_hours_are_the_debtors_local_hours() -> None:
    # Monday 2 June 2025 14:00 Paris (CEST, UTC+2) is 08:00 in Martinique (UTC-4): both open.
    now = paris(MONDAY, 14)
    assert check("sms", now, tz="America/Martinique").allowed
    assert check("sms", now, tz="Europe/Paris").allowed
    # 10:00 in Paris is 04:00 in Martinique: too early there, retry at 08:00 Martinique time.
    morning = check("sms", paris(MONDAY, 10), tz="America/Martinique")
    assert morning.allowed is False
    assert morning.retry_at == datetime(2025, 6, 16, 8, tzinfo=MARTINIQUE)
    assert morning.retry_at == paris(MONDAY, 14)
    assert check("sms", paris(MONDAY, 10), tz="Europe/Paris").allowed


def test_paris_evening_is_martinique_afternoon() -> None:
    # 21:00 Paris is 15:00 Martinique: closed for a Parisian debtor, open for a Martiniquais.
    now = paris(MONDAY, 21)
    assert not check("call", now, tz="Europe/Paris").allowed
    assert check("call", now, tz="America/Martinique").allowed


def test_the_clock_of_now_does_not_matter_only_the_instant() -> None:
    now = paris(MONDAY, 21)
    assert check("sms", now) == check("sms", now.astimezone(UTC))


# --- rolling 7-day cap and minimum gap (FR-COL-16, L121-7 3°) ---------------------------------------


def test_three_contacts_in_seven_days_reach_the_cap() -> None:
    now = paris(NEXT_MONDAY, 10)
    contacts = (now - timedelta(days=6), now - timedelta(days=4), now - timedelta(days=2))
    verdict = check("email", now, contacts=contacts)
    assert not verdict.allowed
    assert verdict.reason == "weekly contact cap reached"
    # Retry when the oldest contact leaves the rolling week.
    assert verdict.retry_at == contacts[0] + timedelta(days=7, minutes=1)


def test_the_cap_counts_contacts_of_every_creditor_and_channel() -> None:
    # The function sees only times: three contacts of any origin are three contacts (FR-COL-16).
    now = paris(NEXT_MONDAY, 10)
    contacts = (now - timedelta(days=3), now - timedelta(days=5), now - timedelta(days=6, hours=23))
    for channel in ("email", "sms", "call", "letter"):
        assert check(channel, now, contacts=contacts).reason == "weekly contact cap reached"


def test_more_contacts_than_the_cap_retry_when_enough_have_expired() -> None:
    now = paris(NEXT_MONDAY, 10)
    contacts = tuple(now - timedelta(days=d) for d in (6.5, 6, 5, 4, 2))
    verdict = check("email", now, contacts=contacts)
    assert verdict.retry_at is not None
    # Only when the third most recent contact (5 days ago) leaves the week are there fewer than 3.
    assert verdict.retry_at == now - timedelta(days=5) + timedelta(days=7, minutes=1)
    assert check("email", verdict.retry_at, contacts=contacts).allowed


def test_contacts_older_than_seven_days_do_not_count() -> None:
    now = paris(NEXT_MONDAY, 10)
    contacts = (now - timedelta(days=7), now - timedelta(days=8), now - timedelta(days=3))
    assert check("email", now, contacts=contacts).allowed


def test_minimum_gap_between_two_contacts() -> None:
    now = paris(NEXT_MONDAY, 10)
    last = now - timedelta(hours=24)
    verdict = check("email", now, contacts=(last,))
    assert not verdict.allowed
    assert verdict.reason == "too soon after the previous contact"
    assert verdict.retry_at == last + timedelta(hours=48)
    assert check("email", now, contacts=(now - timedelta(hours=48),)).allowed


def test_a_stricter_policy_is_honoured() -> None:
    policy = ContactPolicy(max_contacts_per_7_days=1, min_gap=timedelta(0))
    now = paris(NEXT_MONDAY, 10)
    verdict = check("email", now, contacts=(now - timedelta(days=5),), policy=policy)
    assert verdict.reason == "weekly contact cap reached"
    assert check("email", now, contacts=(now - timedelta(days=8),), policy=policy).allowed


def test_hours_are_checked_before_the_cap() -> None:
    # A Sunday SMS is refused for the hour, and its retry then meets the cap.
    now = paris(SUNDAY, 12)
    contacts = (paris(17, 10), paris(19, 10), paris(FRIDAY, 10))
    first = check("sms", now, contacts=contacts)
    assert first.reason == "outside allowed hours"
    assert first.retry_at == paris(NEXT_MONDAY, 8)
    second = check("sms", first.retry_at, contacts=contacts)
    assert second.reason == "weekly contact cap reached"
    assert second.retry_at == paris(17, 10) + timedelta(days=7, minutes=1)


# --- properties ----------------------------------------------------------------------------------

TIMEZONES = ["Europe/Paris", "America/Martinique", "Indian/Reunion", "Pacific/Noumea", "Europe/London", "UTC"]

instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
policies = st.builds(
    ContactPolicy,
    max_contacts_per_7_days=st.integers(min_value=1, max_value=5),
    min_gap=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
)


@st.composite
def situations(draw: st.DrawFn) -> tuple[datetime, str, str, tuple[datetime, ...], ContactPolicy]:
    now = draw(instants)
    offsets = draw(st.lists(st.timedeltas(min_value=timedelta(days=-10), max_value=timedelta(days=2)), max_size=8))
    contacts = tuple(now + offset for offset in offsets)
    return (
        now,
        draw(st.sampled_from(["email", "sms", "call", "letter"])),
        draw(st.sampled_from(TIMEZONES)),
        contacts,
        draw(st.one_of(st.just(POLICY), policies)),
    )


def _inside_window(channel: str, tz: str, at: datetime) -> bool:
    local = at.astimezone(ZoneInfo(tz))
    if channel in ("sms", "call") and local.date() in FRENCH_HOLIDAYS:
        return False  # FR-COL-19: no SMS or calls on public holidays
    bounds = DEFAULT_WINDOWS[channel].get(local.weekday())
    return bounds is not None and bounds[0] <= local.time() < bounds[1]


@settings(max_examples=200)
@given(situation=situations())
def test_property_retry_is_never_earlier_than_now_and_only_moves_forward(
    situation: tuple[datetime, str, str, tuple[datetime, ...], ContactPolicy],
) -> None:
    now, channel, tz, contacts, policy = situation
    verdict = check(channel, now, contacts=contacts, tz=tz, policy=policy)
    assert verdict.allowed or verdict.retry_at is not None  # every default channel opens some day
    if verdict.allowed:
        return
    assert verdict.retry_at > now
    again = check(channel, verdict.retry_at, contacts=contacts, tz=tz, policy=policy)
    assert again.allowed or (again.retry_at is not None and again.retry_at > verdict.retry_at)


@settings(max_examples=200)
@given(situation=situations())
def test_property_following_retries_reaches_an_allowed_instant(
    situation: tuple[datetime, str, str, tuple[datetime, ...], ContactPolicy],
) -> None:
    now, channel, tz, contacts, policy = situation
    at = now
    for _ in range(50):
        verdict = check(channel, at, contacts=contacts, tz=tz, policy=policy)
        if verdict.allowed:
            break
        assert verdict.retry_at is not None
        at = verdict.retry_at
    else:
        pytest.fail("retry_at never led to an allowed instant")
    # What is allowed respects the window, the cap and the gap.
    assert _inside_window(channel, tz, at)
    at = at.astimezone(UTC)  # durations are absolute: a DST change inside the week must not shift them
    in_week = [t for t in contacts if at - timedelta(days=7) < t <= at]
    assert len(in_week) < policy.max_contacts_per_7_days
    assert all(at - t >= policy.min_gap for t in in_week)


@settings(max_examples=200)
@given(now=instants, channel=st.sampled_from(["email", "sms", "call"]), tz=st.sampled_from(TIMEZONES))
def test_property_allowed_exactly_inside_the_local_window(now: datetime, channel: str, tz: str) -> None:
    verdict = check(channel, now, tz=tz)
    assert verdict.allowed == _inside_window(channel, tz, now)
    if not verdict.allowed:
        assert verdict.retry_at is not None
        assert _inside_window(channel, tz, verdict.retry_at)
        # retry_at is a window opening: one minute earlier is still closed.
        assert not _inside_window(channel, tz, verdict.retry_at - timedelta(minutes=1))


def test_the_rolling_week_is_seven_real_days_across_a_daylight_saving_change() -> None:
    # Found by Hypothesis: three contacts on Monday 21 October 2024 at 08:00 Paris (CEST); France
    # leaves summer time on Sunday 27. A week later at 08:00 CET, 7 x 24 h have passed plus one hour:
    # the cap is free again (computing "now - 7 days" in wall-clock time kept it closed forever).
    monday = datetime(2024, 10, 21, 6, 0, 0, 1, tzinfo=UTC)
    next_monday_8am = datetime(2024, 10, 28, 8, 0, tzinfo=PARIS)
    assert check("email", next_monday_8am, contacts=(monday, monday, monday)).allowed


# --- the allowed hours, cached per (channel, time zone, instant) on the policy (issue 4, engine speed) ---


@settings(max_examples=300)
@given(
    # Few distinct instants, time zones and channels, so that one shared policy answers many examples
    # from its cache: each must equal the answer of a fresh policy, which computes it.
    hour=st.sampled_from([6, 7, 8, 12, 19, 20, 23]),
    day=st.sampled_from([MONDAY, SATURDAY, SUNDAY]),
    channel=st.sampled_from(["email", "sms", "call", "letter", "fax"]),
    tz=st.sampled_from(TIMEZONES),
    contacts=st.lists(st.integers(min_value=1, max_value=200), max_size=4),
)
def test_property_a_policy_answers_from_its_cache_what_a_fresh_policy_computes(
    hour: int, day: int, channel: str, tz: str, contacts: list[int]
) -> None:
    now = paris(day, hour)
    recent = tuple(now - timedelta(hours=h) for h in contacts)
    assert check(channel, now, contacts=recent, tz=tz) == check(
        channel, now, contacts=recent, tz=tz, policy=ContactPolicy()
    )


def test_the_cached_hours_follow_the_instant() -> None:
    policy = ContactPolicy()
    before, opening = paris(MONDAY, 7, 59), paris(MONDAY, 8)
    assert check("sms", before, policy=policy) == Verdict(False, "outside allowed hours", retry_at=opening)
    assert check("sms", opening, policy=policy).allowed  # a later instant is computed, not taken from the cache
    assert not check("sms", before, policy=policy).allowed
    assert check("sms", before.astimezone(UTC), policy=policy).retry_at == opening  # the same instant


def test_each_policy_keeps_its_own_hours() -> None:
    strict = ContactPolicy(windows={**DEFAULT_WINDOWS, "sms": {0: (time(10), time(12))}})
    at = paris(MONDAY, 9)
    assert check("sms", at, policy=POLICY).allowed
    assert check("sms", at, policy=strict) == Verdict(False, "outside allowed hours", retry_at=paris(MONDAY, 10))
    assert check("sms", at, policy=POLICY).allowed


def test_the_cache_of_hours_stays_small() -> None:
    policy = ContactPolicy()
    start = paris(MONDAY, 8)
    for minute in range(5000):  # a long simulation asks at many instants
        check("email", start + timedelta(minutes=minute), policy=policy)
    assert 0 < len(policy._hours_cache) <= 4096
