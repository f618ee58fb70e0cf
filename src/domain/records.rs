//! The objects learning data is made of (INTAKE.md), as valid values.

use super::{Hours, NationalId, RegistryKind};
use chrono::{DateTime, FixedOffset};
use std::collections::BTreeMap;

/// A service unit in the unit directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub code: String,
    pub name: String,
}

/// A learner, keyed by national ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub national_id: NationalId,
    /// 人員區分, two digits; `10` is education staff.
    pub personnel_category: Option<String>,
    pub enved_account: Option<String>,
    pub service_unit_code: Option<String>,
}

/// How the learner logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Ecpa,
    Mygov,
    Member,
    Facebook,
    Google,
    Certificate,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ecpa => "ecpa",
            Self::Mygov => "mygov",
            Self::Member => "member",
            Self::Facebook => "facebook",
            Self::Google => "google",
            Self::Certificate => "certificate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    /// Whether this kind carries an identity (eCPA and My e-Gov only).
    pub fn has_identity(self) -> bool {
        matches!(self, Self::Ecpa | Self::Mygov)
    }
}

/// The identity of an eCPA or My e-Gov account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    CivilServant,
    NaturalPerson,
    PendingConversion,
}

impl Identity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CivilServant => "civil_servant",
            Self::NaturalPerson => "natural_person",
            Self::PendingConversion => "pending_conversion",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// An account on the platform. `identity` is present exactly for eCPA and
/// My e-Gov accounts; `bound_to` only for certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: String,
    pub national_id: NationalId,
    pub kind: AccountKind,
    pub identity: Option<Identity>,
    pub bound_to: Option<String>,
}

/// 1 digital, 2 classroom, 3 blended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearningMode {
    Digital = 1,
    Classroom = 2,
    Blended = 3,
}

impl LearningMode {
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Digital),
            2 => Some(Self::Classroom),
            3 => Some(Self::Blended),
            _ => None,
        }
    }

    pub fn code(self) -> i64 {
        self as i64
    }
}

/// A course with its certified hours per registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub course_code: String,
    pub name: String,
    pub learning_mode: LearningMode,
    pub category_code: String,
    pub digital_hours: Hours,
    pub classroom_hours: Hours,
    /// The figure the intake gave for each registry, zero included (it is
    /// kept as given, so a re-import compares equal); a registry absent
    /// here was not certified. Keyed by kind, so a new registry needs no
    /// new field.
    pub certified: BTreeMap<RegistryKind, Hours>,
}

impl Course {
    /// Certified hours for `registry`; zero counts as not certified.
    pub fn certified(&self, registry: RegistryKind) -> Option<Hours> {
        self.certified
            .get(&registry)
            .copied()
            .filter(|h| !h.is_zero())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionStatus {
    Completed,
    Revoked,
}

impl CompletionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Revoked => "revoked",
        }
    }
}

/// A learner finishing a course under one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub completion_id: String,
    pub account_id: String,
    pub course_code: String,
    pub completed_at: DateTime<FixedOffset>,
    pub status: CompletionStatus,
}
