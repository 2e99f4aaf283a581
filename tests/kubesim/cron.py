"""Standard 5-field cron schedules, as the CronJob controller reads them (robfig/cron's ParseStandard).

`minute hour day-of-month month day-of-week`: `*`, `?` (= `*` in the day fields), numbers, names
(jan-dec, sun-sat), ranges `a-b`, steps `*/n` `a-b/n` `a/n`, lists `,`; day-of-week 7 is Sunday;
macros @yearly @annually @monthly @weekly @daily @midnight @hourly. When both day fields are
restricted, a day matching either runs (cron's OR); when one is `*`, only the other counts.
`CRON_TZ=`/`TZ=` prefixes are refused, as the API server refuses them (use spec.timeZone).
"""

from __future__ import annotations

import dataclasses
import datetime

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (name, low, high, names)
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
SEARCH_DAYS = 366 * 5


class ScheduleError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day-of-month was * (or ?)
    any_weekday: bool

    def matches(self, t: datetime.datetime) -> bool:
        return (
            t.minute in self.minutes
            and t.hour in self.hours
            and t.month in self.months
            and self._day_matches(t)
        )

    def next_after(self, t: datetime.datetime) -> datetime.datetime | None:
        """The first scheduled minute strictly after t (None if none within five years)."""
        start = t.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(SEARCH_DAYS):
            if day.month in self.months and self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += datetime.timedelta(days=1)
        return None

    def most_recent(
        self, earliest: datetime.datetime, now: datetime.datetime
    ) -> tuple[datetime.datetime | None, int]:
        """The latest scheduled minute in (earliest, now] (None if none) and roughly how many were
        missed, as the CronJob controller's mostRecentScheduleTime counts them: the interval between
        the first two runs after `earliest` divided into the time since the first."""
        t1 = self.next_after(earliest)
        if t1 is None or now < t1:
            return None, 0
        t2 = self.next_after(t1)
        if t2 is None or now < t2:
            return t1, 0
        interval = int((t2 - t1).total_seconds())
        missed = int((now - t1).total_seconds()) // interval + 1
        found = None
        t = self.next_after(t1 + datetime.timedelta(seconds=(missed - 2) * interval))
        while t is not None and t <= now:
            found = t
            t = self.next_after(t)
        return found, missed

    def _day_matches(self, t: datetime.datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow


def parse(text: str) -> Schedule:
    """A Schedule, or ScheduleError worded as robfig/cron words it."""
    spec = (text or "").strip()
    if spec.startswith(("TZ=", "CRON_TZ=")):
        raise ScheduleError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if spec.startswith("@"):
        if spec not in MACROS:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        spec = MACROS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    sets = [_field(value, *FIELDS[i][1:]) for i, value in enumerate(fields)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Schedule(
        frozenset(sets[0]),
        frozenset(sets[1]),
        frozenset(sets[2]),
        frozenset(sets[3]),
        weekdays,
        any_day=fields[2] in ("*", "?"),
        any_weekday=fields[4] in ("*", "?"),
    )


def _field(text: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        values |= _range(part, low, high, names)
    return values


def _range(part: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    base, _, step_text = part.partition("/")
    if step_text:
        try:
            step = int(step_text)
        except ValueError:
            raise ScheduleError(f"failed to parse int from {step_text}: strconv.Atoi: parsing "
                                f'"{step_text}": invalid syntax') from None  # fmt: skip
        if step <= 0:
            raise ScheduleError(f"step of range should be a positive number: {part}")
    else:
        step = 1
    if base in ("*", "?"):
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = _number(first, names), _number(last, names)
    else:
        start = _number(base, names)
        end = high if step_text else start
    if start < low:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({low}): {part}")
    if end > high:
        raise ScheduleError(f"end of range ({end}) above maximum ({high}): {part}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
    return set(range(start, end + 1, step))


def _number(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    try:
        value = int(text)
    except ValueError:
        raise ScheduleError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
        ) from None
    if value < 0:
        raise ScheduleError(f"negative number ({value}) not allowed: {text}")
    return value
