//! What one simulated registry remembers: its credits, the idempotency keys
//! that lead to them, the (person, course, date) slots they occupy, and the
//! counters and limits of its token.
//!
//! Everything here is synchronous and runs under one mutex held for the
//! length of a batch, so a batch is applied atomically and in order, as a
//! registry with a transactional store would.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde_json::Value;

use super::ratelimit::{RequestWindow, RetryAfterWatch, TokenBucket};
use super::validate::{self, Rejection};
use super::{CreditedRecord, Faults, RegistryStats};

/// The three registries the simulator serves, one per base path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegistryKind {
    Lifelong,
    Teacher,
    Enved,
}

impl RegistryKind {
    pub const ALL: [Self; 3] = [Self::Lifelong, Self::Teacher, Self::Enved];

    /// The name used in paths and in the contract's tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lifelong => "lifelong",
            Self::Teacher => "teacher",
            Self::Enved => "enved",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    fn receipt_prefix(self) -> char {
        match self {
            Self::Lifelong => 'L',
            Self::Teacher => 'T',
            Self::Enved => 'E',
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The answer for one record of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted(String),
    Duplicate(String),
    Rejected(Rejection),
}

/// Why a correction was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorrectError {
    UnknownReceipt,
    /// The new revision key already belongs to another receipt.
    KeyTaken(String),
}

/// The (national ID, course code, completion date) a credit occupies; a
/// second key for the same slot is `already_credited`.
type Slot = (String, String, String);

#[derive(Debug)]
struct Credit {
    receipt_id: String,
    /// The latest revision's key.
    key: String,
    /// Every key that answers `duplicate` with this receipt.
    keys: Vec<String>,
    record: Value,
    /// A digest of the record first credited under the first key, to
    /// count resends of that key that carry another record.
    first: u64,
    hours_tenths: u32,
    slot: Slot,
}

impl Credit {
    /// Sets the credited hours and the stored record's `hours` alike, so that
    /// the listing and the lookup never disagree.
    fn set_hours(&mut self, hours_tenths: u32) {
        self.hours_tenths = hours_tenths;
        if let Some(obj) = self.record.as_object_mut() {
            obj.insert(
                "hours".into(),
                Value::String(validate::format_tenths(hours_tenths)),
            );
        }
    }
}

/// One registry's credits, limits and counters.
#[derive(Debug)]
pub struct Ledger {
    kind: RegistryKind,
    next_receipt: u64,
    /// Credits by receipt sequence number, so listings come in credit order.
    credits: BTreeMap<u64, Credit>,
    receipts: HashMap<String, u64>,
    keys: HashMap<String, u64>,
    slots: HashMap<Slot, u64>,
    pub bucket: TokenBucket,
    pub window: RequestWindow,
    pub retry_after: RetryAfterWatch,
    pub stats: RegistryStats,
}

impl Ledger {
    fn new(kind: RegistryKind, rate_per_second: u32, burst: u32, now: Instant) -> Self {
        Self {
            kind,
            next_receipt: 1,
            credits: BTreeMap::new(),
            receipts: HashMap::new(),
            keys: HashMap::new(),
            slots: HashMap::new(),
            bucket: TokenBucket::new(rate_per_second, burst, now),
            window: RequestWindow::default(),
            retry_after: RetryAfterWatch::default(),
            stats: RegistryStats::default(),
        }
    }

    /// Applies one record of a batch and counts its outcome. The key is
    /// looked at first: a key credited earlier is a `duplicate` whatever the
    /// rest of the record now says, because the contract makes resending
    /// with the same key the safe answer to an unknown outcome.
    pub fn submit(&mut self, record: &Value, faults: &Faults) -> Outcome {
        let outcome = self.decide(record, faults);
        match &outcome {
            Outcome::Accepted(_) => self.stats.records_accepted += 1,
            Outcome::Duplicate(_) => self.stats.duplicates += 1,
            Outcome::Rejected(_) => self.stats.rejected += 1,
        }
        outcome
    }

    fn decide(&mut self, record: &Value, faults: &Faults) -> Outcome {
        let key = match validate::idempotency_key(record) {
            Ok(key) => key,
            Err(rejection) => return Outcome::Rejected(rejection),
        };
        if let Some(seq) = self.keys.get(key) {
            let credit = &self.credits[seq];
            if credit.keys[0] == key && digest(record) != credit.first {
                self.stats.resent_other_record += 1;
            }
            return Outcome::Duplicate(credit.receipt_id.clone());
        }
        let valid = match validate::record(self.kind, record) {
            Ok(valid) => valid,
            Err(rejection) => return Outcome::Rejected(rejection),
        };
        if faults.reject_courses.contains(&valid.course_code) {
            let mut message = format!(
                "course {:?} is not known to this registry",
                valid.course_code
            );
            if faults.reject_quoting_id {
                message.push_str(&format!(" (record of person{})", valid.national_id));
            }
            return Outcome::Rejected(Rejection::new("unknown_course", message));
        }
        let slot = (valid.national_id, valid.course_code, valid.completed_on);
        if let Some(seq) = self.slots.get(&slot) {
            return Outcome::Rejected(Rejection::new(
                "already_credited",
                format!(
                    "this person, course and date are already credited under receipt {}",
                    self.credits[seq].receipt_id
                ),
            ));
        }

        let seq = self.next_receipt;
        self.next_receipt += 1;
        let receipt_id = format!("{}-{seq:06}", self.kind.receipt_prefix());
        self.keys.insert(key.to_owned(), seq);
        self.receipts.insert(receipt_id.clone(), seq);
        self.slots.insert(slot.clone(), seq);
        self.credits.insert(
            seq,
            Credit {
                receipt_id: receipt_id.clone(),
                key: key.to_owned(),
                keys: vec![key.to_owned()],
                record: record.clone(),
                first: digest(record),
                hours_tenths: valid.hours_tenths,
                slot,
            },
        );
        Outcome::Accepted(receipt_id)
    }

    /// The receipt and current hours credited under `key`, if any.
    pub fn lookup(&self, key: &str) -> Option<(String, String)> {
        let credit = &self.credits[self.keys.get(key)?];
        Some((
            credit.receipt_id.clone(),
            validate::format_tenths(credit.hours_tenths),
        ))
    }

    /// Sets a credit's hours under a new revision key. Replaying a key the
    /// receipt already knows changes nothing, so a resent (or stale) PUT can
    /// never move the hours backwards.
    pub fn correct(
        &mut self,
        receipt_id: &str,
        new_key: &str,
        hours_tenths: u32,
    ) -> Result<(), CorrectError> {
        let seq = *self
            .receipts
            .get(receipt_id)
            .ok_or(CorrectError::UnknownReceipt)?;
        match self.keys.get(new_key) {
            Some(&owner) if owner == seq => return Ok(()),
            Some(owner) => {
                return Err(CorrectError::KeyTaken(
                    self.credits[owner].receipt_id.clone(),
                ));
            }
            None => {}
        }
        let credit = self
            .credits
            .get_mut(&seq)
            .ok_or(CorrectError::UnknownReceipt)?;
        credit.set_hours(hours_tenths);
        credit.key = new_key.to_owned();
        credit.keys.push(new_key.to_owned());
        if let Some(obj) = credit.record.as_object_mut() {
            obj.insert("idempotency_key".into(), Value::String(new_key.to_owned()));
        }
        self.keys.insert(new_key.to_owned(), seq);
        self.stats.corrections += 1;
        Ok(())
    }

    /// Makes the credit `key` leads to hold `hours_tenths`, keys and receipt
    /// unchanged: a registry holding wrong hours. Not a correction, so not
    /// counted as one. Answers whether there was such a credit.
    pub fn set_hours(&mut self, key: &str, hours_tenths: u32) -> bool {
        let Some(credit) = self.keys.get(key).and_then(|seq| self.credits.get_mut(seq)) else {
            return false;
        };
        credit.set_hours(hours_tenths);
        true
    }

    /// Removes a credit by receipt: its keys and its slot are forgotten, so
    /// the same person, course and date may be credited again.
    pub fn withdraw(&mut self, receipt_id: &str) -> bool {
        match self.receipts.get(receipt_id) {
            Some(&seq) => {
                self.remove(seq);
                self.stats.withdrawals += 1;
                true
            }
            None => false,
        }
    }

    /// Loses the credit `key` leads to, as a registry that lost data would.
    pub fn forget(&mut self, key: &str) -> bool {
        match self.keys.get(key) {
            Some(&seq) => {
                self.remove(seq);
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, seq: u64) {
        if let Some(credit) = self.credits.remove(&seq) {
            for key in &credit.keys {
                self.keys.remove(key);
            }
            self.receipts.remove(&credit.receipt_id);
            self.slots.remove(&credit.slot);
        }
    }

    /// The current credits, in the order they were made.
    pub fn credited(&self) -> Vec<CreditedRecord> {
        self.credits
            .values()
            .map(|c| CreditedRecord {
                receipt_id: c.receipt_id.clone(),
                idempotency_key: c.key.clone(),
                record: c.record.clone(),
                hours: validate::format_tenths(c.hours_tenths),
            })
            .collect()
    }

    /// This registry's counters, with the busiest second filled in.
    pub fn stats(&self) -> RegistryStats {
        RegistryStats {
            max_requests_in_one_second: self.window.max(),
            ..self.stats.clone()
        }
    }
}

/// Everything the simulator remembers, behind one mutex.
#[derive(Debug)]
pub struct SimState {
    ledgers: [Ledger; 3],
    pub faults: Faults,
}

impl SimState {
    pub fn new(rate_per_second: u32, burst: u32, faults: Faults) -> Self {
        let now = Instant::now();
        Self {
            ledgers: RegistryKind::ALL.map(|k| Ledger::new(k, rate_per_second, burst, now)),
            faults,
        }
    }

    pub fn ledger(&self, kind: RegistryKind) -> &Ledger {
        &self.ledgers[kind.index()]
    }

    pub fn ledger_mut(&mut self, kind: RegistryKind) -> &mut Ledger {
        &mut self.ledgers[kind.index()]
    }
}

/// A digest of a record's content (field order and white space aside).
fn digest(record: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    record.to_string().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enved(key: &str, course: &str) -> Value {
        json!({
            "idempotency_key": key,
            "national_id": "A123456789",
            "course_code": course,
            "course_name": "Wetlands",
            "completed_on": "2025-03-01",
            "hours": "3.0",
            "enved_account": "acct-1",
            "service_unit_code": "U1",
        })
    }

    fn ledger() -> Ledger {
        Ledger::new(RegistryKind::Enved, 0, 0, Instant::now())
    }

    #[test]
    fn receipts_are_sequential_per_registry() {
        let mut l = ledger();
        let f = Faults::default();
        assert_eq!(
            l.submit(&enved("a", "C1"), &f),
            Outcome::Accepted("E-000001".into())
        );
        assert_eq!(
            l.submit(&enved("b", "C2"), &f),
            Outcome::Accepted("E-000002".into())
        );
        assert_eq!(
            l.submit(&enved("a", "C1"), &f),
            Outcome::Duplicate("E-000001".into())
        );
    }

    #[test]
    fn a_corrected_credit_knows_both_keys_and_a_stale_replay_changes_nothing() {
        let mut l = ledger();
        let f = Faults::default();
        l.submit(&enved("a", "C1"), &f);
        assert_eq!(l.correct("E-000001", "a2", 40), Ok(()));
        assert_eq!(
            l.correct("E-000001", "a", 30),
            Ok(()),
            "replay of a known key"
        );
        assert_eq!(l.lookup("a"), Some(("E-000001".into(), "4.0".into())));
        assert_eq!(l.lookup("a2"), Some(("E-000001".into(), "4.0".into())));
        assert_eq!(
            l.submit(&enved("a2", "C1"), &f),
            Outcome::Duplicate("E-000001".into())
        );
        assert_eq!(l.credited()[0].record["hours"], json!("4.0"));
        assert_eq!(
            l.correct("E-000009", "z", 10),
            Err(CorrectError::UnknownReceipt)
        );
        assert_eq!(l.stats().corrections, 1, "the replay changed nothing");
    }

    #[test]
    fn set_hours_changes_the_figure_under_every_key_and_nothing_else() {
        let mut l = ledger();
        let f = Faults::default();
        l.submit(&enved("a", "C1"), &f);
        l.correct("E-000001", "a2", 40).unwrap();
        assert!(l.set_hours("a", 99));
        assert_eq!(l.lookup("a"), Some(("E-000001".into(), "9.9".into())));
        assert_eq!(l.lookup("a2"), Some(("E-000001".into(), "9.9".into())));
        let credited = l.credited();
        assert_eq!(credited.len(), 1);
        assert_eq!(credited[0].hours, "9.9");
        assert_eq!(credited[0].record["hours"], json!("9.9"));
        assert_eq!(credited[0].idempotency_key, "a2");
        assert_eq!(credited[0].record["idempotency_key"], json!("a2"));
        assert_eq!(l.stats().corrections, 1, "not a correction");
        assert!(!l.set_hours("nope", 10));
        assert_eq!(
            l.submit(&enved("a", "C1"), &f),
            Outcome::Duplicate("E-000001".into())
        );
    }

    #[test]
    fn withdrawing_frees_the_slot_for_a_new_key() {
        let mut l = ledger();
        let f = Faults::default();
        l.submit(&enved("a", "C1"), &f);
        assert!(matches!(
            l.submit(&enved("b", "C1"), &f),
            Outcome::Rejected(Rejection {
                code: "already_credited",
                ..
            })
        ));
        assert!(l.withdraw("E-000001"));
        assert!(!l.withdraw("E-000001"));
        assert_eq!(l.stats().withdrawals, 1);
        assert_eq!(l.lookup("a"), None);
        assert_eq!(
            l.submit(&enved("b", "C1"), &f),
            Outcome::Accepted("E-000002".into())
        );
    }
}
