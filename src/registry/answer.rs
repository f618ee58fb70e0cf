//! Checking a batch answer against REGISTRY-API.md before anything is
//! recorded on it.
//!
//! The contract promises one result per record, in the order sent, each
//! under the key sent, and a non-empty `receipt_id` with every `accepted`
//! or `duplicate`. An answer that breaks a promise can not be trusted for
//! the records it concerns: a delivery marked on an empty receipt can be
//! neither corrected nor withdrawn later (the registry answers 404 to an
//! empty receipt, or never sees the request). Those records get an unknown
//! outcome instead, which is always safe: they are resent under the same
//! keys, and the registry answers `duplicate` with the real receipt for
//! what it took.
//!
//! A result is matched to its record by key, so an answer whose only fault
//! is its order still settles every record; the fault is counted anyway.

use super::{RecordResult, RecordStatus};
use std::collections::HashMap;

/// What one record of a batch came to, once the answer is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `accepted` (or `duplicate`) with a receipt: the record is done.
    Credited { receipt_id: String, duplicate: bool },
    /// `rejected`: the registry will never take it as it stands.
    Rejected { code: String, message: String },
    /// The answer broke the contract for this record: outcome unknown.
    Unknown(Violation),
}

/// A way a batch answer breaks the contract; the metric's `violation` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Violation {
    /// `accepted` or `duplicate` with an empty or missing `receipt_id`.
    MissingReceipt,
    /// No result carries this record's key.
    MissingResult,
    /// Several results carry this record's key.
    RepeatedResult,
    /// A result carries a key that was not sent.
    UnexpectedKey,
    /// The results are not in the order the records were sent.
    OutOfOrder,
}

impl Violation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingReceipt => "missing_receipt",
            Self::MissingResult => "missing_result",
            Self::RepeatedResult => "repeated_result",
            Self::UnexpectedKey => "unexpected_key",
            Self::OutOfOrder => "out_of_order",
        }
    }

    /// The line kept in the record's attempt history and `last_error`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::MissingReceipt => {
                "registry answer broke the contract: credited without a receipt; outcome unknown"
            }
            Self::MissingResult => {
                "registry answer broke the contract: no result for this record; outcome unknown"
            }
            Self::RepeatedResult => {
                "registry answer broke the contract: several results for this record; outcome unknown"
            }
            Self::UnexpectedKey | Self::OutOfOrder => {
                "registry answer broke the contract; outcome unknown"
            }
        }
    }
}

/// A checked batch answer: one verdict per record sent, in the order sent,
/// and every violation found with how often (for the log and the metric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub verdicts: Vec<Verdict>,
    pub violations: Vec<(Violation, usize)>,
}

/// Checks `results` against the keys `sent`, in the order they were sent.
pub fn check_batch(sent: &[&str], results: Vec<RecordResult>) -> Checked {
    let mut found = HashMap::<&str, usize>::with_capacity(results.len());
    for r in &results {
        if let Some(&key) = sent.iter().find(|k| **k == r.idempotency_key) {
            *found.entry(key).or_default() += 1;
        }
    }
    let in_order = results.len() == sent.len()
        && results
            .iter()
            .zip(sent)
            .all(|(r, k)| r.idempotency_key == *k);
    let mut counts = HashMap::<Violation, usize>::new();
    let mut note = |v: Violation| *counts.entry(v).or_default() += 1;
    let unexpected = results
        .iter()
        .filter(|r| !found.contains_key(r.idempotency_key.as_str()))
        .count();
    for _ in 0..unexpected {
        note(Violation::UnexpectedKey);
    }
    if !in_order && unexpected == 0 && results.len() == sent.len() {
        note(Violation::OutOfOrder);
    }
    let mut by_key: HashMap<String, RecordResult> = results
        .into_iter()
        .map(|r| (r.idempotency_key.clone(), r))
        .collect();
    let verdicts = sent
        .iter()
        .map(|key| {
            let verdict = match found.get(key) {
                None => Verdict::Unknown(Violation::MissingResult),
                Some(n) if *n > 1 => Verdict::Unknown(Violation::RepeatedResult),
                Some(_) => verdict(by_key.remove(*key).expect("counted above")),
            };
            if let Verdict::Unknown(v) = verdict {
                note(v);
            }
            verdict
        })
        .collect();
    let mut violations: Vec<_> = counts.into_iter().collect();
    violations.sort();
    Checked {
        verdicts,
        violations,
    }
}

fn verdict(r: RecordResult) -> Verdict {
    match r.status {
        RecordStatus::Rejected => Verdict::Rejected {
            code: r.code.unwrap_or_else(|| "rejected".into()),
            message: r.message.unwrap_or_default(),
        },
        status => match r.receipt_id {
            Some(receipt_id) if !receipt_id.trim().is_empty() => Verdict::Credited {
                receipt_id,
                duplicate: status == RecordStatus::Duplicate,
            },
            _ => Verdict::Unknown(Violation::MissingReceipt),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(key: &str, status: RecordStatus, receipt: Option<&str>) -> RecordResult {
        RecordResult {
            idempotency_key: key.into(),
            status,
            receipt_id: receipt.map(str::to_owned),
            code: None,
            message: None,
        }
    }

    fn credited(receipt: &str) -> Verdict {
        Verdict::Credited {
            receipt_id: receipt.into(),
            duplicate: false,
        }
    }

    #[test]
    fn a_well_formed_answer_settles_every_record_with_no_violation() {
        let checked = check_batch(
            &["a", "b", "c"],
            vec![
                result("a", RecordStatus::Accepted, Some("L-1")),
                result("b", RecordStatus::Duplicate, Some("L-2")),
                result("c", RecordStatus::Rejected, None),
            ],
        );
        assert_eq!(checked.violations, vec![]);
        assert_eq!(
            checked.verdicts,
            vec![
                credited("L-1"),
                Verdict::Credited {
                    receipt_id: "L-2".into(),
                    duplicate: true
                },
                Verdict::Rejected {
                    code: "rejected".into(),
                    message: String::new()
                },
            ]
        );
    }

    #[test]
    fn an_empty_or_missing_receipt_is_unknown_for_that_record_only() {
        let checked = check_batch(
            &["a", "b", "c"],
            vec![
                result("a", RecordStatus::Accepted, Some("")),
                result("b", RecordStatus::Duplicate, None),
                result("c", RecordStatus::Accepted, Some("L-3")),
            ],
        );
        assert_eq!(
            checked.verdicts,
            vec![
                Verdict::Unknown(Violation::MissingReceipt),
                Verdict::Unknown(Violation::MissingReceipt),
                credited("L-3"),
            ]
        );
        assert_eq!(checked.violations, vec![(Violation::MissingReceipt, 2)]);
    }

    #[test]
    fn a_result_under_a_key_not_sent_leaves_the_record_it_replaced_unknown() {
        let checked = check_batch(
            &["a", "b"],
            vec![
                result("a", RecordStatus::Accepted, Some("L-1")),
                result("zz", RecordStatus::Accepted, Some("L-2")),
            ],
        );
        assert_eq!(
            checked.verdicts,
            vec![credited("L-1"), Verdict::Unknown(Violation::MissingResult)]
        );
        assert_eq!(
            checked.violations,
            vec![(Violation::MissingResult, 1), (Violation::UnexpectedKey, 1)]
        );
    }

    #[test]
    fn a_missing_or_repeated_result_is_unknown_and_order_alone_is_counted() {
        let checked = check_batch(
            &["a", "b", "c"],
            vec![
                result("b", RecordStatus::Accepted, Some("L-2")),
                result("b", RecordStatus::Accepted, Some("L-9")),
                result("a", RecordStatus::Accepted, Some("L-1")),
            ],
        );
        assert_eq!(
            checked.verdicts,
            vec![
                credited("L-1"),
                Verdict::Unknown(Violation::RepeatedResult),
                Verdict::Unknown(Violation::MissingResult),
            ]
        );
        let swapped = check_batch(
            &["a", "b"],
            vec![
                result("b", RecordStatus::Accepted, Some("L-2")),
                result("a", RecordStatus::Accepted, Some("L-1")),
            ],
        );
        assert_eq!(swapped.verdicts, vec![credited("L-1"), credited("L-2")]);
        assert_eq!(swapped.violations, vec![(Violation::OutOfOrder, 1)]);
    }
}
