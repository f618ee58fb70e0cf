//! Domain types, parsed at the edge: once a value of these types exists it is
//! valid, so the rest of the daemon never re-checks a national ID or an hour.

mod hours;
mod national_id;
mod records;

pub use hours::{Hours, HoursError};
pub use national_id::{
    NationalId, NationalIdError, mask, mask_ids_in, mask_ids_in_text, whole_id, whole_id_opt,
};
pub use records::{
    Account, AccountKind, Completion, CompletionStatus, Course, Identity, LearningMode, Person,
    Unit,
};

use std::fmt;
use std::str::FromStr;

/// The three registries hoursync delivers to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// Civil-service lifelong learning portal (終身學習入口網).
    Lifelong,
    /// National teacher in-service network (全國教師在職進修網).
    Teacher,
    /// Environmental-education hours network (環境教育終身學習網).
    Enved,
}

impl RegistryKind {
    pub const ALL: [RegistryKind; 3] = [Self::Lifelong, Self::Teacher, Self::Enved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lifelong => "lifelong",
            Self::Teacher => "teacher",
            Self::Enved => "enved",
        }
    }
}

impl fmt::Display for RegistryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown registry {0:?} (expected lifelong, teacher or enved)")]
pub struct UnknownRegistry(pub String);

impl FromStr for RegistryKind {
    type Err = UnknownRegistry;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lifelong" => Ok(Self::Lifelong),
            "teacher" => Ok(Self::Teacher),
            "enved" => Ok(Self::Enved),
            other => Err(UnknownRegistry(other.to_string())),
        }
    }
}

/// The calendar date of an instant in Asia/Taipei, `YYYY-MM-DD`: the date
/// the registries want as `completed_on`.
pub fn taipei_date<Tz: chrono::TimeZone>(at: &chrono::DateTime<Tz>) -> String {
    at.with_timezone(&chrono_tz::Asia::Taipei)
        .format("%Y-%m-%d")
        .to_string()
}
