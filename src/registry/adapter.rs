//! One adapter per registry: each owns its registry's record shape
//! (REGISTRY-API.md, "Upload a batch"). A deployment whose registry speaks
//! something else changes this file and nothing else.

use crate::domain::{Hours, RegistryKind};
use crate::store::ScanRow;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The idempotency key of one (completion, registry, revision): stable, at
/// most 64 characters, and revealing nothing about the learner.
pub fn idempotency_key(completion_id: &str, registry: RegistryKind, revision: i64) -> String {
    let mut h = Sha256::new();
    h.update(completion_id.as_bytes());
    h.update([0x1f]);
    h.update(registry.as_str().as_bytes());
    h.update([0x1f]);
    h.update(revision.to_string().as_bytes());
    let digest = h.finalize();
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("hs1-{hex}")
}

/// The record exactly as it is sent, key included, serialised once at scan
/// time so that every resend carries the same bytes under the same key.
pub fn build_record(registry: RegistryKind, row: &ScanRow, hours: Hours, key: &str) -> String {
    let mut record = Map::new();
    record.insert("idempotency_key".into(), json!(key));
    record.insert("national_id".into(), json!(row.person.national_id.expose()));
    record.insert("course_code".into(), json!(row.course.course_code));
    record.insert("course_name".into(), json!(row.course.name));
    record.insert("completed_on".into(), json!(row.completed_on));
    record.insert("hours".into(), json!(hours.to_string()));
    match registry {
        RegistryKind::Lifelong => {
            record.insert(
                "learning_mode".into(),
                json!(row.course.learning_mode.code()),
            );
            record.insert(
                "digital_hours".into(),
                json!(row.course.digital_hours.to_string()),
            );
            record.insert(
                "classroom_hours".into(),
                json!(row.course.classroom_hours.to_string()),
            );
            record.insert("category_code".into(), json!(row.course.category_code));
        }
        RegistryKind::Teacher => {
            record.insert("personnel_category".into(), json!("10"));
        }
        RegistryKind::Enved => {
            record.insert("enved_account".into(), json!(row.person.enved_account));
            record.insert(
                "service_unit_code".into(),
                json!(row.person.service_unit_code),
            );
        }
    }
    Value::Object(record).to_string()
}

/// A batch body from stored records, without parsing them again.
pub fn batch_body<'a>(records: impl IntoIterator<Item = &'a str>) -> String {
    let mut body = String::from("{\"records\":[");
    for (i, r) in records.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(r);
    }
    body.push_str("]}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_short_and_differ_per_registry_and_revision() {
        let a = idempotency_key("cmp-1", RegistryKind::Lifelong, 1);
        assert_eq!(a, idempotency_key("cmp-1", RegistryKind::Lifelong, 1));
        assert!(a.len() <= 64);
        assert_ne!(a, idempotency_key("cmp-1", RegistryKind::Teacher, 1));
        assert_ne!(a, idempotency_key("cmp-1", RegistryKind::Lifelong, 2));
        assert_ne!(a, idempotency_key("cmp-2", RegistryKind::Lifelong, 1));
    }

    #[test]
    fn a_batch_body_is_the_records_verbatim() {
        let body = batch_body(["{\"a\":1}", "{\"b\":2}"]);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["records"][1]["b"], 2);
    }
}
