//! The official CSV of dataset 14718 on data.gov.tw: header
//! `西元日期,星期,是否放假,備註`, then one line per date: `YYYYMMDD`, the
//! weekday in Chinese (日一二三四五六), `0` (working day) or `2` (day off), and
//! a remark.
//!
//! The encoding is detected, not assumed: a UTF-8 byte-order mark means
//! UTF-8; otherwise bytes that are valid UTF-8 are UTF-8; otherwise they must
//! decode as Big5 without a single malformed sequence. Whichever was chosen,
//! the header must then read as the expected column names. Lines may end in
//! CRLF or LF; blank lines are skipped; fields may be double-quoted (`""`
//! for a quote inside), but not span lines; empty trailing fields are
//! ignored (`20260102,五,0,` and `20260102,五,0` are the same).

use super::{CalendarError, CalendarYear, Day};
use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::HashMap;
use std::fmt;

const HEADER: [&str; 4] = ["西元日期", "星期", "是否放假", "備註"];
const WEEKDAYS: [char; 7] = ['日', '一', '二', '三', '四', '五', '六'];
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The encoding a file was detected to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEncoding {
    Utf8Bom,
    Utf8,
    Big5,
}

impl fmt::Display for SourceEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Utf8Bom => "UTF-8 with BOM",
            Self::Utf8 => "UTF-8",
            Self::Big5 => "Big5",
        })
    }
}

/// What is wrong with one line; [`CalendarError::Line`] gives the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("expected 4 fields (西元日期,星期,是否放假,備註), found {0}")]
    FieldCount(usize),
    #[error("a quoted field is not closed on this line")]
    UnclosedQuote,
    #[error("西元日期 `{0}` is not a date written YYYYMMDD")]
    BadDate(String),
    #[error("{date} is not in {year}, the year of the first date")]
    OtherYear { date: NaiveDate, year: i32 },
    #[error("{date} appears again (first on line {first_line})")]
    Duplicate { date: NaiveDate, first_line: usize },
    #[error("星期 `{0}` is not one of 日一二三四五六")]
    BadWeekday(String),
    #[error("星期 `{found}` does not match {date}, a 星期{expected}")]
    WeekdayMismatch {
        date: NaiveDate,
        found: char,
        expected: char,
    },
    #[error("是否放假 must be 0 (working day) or 2 (day off), found `{0}`")]
    BadFlag(String),
}

/// Parses and validates one year's official CSV, in any of the encodings
/// of [`SourceEncoding`]. Errors name the line and what is wrong.
pub fn parse_csv(bytes: &[u8]) -> Result<CalendarYear, CalendarError> {
    let (text, encoding) = decode(bytes)?;
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());

    let (header_line, header) = lines.next().ok_or(CalendarError::Empty)?;
    let fields = split_fields(header).map_err(|error| CalendarError::Line {
        line: header_line,
        error,
    })?;
    if fields != HEADER {
        return Err(CalendarError::Header {
            line: header_line,
            found: header.to_string(),
            encoding,
        });
    }

    let mut year = None;
    let mut seen: HashMap<NaiveDate, usize> = HashMap::new();
    let mut days = Vec::with_capacity(366);
    for (line, text) in lines {
        let at = |error| CalendarError::Line { line, error };
        let day = parse_row(text).map_err(at)?;
        let year = *year.get_or_insert(day.date.year());
        if day.date.year() != year {
            return Err(at(LineError::OtherYear {
                date: day.date,
                year,
            }));
        }
        if let Some(&first_line) = seen.get(&day.date) {
            return Err(at(LineError::Duplicate {
                date: day.date,
                first_line,
            }));
        }
        seen.insert(day.date, line);
        days.push(day);
    }
    let year = year.ok_or(CalendarError::Empty)?;
    days.sort_by_key(|d| d.date);
    check_complete(year, &days, &seen)?;
    Ok(CalendarYear::new(year, days, encoding))
}

fn decode(bytes: &[u8]) -> Result<(String, SourceEncoding), CalendarError> {
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return match std::str::from_utf8(rest) {
            Ok(s) => Ok((s.to_string(), SourceEncoding::Utf8Bom)),
            Err(e) => Err(CalendarError::Encoding(format!(
                "starts with a UTF-8 byte-order mark but is not UTF-8 (byte {})",
                e.valid_up_to() + UTF8_BOM.len()
            ))),
        };
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(CalendarError::Encoding(
            "UTF-16 is not supported: save the file as UTF-8 or Big5".to_string(),
        ));
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok((s.to_string(), SourceEncoding::Utf8));
    }
    encoding_rs::BIG5
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| (s.into_owned(), SourceEncoding::Big5))
        .ok_or_else(|| {
            CalendarError::Encoding("neither UTF-8 nor Big5 (malformed bytes in both)".to_string())
        })
}

fn parse_row(text: &str) -> Result<Day, LineError> {
    let fields = split_fields(text)?;
    let [date, weekday, flag, remark]: [&str; 4] = match fields.as_slice() {
        [a, b, c] => [a, b, c, ""],
        [a, b, c, d] => [a, b, c, d],
        other => return Err(LineError::FieldCount(other.len())),
    };
    let date = parse_date(date).ok_or_else(|| LineError::BadDate(date.to_string()))?;
    let mut chars = weekday.chars();
    let found = match (chars.next(), chars.next()) {
        (Some(c), None) if WEEKDAYS.contains(&c) => c,
        _ => return Err(LineError::BadWeekday(weekday.to_string())),
    };
    let expected = weekday_char(date.weekday());
    if found != expected {
        return Err(LineError::WeekdayMismatch {
            date,
            found,
            expected,
        });
    }
    let off = match flag {
        "0" => false,
        "2" => true,
        _ => return Err(LineError::BadFlag(flag.to_string())),
    };
    Ok(Day {
        date,
        off,
        remark: remark.to_string(),
    })
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::from_ymd_opt(
        s[..4].parse().ok()?,
        s[4..6].parse().ok()?,
        s[6..].parse().ok()?,
    )
}

/// Splits one line on commas, honouring double-quoted fields; fields are
/// trimmed and trailing empty fields dropped.
fn split_fields(line: &str) -> Result<Vec<String>, LineError> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(LineError::UnclosedQuote),
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            // Anything between the closing quote and the comma is kept, as
            // spreadsheet programs do.
            while let Some(c) = chars.next_if(|c| *c != ',') {
                field.push(c);
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                field.push(c);
            }
        }
        fields.push(field.trim().to_string());
        if chars.next().is_none() {
            break;
        }
    }
    while fields.last().is_some_and(|f| f.is_empty()) {
        fields.pop();
    }
    Ok(fields)
}

/// Every date of `year` present (duplicates and other years are already
/// refused); `days` is sorted.
fn check_complete(
    year: i32,
    days: &[Day],
    lines: &HashMap<NaiveDate, usize>,
) -> Result<(), CalendarError> {
    let first = NaiveDate::from_ymd_opt(year, 1, 1).expect("January 1 exists");
    let all: Vec<NaiveDate> = first.iter_days().take_while(|d| d.year() == year).collect();
    if days.len() == all.len() {
        return Ok(());
    }
    let missing: Vec<NaiveDate> = all
        .iter()
        .copied()
        .filter(|d| !lines.contains_key(d))
        .collect();
    let first = missing[0];
    let after = first
        .pred_opt()
        .filter(|d| d.year() == year)
        .and_then(|d| lines.get(&d).copied());
    let before = days
        .iter()
        .find(|d| d.date > first)
        .and_then(|d| lines.get(&d.date).copied());
    Err(CalendarError::MissingDays {
        year,
        first,
        count: missing.len(),
        after,
        before,
    })
}

/// A weekday as the official files write it.
fn weekday_char(weekday: Weekday) -> char {
    WEEKDAYS[weekday.num_days_from_sunday() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let f = |s: &str| split_fields(s).unwrap();
        assert_eq!(f("a,b,c,d"), ["a", "b", "c", "d"]);
        assert_eq!(f("20260102,五,0,"), ["20260102", "五", "0"]);
        assert_eq!(
            f(r#"20260101,四,2,"開國紀念日""#),
            ["20260101", "四", "2", "開國紀念日"]
        );
        assert_eq!(f(r#""a,b","say ""hi""", c "#), ["a,b", r#"say "hi""#, "c"]);
        assert_eq!(f(""), Vec::<String>::new());
        assert_eq!(split_fields(r#"a,"b"#), Err(LineError::UnclosedQuote));
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("20240229"), NaiveDate::from_ymd_opt(2024, 2, 29));
        for bad in [
            "20250229",
            "2025-1-1",
            "2025011",
            "202501011",
            "２０２５０１０１",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn weekday_chars() {
        assert_eq!(weekday_char(Weekday::Sun), '日');
        assert_eq!(weekday_char(Weekday::Sat), '六');
    }

    #[test]
    fn encodings() {
        let header = "西元日期,星期,是否放假,備註\r\n";
        let (_, e) = decode(header.as_bytes()).unwrap();
        assert_eq!(e, SourceEncoding::Utf8);
        let bom = [UTF8_BOM, header.as_bytes()].concat();
        assert_eq!(
            decode(&bom).unwrap(),
            (header.to_string(), SourceEncoding::Utf8Bom)
        );
        let (big5, _, unmappable) = encoding_rs::BIG5.encode(header);
        assert!(!unmappable);
        assert_eq!(
            decode(&big5).unwrap(),
            (header.to_string(), SourceEncoding::Big5)
        );
        assert!(matches!(
            decode(b"\xFF\xFEx\0"),
            Err(CalendarError::Encoding(_))
        ));
        assert!(matches!(
            decode(b"\xEF\xBB\xBF\xB6}"),
            Err(CalendarError::Encoding(_))
        ));
        // 0x80 is neither UTF-8 nor a Big5 lead byte.
        assert!(matches!(decode(b"a\x80b"), Err(CalendarError::Encoding(_))));
    }
}
