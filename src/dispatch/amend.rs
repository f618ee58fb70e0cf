//! Corrections (`PUT`) and withdrawals (`DELETE`) of credited records, one
//! request per record, paced like batches.
//!
//! Both are safe to repeat after an unknown outcome: a correction carries
//! its revision's own key, which the registry applies once (a replay of a
//! key it knows changes nothing), and a withdrawal answered `404` means the
//! record is already gone. A withdrawal of a record whose upload outcome was
//! never learnt (no receipt) looks the key up first.

use super::{Dispatcher, Log, release};
use crate::registry::{CorrectAnswer, SendError, WithdrawAnswer};
use crate::store::{Action, Claimed, Outcome, StoreError};
use tracing::{info, warn};

impl Dispatcher {
    /// How many corrections and withdrawals one unit of work may send.
    ///
    /// They go one request each, so a few hundred due at once would take
    /// the registry's whole pace for minutes while uploads, 500 records a
    /// request, wait: the probe saw 950 corrections grow the upload backlog
    /// from 7,198 to 9,980. So when the unit sent uploads, amendments get as
    /// many requests as the upload batches did: the two take turns. Alone,
    /// they get about a second of the registry's pace, then the queue is
    /// claimed again, where uploads that fell due meanwhile come first.
    pub(super) fn amend_budget(&self, sent_uploads: bool, log: &Log) -> usize {
        if sent_uploads {
            let batches: std::collections::HashSet<&str> =
                log.attempts.iter().map(|a| a.request_id.as_str()).collect();
            return batches.len().max(1);
        }
        match self
            .settings
            .tuning
            .rate_per_second
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => usize::MAX,
            rate => rate as usize,
        }
    }

    /// Sends each correction or withdrawal, at most `budget` of them (see
    /// [`Self::amend_budget`]); the rest are released at once, unsent, for
    /// the next claim. Once a request is held back (429, refused token), the
    /// rest are released until then.
    pub(super) async fn amend(
        &mut self,
        records: &[Claimed],
        budget: usize,
        log: &mut Log,
        held: &mut Option<i64>,
    ) -> Result<(), StoreError> {
        for (sent, c) in records.iter().enumerate() {
            if let Some(until) = *held {
                log.outcomes.push(release(c, until, None));
                continue;
            }
            if sent >= budget {
                log.outcomes.push(release(c, self.clock.now_ms(), None));
                continue;
            }
            // An empty receipt (stored before answers were checked) names no
            // credit: a request to it could only be answered 404 by a path
            // that is not the record's, so it is treated as no receipt.
            let receipt = c.receipt_id.as_deref().filter(|r| !r.trim().is_empty());
            match (c.action, receipt) {
                (Action::Correct, Some(receipt)) => self.correct(c, receipt, log, held).await?,
                (Action::Withdraw, Some(receipt)) => self.withdraw(c, receipt, log, held).await?,
                (Action::Withdraw, None) => self.withdraw_unknown(c, log, held).await?,
                // A correction without a receipt has nothing to correct:
                // upload the revision as a new record.
                (_, None) => log.outcomes.push(Outcome::Lost { id: c.id }),
                (Action::Upload | Action::Lookup, Some(_)) => {
                    unreachable!("uploads are batched; lookups are not claimed")
                }
            }
        }
        Ok(())
    }

    async fn correct(
        &mut self,
        c: &Claimed,
        receipt: &str,
        log: &mut Log,
        held: &mut Option<i64>,
    ) -> Result<(), StoreError> {
        let (request_id, now, result) = self
            .request(async |client, id| {
                client
                    .correct(receipt, c.hours_tenths, &c.idempotency_key, id)
                    .await
            })
            .await?;
        match result {
            Ok(CorrectAnswer::Corrected) => {
                log.attempt(c, now, &request_id, Some(200), "corrected", None);
                log.outcomes.push(Outcome::Corrected {
                    id: c.id,
                    revision: c.revision,
                    credited_tenths: c.hours_tenths,
                });
            }
            Ok(CorrectAnswer::UnknownReceipt) => {
                warn!(registry = %self.settings.registry, request_id, receipt, "the registry does not know the receipt to correct: uploading the new revision as a new record");
                log.attempt(c, now, &request_id, Some(404), "not_found", None);
                log.outcomes.push(Outcome::Lost { id: c.id });
            }
            Ok(CorrectAnswer::KeyTaken(message)) => {
                let e = SendError::BadRequest {
                    status: 409,
                    message,
                };
                self.failed(c, c, e, now, &request_id, log, held).await?;
            }
            Err(e) => self.failed(c, c, e, now, &request_id, log, held).await?,
        }
        Ok(())
    }

    async fn withdraw(
        &mut self,
        c: &Claimed,
        receipt: &str,
        log: &mut Log,
        held: &mut Option<i64>,
    ) -> Result<(), StoreError> {
        let (request_id, now, result) = self
            .request(async |client, id| client.withdraw(receipt, id).await)
            .await?;
        match result {
            Ok(answer) => {
                let (status, word) = match answer {
                    WithdrawAnswer::Withdrawn => (200, "withdrawn"),
                    // Gone already (an earlier DELETE whose answer was lost).
                    WithdrawAnswer::UnknownReceipt => (404, "not_found"),
                };
                info!(registry = %self.settings.registry, request_id, receipt, "record withdrawn");
                log.attempt(c, now, &request_id, Some(status), word, None);
                log.outcomes.push(Outcome::Withdrawn { id: c.id });
            }
            Err(e) => self.failed(c, c, e, now, &request_id, log, held).await?,
        }
        Ok(())
    }

    /// A withdrawal of a record whose upload outcome is unknown: ask the
    /// registry whether it holds the key, and delete what it holds.
    async fn withdraw_unknown(
        &mut self,
        c: &Claimed,
        log: &mut Log,
        held: &mut Option<i64>,
    ) -> Result<(), StoreError> {
        let (request_id, now, result) = self
            .request(async |client, id| client.lookup(&c.idempotency_key, id).await)
            .await?;
        // This request is a lookup in the history, not a withdrawal.
        let lookup = Claimed {
            action: Action::Lookup,
            ..c.clone()
        };
        match result {
            Ok(None) => {
                log.attempt(&lookup, now, &request_id, Some(404), "not_found", None);
                log.outcomes.push(Outcome::Withdrawn { id: c.id });
                Ok(())
            }
            Ok(Some(credited)) => {
                log.attempt(&lookup, now, &request_id, Some(200), "found", None);
                self.withdraw(c, &credited.receipt_id, log, held).await
            }
            Err(e) => {
                self.failed(c, &lookup, e, now, &request_id, log, held)
                    .await
            }
        }
    }

    /// A request for `c` that failed: kept in the history as `logged` (the
    /// lookup or the action itself), then handled like any failed request.
    #[allow(clippy::too_many_arguments)]
    async fn failed(
        &mut self,
        c: &Claimed,
        logged: &Claimed,
        e: SendError,
        now: i64,
        request_id: &str,
        log: &mut Log,
        held: &mut Option<i64>,
    ) -> Result<(), StoreError> {
        log.attempts(std::slice::from_ref(logged), now, request_id, &e);
        self.on_error(std::slice::from_ref(c), e, now, request_id, log, held)
            .await
    }
}
