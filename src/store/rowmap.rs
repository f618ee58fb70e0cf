//! Stored columns back into domain values. What is stored was valid when it
//! was written, so a failure here means the database was changed behind our
//! back: it is reported as such, never papered over.

use super::{Result, StoreError};
use crate::domain::{
    Account, AccountKind, Completion, CompletionStatus, Course, Hours, Identity, LearningMode, NationalId, Person,
};
use chrono::{FixedOffset, TimeZone};

fn corrupt(what: &str) -> StoreError {
    StoreError::Fatal(format!("stored data is not valid: {what}"))
}

fn nid(s: &str) -> Result<NationalId> {
    NationalId::parse(s).map_err(|_| corrupt("a national ID"))
}

fn hours(tenths: i64) -> Result<Hours> {
    u32::try_from(tenths).ok().and_then(Hours::from_tenths).ok_or_else(|| corrupt("hours"))
}

pub fn completion_from(
    completion_id: String,
    account_id: String,
    course_code: String,
    completed_at_ms: i64,
    status: &str,
) -> Result<Completion> {
    let status = match status {
        "completed" => CompletionStatus::Completed,
        "revoked" => CompletionStatus::Revoked,
        _ => return Err(corrupt("a completion status")),
    };
    let taipei = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let completed_at = taipei.timestamp_millis_opt(completed_at_ms).single().ok_or_else(|| corrupt("a timestamp"))?;
    Ok(Completion { completion_id, account_id, course_code, completed_at, status })
}

pub fn account_from(
    account_id: String,
    national_id: &str,
    kind: &str,
    identity: Option<String>,
    bound_to: Option<String>,
) -> Result<Account> {
    Ok(Account {
        account_id,
        national_id: nid(national_id)?,
        kind: AccountKind::parse(kind).ok_or_else(|| corrupt("an account kind"))?,
        identity: match identity {
            Some(i) => Some(Identity::parse(&i).ok_or_else(|| corrupt("an identity"))?),
            None => None,
        },
        bound_to,
    })
}

pub fn person_from(
    national_id: &str,
    personnel_category: Option<String>,
    enved_account: Option<String>,
    service_unit_code: Option<String>,
) -> Result<Person> {
    Ok(Person { national_id: nid(national_id)?, personnel_category, enved_account, service_unit_code })
}

pub fn course_from(
    course_code: String,
    name: String,
    learning_mode: i64,
    category_code: String,
    [digital, classroom]: [i64; 2],
    [lifelong, teacher, enved]: [Option<i64>; 3],
) -> Result<Course> {
    let opt = |t: Option<i64>| t.map(hours).transpose();
    Ok(Course {
        course_code,
        name,
        learning_mode: LearningMode::from_code(learning_mode).ok_or_else(|| corrupt("a learning mode"))?,
        category_code,
        digital_hours: hours(digital)?,
        classroom_hours: hours(classroom)?,
        lifelong: opt(lifelong)?,
        teacher: opt(teacher)?,
        enved: opt(enved)?,
    })
}
