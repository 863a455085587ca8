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
}
