//! The office calendar loader: encodings, the shipped 2026 file, revised
//! years, line-numbered errors, loading a directory.

use chrono::{Datelike, NaiveDate, Weekday};
use hoursync::calendar::{
    CalendarError, CalendarYear, LineError, OfficeCalendar, SourceEncoding, WorkingDay, load_file,
    parse_csv,
};
use std::path::{Path, PathBuf};

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(root().join(rel)).unwrap()
}

fn y2026() -> Vec<u8> {
    read("config/calendar/2026.csv")
}

fn big5_2025() -> Vec<u8> {
    read("tests/fixtures/calendar/2025-big5.csv")
}

fn revised_2025() -> Vec<u8> {
    read("tests/fixtures/calendar/2025-revised-utf8bom.csv")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn dates(days: impl Iterator<Item = NaiveDate>) -> Vec<NaiveDate> {
    days.collect()
}

/// The 2026 file as text without its BOM, one string per physical line.
fn lines_2026() -> Vec<String> {
    let bytes = y2026();
    let text = std::str::from_utf8(bytes.strip_prefix(BOM).unwrap()).unwrap();
    text.lines().map(str::to_string).collect()
}

fn parse_lines(lines: &[String]) -> Result<CalendarYear, CalendarError> {
    parse_csv((lines.join("\r\n") + "\r\n").as_bytes())
}

fn line_error(result: Result<CalendarYear, CalendarError>) -> (usize, LineError) {
    match result {
        Err(CalendarError::Line { line, error }) => (line, error),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn the_shipped_2026_file() {
    let bytes = y2026();
    assert!(
        bytes.starts_with(BOM),
        "UTF-8 with BOM, as the official files"
    );
    assert_eq!(
        bytes.windows(2).filter(|w| w == b"\r\n").count(),
        366,
        "CRLF on every line"
    );
    let year = parse_csv(&bytes).unwrap();
    assert_eq!(year.year(), 2026);
    assert_eq!(year.encoding(), SourceEncoding::Utf8Bom);
    assert_eq!(year.days().len(), 365);
    assert_eq!(year.days_off(), 120);
    assert_eq!(year.working_days(), 245);
    assert_eq!(year.make_up_working_days().count(), 0);
    assert!(
        year.days()
            .iter()
            .all(|d| !d.remark.contains("補行上班") && !d.remark.contains("調整上班"))
    );
    let weekend = year.days().iter().filter(|d| d.is_weekend()).count();
    assert_eq!(weekend, 104);
    assert!(year.days().iter().filter(|d| d.is_weekend()).all(|d| d.off));
    let holidays: Vec<(NaiveDate, &str)> = year
        .weekday_holidays()
        .map(|d| (d.date, d.remark.as_str()))
        .collect();
    assert_eq!(
        holidays,
        [
            (date(2026, 1, 1), "開國紀念日"),
            (date(2026, 2, 16), "除夕"),
            (date(2026, 2, 17), "春節"),
            (date(2026, 2, 18), "春節"),
            (date(2026, 2, 19), "春節"),
            (date(2026, 2, 20), "除夕前一日補假"),
            (date(2026, 2, 27), "和平紀念日補假"),
            (date(2026, 4, 3), "兒童節補假"),
            (date(2026, 4, 6), "清明節補假"),
            (date(2026, 5, 1), "勞動節"),
            (date(2026, 6, 19), "端午節"),
            (date(2026, 9, 25), "中秋節"),
            (date(2026, 9, 28), "教師節"),
            (date(2026, 10, 9), "國慶日補假"),
            (date(2026, 10, 26), "光復節補假"),
            (date(2026, 12, 25), "行憲紀念日"),
        ]
    );
    assert_eq!(104 + holidays.len(), year.days_off());
}

#[test]
fn big5_is_detected_and_parsed() {
    let bytes = big5_2025();
    assert!(std::str::from_utf8(&bytes).is_err(), "real Big5 bytes");
    let (_, had_errors) = encoding_rs::BIG5.decode_without_bom_handling(&bytes);
    assert!(!had_errors);

    let year = parse_csv(&bytes).unwrap();
    assert_eq!(year.year(), 2025);
    assert_eq!(year.encoding(), SourceEncoding::Big5);
    assert_eq!(year.days().len(), 365);
    // 104 weekend days, less the make-up Saturday, plus 12 weekday holidays.
    assert_eq!(year.days_off(), 115);
    let make_up: Vec<_> = year.make_up_working_days().collect();
    assert_eq!(make_up.len(), 1);
    assert_eq!(make_up[0].date, date(2025, 2, 8));
    assert_eq!(make_up[0].date.weekday(), Weekday::Sat);
    assert_eq!(make_up[0].remark, "補行上班");
    assert_eq!(
        dates(year.weekday_holidays().map(|d| d.date)),
        [
            date(2025, 1, 1),
            date(2025, 1, 27),
            date(2025, 1, 28),
            date(2025, 1, 29),
            date(2025, 1, 30),
            date(2025, 1, 31),
            date(2025, 2, 28),
            date(2025, 4, 3),
            date(2025, 4, 4),
            date(2025, 5, 30),
            date(2025, 10, 6),
            date(2025, 10, 10),
        ]
    );
    assert_eq!(year.day(date(2025, 1, 28)).unwrap().remark, "除夕");
}

#[test]
fn utf8_with_and_without_bom_and_any_line_ending() {
    let with_bom = parse_csv(&y2026()).unwrap();
    // No BOM, LF only, no newline at the end, and a blank line in between.
    let mut lines = lines_2026();
    lines.insert(10, String::new());
    let plain = lines.join("\n");
    let year = parse_csv(plain.as_bytes()).unwrap();
    assert_eq!(year.encoding(), SourceEncoding::Utf8);
    assert_eq!(year.days(), with_bom.days());
    // The same year in Big5 reads the same.
    let (big5, _, unmappable) = encoding_rs::BIG5.encode(&plain);
    assert!(!unmappable);
    let year = parse_csv(&big5).unwrap();
    assert_eq!(year.encoding(), SourceEncoding::Big5);
    assert_eq!(year.days(), with_bom.days());
}

#[test]
fn quoted_fields_are_unquoted() {
    let year = parse_csv(&revised_2025()).unwrap();
    assert_eq!(year.encoding(), SourceEncoding::Utf8Bom);
    assert_eq!(year.day(date(2025, 1, 1)).unwrap().remark, "開國紀念日");
    assert_eq!(year.day(date(2025, 1, 2)).unwrap().remark, "");
}

#[test]
fn a_revised_year_replaces_the_old_one() {
    let christmas = date(2025, 12, 25);
    let mut cal = OfficeCalendar::new();
    assert!(cal.insert_year(parse_csv(&big5_2025()).unwrap()).is_none());
    assert_eq!(
        cal.is_working_day(christmas),
        WorkingDay {
            working: true,
            fallback_used: false
        }
    );

    let revised = parse_csv(&revised_2025()).unwrap();
    assert_eq!(revised.days_off(), 116);
    let old = cal.insert_year(revised).expect("2025 was loaded");
    assert_eq!(old.encoding(), SourceEncoding::Big5);
    assert_eq!(
        cal.is_working_day(christmas),
        WorkingDay {
            working: false,
            fallback_used: false
        }
    );
    assert_eq!(cal.years().count(), 1);
    let new = cal.year(2025).unwrap();
    let changes: Vec<_> = new
        .changes_from(&old)
        .into_iter()
        .map(|(o, n)| (o.date, o.off, n.off, n.remark.as_str()))
        .collect();
    assert_eq!(changes, [(christmas, false, true, "行憲紀念日")]);
    // The make-up Saturday is still a working day.
    assert!(cal.is_working_day(date(2025, 2, 8)).working);
}

#[test]
fn a_missing_day_names_its_neighbours() {
    // Line 1 is the header, so the date of ordinal n is on line n + 1.
    let mut lines = lines_2026();
    assert!(lines[60].starts_with("20260301,"));
    lines.remove(60);
    let err = parse_lines(&lines).unwrap_err();
    match &err {
        CalendarError::MissingDays {
            year: 2026,
            first,
            count: 1,
            after: Some(60),
            before: Some(61),
        } => assert_eq!(*first, date(2026, 3, 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "2026: 1 date(s) missing, the first 2026-03-01 (expected between line 60 and line 61)"
    );

    let mut lines = lines_2026();
    lines.truncate(lines.len() - 2);
    match parse_lines(&lines).unwrap_err() {
        CalendarError::MissingDays {
            first,
            count: 2,
            after: Some(364),
            before: None,
            ..
        } => assert_eq!(first, date(2026, 12, 30)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bad_flag() {
    let mut lines = lines_2026();
    lines[4] = "20260104,日,1,".into();
    let (line, error) = line_error(parse_lines(&lines));
    assert_eq!((line, error), (5, LineError::BadFlag("1".into())));
    let err = parse_lines(&lines).unwrap_err().to_string();
    assert!(err.starts_with("line 5: 是否放假 must be 0"), "{err}");
}

#[test]
fn a_weekday_that_does_not_match_the_date() {
    let mut lines = lines_2026();
    assert_eq!(lines[1], "20260101,四,2,開國紀念日");
    lines[1] = "20260101,五,2,開國紀念日".into();
    let (line, error) = line_error(parse_lines(&lines));
    assert_eq!(line, 2);
    assert_eq!(
        error,
        LineError::WeekdayMismatch {
            date: date(2026, 1, 1),
            found: '五',
            expected: '四'
        }
    );
    assert_eq!(
        error.to_string(),
        "星期 `五` does not match 2026-01-01, a 星期四"
    );

    lines[1] = "20260101,Thu,2,開國紀念日".into();
    assert_eq!(
        line_error(parse_lines(&lines)),
        (2, LineError::BadWeekday("Thu".into()))
    );
}

#[test]
fn a_wrong_header() {
    let mut lines = lines_2026();
    lines[0] = "date,weekday,holiday,remark".into();
    match parse_lines(&lines).unwrap_err() {
        CalendarError::Header { line: 1, found, .. } => assert_eq!(found, lines[0]),
        other => panic!("{other:?}"),
    }
    // Big5 bytes read as something else never look like the header; the
    // message says how the file was decoded.
    let mut text = lines_2026().join("\r\n");
    text = text.replacen("是否放假", "放假", 1);
    let (big5, _, _) = encoding_rs::BIG5.encode(&text);
    let err = parse_csv(&big5).unwrap_err().to_string();
    assert!(err.starts_with("line 1: header must be"), "{err}");
    assert!(err.ends_with("(decoded as Big5)"), "{err}");
}

#[test]
fn other_line_errors() {
    let base = lines_2026();
    type Mutation = fn(&mut Vec<String>);
    let cases: Vec<(Mutation, usize, LineError)> = vec![
        (
            (|l| l.insert(3, l[2].clone())),
            4,
            LineError::Duplicate {
                date: date(2026, 1, 2),
                first_line: 3,
            },
        ),
        (
            (|l| l.push("20270101,五,2,開國紀念日".into())),
            367,
            LineError::OtherYear {
                date: date(2027, 1, 1),
                year: 2026,
            },
        ),
        (
            (|l| l[7] = "2026017,三,0,".into()),
            8,
            LineError::BadDate("2026017".into()),
        ),
        (
            (|l| l[7] = "20260107,三".into()),
            8,
            LineError::FieldCount(2),
        ),
        (
            (|l| l[7] = "20260107,三,0,x,y".into()),
            8,
            LineError::FieldCount(5),
        ),
        (
            (|l| l[7] = "20260107,三,0,\"x".into()),
            8,
            LineError::UnclosedQuote,
        ),
    ];
    for (mutate, want_line, want) in cases {
        let mut lines = base.clone();
        mutate(&mut lines);
        assert_eq!(line_error(parse_lines(&lines)), (want_line, want));
    }
}

#[test]
fn line_numbers_hold_in_big5_files() {
    let bytes = big5_2025();
    let text = encoding_rs::BIG5.decode_without_bom_handling(&bytes).0;
    let text = text.replace("20250208,六,0,", "20250208,六,9,");
    let (bytes, _, _) = encoding_rs::BIG5.encode(&text);
    assert_eq!(
        line_error(parse_csv(&bytes)),
        (40, LineError::BadFlag("9".into()))
    );
}

#[test]
fn undecodable_and_empty_files() {
    for bytes in [&b"\xFF\xFE,\0"[..], b"a\x80b\r\n", b"\xEF\xBB\xBF\xB6}"] {
        assert!(
            matches!(parse_csv(bytes), Err(CalendarError::Encoding(_))),
            "{bytes:?}"
        );
    }
    assert!(matches!(parse_csv(b""), Err(CalendarError::Empty)));
    assert!(matches!(
        parse_csv("西元日期,星期,是否放假,備註\r\n".as_bytes()),
        Err(CalendarError::Empty)
    ));
}

fn copy(from: &str, dir: &Path, name: &str) {
    std::fs::copy(root().join(from), dir.join(name)).unwrap();
}

#[test]
fn load_dir_and_covered_until() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        OfficeCalendar::load_dir(dir.path())
            .unwrap()
            .covered_until(),
        None
    );

    copy(
        "tests/fixtures/calendar/2025-big5.csv",
        dir.path(),
        "2025.csv",
    );
    std::fs::write(dir.path().join("README.md"), "not a calendar").unwrap();
    let cal = OfficeCalendar::load_dir(dir.path()).unwrap();
    assert_eq!(cal.covered_until(), Some(date(2025, 12, 31)));

    copy("config/calendar/2026.csv", dir.path(), "2026.CSV");
    let cal = OfficeCalendar::load_dir(dir.path()).unwrap();
    let years: Vec<i32> = cal.years().map(|y| y.year()).collect();
    assert_eq!(years, [2025, 2026]);
    assert_eq!(cal.covered_until(), Some(date(2026, 12, 31)));
    assert!(!cal.is_working_day(date(2026, 1, 1)).working);
    assert!(cal.is_working_day(date(2027, 1, 1)).fallback_used);

    // A gap: 2028 loaded, 2027 not.
    let mut lines: Vec<String> = lines_2026();
    let mut d = date(2028, 1, 1);
    lines.truncate(1);
    while d.year() == 2028 {
        let weekend = matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        let wd = "一二三四五六日"
            .chars()
            .nth(d.weekday().num_days_from_monday() as usize);
        lines.push(format!(
            "{},{},{},",
            d.format("%Y%m%d"),
            wd.unwrap(),
            if weekend { 2 } else { 0 }
        ));
        d = d.succ_opt().unwrap();
    }
    std::fs::write(dir.path().join("2028.csv"), lines.join("\n")).unwrap();
    let cal = OfficeCalendar::load_dir(dir.path()).unwrap();
    assert_eq!(cal.years().count(), 3);
    assert_eq!(cal.year(2028).unwrap().days().len(), 366);
    assert_eq!(cal.covered_until(), Some(date(2026, 12, 31)));
}

#[test]
fn load_dir_refuses_two_files_of_one_year() {
    let dir = tempfile::tempdir().unwrap();
    copy("tests/fixtures/calendar/2025-big5.csv", dir.path(), "a.csv");
    copy(
        "tests/fixtures/calendar/2025-revised-utf8bom.csv",
        dir.path(),
        "b.csv",
    );
    match OfficeCalendar::load_dir(dir.path()).unwrap_err() {
        CalendarError::DuplicateYear {
            year: 2025,
            first,
            second,
        } => {
            assert_eq!(first.file_name().unwrap(), "a.csv");
            assert_eq!(second.file_name().unwrap(), "b.csv");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_name_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = lines_2026();
    lines[4] = "20260104,日,1,".into();
    let path = dir.path().join("2026.csv");
    std::fs::write(&path, lines.join("\r\n")).unwrap();
    let err = OfficeCalendar::load_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: line 5: 是否放假 must be 0 (working day) or 2 (day off), found `1`",
            path.display()
        )
    );
    assert!(load_file(&path).is_err());
    assert!(matches!(
        OfficeCalendar::load_dir(dir.path().join("nope")),
        Err(CalendarError::Io { .. })
    ));
}

#[test]
fn the_config_directory_loads() {
    let cal = OfficeCalendar::load_dir(root().join("config/calendar")).unwrap();
    assert_eq!(
        cal.years().map(CalendarYear::year).collect::<Vec<_>>(),
        [2026]
    );
    assert_eq!(cal.covered_until(), Some(date(2026, 12, 31)));
}
