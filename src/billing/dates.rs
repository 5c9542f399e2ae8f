//! Civil (proleptic Gregorian, UTC) dates from days since 1970-01-01 and back, by Howard
//! Hinnant's public-domain algorithms: the billing period's calendar month and every date the
//! pages and mails print, without a date crate. Compiles for both halves of the app.

pub const DAY_MS: i64 = 86_400_000;

/// `(year, month, day)` of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as u32, d as u32)
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn civil_dates_round_trip_at_the_edges() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2,
            "leap"
        );
        assert_eq!(
            days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28),
            1,
            "no leap"
        );
        assert_eq!(civil_from_days(1_796_291_171_000 / DAY_MS), (2026, 12, 3));
    }

    #[test]
    fn the_last_day_of_a_400_year_era_round_trips() {
        for (y, m, d) in [
            (2000, 2, 29),
            (2400, 2, 29),
            (1600, 2, 29),
            (2000, 3, 1),
            (1999, 12, 31),
        ] {
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
    }

    proptest! {
        #[test]
        fn civil_dates_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
        }

    }
}

/// A day as people write it, in UTC: `3 January 2027` (the `time` crate's calendar; the pages
/// and mails show dates this way, never `2027-01-03`).
#[cfg(feature = "ssr")]
pub fn day_in_words(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!("{} {} {}", t.day(), t.month(), t.year()),
        Err(_) => "an unknown day".into(),
    }
}

/// A moment as people write it, in UTC: `3 January 2027, 14:05 UTC`.
#[cfg(feature = "ssr")]
pub fn time_in_words(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!(
            "{} {} {}, {:02}:{:02} UTC",
            t.day(),
            t.month(),
            t.year(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "an unknown time".into(),
    }
}

#[cfg(all(test, feature = "ssr"))]
mod words_tests {
    use super::*;

    #[test]
    fn days_and_times_read_in_words() {
        // 2027-01-03T14:05:59.999Z
        let ms = 1_798_985_159_999;
        assert_eq!(day_in_words(ms), "3 January 2027");
        assert_eq!(time_in_words(ms), "3 January 2027, 14:05 UTC");
        assert_eq!(day_in_words(0), "1 January 1970");
        assert_eq!(day_in_words(-1), "31 December 1969");
        assert_eq!(day_in_words(951_782_400_000), "29 February 2000");
        assert_eq!(time_in_words(86_399_999), "1 January 1970, 23:59 UTC");
        assert_eq!(day_in_words(i64::MAX), "an unknown day");
        assert_eq!(time_in_words(i64::MIN), "an unknown time");
    }
}
