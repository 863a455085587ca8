//! Wall-clock time as a value. The embedder passes `now` in milliseconds since
//! the Unix epoch; the core only formats it (XEP-0082) and compares it.

/// Milliseconds since the Unix epoch, supplied by the driver.
pub type Millis = u64;

/// XEP-0082 DateTime (`2026-11-24T05:47:06.123Z`) for a Unix time in ms.
pub fn format_datetime(ms: Millis) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A parsed XEP-0082 DateTime: the millisecond it falls in, and whether it
/// had digits below the millisecond (so `start` filters can round up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Milliseconds since the Unix epoch, rounded down (negative before
    /// 1970).
    pub millis: i64,
    /// The value lies strictly inside `millis` (sub-millisecond digits).
    pub inexact: bool,
}

/// Parse an XEP-0082 DateTime: `CCYY-MM-DDThh:mm:ss[.s+](Z|±hh:mm)`.
/// `None` for anything else, including impossible dates.
pub fn parse_datetime(s: &str) -> Option<DateTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    let mut inexact = false;
    if sep(i, b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for (n, c) in b[i..i + digits].iter().enumerate() {
            let v = i64::from(c - b'0');
            if n < 3 {
                millis += v * 10i64.pow(2 - n as u32);
            } else if v != 0 {
                inexact = true;
            }
        }
        i += digits;
    }
    let offset_min = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b':') => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(DateTime {
        millis: secs * 1000 + millis,
        inexact,
    })
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's civil-to-days conversion (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_datetime(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            format_datetime(1_795_499_226_123),
            "2026-11-24T05:47:06.123Z"
        );
    }

    #[test]
    fn parses_what_it_formats_and_the_xep_0082_forms() {
        for ms in [0, 951_782_400_000, 1_795_499_226_123, 4_102_444_799_999] {
            let dt = parse_datetime(&format_datetime(ms)).expect("own format");
            assert_eq!(dt.millis, ms as i64);
            assert!(!dt.inexact);
        }
        let p = |s: &str| parse_datetime(s).map(|d| (d.millis, d.inexact));
        assert_eq!(p("2010-06-07T00:00:00Z"), Some((1_275_868_800_000, false)));
        assert_eq!(
            p("2010-06-07T02:00:00+02:00"),
            Some((1_275_868_800_000, false))
        );
        assert_eq!(
            p("2010-06-06T23:30:00-00:30"),
            Some((1_275_868_800_000, false))
        );
        assert_eq!(p("1970-01-01T00:00:00.0005Z"), Some((0, true)));
        assert_eq!(p("1969-12-31T23:59:59Z"), Some((-1000, false)));
        for bad in [
            "",
            "2010-06-07",
            "2010-06-07T00:00:00",
            "2010-13-07T00:00:00Z",
            "2011-02-29T00:00:00Z",
            "2010-06-07T24:00:00Z",
            "2010-06-07T00:00:00.Z",
            "2010-06-07T00:00:00+2:00",
            "2010-06-07T00:00:00Zjunk",
            "２010-06-07T00:00:00Z",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert!(parse_datetime("2012-02-29T00:00:00Z").is_some());
    }
}
