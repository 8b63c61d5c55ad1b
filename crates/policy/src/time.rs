//! Dates for the `Date*` condition operators: the W3C profile of ISO 8601 (`YYYY`,
//! `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mmTZD`, `YYYY-MM-DDThh:mm:ssTZD`,
//! `YYYY-MM-DDThh:mm:ss.sTZD`, TZD = `Z` or `±hh:mm`) or epoch seconds, as IAM accepts.
//! Times are milliseconds since the Unix epoch.

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A fixed number of ASCII digits.
fn digits(s: &str, n: usize) -> Option<u32> {
    let d = s.get(..n)?;
    if d.bytes().all(|b| b.is_ascii_digit()) {
        d.parse().ok()
    } else {
        None
    }
}

/// Parses a policy date: epoch seconds or a W3C ISO 8601 date/time.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    if !unsigned.is_empty() && unsigned.len() <= 15 && unsigned.bytes().all(|b| b.is_ascii_digit())
    {
        // Epoch seconds (also what a bare four-digit year would look like: IAM reads the W3C
        // year form only with a month, so "2020" is 2020 seconds after the epoch).
        let secs: i64 = s.parse().ok()?;
        return secs.checked_mul(1000);
    }
    let year = i64::from(digits(s, 4)?);
    let rest = &s[4..];
    let (month, rest) = match rest.strip_prefix('-') {
        Some(r) => (digits(r, 2)?, &r[2..]),
        None => return None,
    };
    if !(1..=12).contains(&month) {
        return None;
    }
    let (day, rest) = match rest.strip_prefix('-') {
        Some(r) => (digits(r, 2)?, &r[2..]),
        None if rest.is_empty() => (1, rest),
        None => return None,
    };
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    let Some(rest) = rest.strip_prefix('T') else {
        return rest.is_empty().then_some(ms);
    };
    let hour = digits(rest, 2)?;
    let rest = rest[2..].strip_prefix(':')?;
    let minute = digits(rest, 2)?;
    let mut rest = &rest[2..];
    let mut second = 0;
    let mut millis = 0i64;
    if let Some(r) = rest.strip_prefix(':') {
        second = digits(r, 2)?;
        rest = &r[2..];
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            // Milliseconds: the first three digits of the fraction.
            let mut frac = r[..n.min(3)].to_string();
            while frac.len() < 3 {
                frac.push('0');
            }
            millis = frac.parse().ok()?;
            rest = &r[n..];
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    ms += (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * 1000 + millis;
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let (sign, r) = match rest.as_bytes().first()? {
                b'+' => (1, &rest[1..]),
                b'-' => (-1, &rest[1..]),
                _ => return None,
            };
            let h = digits(r, 2)?;
            let r = r[2..].strip_prefix(':')?;
            let m = digits(r, 2)?;
            if r.len() != 2 || h > 23 || m > 59 {
                return None;
            }
            sign * i64::from(h * 60 + m)
        }
    };
    Some(ms - offset_minutes * 60_000)
}

/// `aws:CurrentTime` as text: `YYYY-MM-DDThh:mm:ssZ`.
pub(crate) fn format_iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_w3c_forms_and_epoch() {
        let t = 1_577_836_800_000; // 2020-01-01T00:00:00Z
        assert_eq!(parse_date("2020-01-01T00:00:00Z"), Some(t));
        assert_eq!(parse_date("2020-01-01T00:00:01Z"), Some(t + 1000));
        assert_eq!(parse_date("2020-01-01"), Some(t));
        assert_eq!(parse_date("2020-01"), Some(t));
        assert_eq!(parse_date("2020-01-01T00:00Z"), Some(t));
        assert_eq!(parse_date("2020-01-01T01:00:00+01:00"), Some(t));
        assert_eq!(parse_date("2019-12-31T19:00:00-05:00"), Some(t));
        assert_eq!(parse_date("2020-01-01T00:00:00.25Z"), Some(t + 250));
        assert_eq!(parse_date("2020-01-01T00:00:00.123456Z"), Some(t + 123));
        assert_eq!(parse_date("1577836800"), Some(t));
        assert_eq!(parse_date("0"), Some(0));
        assert_eq!(parse_date("-1"), Some(-1000));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800_000));
        for bad in [
            "",
            "x",
            "2020-13-01",
            "2023-02-29",
            "2020-01-01T",
            "2020-01-01T25:00Z",
            "2020-01-01T00:00:00",
            "2020-01-01T00:00:00+0100",
            "2020/01/01",
            "1e9",
            "2020-01-01T00:00:00.Z",
            "99999999999999999999",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(format_iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_iso8601(1_709_164_800_999), "2024-02-29T00:00:00Z");
        assert_eq!(format_iso8601(-1), "1969-12-31T23:59:59Z");
        for ms in [0i64, 951_782_400_000, 4_102_444_800_000, -2_208_988_800_000] {
            let s = format_iso8601(ms);
            assert_eq!(parse_date(&s), Some(ms), "{s}");
        }
        for days in -800_000..800_000i64 {
            if days % 997 == 0 {
                let (y, m, d) = civil_from_days(days);
                assert_eq!(days_from_civil(y, m, d), days);
            }
        }
    }
}
