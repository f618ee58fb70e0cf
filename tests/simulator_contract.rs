//! The registry simulator against REGISTRY-API.md, over real HTTP.
//!
//! These tests are what lets the end-to-end tests trust the simulator: each
//! one states a rule of the contract and checks the simulator keeps it.

use std::time::Duration;

use hoursync::registry::{CorrectAnswer, RegistryClient, SendError, WithdrawAnswer};
use hoursync::simulator::{Faults, SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "sim-token";

/// A simulator without a rate limit, so that only the tests about limits
/// meet one.
async fn start_with(config: SimConfig) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("the simulator starts")
}

async fn start() -> Simulator {
    start_with(SimConfig {
        rate_per_second: 0,
        ..SimConfig::default()
    })
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A request as our client sends it: token, request id, JSON body.
fn authed(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .bearer_auth(TOKEN)
        .header("X-Request-Id", request_id())
}

async fn send_batch(sim: &Simulator, registry: &str, records: Vec<Value>) -> reqwest::Response {
    authed(client().post(format!("{}/v1/records:batch", sim.base_url(registry))))
        .json(&json!({ "records": records }))
        .send()
        .await
        .expect("the simulator answers")
}

/// Sends a batch that must succeed and returns its results.
async fn results(sim: &Simulator, registry: &str, records: Vec<Value>) -> Vec<Value> {
    let response = send_batch(sim, registry, records).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["results"].as_array().expect("a results array").clone()
}

fn lifelong(key: &str, national_id: &str, course: &str) -> Value {
    json!({
        "idempotency_key": key,
        "national_id": national_id,
        "course_code": course,
        "course_name": "Digital literacy",
        "completed_on": "2025-03-14",
        "hours": "2.5",
        "learning_mode": 3,
        "digital_hours": "1.5",
        "classroom_hours": "1.0",
        "category_code": "K01",
    })
}

fn teacher(key: &str, national_id: &str, course: &str) -> Value {
    json!({
        "idempotency_key": key,
        "national_id": national_id,
        "course_code": course,
        "course_name": "Classroom safety",
        "completed_on": "2025-03-14",
        "hours": "3.0",
        "personnel_category": "10",
    })
}

fn enved(key: &str, national_id: &str, course: &str) -> Value {
    json!({
        "idempotency_key": key,
        "national_id": national_id,
        "course_code": course,
        "course_name": "Wetlands",
        "completed_on": "2025-03-14",
        "hours": "4.0",
        "enved_account": "learner-7",
        "service_unit_code": "U-200",
    })
}

fn record_for(registry: &str, key: &str, national_id: &str, course: &str) -> Value {
    match registry {
        "lifelong" => lifelong(key, national_id, course),
        "teacher" => teacher(key, national_id, course),
        _ => enved(key, national_id, course),
    }
}

const REGISTRIES: [&str; 3] = ["lifelong", "teacher", "enved"];

fn assert_rejected(result: &Value, code: &str) {
    assert_eq!(result["status"], "rejected", "{result}");
    assert_eq!(result["code"], code, "{result}");
    assert!(
        result["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a rejection explains itself: {result}"
    );
}

#[tokio::test]
async fn a_valid_record_is_accepted_with_a_sequential_receipt_of_its_registry() {
    let sim = start().await;
    for (registry, prefix) in REGISTRIES.into_iter().zip(["L", "T", "E"]) {
        let r = results(
            &sim,
            registry,
            vec![
                record_for(registry, "k1", "A123456789", "C1"),
                record_for(registry, "k2", "AA00000009", "C1"),
            ],
        )
        .await;
        assert_eq!(
            r,
            vec![
                json!({"idempotency_key": "k1", "status": "accepted", "receipt_id": format!("{prefix}-000001")}),
                json!({"idempotency_key": "k2", "status": "accepted", "receipt_id": format!("{prefix}-000002")}),
            ]
        );
        let credited = sim.credited(registry);
        assert_eq!(credited.len(), 2);
        assert_eq!(credited[0].idempotency_key, "k1");
        assert_eq!(
            credited[0].record,
            record_for(registry, "k1", "A123456789", "C1")
        );
        assert_eq!(sim.stats().registry(registry).records_accepted, 2);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_key_sent_twice_is_credited_once() {
    let sim = start().await;
    let record = teacher("same-key", "F131104093", "C1");
    let first = results(&sim, "teacher", vec![record.clone(), record.clone()]).await;
    assert_eq!(first[0]["status"], "accepted");
    assert_eq!(first[1]["status"], "duplicate");
    assert_eq!(first[1]["receipt_id"], first[0]["receipt_id"]);
    let again = results(&sim, "teacher", vec![record]).await;
    assert_eq!(
        again[0],
        json!({"idempotency_key": "same-key", "status": "duplicate", "receipt_id": "T-000001"})
    );
    assert_eq!(sim.credited("teacher").len(), 1);
    assert_eq!(sim.stats().registry("teacher").duplicates, 2);
}

#[tokio::test]
async fn the_same_completion_under_another_key_is_already_credited() {
    let sim = start().await;
    for registry in REGISTRIES {
        let r = results(
            &sim,
            registry,
            vec![
                record_for(registry, "rev-1", "A800000014", "C9"),
                record_for(registry, "other", "A800000014", "C9"),
            ],
        )
        .await;
        assert_eq!(r[0]["status"], "accepted");
        assert_rejected(&r[1], "already_credited");
        assert_eq!(sim.credited(registry).len(), 1);
    }
}

#[tokio::test]
async fn a_national_id_failing_its_format_or_check_digit_is_rejected() {
    let sim = start().await;
    for registry in REGISTRIES {
        let bad = [
            "A123456788",
            "A800000000",
            "AA00000000",
            "a123456789",
            "A12345678",
            "",
        ];
        let records = bad
            .iter()
            .enumerate()
            .map(|(i, id)| record_for(registry, &format!("bad-{i}"), id, "C1"))
            .collect();
        for result in results(&sim, registry, records).await {
            assert_rejected(&result, "invalid_national_id");
            assert!(!result["message"].as_str().unwrap().contains("A123456788"));
        }
        let good = ["A900207177", "AD30196818"]
            .iter()
            .enumerate()
            .map(|(i, id)| record_for(registry, &format!("good-{i}"), id, "C1"))
            .collect();
        for result in results(&sim, registry, good).await {
            assert_eq!(result["status"], "accepted", "{result}");
        }
    }
}

#[tokio::test]
async fn hours_without_exactly_one_decimal_place_or_out_of_range_are_invalid_hours() {
    let sim = start().await;
    for registry in REGISTRIES {
        let bad = [
            json!("2"),
            json!("2.00"),
            json!("0.0"),
            json!("1000.0"),
            json!("-1.0"),
            json!(2.5),
            json!(null),
        ];
        let records = bad
            .iter()
            .enumerate()
            .map(|(i, hours)| {
                let mut record =
                    record_for(registry, &format!("h-{i}"), "A123456789", &format!("C{i}"));
                record["hours"] = hours.clone();
                record
            })
            .collect();
        for result in results(&sim, registry, records).await {
            assert_rejected(&result, "invalid_hours");
        }
    }
    let mut max = teacher("max", "A123456789", "C1");
    max["hours"] = json!("999.9");
    assert_eq!(
        results(&sim, "teacher", vec![max]).await[0]["status"],
        "accepted"
    );
}

#[tokio::test]
async fn lifelong_hours_must_split_exactly_into_digital_and_classroom() {
    let sim = start().await;
    let mut off_by_a_tenth = lifelong("split-1", "A123456789", "C1");
    off_by_a_tenth["classroom_hours"] = json!("1.1");
    let mut badly_written = lifelong("split-2", "A123456789", "C2");
    badly_written["digital_hours"] = json!("1.50");
    let mut all_digital = lifelong("split-3", "A123456789", "C3");
    all_digital["learning_mode"] = json!(1);
    all_digital["digital_hours"] = json!("2.5");
    all_digital["classroom_hours"] = json!("0.0");
    let r = results(
        &sim,
        "lifelong",
        vec![off_by_a_tenth, badly_written, all_digital],
    )
    .await;
    assert_rejected(&r[0], "invalid_hours");
    assert_rejected(&r[1], "invalid_hours");
    assert_eq!(r[2]["status"], "accepted");
}

#[tokio::test]
async fn missing_or_wrong_fields_are_invalid_fields_per_registry() {
    let sim = start().await;
    let cases: Vec<(&str, Value)> = vec![
        ("lifelong", json!({"learning_mode": 4})),
        ("lifelong", json!({"learning_mode": "3"})),
        ("lifelong", json!({"category_code": ""})),
        ("lifelong", json!({"digital_hours": null})),
        ("teacher", json!({"personnel_category": "11"})),
        ("teacher", json!({"personnel_category": 10})),
        ("teacher", json!({"enved_account": "not a teacher field"})),
        ("enved", json!({"enved_account": ""})),
        ("enved", json!({"service_unit_code": null})),
        ("enved", json!({"course_name": "  "})),
        ("enved", json!({"completed_on": "2025-02-29"})),
        ("enved", json!({"completed_on": "2025/03/14"})),
        ("enved", json!({"idempotency_key": ""})),
        ("enved", json!({"idempotency_key": "k".repeat(65)})),
        ("enved", json!({"idempotency_key": 7})),
    ];
    for (i, (registry, change)) in cases.into_iter().enumerate() {
        let mut record = record_for(registry, &format!("f-{i}"), "A123456789", &format!("C{i}"));
        for (field, value) in change.as_object().unwrap() {
            if value.is_null() {
                record.as_object_mut().unwrap().remove(field);
            } else {
                record[field] = value.clone();
            }
        }
        let r = results(&sim, registry, vec![record]).await;
        assert_rejected(&r[0], "invalid_field");
    }
    let longest = enved(&"k".repeat(64), "A123456789", "C-long");
    assert_eq!(
        results(&sim, "enved", vec![longest]).await[0]["status"],
        "accepted"
    );
}

#[tokio::test]
async fn a_rejected_record_does_not_stop_the_rest_of_the_batch() {
    let sim = start_with(SimConfig {
        rate_per_second: 0,
        faults: Faults {
            reject_courses: vec!["RETIRED".into()],
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let r = results(
        &sim,
        "enved",
        vec![
            enved("a", "A123456789", "C1"),
            enved("b", "A123456789", "RETIRED"),
            enved("c", "A123456789", "C2"),
        ],
    )
    .await;
    let keys: Vec<&Value> = r.iter().map(|x| &x["idempotency_key"]).collect();
    assert_eq!(keys, [&json!("a"), &json!("b"), &json!("c")]);
    assert_eq!(r[0]["receipt_id"], "E-000001");
    assert_rejected(&r[1], "unknown_course");
    assert_eq!(r[2]["receipt_id"], "E-000002");
    assert_eq!(sim.stats().registry("enved").rejected, 1);
}

#[tokio::test]
async fn a_request_without_a_token_is_unauthorized_and_a_wrong_token_is_forbidden() {
    let sim = start().await;
    let url = format!("{}/v1/records:batch", sim.base_url("lifelong"));
    let body = json!({"records": [lifelong("k", "A123456789", "C1")]});
    let missing = client()
        .post(&url)
        .header("X-Request-Id", request_id())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let wrong = client()
        .post(&url)
        .bearer_auth("not-the-token")
        .header("X-Request-Id", request_id())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let lookup = client()
        .get(format!("{}/v1/records/k", sim.base_url("lifelong")))
        .header("X-Request-Id", request_id())
        .send()
        .await
        .unwrap();
    assert_eq!(lookup.status(), StatusCode::UNAUTHORIZED);
    assert!(sim.credited("lifelong").is_empty());
}

#[tokio::test]
async fn a_request_without_a_request_id_is_a_bad_request() {
    let sim = start().await;
    let response = client()
        .post(format!("{}/v1/records:batch", sim.base_url("teacher")))
        .bearer_auth(TOKEN)
        .json(&json!({"records": [teacher("k", "A123456789", "C1")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("X-Request-Id"));
    assert!(sim.credited("teacher").is_empty());
}

#[tokio::test]
async fn a_batch_over_max_batch_is_too_large_and_credits_nothing() {
    let sim = start_with(SimConfig {
        rate_per_second: 0,
        max_batch: 2,
        ..SimConfig::default()
    })
    .await;
    let records = (0..3)
        .map(|i| teacher(&format!("k{i}"), "A123456789", &format!("C{i}")))
        .collect();
    let response = send_batch(&sim, "teacher", records).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(sim.credited("teacher").is_empty());
}

#[tokio::test]
async fn a_malformed_batch_is_a_bad_request() {
    let sim = start().await;
    let url = format!("{}/v1/records:batch", sim.base_url("enved"));
    let bodies = [
        "not json".to_owned(),
        "[]".to_owned(),
        json!({}).to_string(),
        json!({"records": []}).to_string(),
        json!({"records": {"idempotency_key": "k"}}).to_string(),
        json!({"records": [enved("k", "A123456789", "C1")], "extra": 1}).to_string(),
    ];
    for body in bodies {
        let response = authed(client().post(&url))
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert!(answer["error"].is_string(), "{body}: {answer}");
    }
    let untyped = authed(client().post(&url))
        .body(json!({"records": [enved("k", "A123456789", "C1")]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(untyped.status(), StatusCode::BAD_REQUEST, "no Content-Type");
    assert!(sim.credited("enved").is_empty());
}

#[tokio::test]
async fn an_empty_bucket_answers_429_with_retry_after() {
    let sim = start_with(SimConfig {
        rate_per_second: 1,
        burst: 1,
        ..SimConfig::default()
    })
    .await;
    let first = send_batch(&sim, "lifelong", vec![lifelong("a", "A123456789", "C1")]).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = send_batch(&sim, "lifelong", vec![lifelong("b", "A123456789", "C2")]).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(retry_after >= 1);
    assert_eq!(sim.credited("lifelong").len(), 1, "a 429 commits nothing");
    // Each registry has its own bucket.
    let other = send_batch(&sim, "teacher", vec![teacher("a", "A123456789", "C1")]).await;
    assert_eq!(other.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let later = send_batch(&sim, "lifelong", vec![lifelong("b", "A123456789", "C2")]).await;
    assert_eq!(later.status(), StatusCode::OK);
    let stats = sim.stats().registry("lifelong");
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.batch_requests, 3);
    assert_eq!(stats.early_requests, 0, "we waited the Retry-After out");
}

#[tokio::test]
async fn a_throttle_rate_of_one_answers_429_and_counts_requests_inside_its_retry_after() {
    let sim = start().await;
    sim.set_faults(Faults {
        throttle_rate: 1.0,
        throttle_retry_after_s: 1,
        ..Faults::default()
    });
    let record = enved("k", "A123456789", "C1");
    let first = send_batch(&sim, "enved", vec![record.clone()]).await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.headers()["retry-after"], "1");
    assert!(sim.credited("enved").is_empty(), "a 429 commits nothing");
    sim.set_faults(Faults::default());
    let lookup = authed(client().get(format!("{}/v1/records/k", sim.base_url("enved"))))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lookup.status(),
        StatusCode::NOT_FOUND,
        "an early request is counted, not refused"
    );
    let other = send_batch(&sim, "teacher", vec![teacher("a", "A123456789", "C1")]).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(sim.stats().registry("enved").early_requests, 1);
    assert_eq!(
        sim.stats().registry("teacher").early_requests,
        0,
        "each registry has its own Retry-After"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = send_batch(&sim, "enved", vec![record]).await;
    assert_eq!(later.status(), StatusCode::OK);
    let stats = sim.stats().registry("enved");
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.early_requests, 1, "the Retry-After had run out");
}

#[tokio::test]
async fn an_error_rate_of_one_answers_503_and_credits_nothing() {
    let sim = start().await;
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let response = send_batch(&sim, "enved", vec![enved("k", "A123456789", "C1")]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(sim.credited("enved").is_empty());
    assert_eq!(sim.stats().registry("enved").server_errors, 1);

    sim.set_faults(Faults::default());
    let r = results(&sim, "enved", vec![enved("k", "A123456789", "C1")]).await;
    assert_eq!(
        r[0]["status"], "accepted",
        "nothing was credited by the 503"
    );
}

#[tokio::test]
async fn a_drop_rate_of_one_credits_the_batch_and_sends_no_response() {
    let sim = start().await;
    sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let record = teacher("k", "A123456789", "C1");
    let outcome = authed(client().post(format!("{}/v1/records:batch", sim.base_url("teacher"))))
        .json(&json!({ "records": [record.clone()] }))
        .send()
        .await;
    let error = outcome.expect_err("the connection is dropped without a response");
    assert!(!error.is_timeout(), "dropped, not slow: {error}");
    assert_eq!(sim.credited("teacher").len(), 1, "the batch was committed");
    assert_eq!(sim.stats().registry("teacher").drops, 1);

    sim.set_faults(Faults::default());
    let r = results(&sim, "teacher", vec![record]).await;
    assert_eq!(
        r[0],
        json!({"idempotency_key": "k", "status": "duplicate", "receipt_id": "T-000001"}),
        "resending after an unknown outcome is safe"
    );
}

async fn lookup(sim: &Simulator, registry: &str, key: &str) -> reqwest::Response {
    authed(client().get(format!("{}/v1/records/{key}", sim.base_url(registry))))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_credited_key_is_found_and_an_unknown_one_is_not() {
    let sim = start().await;
    results(
        &sim,
        "lifelong",
        vec![lifelong("known", "A123456789", "C1")],
    )
    .await;
    let found = lookup(&sim, "lifelong", "known").await;
    assert_eq!(found.status(), StatusCode::OK);
    assert_eq!(
        found.json::<Value>().await.unwrap(),
        json!({"idempotency_key": "known", "status": "credited", "receipt_id": "L-000001", "hours": "2.5"})
    );
    assert_eq!(
        lookup(&sim, "lifelong", "unknown").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        lookup(&sim, "teacher", "known").await.status(),
        StatusCode::NOT_FOUND,
        "registries do not share credits"
    );
}

async fn correct(sim: &Simulator, receipt: &str, body: Value) -> reqwest::Response {
    authed(client().put(format!("{}/v1/records/{receipt}", sim.base_url("enved"))))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_correction_changes_the_hours_and_its_key_answers_duplicate() {
    let sim = start().await;
    results(&sim, "enved", vec![enved("rev-1", "A123456789", "C1")]).await;
    let body = json!({"hours": "2.0", "idempotency_key": "rev-2"});
    let response = correct(&sim, "E-000001", body.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "corrected", "receipt_id": "E-000001"})
    );
    assert_eq!(
        correct(&sim, "E-000001", body).await.status(),
        StatusCode::OK,
        "a resent PUT is harmless"
    );

    for key in ["rev-1", "rev-2"] {
        let found: Value = lookup(&sim, "enved", key).await.json().await.unwrap();
        assert_eq!(found["receipt_id"], "E-000001");
        assert_eq!(found["hours"], "2.0");
    }
    let credited = sim.credited("enved");
    assert_eq!(credited.len(), 1);
    assert_eq!(credited[0].hours, "2.0");
    assert_eq!(credited[0].idempotency_key, "rev-2");
    assert_eq!(credited[0].record["hours"], "2.0");

    let mut revised = enved("rev-2", "A123456789", "C1");
    revised["hours"] = json!("2.0");
    let r = results(&sim, "enved", vec![revised]).await;
    assert_eq!(r[0]["status"], "duplicate");
    assert_eq!(r[0]["receipt_id"], "E-000001");

    let unknown = correct(
        &sim,
        "E-999999",
        json!({"hours": "1.0", "idempotency_key": "x"}),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let bad = correct(
        &sim,
        "E-000001",
        json!({"hours": "2", "idempotency_key": "rev-3"}),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.json::<Value>().await.unwrap()["code"], "invalid_hours");
    assert_eq!(sim.credited("enved")[0].hours, "2.0");
}

#[tokio::test]
async fn a_withdrawn_record_is_gone_and_its_completion_can_be_credited_again() {
    let sim = start().await;
    results(&sim, "teacher", vec![teacher("k1", "A123456789", "C1")]).await;
    let url = format!("{}/v1/records/T-000001", sim.base_url("teacher"));
    let response = authed(client().delete(&url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "withdrawn"})
    );
    assert!(sim.credited("teacher").is_empty());
    assert_eq!(
        lookup(&sim, "teacher", "k1").await.status(),
        StatusCode::NOT_FOUND
    );
    let again = authed(client().delete(&url)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let r = results(&sim, "teacher", vec![teacher("k2", "A123456789", "C1")]).await;
    assert_eq!(r[0]["status"], "accepted");
    assert_eq!(r[0]["receipt_id"], "T-000002", "receipts are never reused");
}

#[tokio::test]
async fn a_forgotten_record_is_credited_again_when_resent() {
    let sim = start().await;
    let records = vec![
        lifelong("k1", "A123456789", "C1"),
        lifelong("k2", "A123456789", "C2"),
    ];
    results(&sim, "lifelong", records.clone()).await;
    assert!(sim.forget("lifelong", "k1"));
    assert!(!sim.forget("lifelong", "k1"));
    assert!(!sim.forget("nowhere", "k1"));
    let forgotten = client()
        .post(format!("http://{}/_sim/lifelong/forget/k2", sim.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(forgotten.status(), StatusCode::OK);
    assert!(sim.credited("lifelong").is_empty());
    assert_eq!(
        lookup(&sim, "lifelong", "k1").await.status(),
        StatusCode::NOT_FOUND
    );

    let r = results(&sim, "lifelong", records).await;
    assert_eq!(r[0]["status"], "accepted");
    assert_eq!(r[1]["status"], "accepted");
}

#[tokio::test]
async fn the_busiest_second_is_measured_per_registry() {
    let sim = start().await;
    for i in 0..5 {
        lookup(&sim, "enved", &format!("k{i}")).await;
    }
    let stats = sim.stats();
    assert_eq!(stats.registry("enved").requests, 5);
    assert_eq!(stats.registry("enved").max_requests_in_one_second, 5);
    assert_eq!(stats.registry("teacher").max_requests_in_one_second, 0);
}

#[tokio::test]
async fn latency_delays_every_registry_request() {
    let sim = start().await;
    sim.set_faults(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    assert_eq!(
        lookup(&sim, "teacher", "k").await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_control_endpoints_show_records_stats_and_change_faults() {
    let sim = start().await;
    results(&sim, "teacher", vec![teacher("k1", "A123456789", "C1")]).await;
    let base = format!("http://{}/_sim", sim.addr());

    let records: Value = client()
        .get(format!("{base}/teacher/records"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(records[0]["receipt_id"], "T-000001");
    assert_eq!(records[0]["record"]["idempotency_key"], "k1");

    let stats: Value = client()
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["teacher"]["records_accepted"], 1);
    assert_eq!(stats["teacher"]["batch_requests"], 1);

    let set = client()
        .put(format!("{base}/faults"))
        .json(&json!({"reject_courses": ["C2"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let r = results(&sim, "teacher", vec![teacher("k2", "A123456789", "C2")]).await;
    assert_rejected(&r[0], "unknown_course");
}

#[tokio::test]
async fn an_unknown_registry_is_not_found() {
    let sim = start().await;
    let response = send_batch(&sim, "nowhere", vec![teacher("k", "A123456789", "C1")]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_shut_down_simulator_stops_answering() {
    let sim = start().await;
    let url = sim.base_url("teacher");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    sim.shutdown().await;
    let outcome = authed(client().get(format!("{url}/v1/records/k")))
        .send()
        .await;
    assert!(outcome.is_err());
}

#[tokio::test]
async fn run_serves_until_cancelled() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(hoursync::simulator::run(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig::default(),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run returns once cancelled")
        .unwrap()
        .unwrap();
}

/// The crate's own registry client, pointed at one of the simulator's
/// registries.
fn registry_client(sim: &Simulator, registry: &str) -> RegistryClient {
    RegistryClient::new(
        registry.parse().unwrap(),
        &sim.base_url(registry),
        TOKEN.into(),
        Duration::from_secs(10),
    )
    .unwrap()
}

#[tokio::test]
async fn a_correction_through_the_client_is_seen_under_both_keys_and_a_replay_changes_nothing() {
    let sim = start().await;
    results(&sim, "enved", vec![enved("rev-1", "A123456789", "C1")]).await;
    let c = registry_client(&sim, "enved");
    let answer = c.correct("E-000001", 20, "rev-2", &request_id()).await;
    assert_eq!(answer, Ok(CorrectAnswer::Corrected));
    for key in ["rev-1", "rev-2"] {
        let found = c.lookup(key, &request_id()).await.unwrap().expect(key);
        assert_eq!(found.receipt_id, "E-000001");
        assert_eq!(found.hours_tenths, 20, "{key}");
    }
    assert_eq!(sim.stats().registry("enved").corrections, 1);

    let replay = c.correct("E-000001", 20, "rev-2", &request_id()).await;
    assert_eq!(
        replay,
        Ok(CorrectAnswer::Corrected),
        "a replayed PUT is a 200"
    );
    let stale = c.correct("E-000001", 35, "rev-2", &request_id()).await;
    assert_eq!(stale, Ok(CorrectAnswer::Corrected));
    let credited = sim.credited("enved");
    assert_eq!(credited.len(), 1);
    assert_eq!(credited[0].hours, "2.0", "a replay changes nothing");
    assert_eq!(credited[0].idempotency_key, "rev-2");
    assert_eq!(
        sim.stats().registry("enved").corrections,
        1,
        "replays are not corrections"
    );
}

/// A simulator holding two enved credits, `E-000001` (key `k1`) and
/// `E-000002` (key `k2`), 4.0 hours each, with `faults` set; and our client.
async fn two_credits_with(faults: Faults) -> (Simulator, RegistryClient) {
    let sim = start().await;
    let records = vec![
        enved("k1", "A123456789", "C1"),
        enved("k2", "A123456789", "C2"),
    ];
    results(&sim, "enved", records).await;
    sim.set_faults(faults);
    let c = registry_client(&sim, "enved");
    (sim, c)
}

#[tokio::test]
async fn a_correction_of_an_unknown_receipt_is_404_and_a_taken_key_409() {
    let (sim, c) = two_credits_with(Faults::default()).await;
    let unknown = c.correct("E-999999", 10, "new", &request_id()).await;
    assert_eq!(unknown, Ok(CorrectAnswer::UnknownReceipt));
    let taken = c.correct("E-000002", 10, "k1", &request_id()).await;
    assert_eq!(
        taken,
        Ok(CorrectAnswer::KeyTaken(
            "idempotency_key already belongs to receipt E-000001".into()
        ))
    );
    let hours: Vec<String> = sim.credited("enved").into_iter().map(|c| c.hours).collect();
    assert_eq!(hours, ["4.0", "4.0"], "neither correction changed anything");
    assert_eq!(sim.stats().registry("enved").corrections, 0);
}

#[tokio::test]
async fn a_withdrawal_through_the_client_is_gone_and_a_second_one_is_404() {
    let sim = start().await;
    results(&sim, "teacher", vec![teacher("k1", "A123456789", "C1")]).await;
    let c = registry_client(&sim, "teacher");
    assert_eq!(
        c.withdraw("T-000001", &request_id()).await,
        Ok(WithdrawAnswer::Withdrawn)
    );
    assert_eq!(c.lookup("k1", &request_id()).await, Ok(None));
    assert_eq!(
        lookup(&sim, "teacher", "k1").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.withdraw("T-000001", &request_id()).await,
        Ok(WithdrawAnswer::UnknownReceipt)
    );
    assert_eq!(sim.stats().registry("teacher").withdrawals, 1);
}

#[tokio::test]
async fn a_drop_rate_of_one_commits_a_correction_or_withdrawal_the_client_sees_as_unknown() {
    let (sim, c) = two_credits_with(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let corrected = c.correct("E-000001", 20, "k1-rev", &request_id()).await;
    let withdrawn = c.withdraw("E-000002", &request_id()).await;
    for outcome in [corrected.map(|_| ()), withdrawn.map(|_| ())] {
        assert!(
            matches!(outcome, Err(SendError::Transient { .. })),
            "no answer, an unknown outcome: {outcome:?}"
        );
    }
    let credited = sim.credited("enved");
    assert_eq!(credited.len(), 1, "the DELETE was committed");
    assert_eq!(credited[0].hours, "2.0", "the PUT was committed");
    let stats = sim.stats().registry("enved");
    assert_eq!(
        (stats.drops, stats.corrections, stats.withdrawals),
        (2, 1, 1)
    );

    sim.set_faults(Faults::default());
    let resent = c.correct("E-000001", 20, "k1-rev", &request_id()).await;
    assert_eq!(resent, Ok(CorrectAnswer::Corrected), "resending is safe");
    let resent = c.withdraw("E-000002", &request_id()).await;
    assert_eq!(
        resent,
        Ok(WithdrawAnswer::UnknownReceipt),
        "already withdrawn"
    );
    let stats = sim.stats().registry("enved");
    assert_eq!((stats.corrections, stats.withdrawals), (1, 1));
}

#[tokio::test]
async fn an_error_rate_of_one_answers_a_correction_or_withdrawal_503_and_changes_nothing() {
    let (sim, c) = two_credits_with(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let transient = SendError::Transient {
        message: "HTTP 503".into(),
        retry_after: None,
    };
    let corrected = c.correct("E-000001", 20, "k1-rev", &request_id()).await;
    assert_eq!(corrected.unwrap_err(), transient);
    let withdrawn = c.withdraw("E-000002", &request_id()).await;
    assert_eq!(withdrawn.unwrap_err(), transient);
    let hours: Vec<String> = sim.credited("enved").into_iter().map(|c| c.hours).collect();
    assert_eq!(hours, ["4.0", "4.0"]);
    let stats = sim.stats().registry("enved");
    assert_eq!(
        (stats.server_errors, stats.corrections, stats.withdrawals),
        (2, 0, 0)
    );
}

#[tokio::test]
async fn set_hours_makes_the_registry_hold_wrong_hours_under_the_same_keys() {
    let sim = start().await;
    results(&sim, "lifelong", vec![lifelong("k1", "A123456789", "C1")]).await;
    let url = |key: &str| format!("http://{}/_sim/lifelong/set-hours/{key}", sim.addr());
    let set = client()
        .post(url("k1"))
        .json(&json!({"hours": "9.9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    assert_eq!(set.json::<Value>().await.unwrap(), json!({"hours": "9.9"}));

    let found = registry_client(&sim, "lifelong")
        .lookup("k1", &request_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.receipt_id.as_str(), found.hours_tenths),
        ("L-000001", 99)
    );
    let credited = sim.credited("lifelong");
    assert_eq!(credited[0].hours, "9.9");
    assert_eq!(credited[0].record["hours"], "9.9");
    assert_eq!(credited[0].idempotency_key, "k1");
    let r = results(&sim, "lifelong", vec![lifelong("k1", "A123456789", "C1")]).await;
    assert_eq!(
        r[0],
        json!({"idempotency_key": "k1", "status": "duplicate", "receipt_id": "L-000001"}),
        "the key still leads to the same receipt"
    );

    let unknown = client()
        .post(url("nope"))
        .json(&json!({"hours": "1.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    for bad in [
        json!({"hours": "9.99"}),
        json!({"hours": 9.9}),
        json!({}),
        json!({"hours": "1.0", "extra": 1}),
    ] {
        let response = client().post(url("k1")).json(&bad).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let not_json = client().post(url("k1")).body("9.9").send().await.unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sim.credited("lifelong")[0].hours, "9.9");

    assert!(sim.set_hours("lifelong", "k1", 25));
    assert!(!sim.set_hours("lifelong", "nope", 25));
    assert!(!sim.set_hours("nowhere", "k1", 25));
    let raw: Value = lookup(&sim, "lifelong", "k1").await.json().await.unwrap();
    assert_eq!(raw["hours"], "2.5");
    assert_eq!(
        sim.stats().registry("lifelong").corrections,
        0,
        "not a correction"
    );
}
