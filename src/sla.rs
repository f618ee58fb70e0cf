//! The promise to learners, as arithmetic (DOMAIN.md, "The schedule and the
//! promise to learners"): a record that became eligible at instant T is due
//! by the end (23:59:59, Asia/Taipei) of the third working day after T's
//! calendar date in Asia/Taipei; T's own date never counts, even if it is a
//! working day. Working days come from the [`OfficeCalendar`].
//!
//! Pure: no clock, no logging. When a date outside the loaded years was
//! needed, [`Due::fallback_used`] says so and the caller must say it loudly.

use crate::calendar::OfficeCalendar;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, SubsecRound, TimeZone, Utc};
use chrono_tz::Asia::Taipei;
use serde::{Deserialize, Serialize};
use std::fmt;

/// "Within about 3 working days" (作業時間約3個工作天).
pub const WORKING_DAYS: u32 = 3;

/// When a record must have reached its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// 23:59:59 of the due date, at +08:00.
    pub at: DateTime<FixedOffset>,
    /// Some day between T's date (exclusive) and the due date (inclusive)
    /// was outside the loaded calendar years and was counted Monday–Friday.
    pub fallback_used: bool,
}

impl Due {
    pub fn at_utc(&self) -> DateTime<Utc> {
        self.at.with_timezone(&Utc)
    }

    /// The due date in Asia/Taipei.
    pub fn date(&self) -> NaiveDate {
        self.at.date_naive()
    }
}

/// The due time of a record that became eligible at `eligible_since`.
///
/// Example: eligible Thursday 2026-09-24 10:00 (Taipei); Friday 25 and
/// Monday 28 are holidays, so due at 2026-10-01T23:59:59+08:00.
pub fn due_at(calendar: &OfficeCalendar, eligible_since: DateTime<Utc>) -> Due {
    let start = eligible_since.with_timezone(&Taipei).date_naive();
    let (date, fallback_used) = nth_working_day_after(calendar, start, WORKING_DAYS);
    Due {
        at: end_of_day(date),
        fallback_used,
    }
}

/// The `n`th working day strictly after `date` (`date` itself when `n` is
/// 0), and whether any day examined came from the Monday–Friday fallback.
///
/// Panics only within a few days of chrono's largest date (year 262143).
pub fn nth_working_day_after(
    calendar: &OfficeCalendar,
    date: NaiveDate,
    n: u32,
) -> (NaiveDate, bool) {
    let mut day = date;
    let mut counted = 0;
    let mut fallback_used = false;
    while counted < n {
        day = day.succ_opt().expect("a date before chrono's last one");
        let answer = calendar.is_working_day(day);
        fallback_used |= answer.fallback_used;
        if answer.working {
            counted += 1;
        }
    }
    (day, fallback_used)
}

/// 23:59:59 of `date` in Asia/Taipei (+08:00 since 1980: no daylight saving).
fn end_of_day(date: NaiveDate) -> DateTime<FixedOffset> {
    let local = date
        .and_hms_opt(23, 59, 59)
        .expect("23:59:59 is a valid time");
    match Taipei.from_local_datetime(&local).earliest() {
        Some(t) => t.fixed_offset(),
        None => {
            let plus8 = FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
            plus8
                .from_local_datetime(&local)
                .single()
                .expect("a fixed offset has no gaps")
        }
    }
}

/// Where a delivery stands against its due time.
///
/// The due time names a whole second (23:59:59): an instant anywhere in
/// that second is still in time, so comparisons are at second resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Not delivered, and more than the at-risk margin is left.
    Pending,
    /// Not delivered, not yet due, and due within the at-risk margin.
    AtRisk,
    /// Delivered (accepted by the registry) by the due time.
    OnTime,
    /// Delivered after the due time.
    Late,
    /// Not delivered, and the due time has passed.
    Breached,
}

impl SlaState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::AtRisk => "at_risk",
            Self::OnTime => "on_time",
            Self::Late => "late",
            Self::Breached => "breached",
        }
    }

    /// Delivered: the state can not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::OnTime | Self::Late)
    }
}

impl fmt::Display for SlaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a delivery due at `due`, accepted at `delivered_at` (if it
/// was), seen at `now`; `at_risk` is the margin before the due time from
/// which an undelivered record is at risk.
pub fn sla_state(
    due: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    at_risk: Duration,
) -> SlaState {
    let past = |t: DateTime<Utc>| t.trunc_subsecs(0) > due;
    match delivered_at {
        Some(t) if past(t) => SlaState::Late,
        Some(_) => SlaState::OnTime,
        None if past(now) => SlaState::Breached,
        None if due - now <= at_risk => SlaState::AtRisk,
        None => SlaState::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_csv;
    use chrono::Datelike;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    const Y2026: &[u8] = include_bytes!("../config/calendar/2026.csv");
    const Y2025_BIG5: &[u8] = include_bytes!("../tests/fixtures/calendar/2025-big5.csv");

    static CAL_2026: LazyLock<OfficeCalendar> = LazyLock::new(|| calendar(&[Y2026]));

    fn calendar(files: &[&[u8]]) -> OfficeCalendar {
        let mut cal = OfficeCalendar::new();
        for f in files {
            cal.insert_year(parse_csv(f).unwrap());
        }
        cal
    }

    fn t(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    #[test]
    fn due_table() {
        let y2026 = calendar(&[Y2026]);
        let y2025 = calendar(&[Y2025_BIG5]);
        let both = calendar(&[Y2025_BIG5, Y2026]);
        #[rustfmt::skip]
        let cases: &[(&str, &OfficeCalendar, &str, &str, bool)] = &[
            // DOMAIN.md's example: Fri 25 (中秋節) and Mon 28 (教師節) are off.
            ("domain example", &y2026, "2026-09-24T10:00:00+08:00", "2026-10-01T23:59:59+08:00", false),
            ("on a holiday, counting starts after", &y2026, "2026-09-25T00:00:00+08:00", "2026-10-01T23:59:59+08:00", false),
            // Midnight in Taipei, not in UTC, moves the start date.
            ("Mon 23:59:59", &y2026, "2026-03-02T23:59:59+08:00", "2026-03-05T23:59:59+08:00", false),
            ("Tue 00:00:00", &y2026, "2026-03-03T00:00:00+08:00", "2026-03-06T23:59:59+08:00", false),
            ("Tue 00:00 Taipei is Mon in UTC", &y2026, "2026-03-02T16:00:00Z", "2026-03-06T23:59:59+08:00", false),
            ("Mon 15:59:59 UTC is Mon in Taipei", &y2026, "2026-03-02T15:59:59Z", "2026-03-05T23:59:59+08:00", false),
            // Feb 16–20 off (除夕, 春節, 補假), then the weekend.
            ("春節 holiday", &y2026, "2026-02-17T10:00:00+08:00", "2026-02-25T23:59:59+08:00", false),
            ("the working day before 春節", &y2026, "2026-02-12T09:00:00+08:00", "2026-02-24T23:59:59+08:00", false),
            // Apr 3 and Apr 6 off around the weekend of 兒童節 and 清明節.
            ("before a long weekend", &y2026, "2026-04-02T12:00:00+08:00", "2026-04-09T23:59:59+08:00", false),
            ("a Saturday", &y2026, "2026-03-07T12:00:00+08:00", "2026-03-11T23:59:59+08:00", false),
            // 2027 not loaded: Mon–Fri, so Jan 1 2027 (really a holiday) counts.
            ("last second of 2026", &y2026, "2026-12-31T23:59:59+08:00", "2027-01-05T23:59:59+08:00", true),
            ("first second of 2027", &y2026, "2027-01-01T00:00:00+08:00", "2027-01-06T23:59:59+08:00", true),
            ("ends on the last loaded day", &y2026, "2026-12-28T12:00:00+08:00", "2026-12-31T23:59:59+08:00", false),
            ("one day into 2027", &y2026, "2026-12-29T12:00:00+08:00", "2027-01-01T23:59:59+08:00", true),
            // 2025-02-08, a Saturday, was a make-up working day (補行上班).
            ("make-up Saturday counts", &y2025, "2025-02-06T10:00:00+08:00", "2025-02-10T23:59:59+08:00", false),
            ("eligible on the make-up Saturday", &y2025, "2025-02-08T10:00:00+08:00", "2025-02-12T23:59:59+08:00", false),
            ("春節 2025", &y2025, "2025-01-24T18:00:00+08:00", "2025-02-05T23:59:59+08:00", false),
            // Year boundary, next year missing: 2026-01-01 counted as a Thursday.
            ("2026 missing", &y2025, "2025-12-30T10:00:00+08:00", "2026-01-02T23:59:59+08:00", true),
            ("2026 loaded", &both, "2025-12-30T10:00:00+08:00", "2026-01-05T23:59:59+08:00", false),
            ("before the first loaded year", &y2026, "2025-12-30T10:00:00+08:00", "2026-01-05T23:59:59+08:00", true),
            ("nothing loaded", &OfficeCalendar::new(), "2026-09-24T10:00:00+08:00", "2026-09-29T23:59:59+08:00", true),
        ];
        for (name, cal, from, due, fallback) in cases {
            let got = due_at(cal, t(from));
            let want = DateTime::parse_from_rfc3339(due).unwrap();
            assert_eq!(got.at, want, "{name}: due");
            assert_eq!(
                got.at.offset().local_minus_utc(),
                8 * 3600,
                "{name}: offset"
            );
            assert_eq!(got.fallback_used, *fallback, "{name}: fallback_used");
        }
    }

    #[test]
    fn due_is_printed_at_plus_eight() {
        let due = due_at(&CAL_2026, t("2026-09-24T02:00:00Z"));
        assert_eq!(due.at.to_rfc3339(), "2026-10-01T23:59:59+08:00");
        assert_eq!(due.at_utc(), t("2026-10-01T15:59:59Z"));
        assert_eq!(due.date(), NaiveDate::from_ymd_opt(2026, 10, 1).unwrap());
    }

    #[test]
    fn nth_working_day() {
        let d = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert_eq!(
            nth_working_day_after(&CAL_2026, d(9, 24), 0),
            (d(9, 24), false)
        );
        assert_eq!(
            nth_working_day_after(&CAL_2026, d(9, 24), 1),
            (d(9, 29), false)
        );
        assert_eq!(
            nth_working_day_after(&CAL_2026, d(9, 24), 3),
            (d(10, 1), false)
        );
    }

    #[test]
    fn states() {
        let due = t("2026-10-01T23:59:59+08:00");
        let h = Duration::hours;
        let risk = h(24);
        #[rustfmt::skip]
        let cases: &[(Option<&str>, &str, SlaState)] = &[
            (Some("2026-10-01T23:59:59+08:00"), "2026-10-05T00:00:00+08:00", SlaState::OnTime),
            (Some("2026-10-01T23:59:59.999+08:00"), "2026-10-05T00:00:00+08:00", SlaState::OnTime),
            (Some("2026-10-02T00:00:00+08:00"), "2026-10-05T00:00:00+08:00", SlaState::Late),
            // Delivered states do not depend on now.
            (Some("2026-09-25T00:00:00+08:00"), "2026-09-25T00:00:01+08:00", SlaState::OnTime),
            (None, "2026-09-29T00:00:00+08:00", SlaState::Pending),
            (None, "2026-09-30T23:59:58+08:00", SlaState::Pending),
            (None, "2026-09-30T23:59:59+08:00", SlaState::AtRisk),
            (None, "2026-10-01T23:59:59+08:00", SlaState::AtRisk),
            (None, "2026-10-01T23:59:59.5+08:00", SlaState::AtRisk),
            (None, "2026-10-02T00:00:00+08:00", SlaState::Breached),
        ];
        for (delivered, now, want) in cases {
            assert_eq!(
                sla_state(due, delivered.map(t), t(now), risk),
                *want,
                "delivered {delivered:?} now {now}"
            );
        }
        assert_eq!(
            sla_state(due, None, t("2026-10-01T23:00:00+08:00"), h(0)),
            SlaState::Pending
        );
    }

    #[test]
    fn states_serialize_snake_case() {
        let all = [
            SlaState::Pending,
            SlaState::AtRisk,
            SlaState::OnTime,
            SlaState::Late,
            SlaState::Breached,
        ];
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(json, r#"["pending","at_risk","on_time","late","breached"]"#);
        for s in all {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        let back: Vec<SlaState> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, all);
    }

    /// Every millisecond of 2026 in Asia/Taipei.
    fn in_2026() -> impl Strategy<Value = DateTime<Utc>> {
        let start = t("2026-01-01T00:00:00+08:00").timestamp_millis();
        let end = t("2027-01-01T00:00:00+08:00").timestamp_millis();
        (start..end).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap())
    }

    fn taipei_date(t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&Taipei).date_naive()
    }

    proptest! {
        #[test]
        fn due_properties(t in in_2026()) {
            let cal = &*CAL_2026;
            let due = due_at(cal, t);
            let start = taipei_date(t);
            prop_assert!(cal.is_working_day(due.date()).working);
            prop_assert!(due.at_utc() > t);
            prop_assert!(due.date() > start);
            prop_assert_eq!(due.at.time(), chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap());
            prop_assert_eq!(due.at.offset().local_minus_utc(), 8 * 3600);
            let working = start
                .iter_days()
                .skip(1)
                .take_while(|d| *d <= due.date())
                .filter(|d| cal.is_working_day(*d).working)
                .count();
            prop_assert_eq!(working, WORKING_DAYS as usize);
            // Only 2026 is loaded: the fallback is needed exactly when the
            // due date runs into 2027.
            prop_assert_eq!(due.fallback_used, due.date().year() > 2026);
        }

        #[test]
        fn due_is_monotonic(a in in_2026(), b in in_2026()) {
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(due_at(&CAL_2026, a).at <= due_at(&CAL_2026, b).at);
        }

        #[test]
        fn state_is_consistent(
            t in in_2026(),
            delivered_after_ms in proptest::option::of(0i64..20 * 86_400_000),
            now_after_ms in 0i64..20 * 86_400_000,
            risk_h in 0i64..72,
        ) {
            let due = due_at(&CAL_2026, t).at_utc();
            let delivered = delivered_after_ms.map(|ms| t + Duration::milliseconds(ms));
            let now = t + Duration::milliseconds(now_after_ms);
            let state = sla_state(due, delivered, now, Duration::hours(risk_h));
            match delivered {
                Some(_) => prop_assert!(state.is_final(), "{:?}", state),
                None => prop_assert!(!state.is_final(), "{:?}", state),
            }
            if now < due {
                prop_assert_ne!(state, SlaState::Breached);
            }
        }
    }
}
