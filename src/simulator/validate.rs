//! Per-record validation, written from REGISTRY-API.md and DOMAIN.md alone.
//!
//! The simulator deliberately shares no code with `crate::domain`: it is the
//! peer our end-to-end tests trust, so a bug in our own parsers must not be
//! mirrored here and pass unnoticed. It is also strict where the contract is
//! precise (types, formats, the one decimal place) and rejects fields the
//! contract does not list for a registry, because a record of the wrong shape
//! is an adapter bug we want to see in tests, not in production.

use serde_json::{Map, Value};

use super::state::RegistryKind;

/// The longest idempotency key the contract allows, in characters.
pub const MAX_KEY_CHARS: usize = 64;

/// The largest `hours` value, in tenths of an hour (999.9).
const MAX_TENTHS: u32 = 9_999;

/// Why a record is rejected: a contract `code` and a human message. Messages
/// never repeat a national ID, which is personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn field(message: impl Into<String>) -> Self {
        Self::new("invalid_field", message)
    }

    fn hours(message: impl Into<String>) -> Self {
        Self::new("invalid_hours", message)
    }
}

/// What the store needs from a record that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidRecord {
    pub national_id: String,
    pub course_code: String,
    pub completed_on: String,
    pub hours_tenths: u32,
}

/// Returns the record's idempotency key if it is a string of 1..=64
/// characters. Checked before anything else, because the key decides whether
/// the record is a duplicate.
pub fn idempotency_key(record: &Value) -> Result<&str, Rejection> {
    let Some(raw) = record.get("idempotency_key") else {
        return Err(Rejection::field("idempotency_key is missing"));
    };
    let Some(key) = raw.as_str() else {
        return Err(Rejection::field("idempotency_key must be a string"));
    };
    valid_key(key).map_err(Rejection::field)?;
    Ok(key)
}

/// Checks the length rule for an idempotency key (also used by corrections).
pub fn valid_key(key: &str) -> Result<(), String> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_KEY_CHARS {
        return Err(format!(
            "idempotency_key must be 1 to {MAX_KEY_CHARS} characters, got {chars}"
        ));
    }
    Ok(())
}

/// Validates every field of one record for `registry`, in the order of the
/// contract's tables, and reports the first problem found.
pub fn record(registry: RegistryKind, record: &Value) -> Result<ValidRecord, Rejection> {
    let Some(obj) = record.as_object() else {
        return Err(Rejection::field("a record must be a JSON object"));
    };
    for name in obj.keys() {
        if !COMMON_FIELDS.contains(&name.as_str())
            && !extra_fields(registry).contains(&name.as_str())
        {
            return Err(Rejection::field(format!(
                "field {name:?} is not part of a {} record",
                registry.name()
            )));
        }
    }

    let national_id = match obj.get("national_id") {
        None => return Err(Rejection::field("national_id is missing")),
        Some(Value::String(s)) => s,
        Some(_) => return Err(Rejection::field("national_id must be a string")),
    };
    if let Err(why) = national_id_check(national_id) {
        return Err(Rejection::new("invalid_national_id", why));
    }
    let course_code = non_empty(obj, "course_code")?;
    non_empty(obj, "course_name")?;
    let completed_on = date(obj, "completed_on")?;
    let hours_tenths = match obj.get("hours") {
        None => return Err(Rejection::hours("hours is missing")),
        Some(Value::String(s)) => {
            let tenths = tenths(s).map_err(|e| Rejection::hours(format!("hours: {e}")))?;
            if tenths == 0 {
                return Err(Rejection::hours("hours must be greater than 0"));
            }
            tenths
        }
        Some(_) => {
            return Err(Rejection::hours(
                "hours must be a decimal string such as \"2.0\"",
            ));
        }
    };

    match registry {
        RegistryKind::Lifelong => lifelong(obj, hours_tenths)?,
        RegistryKind::Teacher => match obj.get("personnel_category") {
            Some(Value::String(s)) if s == "10" => {}
            Some(_) => {
                return Err(Rejection::field(
                    "personnel_category must be the string \"10\"",
                ));
            }
            None => return Err(Rejection::field("personnel_category is missing")),
        },
        RegistryKind::Enved => {
            non_empty(obj, "enved_account")?;
            non_empty(obj, "service_unit_code")?;
        }
    }

    Ok(ValidRecord {
        national_id: national_id.clone(),
        course_code: course_code.to_owned(),
        completed_on: completed_on.to_owned(),
        hours_tenths,
    })
}

const COMMON_FIELDS: [&str; 6] = [
    "idempotency_key",
    "national_id",
    "course_code",
    "course_name",
    "completed_on",
    "hours",
];

fn extra_fields(registry: RegistryKind) -> &'static [&'static str] {
    match registry {
        RegistryKind::Lifelong => &[
            "learning_mode",
            "digital_hours",
            "classroom_hours",
            "category_code",
        ],
        RegistryKind::Teacher => &["personnel_category"],
        RegistryKind::Enved => &["enved_account", "service_unit_code"],
    }
}

/// The lifelong registry's fields: a learning mode, and the hours split into
/// digital and classroom parts that must add up exactly (in tenths, so no
/// floating point can round a wrong sum into a right one).
fn lifelong(obj: &Map<String, Value>, hours_tenths: u32) -> Result<(), Rejection> {
    match obj.get("learning_mode") {
        None => return Err(Rejection::field("learning_mode is missing")),
        Some(v) if matches!(v.as_u64(), Some(1..=3)) => {}
        Some(_) => {
            return Err(Rejection::field(
                "learning_mode must be the integer 1, 2 or 3",
            ));
        }
    }
    let part = |name: &str| -> Result<u32, Rejection> {
        match obj.get(name) {
            None => Err(Rejection::field(format!("{name} is missing"))),
            Some(Value::String(s)) => {
                tenths(s).map_err(|e| Rejection::hours(format!("{name}: {e}")))
            }
            Some(_) => Err(Rejection::hours(format!(
                "{name} must be a decimal string such as \"1.5\""
            ))),
        }
    };
    let digital = part("digital_hours")?;
    let classroom = part("classroom_hours")?;
    if digital + classroom != hours_tenths {
        return Err(Rejection::hours(
            "digital_hours + classroom_hours must equal hours",
        ));
    }
    non_empty(obj, "category_code")?;
    Ok(())
}

/// A required string field that is not blank.
fn non_empty<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, Rejection> {
    match obj.get(name) {
        None => Err(Rejection::field(format!("{name} is missing"))),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(Rejection::field(format!("{name} must not be empty"))),
        Some(_) => Err(Rejection::field(format!("{name} must be a string"))),
    }
}

/// A required `YYYY-MM-DD` Gregorian date: exactly that shape, and a real day.
fn date<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, Rejection> {
    let s = match obj.get(name) {
        None => return Err(Rejection::field(format!("{name} is missing"))),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Rejection::field(format!("{name} must be a string"))),
    };
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape || chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_err() {
        return Err(Rejection::field(format!(
            "{name} must be a date written YYYY-MM-DD"
        )));
    }
    Ok(s)
}

/// Parses a decimal string with exactly one decimal place, 0.0 to 999.9, into
/// tenths. Leading zeros ("01.5"), signs, exponents and spaces are refused.
pub fn tenths(s: &str) -> Result<u32, String> {
    let Some((int, frac)) = s.split_once('.') else {
        return Err(format!("{s:?} must have exactly one decimal place"));
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || frac.len() != 1 {
        return Err(format!(
            "{s:?} must be digits with exactly one decimal place"
        ));
    }
    if int.len() > 1 && int.starts_with('0') {
        return Err(format!("{s:?} has a leading zero"));
    }
    if int.len() > 3 {
        return Err(format!("{s:?} is more than 999.9"));
    }
    let value = int.parse::<u32>().map_err(|e| e.to_string())? * 10
        + frac.parse::<u32>().map_err(|e| e.to_string())?;
    if value > MAX_TENTHS {
        return Err(format!("{s:?} is more than 999.9"));
    }
    Ok(value)
}

/// Formats tenths back into the contract's one-decimal string.
pub fn format_tenths(tenths: u32) -> String {
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// The two-digit code of each letter, A to Z (DOMAIN.md).
const LETTER_CODES: [u32; 26] = [
    10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21, 22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30,
    31, 33,
];

fn letter_code(b: u8) -> u32 {
    LETTER_CODES[usize::from(b - b'A')]
}

/// Checks a national ID or resident certificate number: upper case, one of
/// the three formats, and the weighted check sum. Never echoes the input.
pub fn national_id_check(id: &str) -> Result<(), &'static str> {
    let b = id.as_bytes();
    if b.len() != 10 || !b[0].is_ascii_uppercase() || !b[2..].iter().all(u8::is_ascii_digit) {
        return Err(
            "national_id must be an upper-case letter followed by 9 digits, or two upper-case letters followed by 8 digits",
        );
    }
    // `s`: the second character's digit (new formats, 1/2 or 8/9), or the
    // units digit of the second letter's code (old resident format).
    let s = match b[1] {
        b'1' | b'2' | b'8' | b'9' => u32::from(b[1] - b'0'),
        c if c.is_ascii_uppercase() => letter_code(c) % 10,
        _ => {
            return Err(
                "national_id's second character must be 1, 2, 8, 9 or an upper-case letter",
            );
        }
    };
    let code = letter_code(b[0]);
    let (d1, d0) = (code / 10, code % 10);
    let n: Vec<u32> = b[2..].iter().map(|d| u32::from(d - b'0')).collect();
    let sum = d1
        + 9 * d0
        + 8 * s
        + 7 * n[0]
        + 6 * n[1]
        + 5 * n[2]
        + 4 * n[3]
        + 3 * n[4]
        + 2 * n[5]
        + n[6]
        + n[7];
    if !sum.is_multiple_of(10) {
        return Err("national_id fails its check digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_valid_national_ids_pass() {
        for id in [
            "A123456789",
            "F131104093",
            "A800000014",
            "A900207177",
            "AA00000009",
            "AD30196818",
        ] {
            assert_eq!(national_id_check(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn the_documented_invalid_national_ids_fail() {
        for id in ["A123456788", "A800000000", "AA00000000"] {
            assert!(national_id_check(id).is_err(), "{id}");
        }
    }

    #[test]
    fn lower_case_and_malformed_national_ids_fail() {
        for id in [
            "a123456789",
            "Aa00000009",
            "A323456789",
            "A12345678",
            "A1234567890",
            "1123456789",
            "A12345678X",
            "",
            "ＡＡ0000009",
        ] {
            assert!(national_id_check(id).is_err(), "{id}");
        }
    }

    #[test]
    fn hours_need_exactly_one_decimal_place() {
        assert_eq!(tenths("2.0"), Ok(20));
        assert_eq!(tenths("0.5"), Ok(5));
        assert_eq!(tenths("999.9"), Ok(9_999));
        for bad in [
            "2", "2.", ".5", "2.00", "1000.0", "-1.0", "+1.0", "1e1", " 1.0", "01.0", "1,0", "",
        ] {
            assert!(tenths(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_tenths(9_999), "999.9");
        assert_eq!(format_tenths(5), "0.5");
    }

    fn teacher() -> Value {
        json!({
            "idempotency_key": "k1",
            "national_id": "A123456789",
            "course_code": "C1",
            "course_name": "Course",
            "completed_on": "2025-02-28",
            "hours": "2.0",
            "personnel_category": "10",
        })
    }

    #[test]
    fn a_complete_teacher_record_is_valid() {
        let valid = record(RegistryKind::Teacher, &teacher()).unwrap();
        assert_eq!(valid.hours_tenths, 20);
        assert_eq!(valid.completed_on, "2025-02-28");
    }

    #[test]
    fn impossible_dates_are_invalid_fields() {
        for bad in ["2025-02-29", "2025-2-28", "20250228", "2025-13-01"] {
            let mut r = teacher();
            r["completed_on"] = json!(bad);
            let err = record(RegistryKind::Teacher, &r).unwrap_err();
            assert_eq!(err.code, "invalid_field", "{bad}");
        }
    }

    #[test]
    fn fields_of_another_registry_are_refused() {
        let mut r = teacher();
        r["enved_account"] = json!("x");
        assert_eq!(
            record(RegistryKind::Teacher, &r).unwrap_err().code,
            "invalid_field"
        );
    }

    #[test]
    fn lifelong_hours_must_split_exactly() {
        let mut r = teacher();
        let obj = r.as_object_mut().unwrap();
        obj.remove("personnel_category");
        obj.insert("learning_mode".into(), json!(3));
        obj.insert("digital_hours".into(), json!("1.5"));
        obj.insert("classroom_hours".into(), json!("0.5"));
        obj.insert("category_code".into(), json!("K"));
        assert!(record(RegistryKind::Lifelong, &r).is_ok());
        r["classroom_hours"] = json!("0.6");
        assert_eq!(
            record(RegistryKind::Lifelong, &r).unwrap_err().code,
            "invalid_hours"
        );
        r["classroom_hours"] = json!("0.5");
        r["learning_mode"] = json!("3");
        assert_eq!(
            record(RegistryKind::Lifelong, &r).unwrap_err().code,
            "invalid_field"
        );
    }
}
