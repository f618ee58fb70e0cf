//! Debug of store values never shows a whole national ID.

use super::*;
use crate::domain::{AccountKind, CompletionStatus, Hours, Identity, LearningMode};
use crate::store::PageKey;

const WHOLE: &str = "A123456789";
const MASKED: &str = "A12*****89";

fn nid() -> NationalId {
    NationalId::parse(WHOLE).unwrap()
}

/// A record's facts: the whole ID inside.
fn record() -> RecordFacts {
    RecordFacts {
        format: crate::domain::RECORD_FORMAT,
        national_id: nid(),
        course_code: "K1".into(),
        course_name: "Course".into(),
        completed_on: "2026-11-20".into(),
        hours: Hours::from_tenths(20).unwrap(),
        detail: crate::domain::RecordDetail::Teacher,
    }
}

/// A registry answer quoting the ID.
fn quoting() -> String {
    format!("national_id {WHOLE} is not a learner of ours")
}

fn person() -> Person {
    Person {
        national_id: nid(),
        personnel_category: Some("10".into()),
        enved_account: None,
        service_unit_code: None,
    }
}

fn account() -> Account {
    Account {
        account_id: "a1".into(),
        national_id: nid(),
        kind: AccountKind::Ecpa,
        identity: Some(Identity::CivilServant),
        bound_to: None,
    }
}

fn completion() -> Completion {
    Completion {
        completion_id: "c1".into(),
        account_id: "a1".into(),
        course_code: "K1".into(),
        completed_at: chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00+08:00").unwrap(),
        status: CompletionStatus::Completed,
    }
}

fn course() -> Course {
    let two = Hours::from_tenths(20);
    Course {
        course_code: "K1".into(),
        name: "Course".into(),
        learning_mode: LearningMode::Digital,
        category_code: "A1".into(),
        digital_hours: two.unwrap(),
        classroom_hours: Hours::from_tenths(0).unwrap(),
        certified: [(RegistryKind::Lifelong, two.unwrap())].into(),
    }
}

/// A delivery row whose record names the learner and whose last error
/// quotes the ID.
fn delivery_row() -> DeliveryRow {
    DeliveryRow {
        id: 1,
        registry: RegistryKind::Lifelong,
        state: State::Retrying,
        reason: None,
        revision: 1,
        hours_tenths: Some(20),
        credited_tenths: None,
        receipt_id: None,
        delivered_at: None,
        attempts: 1,
        next_attempt_at: Some(2),
        last_error: Some(quoting()),
        lease_owner: None,
        lease_until: None,
        idempotency_key: Some("hs1-k".into()),
        record: Record::Facts(record()),
        eligible_since: Some(1),
        rescan: false,
    }
}

fn delivery_view() -> DeliveryView {
    DeliveryView {
        id: 1,
        registry: RegistryKind::Lifelong,
        state: State::Rejected,
        reason: Some("registry_rejected".into()),
        hours_tenths: Some(20),
        eligible_since: Some(1),
        receipt_id: None,
        attempts: 1,
        last_error: Some(quoting()),
        due_at: Some(2),
        delivered_at: None,
    }
}

fn resync_scope() -> ResyncScope {
    ResyncScope {
        national_id: Some(nid()),
        ..ResyncScope::default()
    }
}

/// One value of every store type that can carry a national ID, typed
/// or inside text, and of the types that contain them.
fn every_carrier() -> Vec<(&'static str, Box<dyn fmt::Debug>)> {
    let mut chunk = IntakeChunk::default();
    chunk.persons.push(person());
    chunk.accounts.push(account());
    let mut known = KnownKeys::default();
    known.persons.insert(nid());
    known.accounts.insert(
        "a1".into(),
        KnownAccount {
            kind: "ecpa".into(),
            national_id: nid(),
        },
    );
    let scope = serde_json::json!({ "scope": resync_scope(), "verify": false }).to_string();
    vec![
        (
            "KeyQuery",
            Box::new(KeyQuery {
                persons: vec![nid()],
                ..KeyQuery::default()
            }),
        ),
        (
            "KnownAccount",
            Box::new(KnownAccount {
                kind: "ecpa".into(),
                national_id: nid(),
            }),
        ),
        ("KnownKeys", Box::new(known)),
        ("DeliveryRow", Box::new(delivery_row())),
        ("Record", Box::new(Record::Facts(record()))),
        ("IntakeChunk", Box::new(chunk)),
        (
            "ScanRow",
            Box::new(ScanRow {
                completion: completion(),
                completed_on: "2026-11-20".into(),
                account: account(),
                bound: Some(account()),
                person: person(),
                unit_known: true,
                course: course(),
                latest_change_ms: 1,
                deliveries: vec![delivery_row()],
            }),
        ),
        (
            "DeliveryWrite",
            Box::new(DeliveryWrite {
                completion_id: "c1".into(),
                registry: RegistryKind::Lifelong,
                national_id: nid(),
                course_code: "K1".into(),
                state: State::Pending,
                reason: None,
                hours_tenths: Some(20),
                revision: 1,
                idempotency_key: Some("hs1-k".into()),
                record: Some(record()),
                eligible_since: Some(1),
                due_at: Some(2),
                next_attempt_at: Some(1),
                reset_attempts: true,
                rescan: false,
            }),
        ),
        (
            "Claimed",
            Box::new(Claimed {
                id: 1,
                action: Action::Upload,
                revision: 1,
                idempotency_key: "hs1-k".into(),
                record: Some(record()),
                attempts: 0,
                hours_tenths: 20,
                receipt_id: None,
                taken_over: false,
            }),
        ),
        (
            "Outcome::Rejected",
            Box::new(Outcome::Rejected {
                id: 1,
                revision: 1,
                code: "unknown_learner".into(),
                message: quoting(),
            }),
        ),
        (
            "Outcome::Failed",
            Box::new(Outcome::Failed {
                id: 1,
                revision: 1,
                next_attempt_at: 2,
                error: quoting(),
                give_up: false,
            }),
        ),
        (
            "Attempt",
            Box::new(Attempt {
                delivery_id: 1,
                at: 1,
                revision: 1,
                action: "upload".into(),
                request_id: "r1".into(),
                http_status: Some(422),
                result: "rejected".into(),
                error: Some(quoting()),
            }),
        ),
        (
            "PersonRecord",
            Box::new(PersonRecord {
                completion_id: "c1".into(),
                course_code: "K1".into(),
                course_title: Some(quoting()),
                completed_on: "2026-11-20".into(),
                delivery: Some(delivery_view()),
            }),
        ),
        ("DeliveryView", Box::new(delivery_view())),
        (
            "BreachedRecord",
            Box::new(BreachedRecord {
                id: 1,
                registry: RegistryKind::Lifelong,
                completion_id: "c1".into(),
                course_code: "K1".into(),
                national_id: nid(),
                state: State::Failed,
                reason: None,
                attempts: 5,
                last_error: Some(quoting()),
                eligible_since: 1,
                due_at: 2,
            }),
        ),
        ("ResyncScope", Box::new(resync_scope())),
        (
            "DeliveryItem",
            Box::new(DeliveryItem {
                id: 1,
                completion_id: "c1".into(),
                registry: RegistryKind::Lifelong,
                national_id: nid(),
                course_code: "K1".into(),
                state: State::Failed,
                reason: None,
                hours_tenths: Some(20),
                attempts: 5,
                last_error: Some(quoting()),
                eligible_since: Some(1),
                due_at: Some(2),
                receipt_id: None,
                idempotency_key: Some("hs1-k".into()),
                revision: 1,
            }),
        ),
        (
            "AuditEntry",
            Box::new(AuditEntry::running(1, "cli:ops", "resync", scope)),
        ),
        (
            "ReconcileItem",
            Box::new(ReconcileItem {
                id: 1,
                registry: RegistryKind::Lifelong,
                completion_id: "c1".into(),
                national_id: nid(),
                state: State::Delivered,
                revision: 1,
                idempotency_key: "hs1-k".into(),
                has_record: true,
                hours_tenths: Some(20),
                credited_tenths: Some(20),
                receipt_id: Some("L-1".into()),
            }),
        ),
        ("PageKey", Box::new(PageKey::Text(WHOLE.into()))),
    ]
}

#[test]
fn debug_of_every_store_type_that_carries_a_national_id_shows_it_masked_never_whole() {
    for (name, value) in every_carrier() {
        for shown in [format!("{value:?}"), format!("{value:#?}")] {
            assert!(!shown.contains(WHOLE), "{name} shows the whole ID: {shown}");
            assert!(shown.contains(MASKED), "{name} lost the masked ID: {shown}");
        }
    }
}

#[test]
fn masked_debug_keeps_the_shape_of_the_derived_one() {
    let shown = format!("{:?}", Repair::Requeued { id: 7, revision: 2 });
    assert_eq!(shown, "Requeued { id: 7, revision: 2 }");
    let shown = format!("{:?}", Outcome::Withdrawn { id: 7 });
    assert_eq!(shown, "Withdrawn { id: 7 }");
}

#[test]
fn a_resync_scope_is_written_whole_for_the_audit_trail_and_read_back_checked() {
    let json = serde_json::to_string(&resync_scope()).unwrap();
    assert!(
        json.contains(&format!(r#""national_id":"{WHOLE}""#)),
        "{json}"
    );
    assert_eq!(
        serde_json::from_str::<ResyncScope>(&json).unwrap(),
        resync_scope()
    );
    let bad = json.replace(WHOLE, "A123456788");
    assert!(serde_json::from_str::<ResyncScope>(&bad).is_err());
}
