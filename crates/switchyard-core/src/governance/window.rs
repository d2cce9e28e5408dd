//! Reset durations (`30s`, `1m`, `5m`, `1h`, `1d`, `1w`, `1M`, `1Q`, `1Y`) and the window a moment
//! falls in, rolling from an anchor or aligned to UTC calendar boundaries; plus the small UTC calendar
//! arithmetic (civil dates, RFC 3339) this needs. Times are unix milliseconds passed in by the caller.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 1970-01-05, the first Monday after the epoch: calendar weeks start on Mondays.
const FIRST_MONDAY_MS: i64 = 4 * DAY;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    fn suffix(self) -> char {
        match self {
            Unit::Second => 's',
            Unit::Minute => 'm',
            Unit::Hour => 'h',
            Unit::Day => 'd',
            Unit::Week => 'w',
            Unit::Month => 'M',
            Unit::Quarter => 'Q',
            Unit::Year => 'Y',
        }
    }
}

/// How long a budget or rate-limit window lasts, e.g. `5m` or `1M` (a calendar month).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResetDuration {
    pub count: u32,
    pub unit: Unit,
}

/// One window: `[start_ms, end_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl ResetDuration {
    pub fn parse(s: &str) -> Result<ResetDuration, String> {
        let bad = || {
            format!("'{s}' is not a reset duration; use a count and a unit: s, m (minutes), h, d, w, M (months), Q, Y, e.g. '1m', '1h', '1M'")
        };
        let unit_char = s.chars().last().ok_or_else(bad)?;
        let digits = &s[..s.len() - unit_char.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let count: u32 = digits.parse().map_err(|_| bad())?;
        if count == 0 || count > 1000 {
            return Err(format!("'{s}': the count must be between 1 and 1000"));
        }
        let unit = match unit_char {
            's' => Unit::Second,
            'm' => Unit::Minute,
            'h' => Unit::Hour,
            'd' => Unit::Day,
            'w' => Unit::Week,
            'M' => Unit::Month,
            'Q' => Unit::Quarter,
            'Y' | 'y' => Unit::Year,
            _ => return Err(bad()),
        };
        Ok(ResetDuration { count, unit })
    }

    /// Fixed length in ms, or `None` for month-based units (their length varies).
    fn fixed_ms(self) -> Option<i64> {
        let unit = match self.unit {
            Unit::Second => SECOND,
            Unit::Minute => MINUTE,
            Unit::Hour => HOUR,
            Unit::Day => DAY,
            Unit::Week => 7 * DAY,
            Unit::Month | Unit::Quarter | Unit::Year => return None,
        };
        Some(unit * i64::from(self.count))
    }

    fn months(self) -> i64 {
        let per = match self.unit {
            Unit::Quarter => 3,
            Unit::Year => 12,
            _ => 1,
        };
        per * i64::from(self.count)
    }

    /// The window containing `now_ms`.
    ///
    /// Rolling windows (the default) start at `anchor_ms` (when the limit was set up) and follow each
    /// other back to back. Calendar-aligned windows start on UTC boundaries: the minute, hour, day,
    /// Monday of the week, first of the month, of the quarter (Jan/Apr/Jul/Oct) or of the year; counts
    /// above one are multiples of the unit counted from the epoch (months from January 1970).
    pub fn window(self, now_ms: i64, anchor_ms: i64, calendar_aligned: bool) -> Window {
        if let Some(len) = self.fixed_ms() {
            let origin = match (calendar_aligned, self.unit) {
                (true, Unit::Week) => FIRST_MONDAY_MS,
                (true, _) => 0,
                (false, _) => anchor_ms,
            };
            let start = origin + (now_ms - origin).div_euclid(len) * len;
            return Window {
                start_ms: start,
                end_ms: start + len,
            };
        }
        let step = self.months();
        if calendar_aligned {
            let (y, m, _) = civil_from_days(now_ms.div_euclid(DAY));
            let index = month_index(y, m);
            let start_index = index.div_euclid(step) * step;
            return Window {
                start_ms: month_start_ms(start_index),
                end_ms: month_start_ms(start_index + step),
            };
        }
        // Rolling by months: the anchor's day and time of day, `step` months apart (clamped to the
        // month's last day, so a window anchored on the 31st renews on the 30th in April).
        let anchor_days = anchor_ms.div_euclid(DAY);
        let time_of_day = anchor_ms.rem_euclid(DAY);
        let (ay, am, ad) = civil_from_days(anchor_days);
        let anchor_index = month_index(ay, am);
        let at = |k: i64| -> i64 {
            let index = anchor_index + k * step;
            let (y, m) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u32);
            let d = ad.min(days_in_month(y, m));
            days_from_civil(y, m, d) * DAY + time_of_day
        };
        let (ny, nm, _) = civil_from_days(now_ms.div_euclid(DAY));
        let mut k = (month_index(ny, nm) - anchor_index).div_euclid(step);
        while at(k) > now_ms {
            k -= 1;
        }
        while at(k + 1) <= now_ms {
            k += 1;
        }
        Window {
            start_ms: at(k),
            end_ms: at(k + 1),
        }
    }
}

impl fmt::Display for ResetDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.suffix())
    }
}

impl Serialize for ResetDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ResetDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ResetDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn month_index(y: i64, m: u32) -> i64 {
    y * 12 + i64::from(m) - 1
}

fn month_start_ms(index: i64) -> i64 {
    let (y, m) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u32);
    days_from_civil(y, m, 1) * DAY
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years, March-based years).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: `(year, month, day)`.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats unix ms as RFC 3339 in UTC with millisecond precision.
pub fn format_rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(DAY);
    let rest = ms.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / HOUR,
        rest % HOUR / MINUTE,
        rest % MINUTE / SECOND,
        rest % SECOND
    )
}

/// Parses RFC 3339 (`2026-01-31T12:00:00Z`, fractional seconds and `+02:00` offsets allowed) to unix ms.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        frac_ms = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_min = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?)
        }
        _ => return None,
    };
    Some(
        days_from_civil(y, mo, d) * DAY + h * HOUR + mi * MINUTE + sec * SECOND + frac_ms
            - offset_min * MINUTE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn durations_parse_and_print() {
        for s in ["30s", "1m", "5m", "1h", "1d", "1w", "1M", "1Q", "1Y"] {
            assert_eq!(ResetDuration::parse(s).unwrap().to_string(), s);
        }
        for bad in ["", "m", "0m", "1x", "-1m", "1.5h", "1 m", "1001d"] {
            assert!(ResetDuration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rolling_windows_follow_the_anchor() {
        let d = ResetDuration::parse("1h").unwrap();
        let anchor = ms("2026-03-01T10:20:00Z");
        let w = d.window(ms("2026-03-01T12:00:00Z"), anchor, false);
        assert_eq!(w.start_ms, ms("2026-03-01T11:20:00Z"));
        assert_eq!(w.end_ms, ms("2026-03-01T12:20:00Z"));
    }

    #[test]
    fn calendar_windows_snap_to_utc_boundaries() {
        let now = ms("2026-05-14T15:42:10.500Z"); // a Thursday
        let anchor = ms("2026-01-09T08:00:00Z");
        let w = |s: &str| ResetDuration::parse(s).unwrap().window(now, anchor, true);
        assert_eq!(w("1d").start_ms, ms("2026-05-14T00:00:00Z"));
        assert_eq!(w("1w").start_ms, ms("2026-05-11T00:00:00Z"));
        assert_eq!(w("1w").end_ms, ms("2026-05-18T00:00:00Z"));
        assert_eq!(w("1M").start_ms, ms("2026-05-01T00:00:00Z"));
        assert_eq!(w("1M").end_ms, ms("2026-06-01T00:00:00Z"));
        assert_eq!(w("1Q").start_ms, ms("2026-04-01T00:00:00Z"));
        assert_eq!(w("1Y").start_ms, ms("2026-01-01T00:00:00Z"));
        assert_eq!(w("1Y").end_ms, ms("2027-01-01T00:00:00Z"));
        assert_eq!(w("5m").start_ms, ms("2026-05-14T15:40:00Z"));
    }

    #[test]
    fn rolling_months_clamp_to_the_month_end() {
        let d = ResetDuration::parse("1M").unwrap();
        let anchor = ms("2026-01-31T09:00:00Z");
        let w = d.window(ms("2026-02-28T10:00:00Z"), anchor, false);
        assert_eq!(w.start_ms, ms("2026-02-28T09:00:00Z"));
        assert_eq!(w.end_ms, ms("2026-03-31T09:00:00Z"));
        let before = d.window(ms("2026-02-28T08:00:00Z"), anchor, false);
        assert_eq!(before.start_ms, anchor);
    }

    #[test]
    fn rfc3339_round_trips_and_rejects_garbage() {
        assert_eq!(ms("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ms("2026-01-01T02:00:00+02:00"), ms("2026-01-01T00:00:00Z"));
        assert_eq!(
            format_rfc3339(ms("2026-12-31T23:59:59.250Z")),
            "2026-12-31T23:59:59.250Z"
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-01-01",
            "tomorrow",
            "2026-01-01T00:00:00",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    fn durations() -> impl Strategy<Value = ResetDuration> {
        (1u32..13, 0usize..8).prop_map(|(count, u)| ResetDuration {
            count,
            unit: [
                Unit::Second,
                Unit::Minute,
                Unit::Hour,
                Unit::Day,
                Unit::Week,
                Unit::Month,
                Unit::Quarter,
                Unit::Year,
            ][u],
        })
    }

    proptest! {
        #[test]
        fn civil_dates_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        /// A window contains the moment asked about, and the next window starts where it ends.
        #[test]
        fn windows_contain_now_and_tile(
            d in durations(),
            now in 0i64..4_000_000_000_000,
            anchor in 0i64..4_000_000_000_000,
            aligned: bool,
        ) {
            let anchor = anchor.min(now);
            let w = d.window(now, anchor, aligned);
            prop_assert!(w.start_ms <= now && now < w.end_ms, "{:?} {}", w, now);
            let next = d.window(w.end_ms, anchor, aligned);
            prop_assert_eq!(next.start_ms, w.end_ms);
            if !aligned {
                let first = d.window(anchor, anchor, false);
                prop_assert_eq!(first.start_ms, anchor);
            }
        }
    }
}
