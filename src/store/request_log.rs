//! The history's lean shape. Callers log one [`Attempt`] per record, the
//! shape support reads; the store keeps one row per request (its time,
//! action, request id, HTTP status, and an error all its records share)
//! and per record only the delivery, its revision, its result and an error
//! of its own (a registry's rejection message). A batch of a thousand
//! records repeated its request's columns a thousand times before.
//!
//! Reading joins them back: a record's error is its own, else its
//! request's, so what support sees is exactly what was logged.

use super::{Attempt, Result, StoreError};
use serde::Serialize;
use std::collections::HashMap;

/// What identifies a request among the attempts of one write: the attempts
/// of one request share all four (a stored history from before the lean
/// shape may hold a request id twice with another status; each is kept).
pub(super) type RequestKey<'a> = (&'a str, i64, &'a str, Option<u16>);

/// One request's row.
#[derive(Serialize, Debug, PartialEq)]
pub(super) struct RequestRow<'a> {
    pub at: i64,
    pub action: &'a str,
    pub request_id: &'a str,
    pub http_status: Option<u16>,
    /// The error every record of the request carries, if they all carry
    /// the same one (a timeout, a 503); `None` when records differ.
    pub error: Option<&'a str>,
}

impl<'a> RequestRow<'a> {
    pub fn key(&self) -> RequestKey<'a> {
        (self.request_id, self.at, self.action, self.http_status)
    }
}

/// One record's row, in the JSON the insert reads.
#[derive(Serialize, Debug, PartialEq)]
struct RecordRow<'a> {
    delivery_id: i64,
    request: i64,
    revision: i64,
    result: &'a str,
    error: Option<&'a str>,
}

fn key(a: &Attempt) -> RequestKey<'_> {
    (&a.request_id, a.at, &a.action, a.http_status)
}

/// The attempts of one write, split into their requests.
pub(super) struct Split<'a> {
    /// The requests, in the order they first appear.
    pub requests: Vec<RequestRow<'a>>,
    /// Per attempt, the index of its request in `requests`.
    request_of: Vec<usize>,
}

/// Splits `attempts` into the requests they were made in.
pub(super) fn split(attempts: &[Attempt]) -> Split<'_> {
    let mut requests: Vec<RequestRow> = Vec::new();
    let mut index: HashMap<RequestKey, usize> = HashMap::new();
    let mut request_of = Vec::with_capacity(attempts.len());
    for a in attempts {
        let i = *index.entry(key(a)).or_insert_with(|| {
            requests.push(RequestRow {
                at: a.at,
                action: &a.action,
                request_id: &a.request_id,
                http_status: a.http_status,
                error: a.error.as_deref(),
            });
            requests.len() - 1
        });
        // Not shared by every record: each record keeps its own.
        if requests[i].error != a.error.as_deref() {
            requests[i].error = None;
        }
        request_of.push(i);
    }
    Split {
        requests,
        request_of,
    }
}

/// The records of `attempts` as the JSON array the insert reads, each under
/// the id its request was stored with (`ids`, by index in
/// [`Split::requests`]; `None`: not stored). A request names a delivery
/// once (the table's key): a repeat is dropped.
pub(super) fn records(attempts: &[Attempt], split: &Split, ids: &[Option<i64>]) -> Result<String> {
    let mut seen = std::collections::HashSet::new();
    let rows = attempts
        .iter()
        .zip(&split.request_of)
        .filter(|&(a, &r)| seen.insert((r, a.delivery_id)))
        .map(|(a, &r)| {
            let request = ids.get(r).copied().flatten().ok_or_else(|| {
                StoreError::Fatal("a request of the history was not stored".into())
            })?;
            let own = a.error.as_deref();
            Ok(RecordRow {
                delivery_id: a.delivery_id,
                request,
                revision: a.revision,
                result: &a.result,
                error: own.filter(|_| split.requests[r].error != own),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::to_string(&rows).expect("history rows serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(delivery_id: i64, request_id: &str, result: &str, error: Option<&str>) -> Attempt {
        Attempt {
            delivery_id,
            at: 1_000,
            revision: 1,
            action: "upload".into(),
            request_id: request_id.into(),
            http_status: Some(200),
            result: result.into(),
            error: error.map(String::from),
        }
    }

    /// What a read gives back for each attempt: its request's columns and
    /// its own error, else the request's.
    fn read_back(attempts: &[Attempt]) -> Vec<Attempt> {
        let split = split(attempts);
        let requests = &split.requests;
        let ids: Vec<Option<i64>> = (1..=requests.len() as i64).map(Some).collect();
        let json = records(attempts, &split, &ids).unwrap();
        let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        rows.iter()
            .map(|r| {
                let q = &requests[r["request"].as_i64().unwrap() as usize - 1];
                Attempt {
                    delivery_id: r["delivery_id"].as_i64().unwrap(),
                    at: q.at,
                    revision: r["revision"].as_i64().unwrap(),
                    action: q.action.into(),
                    request_id: q.request_id.into(),
                    http_status: q.http_status,
                    result: r["result"].as_str().unwrap().into(),
                    error: r["error"].as_str().or(q.error).map(String::from),
                }
            })
            .collect()
    }

    #[test]
    fn a_batch_is_one_request_row_and_an_error_all_its_records_share_is_stored_once() {
        let timeout = Some("timed out after 10s");
        let batch: Vec<Attempt> = (1..=3)
            .map(|id| attempt(id, "r-1", "unknown", timeout))
            .collect();
        let split = split(&batch);
        assert_eq!(split.requests.len(), 1);
        assert_eq!(split.requests[0].error, timeout);
        let json = records(&batch, &split, &[Some(9)]).unwrap();
        assert!(
            !json.contains("timed out"),
            "not repeated per record: {json}"
        );
        assert_eq!(read_back(&batch), batch);
    }

    #[test]
    fn records_with_their_own_messages_keep_them_and_read_back_as_logged() {
        let attempts = vec![
            attempt(1, "r-1", "accepted", None),
            attempt(2, "r-1", "rejected", Some("unknown_person")),
            attempt(3, "r-1", "rejected", Some("invalid_hours")),
            attempt(4, "r-2", "rejected", Some("unknown_person")),
            Attempt {
                http_status: None,
                ..attempt(5, "r-2", "unknown", Some("reset"))
            },
        ];
        let rows = split(&attempts).requests;
        assert_eq!(rows.len(), 3, "r-1, r-2 with 200, r-2 without a status");
        assert_eq!(rows[0].error, None, "r-1's records differ");
        assert_eq!(read_back(&attempts), attempts);
    }

    #[test]
    fn a_delivery_named_twice_in_one_request_is_one_record() {
        let attempts = vec![
            attempt(1, "r-1", "accepted", None),
            attempt(1, "r-1", "accepted", None),
        ];
        assert_eq!(read_back(&attempts), attempts[..1]);
    }

    #[test]
    fn a_record_whose_request_was_not_stored_is_an_error_not_a_guess() {
        let attempts = vec![attempt(1, "r-1", "accepted", None)];
        let split = split(&attempts);
        assert!(records(&attempts, &split, &[None]).is_err());
        assert!(records(&attempts, &split, &[]).is_err());
    }
}
