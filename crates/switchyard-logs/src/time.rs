//! RFC 3339 timestamps to unix milliseconds.
//!
//! Hand-written because the logs API needs exactly one direction of one format (`2025-01-02T03:04:05Z`,
//! with an optional fraction of up to nanoseconds and a `Z` or `±hh:mm` offset), which is not worth a
//! date-time dependency.

/// Parses an RFC 3339 date-time to unix milliseconds; a fraction beyond milliseconds is truncated.
/// Returns a message fit for an API error on anything else.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, String> {
    let b = s.as_bytes();
    let bad = || format!("'{s}' is not an RFC 3339 date-time such as 2025-01-31T12:00:00Z");
    if b.len() < 20 {
        return Err(bad());
    }
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = b.get(from..from + len).ok_or_else(bad)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| -> Result<(), String> {
        if allowed.contains(&b[at]) {
            Ok(())
        } else {
            Err(bad())
        }
    };
    let year = num(0, 4)?;
    sep(4, b"-")?;
    let month = num(5, 2)?;
    sep(7, b"-")?;
    let day = num(8, 2)?;
    sep(10, b"Tt ")?;
    let hour = num(11, 2)?;
    sep(13, b":")?;
    let minute = num(14, 2)?;
    sep(16, b":")?;
    let second = num(17, 2)?;
    let mut pos = 19;
    let mut millis = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let digits = &b[start..pos];
        if digits.is_empty() || digits.len() > 9 {
            return Err(bad());
        }
        for i in 0..3 {
            millis = millis * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'));
        }
    }
    let offset_minutes = match b.get(pos) {
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if pos + 6 == b.len() => {
            let oh = num(pos + 1, 2)?;
            sep(pos + 3, b":")?;
            let om = num(pos + 4, 2)?;
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let m = oh * 60 + om;
            if sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return Err(bad()),
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    // A leap second is folded into the second before it.
    let second = second.min(59);
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(secs * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_ms;

    #[test]
    fn parses_the_forms_the_api_accepts() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339_ms("2024-02-29T12:34:56Z"), Ok(1_709_210_096_000));
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56.789Z"),
            Ok(1_709_210_096_789)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56.789123456Z"),
            Ok(1_709_210_096_789)
        );
        assert_eq!(parse_rfc3339_ms("2024-02-29T12:34:56.7Z"), Ok(1_709_210_096_700));
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T14:34:56+02:00"),
            Ok(1_709_210_096_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29t07:04:56-05:30"),
            Ok(1_709_210_096_000)
        );
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z"), Ok(-1_000));
    }

    #[test]
    fn rejects_near_misses() {
        for s in [
            "",
            "2024-02-29",
            "2024-02-29T12:34:56",
            "2023-02-29T12:34:56Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567891Z",
            "2024-01-01T00:00:00+0100",
            "2024-01-01T00:00:00Zjunk",
            "2024/01/01T00:00:00Z",
        ] {
            assert!(parse_rfc3339_ms(s).is_err(), "{s} should be rejected");
        }
    }
}

/// `(year, month, day)` of a count of days since 1970-01-01 (proleptic Gregorian, 400-year eras).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod civil_tests {
    #[test]
    fn days_become_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(super::civil_from_days(-1), (1969, 12, 31));
    }
}
