//! The facts a delivery sends to a registry under one revision.
//!
//! A delivery row keeps these facts, not the bytes of the request: the
//! wire record is rebuilt from them by a pure function of the facts, the
//! key and the record's format version ([`crate::registry::adapter`]), so
//! the same row resent after a failure, a crash or a lease expiry carries
//! the same bytes under the same key, and a correction or a reconcile
//! repair makes a new revision of facts instead of editing text.

use super::{Hours, LearningMode, NationalId, RegistryKind};

/// The record format this build writes. A row keeps the version it was
/// built with, so a later format never changes the bytes of a record that
/// may already have landed under its key; the golden files under
/// `tests/golden/` pin each version's bytes.
pub const RECORD_FORMAT: u8 = 1;

/// What one revision of a record says. `Debug` masks the national ID
/// (as [`NationalId`]'s own does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFacts {
    /// The format version the record is sent in.
    pub format: u8,
    pub national_id: NationalId,
    pub course_code: String,
    pub course_name: String,
    /// The completion date in Asia/Taipei, `YYYY-MM-DD`.
    pub completed_on: String,
    /// The certified hours for this registry.
    pub hours: Hours,
    pub detail: RecordDetail,
}

/// The fields of one registry's record (REGISTRY-API.md, "Upload a batch").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordDetail {
    /// How the hours were earned; `digital` and `classroom` sum to the
    /// course's total.
    Lifelong {
        learning_mode: LearningMode,
        digital: Hours,
        classroom: Hours,
        category_code: String,
    },
    /// Education staff only: the category is always 10, nothing to keep.
    Teacher,
    /// The learner's own account and service unit on that network.
    Enved {
        enved_account: Option<String>,
        service_unit_code: Option<String>,
    },
}

impl RecordDetail {
    /// The registry whose record has these fields.
    pub fn registry(&self) -> RegistryKind {
        match self {
            Self::Lifelong { .. } => RegistryKind::Lifelong,
            Self::Teacher => RegistryKind::Teacher,
            Self::Enved { .. } => RegistryKind::Enved,
        }
    }
}
