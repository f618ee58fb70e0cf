//! Facts the state machine's tests judge: one learner, one lifelong course.

use crate::domain::{
    Account, AccountKind, Completion, CompletionStatus, Course, Hours, Identity, LearningMode,
    NationalId, Person, RegistryKind,
};
use crate::store::ScanRow;

/// 2026-11-30, after the completion.
pub const NOW: i64 = 1_796_000_000_000;

pub fn h(t: u32) -> Hours {
    Hours::from_tenths(t).unwrap()
}

/// A civil servant's completion of course K1, certified for the lifelong
/// portal with `lifelong` tenths of hours, `digital` of them online.
pub fn scan_row(lifelong: u32, digital: u32) -> ScanRow {
    let nid = NationalId::parse("A123456789").unwrap();
    ScanRow {
        completion: Completion {
            completion_id: "c1".into(),
            account_id: "a1".into(),
            course_code: "K1".into(),
            completed_at: chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00+08:00")
                .unwrap(),
            status: CompletionStatus::Completed,
        },
        completed_on: "2026-11-20".into(),
        account: Account {
            account_id: "a1".into(),
            national_id: nid.clone(),
            kind: AccountKind::Ecpa,
            identity: Some(Identity::CivilServant),
            bound_to: None,
        },
        bound: None,
        person: Person {
            national_id: nid,
            personnel_category: Some("10".into()),
            enved_account: None,
            service_unit_code: None,
        },
        unit_known: false,
        course: Course {
            course_code: "K1".into(),
            name: "K".into(),
            learning_mode: LearningMode::Blended,
            category_code: "A1".into(),
            digital_hours: h(digital),
            classroom_hours: h(lifelong - digital),
            certified: [(RegistryKind::Lifelong, h(lifelong))].into(),
        },
        latest_change_ms: NOW - 1_000,
        deliveries: vec![],
    }
}
