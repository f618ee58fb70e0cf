//! One line of INTAKE.md into a valid domain object, or a reason naming
//! what is wrong. Checks that need no other line live here; references
//! between objects are checked by the importer.

use crate::domain::{
    Account, AccountKind, Completion, CompletionStatus, Course, Hours, Identity, LearningMode,
    NationalId, Person, RegistryKind, Unit, UnknownRegistry, mask_ids_in_text,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A valid intake object.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Unit(Unit),
    Person(Person),
    Account(Account),
    Course(Course),
    Completion(Completion),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Raw {
    Unit {
        code: String,
        name: String,
    },
    Person {
        national_id: String,
        #[serde(default)]
        personnel_category: Option<String>,
        #[serde(default)]
        enved_account: Option<String>,
        #[serde(default)]
        service_unit_code: Option<String>,
    },
    Account {
        account_id: String,
        national_id: String,
        kind: String,
        #[serde(default)]
        identity: Option<String>,
        #[serde(default)]
        bound_to: Option<String>,
    },
    Course {
        course_code: String,
        name: String,
        learning_mode: i64,
        category_code: String,
        digital_hours: String,
        classroom_hours: String,
        certified: RawCertified,
    },
    Completion {
        completion_id: String,
        account_id: String,
        course_code: String,
        completed_at: String,
        status: String,
    },
}

/// `certified` by registry name, read as a map so that a new registry needs
/// no field here; a name that is no registry is refused when the course is
/// checked, as an unknown field would be.
type RawCertified = BTreeMap<String, Option<String>>;

/// The longest key (`code`, `account_id`, `course_code`, `category_code`,
/// `completion_id`, `bound_to`) and the longest `enved_account` or
/// `service_unit_code`, in characters.
pub const MAX_KEY_CHARS: usize = 200;
/// The longest name (a unit's or a course's), in characters.
pub const MAX_NAME_CHARS: usize = 1_000;

/// What a line is checked against besides its own content.
#[derive(Debug, Clone, Copy)]
pub struct LineRules {
    /// The latest `completed_at` accepted, and the allowance in days that
    /// set it (for the message).
    pub latest_completion: Option<(chrono::DateTime<chrono::Utc>, u32)>,
}

impl LineRules {
    /// Rules of an import at `now_ms`: completions may be dated at most
    /// `max_future_days` later (`intake.max_future_days`).
    pub fn at(now_ms: i64, max_future_days: u32) -> Self {
        let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        Self {
            latest_completion: Some((
                now + chrono::Duration::days(i64::from(max_future_days)),
                max_future_days,
            )),
        }
    }

    /// Only the line's own content is checked (for data generated here).
    pub fn content_only() -> Self {
        Self {
            latest_completion: None,
        }
    }
}

/// Parses and checks one line. The error never carries a whole national ID.
///
/// Every text field is checked here, at the edge, so that both backends
/// receive the same validated values: a NUL character (`\u0000`), which
/// PostgreSQL text can not hold, refuses the line and names the field,
/// rather than being stored by SQLite and failing a whole chunk on
/// PostgreSQL; keys and names longer than [`MAX_KEY_CHARS`] and
/// [`MAX_NAME_CHARS`] are refused.
pub fn parse_line(line: &str, rules: &LineRules) -> Result<Object, String> {
    parse(line, rules).map_err(|e| mask_ids_in_text(&e).into_owned())
}

fn parse(line: &str, rules: &LineRules) -> Result<Object, String> {
    let raw: Raw = serde_json::from_str(line).map_err(|e| describe_json_error(&e))?;
    match raw {
        Raw::Unit { code, name } => Ok(Object::Unit(Unit {
            code: key("code", code)?,
            name: name_field("name", name)?,
        })),
        Raw::Person {
            national_id,
            personnel_category,
            enved_account,
            service_unit_code,
        } => {
            if let Some(c) = &personnel_category
                && !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(format!(
                    "personnel_category {c:?} must be two digits or null"
                ));
            }
            Ok(Object::Person(Person {
                national_id: national_id_field(&national_id)?,
                personnel_category,
                enved_account: optional_key("enved_account", enved_account)?,
                service_unit_code: optional_key("service_unit_code", service_unit_code)?,
            }))
        }
        Raw::Account {
            account_id,
            national_id,
            kind,
            identity,
            bound_to,
        } => {
            let kind = AccountKind::parse(&kind).ok_or_else(|| {
                format!("unknown account kind {kind:?} (expected ecpa, mygov, member, facebook, google or certificate)")
            })?;
            let identity = match (kind.has_identity(), identity) {
                (true, None) => return Err(format!("a {} account needs an identity", kind.as_str())),
                (true, Some(i)) => Some(Identity::parse(&i).ok_or_else(|| {
                    format!("unknown identity {i:?} (expected civil_servant, natural_person or pending_conversion)")
                })?),
                (false, None) => None,
                (false, Some(_)) => return Err(format!("a {} account has no identity; remove the field", kind.as_str())),
            };
            if kind == AccountKind::Ecpa && identity != Some(Identity::CivilServant) {
                return Err("an ecpa account is a civil-servant account: its identity must be civil_servant".into());
            }
            if bound_to.is_some() && kind != AccountKind::Certificate {
                return Err("bound_to is only for certificate accounts".into());
            }
            Ok(Object::Account(Account {
                account_id: key("account_id", account_id)?,
                national_id: national_id_field(&national_id)?,
                kind,
                identity,
                bound_to: optional_key("bound_to", bound_to)?,
            }))
        }
        Raw::Course {
            course_code,
            name,
            learning_mode,
            category_code,
            digital_hours,
            classroom_hours,
            certified,
        } => {
            let learning_mode = LearningMode::from_code(learning_mode)
                .ok_or_else(|| format!("learning_mode {learning_mode} must be 1 (digital), 2 (classroom) or 3 (blended)"))?;
            let digital_hours = hours_field("digital_hours", &digital_hours)?;
            let classroom_hours = hours_field("classroom_hours", &classroom_hours)?;
            let mut by_registry = BTreeMap::new();
            for (name, value) in certified {
                let registry: RegistryKind = name
                    .parse()
                    .map_err(|e: UnknownRegistry| format!("certified: {e}"))?;
                if let Some(v) = value {
                    by_registry.insert(registry, hours_field(&format!("certified.{name}"), &v)?);
                }
            }
            let course = Course {
                course_code: key("course_code", course_code)?,
                name: name_field("name", name)?,
                learning_mode,
                category_code: key("category_code", category_code)?,
                digital_hours,
                classroom_hours,
                certified: by_registry,
            };
            if let Some(lifelong) = course.certified(RegistryKind::Lifelong) {
                let split = digital_hours.checked_add(classroom_hours);
                if split != Some(lifelong) {
                    return Err(format!(
                        "digital_hours {digital_hours} + classroom_hours {classroom_hours} must equal certified.lifelong {lifelong}"
                    ));
                }
            }
            Ok(Object::Course(course))
        }
        Raw::Completion {
            completion_id,
            account_id,
            course_code,
            completed_at,
            status,
        } => {
            let completed_at =
                chrono::DateTime::parse_from_rfc3339(&completed_at).map_err(|_| {
                    format!("completed_at {completed_at:?} is not an RFC 3339 time with an offset")
                })?;
            if let Some((latest, days)) = rules.latest_completion
                && completed_at > latest
            {
                return Err(format!(
                    "completed_at {} lies more than {days} day(s) after the import's time; \
                     a completion can not be dated in the future (intake.max_future_days)",
                    completed_at.to_rfc3339()
                ));
            }
            let status = match status.as_str() {
                "completed" => CompletionStatus::Completed,
                "revoked" => CompletionStatus::Revoked,
                other => {
                    return Err(format!(
                        "unknown completion status {other:?} (expected completed or revoked)"
                    ));
                }
            };
            Ok(Object::Completion(Completion {
                completion_id: key("completion_id", completion_id)?,
                account_id: key("account_id", account_id)?,
                course_code: key("course_code", course_code)?,
                completed_at,
                status,
            }))
        }
    }
}

fn describe_json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("not valid JSON: {e}")
        }
        _ => {
            // serde names the variant "unknown variant `x`" for an unknown `type`.
            let msg = e.to_string();
            if msg.starts_with("unknown variant") {
                format!(
                    "unknown object type: {msg} (expected unit, person, account, course or completion)"
                )
            } else {
                msg
            }
        }
    }
}

fn key(field: &str, value: String) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    text(field, v, MAX_KEY_CHARS)?;
    Ok(v.to_string())
}

/// An optional key-like field: blank reads as absent.
fn optional_key(field: &str, value: Option<String>) -> Result<Option<String>, String> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(_) => key(field, value.unwrap_or_default()).map(Some),
    }
}

fn name_field(field: &str, value: String) -> Result<String, String> {
    text(field, &value, MAX_NAME_CHARS)?;
    Ok(value)
}

/// What every stored text must be: without NUL, which PostgreSQL text can
/// not hold, and at most `max` characters.
fn text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!(
            "{field} contains a NUL character (\\u0000), which hoursync does not store"
        ));
    }
    if value.chars().count() > max {
        return Err(format!("{field} is longer than {max} characters"));
    }
    Ok(())
}

fn national_id_field(raw: &str) -> Result<NationalId, String> {
    NationalId::parse(raw).map_err(|e| format!("national_id: {e}"))
}

fn hours_field(field: &str, raw: &str) -> Result<Hours, String> {
    Hours::parse(raw).map_err(|e| format!("{field}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        parse_line(line, &LineRules::content_only()).unwrap_err()
    }

    #[test]
    fn the_examples_of_the_intake_page_parse() {
        for line in [
            r#"{"type":"unit","code":"313000000G","name":"行政院人事行政總處"}"#,
            r#"{"type":"person","national_id":"A123456789","personnel_category":"10","enved_account":"EE-20931","service_unit_code":"313000000G"}"#,
            r#"{"type":"account","account_id":"acc-1","national_id":"A123456789","kind":"ecpa","identity":"civil_servant"}"#,
            r#"{"type":"account","account_id":"acc-2","national_id":"A123456789","kind":"mygov","identity":"natural_person"}"#,
            r#"{"type":"account","account_id":"acc-3","national_id":"A123456789","kind":"certificate","bound_to":"acc-1"}"#,
            r#"{"type":"course","course_code":"C-2026-0042","name":"環境教育：淨零生活","learning_mode":1,"category_code":"A1","digital_hours":"2.0","classroom_hours":"0.0","certified":{"lifelong":"2.0","teacher":"2.0","enved":"2.0"}}"#,
            r#"{"type":"completion","completion_id":"cmp-9001","account_id":"acc-1","course_code":"C-2026-0042","completed_at":"2026-11-20T10:15:00+08:00","status":"completed"}"#,
        ] {
            parse_line(line, &LineRules::content_only()).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn each_kind_of_bad_line_says_what_is_wrong() {
        assert!(err("{not json").starts_with("not valid JSON"));
        assert!(err(r#"{"type":"teacher","x":1}"#).contains("unknown object type"));
        let e = err(r#"{"type":"person","national_id":"A123456788"}"#);
        assert!(
            e.contains("check digit") && !e.contains("A123456788"),
            "{e}"
        );
        assert!(
            err(r#"{"type":"account","account_id":"a","national_id":"A123456789","kind":"line"}"#)
                .contains("unknown account kind")
        );
        assert!(err(r#"{"type":"account","account_id":"a","national_id":"A123456789","kind":"mygov","identity":"alien"}"#).contains("unknown identity"));
        assert!(
            err(r#"{"type":"account","account_id":"a","national_id":"A123456789","kind":"mygov"}"#)
                .contains("needs an identity")
        );
        let neg = r#"{"type":"course","course_code":"C","name":"n","learning_mode":1,"category_code":"A","digital_hours":"-1.0","classroom_hours":"0.0","certified":{}}"#;
        assert!(err(neg).contains("negative"), "{}", err(neg));
        let split = r#"{"type":"course","course_code":"C","name":"n","learning_mode":1,"category_code":"A","digital_hours":"1.0","classroom_hours":"0.0","certified":{"lifelong":"2.0"}}"#;
        assert!(err(split).contains("must equal certified.lifelong"));
        let elsewhere = r#"{"type":"course","course_code":"C","name":"n","learning_mode":1,"category_code":"A","digital_hours":"1.0","classroom_hours":"0.0","certified":{"moe":"1.0"}}"#;
        assert!(
            err(elsewhere).contains("unknown registry \"moe\""),
            "{}",
            err(elsewhere)
        );
        let when = r#"{"type":"completion","completion_id":"c","account_id":"a","course_code":"C","completed_at":"2026-11-20 10:15","status":"completed"}"#;
        assert!(err(when).contains("RFC 3339"));
        let status = r#"{"type":"completion","completion_id":"c","account_id":"a","course_code":"C","completed_at":"2026-11-20T10:15:00+08:00","status":"done"}"#;
        assert!(err(status).contains("unknown completion status"));
        assert!(
            err(r#"{"type":"unit","code":"U","name":"n","colour":"red"}"#)
                .contains("unknown field")
        );
    }

    #[test]
    fn a_json_type_error_does_not_echo_a_national_id() {
        let e = err(r#"{"type":"unit","code":"A123456789","name":5}"#);
        assert!(!e.contains("A123456789"), "{e}");
    }

    #[test]
    fn a_nul_escape_in_any_text_field_refuses_the_line_and_names_the_field() {
        for (line, field) in [
            (r#"{"type":"unit","code":"U","name":"a\u0000b"}"#, "name"),
            (r#"{"type":"unit","code":"U\u0000","name":"n"}"#, "code"),
            (
                r#"{"type":"person","national_id":"A123456789","enved_account":"E\u0000"}"#,
                "enved_account",
            ),
            (
                r#"{"type":"account","account_id":"a","national_id":"A123456789","kind":"certificate","bound_to":"\u0000x"}"#,
                "bound_to",
            ),
            (
                r#"{"type":"completion","completion_id":"c\u0000","account_id":"a","course_code":"C","completed_at":"2026-11-20T10:15:00+08:00","status":"completed"}"#,
                "completion_id",
            ),
        ] {
            let e = err(line);
            assert!(e.starts_with(field) && e.contains("NUL"), "{line}: {e}");
        }
        // An escaped backslash before "u0000" is text, not a NUL.
        let literal = r#"{"type":"unit","code":"U","name":"a\\u0000b"}"#;
        assert!(parse_line(literal, &LineRules::content_only()).is_ok());
    }

    #[test]
    fn keys_and_names_longer_than_the_limits_are_refused() {
        let long_key = "k".repeat(MAX_KEY_CHARS + 1);
        let e = err(&format!(
            r#"{{"type":"unit","code":"{long_key}","name":"n"}}"#
        ));
        assert!(e.contains("code is longer than 200 characters"), "{e}");
        let name = "名".repeat(MAX_NAME_CHARS);
        let ok = format!(r#"{{"type":"unit","code":"U","name":"{name}"}}"#);
        assert!(parse_line(&ok, &LineRules::content_only()).is_ok());
        let e = err(&format!(r#"{{"type":"unit","code":"U","name":"{name}x"}}"#));
        assert!(e.contains("name is longer than 1000 characters"), "{e}");
        let e = err(&format!(
            r#"{{"type":"person","national_id":"A123456789","service_unit_code":"{long_key}"}}"#
        ));
        assert!(e.contains("service_unit_code is longer"), "{e}");
    }

    #[test]
    fn a_completion_dated_past_the_allowance_is_refused() {
        let line = |at: &str| {
            format!(
                r#"{{"type":"completion","completion_id":"c","account_id":"a","course_code":"C","completed_at":"{at}","status":"completed"}}"#
            )
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        let rules = LineRules::at(now, 1);
        assert!(parse_line(&line("2026-11-20T23:59:59Z"), &rules).is_ok());
        let e = parse_line(&line("9999-01-01T00:00:00+08:00"), &rules).unwrap_err();
        assert!(
            e.contains("in the future") && e.contains("intake.max_future_days"),
            "{e}"
        );
        assert!(parse_line(&line("2026-11-21T00:00:01Z"), &rules).is_err());
        assert!(parse_line(&line("9999-01-01T00:00:00Z"), &LineRules::content_only()).is_ok());
    }

    #[test]
    fn a_reason_quoting_an_id_outside_the_national_id_field_is_masked() {
        let e = err(
            r#"{"type":"account","account_id":"a","national_id":"A123456789","kind":"xA123456789"}"#,
        );
        assert!(
            e.contains("xA12*****89") && !e.contains("A123456789"),
            "{e}"
        );
    }
}
