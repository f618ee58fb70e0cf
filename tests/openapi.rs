//! The admin API against its own OpenAPI document (`GET /api/v1/openapi.json`):
//! the document lists exactly the routes the server serves, and a
//! property-based fuzz, generating its requests from the document, finds
//! no answer the document does not describe. Both run on the real daemon
//! with the fixture imported, once per backend.

#[macro_use]
mod common;

use common::console::{OPS, SUPPORT, fixture_with_rejections};
use common::fixture::id;
use common::*;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const UNKNOWN: &str = "unknown-token-0123456789";

/// Every route the admin router serves (src/admin/mod.rs and api.rs):
/// the document must list exactly these.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/people/{national_id}/records"),
    ("POST", "/api/v1/people:lookup"),
    ("GET", "/api/v1/deliveries"),
    ("POST", "/api/v1/deliveries/{id}/retry"),
    ("GET", "/api/v1/deliveries/{id}/attempts"),
    ("POST", "/api/v1/resyncs"),
    ("GET", "/api/v1/resyncs/{id}"),
    ("GET", "/api/v1/audit"),
];

/// Fuzz cases per backend, and the time they may take at most.
const CASES: u32 = 200;
const BUDGET: Duration = Duration::from_secs(240);

/// The daemon on the fixture, scans only at start (as a resync's answers
/// then depend on the API alone), the backlog drained.
struct Daemon {
    running: hoursync::daemon::Running,
    shutdown: tokio_util::sync::CancellationToken,
    base: String,
    // Kept alive while the daemon runs.
    _sim: hoursync::simulator::Simulator,
    _env: TestEnv,
}

async fn daemon(backend: Backend) -> Daemon {
    let env = TestEnv::new(backend).await;
    let (sim, store) = fixture_with_rejections(&env).await;
    let mut config = env.config(&sim);
    config.schedule.scan = "0 0 0 1 1 *".into();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = hoursync::daemon::start(config, clock(), shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", running.admin_addr);
    wait_drained(&store, Duration::from_secs(60)).await;
    Daemon {
        running,
        shutdown,
        base,
        _sim: sim,
        _env: env,
    }
}

impl Daemon {
    async fn stop(self) {
        self.shutdown.cancel();
        self.running.wait().await.unwrap();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn fetch_document(http: &reqwest::Client, base: &str) -> Value {
    // Open: no token.
    let answer = http
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(media_type(answer.headers()), "application/json");
    answer.json().await.expect("the document is JSON")
}

// ---------------------------------------------------------------------------
// The document and its schemas

/// One operation of the document.
#[derive(Debug, Clone)]
struct Operation {
    method: String,
    template: String,
    /// (name, in query?, schema)
    params: Vec<(String, bool, Value)>,
    body: Option<Value>,
    responses: Map<String, Value>,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let params = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().unwrap().to_string(),
                                p["in"] == "query",
                                p["schema"].clone(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            ops.push(Operation {
                method: method.to_uppercase(),
                template: template.clone(),
                params,
                body: op
                    .pointer("/requestBody/content/application~1json/schema")
                    .cloned(),
                responses: op["responses"].as_object().expect("responses").clone(),
            });
        }
    }
    ops
}

/// A schema with its `$ref`s followed.
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                schema = doc
                    .pointer(r.strip_prefix('#').expect("a local $ref"))
                    .unwrap_or_else(|| panic!("unresolved $ref {r}"));
            }
            None => return schema,
        }
    }
    panic!("a $ref cycle")
}

fn types(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// An object schema's properties, required names and whether other keys
/// are allowed, `allOf` members merged (as a `#[serde(flatten)]` gives).
fn object_shape(doc: &Value, schema: &Value) -> (Map<String, Value>, Vec<String>, bool) {
    let schema = resolve(doc, schema);
    let mut props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| r.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    let mut open = schema.get("properties").is_none()
        || matches!(
            schema.get("additionalProperties"),
            Some(Value::Object(_) | Value::Bool(true))
        );
    if let Some(all) = schema["allOf"].as_array() {
        open = false;
        for member in all {
            let (p, r, o) = object_shape(doc, member);
            props.extend(p);
            required.extend(r);
            open |= o;
        }
    }
    (props, required, open)
}

/// Where `value` departs from `schema`: JSON types, `enum`, `required`,
/// no undocumented keys in a closed object, `oneOf`/`anyOf`/`allOf`,
/// `items`, `additionalProperties`, `minimum` and the date formats.
fn conform(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(branches) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let fits = branches
            .iter()
            .filter(|b| {
                let mut e = Vec::new();
                conform(doc, b, value, at, &mut e);
                e.is_empty()
            })
            .count();
        let ok = if schema.get("oneOf").is_some() {
            fits == 1
        } else {
            fits >= 1
        };
        if !ok {
            errors.push(format!("{at}: {fits} branch(es) of {schema} fit {value}"));
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let ts = types(schema);
    let is_object_schema = schema.get("allOf").is_some() || ts.contains(&"object");
    if !ts.is_empty() {
        let fits = ts.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("unknown type {other}"),
        });
        if !fits {
            errors.push(format!("{at}: {value} is not of type {ts:?}"));
            return;
        }
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), value.as_f64())
        && n < min
    {
        errors.push(format!("{at}: {n} < minimum {min}"));
    }
    if let Some(s) = value.as_str() {
        let ok = match schema["format"].as_str() {
            Some("date-time") => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            Some("date") => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: {s:?} is not a {}", schema["format"]));
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, v) in values.iter().enumerate() {
            conform(doc, items, v, &format!("{at}[{i}]"), errors);
        }
    }
    if schema.get("allOf").is_some() && !value.is_object() {
        errors.push(format!("{at}: {value} is not an object"));
        return;
    }
    // Objects, `allOf` members merged: required keys, then every key.
    if let (true, Some(obj)) = (is_object_schema, value.as_object()) {
        let (props, required, open) = object_shape(doc, schema);
        for r in &required {
            if !obj.contains_key(r) {
                errors.push(format!("{at}: required property {r:?} missing"));
            }
        }
        for (k, v) in obj {
            match props.get(k) {
                Some(s) => conform(doc, s, v, &format!("{at}.{k}"), errors),
                None => match schema.get("additionalProperties") {
                    Some(extra @ Value::Object(_)) => {
                        conform(doc, extra, v, &format!("{at}.{k}"), errors)
                    }
                    _ if open => {}
                    _ => errors.push(format!("{at}: undocumented property {k:?}")),
                },
            }
        }
    }
}

/// Every `$ref` anywhere in `v` resolves.
fn refs_resolve(doc: &Value, v: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                resolve(doc, v);
                assert!(r.starts_with("#/components/"), "{r}");
            }
            m.values().for_each(|x| refs_resolve(doc, x));
        }
        Value::Array(a) => a.iter().for_each(|x| refs_resolve(doc, x)),
        _ => {}
    }
}

fn media_type(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Whether `text` holds something shaped like a national ID (a letter, a
/// letter or digit, eight digits, alone): the API masks every one.
fn id_shaped(text: &str) -> Option<String> {
    let c: Vec<char> = text.chars().collect();
    (0..c.len().saturating_sub(9)).find_map(|i| {
        let w = &c[i..i + 10];
        let hit = w[0].is_ascii_alphabetic()
            && w[1].is_ascii_alphanumeric()
            && w[2..].iter().all(char::is_ascii_digit)
            && (i == 0 || !c[i - 1].is_ascii_alphanumeric())
            && c.get(i + 10).is_none_or(|x| !x.is_ascii_alphanumeric());
        hit.then(|| w.iter().collect())
    })
}

/// An answer of `op` against the document: never a 5xx, a documented
/// status and media type, a JSON body of its schema, every 4xx RFC 9457
/// problem details (`application/problem+json`) with the `error` field
/// clients read, no national ID unmasked.
fn check_answer(
    doc: &Value,
    op: &Operation,
    status: u16,
    media: &str,
    body: &[u8],
) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    let shown = &text[..text.floor_char_boundary(600)];
    if status >= 500 {
        return Err(format!("a {status}: {shown}"));
    }
    let Some(documented) = op.responses.get(&status.to_string()) else {
        return Err(format!(
            "{status} is not documented for {} {}: {shown}",
            op.method, op.template
        ));
    };
    if let Some(content) = documented["content"].as_object() {
        let Some(media_doc) = content.get(media) else {
            return Err(format!(
                "{status} answered {media:?}, documented {:?}",
                content.keys().collect::<Vec<_>>()
            ));
        };
        if media == "application/json" || media == "application/problem+json" {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| format!("{status}: not JSON ({e}): {shown}"))?;
            let mut errors = Vec::new();
            conform(doc, &media_doc["schema"], &value, "$", &mut errors);
            if !errors.is_empty() {
                return Err(format!("{status} departs from its schema: {errors:?}"));
            }
        } else if body.is_empty() {
            return Err(format!("{status}: an empty {media} answer"));
        }
    }
    if (400..500).contains(&status) {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("a {status} that is not JSON ({e}): {shown}"))?;
        let fine = media == "application/problem+json"
            && value.as_object().is_some_and(|o| o.len() == 5)
            && value["type"] == "about:blank"
            && value["title"].as_str().is_some_and(|t| !t.is_empty())
            && value["status"] == status
            && value["error"].as_str().is_some_and(|e| !e.is_empty())
            && value["detail"] == value["error"];
        if !fine {
            return Err(format!(
                "a {status} that is not problem+json with `error` ({media}): {shown}"
            ));
        }
    }
    // National IDs are masked: in every error (whatever the request
    // carried), in every `national_id`, and anywhere in an answer but the
    // audit entries' scopes (which show the course codes asked for, and
    // a course code may look like anything).
    let leak = if status >= 400 || !op.template.starts_with("/api/v1/") {
        id_shaped(&text)
    } else if op.template.contains("resyncs") || op.template.contains("audit") {
        serde_json::from_slice(body)
            .ok()
            .and_then(|v| unmasked_national_id(&v))
    } else if op.template == "/api/v1/openapi.json" {
        None
    } else {
        id_shaped(&text)
    };
    if let Some(leak) = leak {
        return Err(format!("{status}: an unmasked ID {leak:?} in {shown}"));
    }
    Ok(())
}

/// An ID-shaped value of a `national_id` key anywhere in `v`.
fn unmasked_national_id(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => m.iter().find_map(|(k, x)| match x {
            Value::String(s) if k == "national_id" => id_shaped(s),
            _ => unmasked_national_id(x),
        }),
        Value::Array(a) => a.iter().find_map(unmasked_national_id),
        _ => None,
    }
}

/// The checker itself: it sees what it must, on a document of its own.
#[test]
fn the_schema_checker_finds_departures() {
    let doc = json!({"components": {"schemas": {
        "E": {"type": "string", "enum": ["a", "b"]},
        "Base": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}},
                 "required": ["n"]},
        "T": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"type": "object",
              "properties": {"e": {"oneOf": [{"$ref": "#/components/schemas/E"}, {"type": "null"}]},
                             "m": {"type": "object", "additionalProperties": {"type": "integer"}},
                             "d": {"type": ["string", "null"], "format": "date-time"}},
              "required": ["e"]}]}
    }}});
    let schema = json!({"type": "array", "items": {"$ref": "#/components/schemas/T"}});
    let errors = |v: Value| {
        let mut e = Vec::new();
        conform(&doc, &schema, &v, "$", &mut e);
        e
    };
    assert_eq!(
        errors(
            json!([{"n": 1, "e": "a", "m": {"x": 1}, "d": "2026-11-20T10:15:00+08:00"},
                      {"n": 0, "e": null, "d": null}])
        ),
        Vec::<String>::new()
    );
    for bad in [
        json!([{"e": "a"}]),                           // required n (from allOf)
        json!([{"n": 1}]),                             // required e
        json!([{"n": -1, "e": "a"}]),                  // minimum
        json!([{"n": "1", "e": "a"}]),                 // type
        json!([{"n": 1, "e": "c"}]),                   // enum
        json!([{"n": 1, "e": "a", "x": 1}]),           // undocumented key
        json!([{"n": 1, "e": "a", "m": {"x": "1"}}]),  // map values
        json!([{"n": 1, "e": "a", "d": "yesterday"}]), // format
        json!({"n": 1, "e": "a"}),                     // not an array
    ] {
        assert!(!errors(bad.clone()).is_empty(), "{bad} passed");
    }
    assert_eq!(id_shaped("x A123456789."), Some("A123456789".into()));
    assert_eq!(id_shaped("A12*****89 XA123456789 A1234567890"), None);
}

// ---------------------------------------------------------------------------
// The document lists exactly the routes

async fn document_is_openapi_3_and_lists_exactly_the_served_routes(backend: Backend) {
    let d = daemon(backend).await;
    let http = http();
    let base = &d.base;
    let doc = fetch_document(&http, base).await;

    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    refs_resolve(&doc, &doc);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer",
               "description": doc["components"]["securitySchemes"]["bearer"]["description"]})
    );

    let ops = operations(&doc);
    let documented: BTreeSet<(String, String)> = ops
        .iter()
        .map(|o| (o.method.clone(), o.template.clone()))
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served, "the document's routes");
    // The lookup with the ID in the path stays, deprecated for the POST.
    assert_eq!(
        doc["paths"]["/api/v1/people/{national_id}/records"]["get"]["deprecated"],
        true
    );
    assert_ne!(
        doc["paths"]["/api/v1/people:lookup"]["post"]["deprecated"],
        true
    );

    let mut operation_ids = BTreeSet::new();
    for op in &ops {
        let raw = &doc["paths"][&op.template][op.method.to_lowercase()];
        let what = format!("{} {}", op.method, op.template);
        assert!(
            operation_ids.insert(raw["operationId"].as_str().unwrap().to_string()),
            "{what}: operationId twice"
        );
        // Path parameters: exactly the template's, required.
        let in_template: BTreeSet<String> = op
            .template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(String::from)
            .collect();
        let declared: BTreeSet<String> = op
            .params
            .iter()
            .filter(|p| !p.1)
            .map(|p| p.0.clone())
            .collect();
        assert_eq!(in_template, declared, "{what}: path parameters");
        for p in raw["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                assert_eq!(p["required"], true, "{what}: {p}");
            }
        }
        // Security: bearer everywhere under /api/v1 but the document itself.
        let security = raw["security"].as_array().expect("security");
        for s in security {
            for name in s.as_object().unwrap().keys() {
                assert!(
                    doc["components"]["securitySchemes"].get(name).is_some(),
                    "{what}: scheme {name}"
                );
            }
        }
        let open = security.iter().any(|s| s.as_object().unwrap().is_empty());
        let needs_token =
            op.template.starts_with("/api/v1/") && op.template != "/api/v1/openapi.json";
        assert_eq!(open, !needs_token, "{what}: security {security:?}");
        // A 401 everywhere but the document (the health routes' only when
        // `admin.open_health` is false).
        assert_eq!(
            op.responses.contains_key("401"),
            op.template != "/api/v1/openapi.json",
            "{what}: 401"
        );
        // Every error answer is documented as problem+json with the
        // Problem schema, but a not-ready /readyz (the failing check).
        for (code, r) in &op.responses {
            assert!(
                code.len() == 3 && code.parse::<u16>().is_ok(),
                "{what}: {code}"
            );
            assert!(r["description"].is_string(), "{what} {code}");
            if code.as_str() >= "400" && !(op.template == "/readyz" && code == "503") {
                assert_eq!(
                    r.pointer("/content/application~1problem+json/schema/$ref"),
                    Some(&json!("#/components/schemas/Problem")),
                    "{what} {code}"
                );
            }
        }
    }

    // Real values for the path parameters: a delivery no retry applies to,
    // a resync of learner 1.
    let page: Value = http
        .get(format!("{base}/api/v1/deliveries?state=ineligible&limit=1"))
        .bearer_auth(SUPPORT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let delivery = page["items"][0]["id"].as_i64().unwrap();
    let started = http
        .post(format!("{base}/api/v1/resyncs"))
        .bearer_auth(SUPPORT)
        .json(&json!({"national_id": id(1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let resync = started.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();

    // Each documented operation answers (not a 404 or 405), as documented.
    for op in &ops {
        let (path, want) = match op.template.as_str() {
            "/api/v1/people/{national_id}/records" => {
                (format!("/api/v1/people/{}/records", id(1)), 200)
            }
            "/api/v1/deliveries/{id}/retry" => {
                (format!("/api/v1/deliveries/{delivery}/retry"), 409)
            }
            "/api/v1/deliveries/{id}/attempts" => {
                (format!("/api/v1/deliveries/{delivery}/attempts"), 200)
            }
            "/api/v1/resyncs/{id}" => (format!("/api/v1/resyncs/{resync}"), 200),
            "/api/v1/resyncs" => (op.template.clone(), 200),
            other => (other.to_string(), 200),
        };
        let mut request = http
            .request(op.method.parse().unwrap(), format!("{base}{path}"))
            .bearer_auth(OPS);
        if op.template == "/api/v1/people:lookup" {
            request = request.json(&json!({"national_id": id(1)}));
        } else if op.body.is_some() {
            request = request.json(&json!({"national_id": id(1), "dry_run": true}));
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let media = media_type(answer.headers());
        let body = answer.bytes().await.unwrap();
        assert_eq!(
            status,
            want,
            "{} {path}: {}",
            op.method,
            String::from_utf8_lossy(&body)
        );
        check_answer(&doc, op, status, &media, &body)
            .unwrap_or_else(|e| panic!("{} {path}: {e}", op.method));
        if op.template.ends_with("/records") || op.template.ends_with(":lookup") {
            let rows: Vec<Value> = serde_json::from_slice(&body).unwrap();
            assert_eq!(rows.len(), 12, "four completions × three registries");
        }
    }

    // Another method on a served path: a JSON 405 naming the right one;
    // an unknown path: a JSON 404.
    let paths: BTreeMap<&str, Vec<&str>> = ROUTES.iter().fold(BTreeMap::new(), |mut m, (me, p)| {
        m.entry(*p).or_default().push(*me);
        m
    });
    for (template, methods) in &paths {
        let path = template
            .replace("{national_id}", &id(1))
            .replace("{id}", "1");
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if methods.contains(&method) {
                continue;
            }
            let answer = http
                .request(method.parse().unwrap(), format!("{base}{path}"))
                .bearer_auth(OPS)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 405, "{method} {path}");
            let allow = answer.headers()["allow"].to_str().unwrap().to_string();
            assert!(methods.iter().all(|m| allow.contains(m)), "{allow}");
            let body: Value = answer.json().await.unwrap();
            assert!(body["error"].is_string(), "{body}");
            assert!(id_shaped(&body.to_string()).is_none(), "{body}");
        }
    }
    // An answer given before the body was read closes the connection and
    // says so (else a client reuses it and loses its next request); one
    // that read the body keeps it.
    let post = |content_type: &'static str, body: String| {
        http.post(format!("{base}/api/v1/resyncs"))
            .bearer_auth(SUPPORT)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let close = |a: &reqwest::Response| {
        a.headers()
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
    };
    let unread = post("text/plain", "x".repeat(100_000)).await.unwrap();
    assert_eq!((unread.status().as_u16(), close(&unread)), (415, true));
    let read = post(
        "application/json",
        json!({"course_code": "ALL", "dry_run": true}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!((read.status().as_u16(), close(&read)), (200, false));

    // What the fuzz found: an empty course code selected every course (a
    // resync of the whole database), a NUL was a 500 on PostgreSQL.
    for code in ["", "ALL\0", "\0"] {
        let answer = post(
            "application/json",
            json!({ "course_code": code }).to_string(),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 400, "{code:?}");
    }

    for path in ["/", "/api/v1", "/api/v1/people", "/api/v2/deliveries"] {
        let answer = http
            .get(format!("{base}{path}"))
            .bearer_auth(OPS)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
        assert_eq!(media_type(answer.headers()), "application/problem+json");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["title"], "Not Found", "{body}");
        assert_eq!(body["status"], 404, "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
    d.stop().await;
}

// ---------------------------------------------------------------------------
// The fuzz

#[derive(Debug, Clone)]
enum Auth {
    None,
    Bearer(&'static str),
    Header(String),
}

/// One generated request.
#[derive(Clone)]
struct Req {
    op: usize,
    path: String,
    query: String,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
    auth: Auth,
}

impl std::fmt::Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = self.body.as_ref().map(|b| {
            let t = String::from_utf8_lossy(b);
            format!("{} bytes: {}", b.len(), &t[..t.floor_char_boundary(300)])
        });
        f.debug_struct("Req")
            .field("path", &self.path)
            .field("query", &self.query)
            .field("auth", &self.auth)
            .field("content_type", &self.content_type)
            .field("body", &body)
            .finish()
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Strings worth trying anywhere a string goes: the fixture's learners, a
/// valid and an invalid ID, course codes, random text with control
/// characters, long runs, numbers.
fn interesting_string() -> BoxedStrategy<String> {
    let mut known: Vec<String> = (1..=8).map(id).collect();
    known.extend(
        [
            "A123456789",
            "A123456788",
            "a123456789",
            "A12345678",
            "AB12345678",
            "ALL",
            "LL",
            "NONE",
            "c1",
        ]
        .map(String::from),
    );
    prop_oneof![
        4 => proptest::sample::select(known),
        2 => proptest::sample::select(vec![
            "", " ", "\0", "ALL\0", "\u{7f}", "ALL ", " all", "\t\n", "%", "/", "?#",
        ]).prop_map(String::from),
        2 => "[A-Z][12][0-9]{8}",
        2 => "\\PC{0,24}",
        1 => "[\\x00-\\x1f\\x7f]{1,4}[a-z]{0,4}",
        1 => (1usize..3000).prop_map(|n| "x".repeat(n)),
        1 => proptest::sample::select(vec![
            "0", "-1", "1.5", "1e3", "0x10", " 1", "9223372036854775807",
            "9223372036854775808", "-9223372036854775809", "18446744073709551616",
            "99999999999999999999999999",
        ]).prop_map(String::from),
    ]
    .boxed()
}

fn date_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (1u32..=30).prop_map(|d| format!("2026-11-{d:02}")),
        2 => (1i32..=9999, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        1 => proptest::sample::select(vec![
            "2026-13-01", "2026-02-30", "2026-11-1", "20261101", "today", "", "+262143-12-31",
            "262142-12-31", "-0001-01-01", "0000-01-01",
        ]).prop_map(String::from),
    ]
    .boxed()
}

/// Any JSON, small.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        interesting_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Values of `schema`, as a client following the document would send.
fn valid_value(doc: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let schema = resolve(doc, schema).clone();
    if depth > 6 {
        return Just(Value::Null).boxed();
    }
    if let Some(e) = schema["enum"].as_array() {
        return proptest::sample::select(e.clone()).boxed();
    }
    if let Some(bs) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return Union::new(bs.iter().map(|b| valid_value(doc, b, depth + 1))).boxed();
    }
    let ts = types(&schema);
    if ts.is_empty() && schema.get("allOf").is_none() {
        return any_json();
    }
    let ts = if ts.is_empty() { vec!["object"] } else { ts };
    Union::new_weighted(
        ts.into_iter()
            .map(|t| {
                (
                    if t == "null" { 1 } else { 3 },
                    match t {
                        "null" => Just(Value::Null).boxed(),
                        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
                        "integer" => {
                            let min = schema["minimum"].as_i64().unwrap_or(i64::MIN);
                            // Mostly ids that exist: deliveries, resyncs.
                            prop_oneof![
                                2 => 1i64..6,
                                4 => 0i64..60,
                                1 => any::<i64>(),
                                1 => Just(i64::MAX),
                                1 => -3i64..0,
                            ]
                            .prop_map(move |n| Value::from(n.max(min)))
                            .boxed()
                        }
                        "number" => any::<f64>()
                            .prop_filter("finite", |f| f.is_finite())
                            .prop_map(Value::from)
                            .boxed(),
                        "string" => match schema["format"].as_str() {
                            Some("date") => date_string().prop_map(Value::String).boxed(),
                            _ => interesting_string().prop_map(Value::String).boxed(),
                        },
                        "array" => proptest::collection::vec(
                            valid_value(doc, &schema["items"], depth + 1),
                            0..4,
                        )
                        .prop_map(Value::Array)
                        .boxed(),
                        "object" => {
                            let (props, required, _) = object_shape(doc, &schema);
                            let names: Vec<String> = props.keys().cloned().collect();
                            let fields: Vec<BoxedStrategy<Option<Value>>> = props
                                .iter()
                                .map(|(name, s)| {
                                    let v = valid_value(doc, s, depth + 1);
                                    if required.contains(name) {
                                        v.prop_map(Some).boxed()
                                    } else {
                                        proptest::option::weighted(0.5, v).boxed()
                                    }
                                })
                                .collect();
                            fields
                                .prop_map(move |vals| {
                                    Value::Object(
                                        names
                                            .iter()
                                            .zip(vals)
                                            .filter_map(|(n, v)| v.map(|v| (n.clone(), v)))
                                            .collect(),
                                    )
                                })
                                .boxed()
                        }
                        other => panic!("unknown type {other}"),
                    },
                )
            })
            .collect(),
    )
    .boxed()
}

/// A parameter's value as text: of its schema, or anything.
fn param_value(doc: &Value, schema: &Value) -> BoxedStrategy<String> {
    let typed = valid_value(doc, schema, 0).prop_map(|v| match v {
        Value::String(s) => s,
        other => other.to_string(),
    });
    prop_oneof![2 => typed, 1 => interesting_string()].boxed()
}

fn json_body(v: Value) -> Option<Vec<u8>> {
    Some(v.to_string().into_bytes())
}

/// Bodies for a POST: valid shapes, wrong types, unknown fields, deep and
/// huge documents up to ~100 KiB, not JSON at all.
fn body(doc: &Value, schema: Option<&Value>) -> BoxedStrategy<Option<Vec<u8>>> {
    let Some(schema) = schema else {
        // A body no one reads.
        return prop_oneof![
            4 => Just(None),
            1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Some),
            1 => any_json().prop_map(|v| Some(v.to_string().into_bytes())),
        ]
        .boxed();
    };
    let valid = valid_value(doc, schema, 0);
    let (props, _, _) = object_shape(doc, schema);
    let keys: Vec<String> = props.keys().cloned().collect();
    let string_keys: Vec<String> = props
        .iter()
        .filter(|(_, s)| types(resolve(doc, s)).contains(&"string"))
        .map(|(k, _)| k.clone())
        .collect();
    prop_oneof![
        10 => valid.clone().prop_map(json_body),
        2 => (valid.clone(), proptest::sample::select(keys.clone()), any_json()).prop_map(
            move |(mut v, k, wrong)| {
                if let Some(o) = v.as_object_mut() {
                    o.insert(k, wrong);
                }
                json_body(v)
            }
        ),
        1 => (valid.clone(), "[a-z_]{1,12}", any_json()).prop_map(move |(mut v, k, x)| {
            if let Some(o) = v.as_object_mut() {
                o.insert(k, x);
            }
            json_body(v)
        }),
        1 => any_json().prop_map(json_body),
        1 => (1usize..400, any::<bool>(), proptest::sample::select(keys)).prop_map(
            |(depth, arrays, key)| {
                let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
                let inner = format!("{}1{}", open.repeat(depth), close.repeat(depth));
                Some(format!("{{\"{key}\": {inner}}}").into_bytes())
            }
        ),
        1 => (1000usize..100_000, proptest::sample::select(string_keys), any::<bool>()).prop_map(
            |(n, key, array)| {
                let big = if array {
                    json!(vec![1; n / 2])
                } else {
                    Value::String("x".repeat(n))
                };
                json_body(json!({ key: big, "dry_run": true }))
            }
        ),
        1 => (valid.clone(), 60_000usize..100_000).prop_map(|(v, pad)| {
            let mut b = v.to_string().into_bytes();
            b.extend(std::iter::repeat_n(b' ', pad));
            Some(b)
        }),
        1 => (valid, any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let b = v.to_string().into_bytes();
            let n = cut.index(b.len().max(1));
            Some(b[..n.min(b.len())].to_vec())
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..400).prop_map(Some),
        1 => Just(None),
    ]
    .boxed()
}

fn content_type() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        12 => Just(Some("application/json".to_string())),
        1 => Just(Some("application/json; charset=utf-8".to_string())),
        1 => Just(None),
        1 => Just(Some("text/plain".to_string())),
        1 => Just(Some("application/x-www-form-urlencoded".to_string())),
    ]
    .boxed()
}

fn auth() -> BoxedStrategy<Auth> {
    prop_oneof![
        4 => Just(Auth::Bearer(SUPPORT)),
        4 => Just(Auth::Bearer(OPS)),
        1 => Just(Auth::None),
        1 => Just(Auth::Bearer(UNKNOWN)),
        1 => proptest::sample::select(vec![
            format!("Basic {SUPPORT}"),
            format!("bearer {OPS}"),
            "Bearer ".to_string(),
            format!("Bearer  {SUPPORT} "),
            format!("Bearer {}", &SUPPORT[..10]),
        ])
        .prop_map(Auth::Header),
    ]
    .boxed()
}

/// Requests for operation `i` of `ops`.
fn requests(doc: &Value, ops: &[Operation], i: usize) -> BoxedStrategy<Req> {
    let op = &ops[i];
    // Path: each parameter of its schema or not, never empty (an empty
    // segment is another route), never a dot segment (clients drop those).
    let template = op.template.clone();
    let path_params: Vec<(String, BoxedStrategy<String>)> = op
        .params
        .iter()
        .filter(|p| !p.1)
        .map(|(n, _, s)| (n.clone(), param_value(doc, s)))
        .collect();
    let names: Vec<String> = path_params.iter().map(|p| p.0.clone()).collect();
    let path = path_params
        .into_iter()
        .map(|p| p.1)
        .collect::<Vec<_>>()
        .prop_map(move |values| {
            names
                .iter()
                .zip(values)
                .fold(template.clone(), |t, (n, v)| {
                    let v = match v.as_str() {
                        "" | "." | ".." => format!("{v}x"),
                        _ => v,
                    };
                    t.replace(&format!("{{{n}}}"), &encode(&v))
                })
        });
    // Query: documented keys with values of their schema or not, unknown
    // keys, repeated keys, raw junk.
    let mut pairs: Vec<BoxedStrategy<(String, String)>> = op
        .params
        .iter()
        .filter(|p| p.1)
        .map(|(n, _, s)| (Just(n.clone()), param_value(doc, s)).boxed())
        .collect();
    pairs.push(("[a-z_]{1,8}", interesting_string()).boxed());
    let query = prop_oneof![
        6 => proptest::collection::vec(Union::new(pairs), 0..4).prop_map(|ps| {
            ps.iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        }),
        1 => proptest::sample::select(vec!["&", "=", "&&=&", "%", "%zz", "limit", "state=", "=1", "limit=1&limit=2"])
            .prop_map(String::from),
    ];
    let body = if op.method == "POST" {
        (body(doc, op.body.as_ref()), content_type()).boxed()
    } else {
        Just((None, None)).boxed()
    };
    (path, query, body, auth())
        .prop_map(move |(path, query, (body, content_type), auth)| Req {
            op: i,
            path,
            query,
            content_type: content_type.filter(|_| body.is_some()),
            body,
            auth,
        })
        .boxed()
}

/// Sends `req`; the answer's status, media type and body.
async fn send(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    req: &Req,
) -> Result<(u16, String, Vec<u8>), String> {
    let mut url = format!("{base}{}", req.path);
    if !req.query.is_empty() {
        url.push('?');
        url.push_str(&req.query);
    }
    let mut r = http.request(method.parse().unwrap(), &url);
    match &req.auth {
        Auth::None => {}
        Auth::Bearer(t) => r = r.bearer_auth(t),
        Auth::Header(h) => r = r.header("authorization", h),
    }
    if let Some(ct) = &req.content_type {
        r = r.header("content-type", ct);
    }
    if let Some(b) = &req.body {
        r = r.body(b.clone());
    }
    let answer = r.send().await.map_err(|e| format!("no answer: {e:?}"))?;
    let status = answer.status().as_u16();
    let media = media_type(answer.headers());
    let body = answer
        .bytes()
        .await
        .map_err(|e| format!("no body: {e}"))?
        .to_vec();
    Ok((status, media, body))
}

/// A resync's scope narrows: one whose course code, learner or dates no
/// completion of the fixture has covers nothing (the fixture's courses are
/// ALL, LL and NONE, its learners 1 to 8, its completions dated
/// 2026-11-18 to 2026-11-21 in Taipei).
fn check_scope(op: &Operation, req: &Req, status: u16, body: &[u8]) -> Result<(), String> {
    if op.template != "/api/v1/resyncs" || !(200..300).contains(&status) {
        return Ok(());
    }
    let asked: Value = serde_json::from_slice(req.body.as_deref().unwrap_or_default())
        .map_err(|e| format!("a {status} for a body that is not JSON: {e}"))?;
    let date = |k: &str| {
        asked[k]
            .as_str()
            .and_then(|s| s.parse::<chrono::NaiveDate>().ok())
    };
    let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    let nothing = asked["course_code"]
        .as_str()
        .is_some_and(|c| !["ALL", "LL", "NONE"].contains(&c))
        || asked["national_id"]
            .as_str()
            .is_some_and(|n| !(1..=8).map(id).any(|i| i == n.trim().to_ascii_uppercase()))
        || date("completed_from").is_some_and(|d| d > day("2026-11-21"))
        || date("completed_to").is_some_and(|d| d < day("2026-11-18"));
    let answer: Value = serde_json::from_slice(body).unwrap_or_default();
    if nothing && (answer["completions"] != 0 || answer["records"] != 0) {
        return Err(format!(
            "the scope {asked} selects nothing of the fixture, the answer covers {} record(s)",
            answer["records"]
        ));
    }
    Ok(())
}

async fn fuzz_the_api_against_its_own_document(backend: Backend) {
    let d = daemon(backend).await;
    let http = http();
    let doc = fetch_document(&http, &d.base).await;
    let ops = operations(&doc);
    // The API's operations weigh three times the health routes', those
    // with a body (the most to try) twice that.
    let strategy = Union::new_weighted(
        (0..ops.len())
            .map(|i| {
                let t = &ops[i].template;
                let api = t.starts_with("/api/v1/") && t != "/api/v1/openapi.json";
                let weight = match () {
                    _ if ops[i].body.is_some() => 6,
                    _ if api => 3,
                    _ => 1,
                };
                (weight, requests(&doc, &ops, i))
            })
            .collect(),
    );
    // A few resyncs, for `/api/v1/resyncs/{id}` to find.
    for scope in [
        json!({"national_id": id(1)}),
        json!({"course_code": "LL"}),
        json!({"registry": "enved", "verify": true}),
    ] {
        let answer = http
            .post(format!("{}/api/v1/resyncs", d.base))
            .bearer_auth(SUPPORT)
            .json(&scope)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
    }

    // A fixed seed and number of cases, so CI runs the same requests;
    // HOURSYNC_FUZZ_SEED and HOURSYNC_FUZZ_CASES explore further.
    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|s| s.parse().ok())
    }
    let seed: u64 = env("HOURSYNC_FUZZ_SEED").unwrap_or(0x5eed_0a11);
    let cases: u32 = env("HOURSYNC_FUZZ_CASES").unwrap_or(CASES);
    eprintln!("fuzz: {cases} cases, seed {seed} (HOURSYNC_FUZZ_CASES, HOURSYNC_FUZZ_SEED)");
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 400,
        max_shrink_time: 60_000,
        ..Config::default()
    });

    let deadline = Instant::now() + BUDGET;
    let seen: Mutex<BTreeMap<(usize, u16), usize>> = Mutex::default();
    let sent = Mutex::new(0usize);
    // A failure of the connection itself comes of the request before.
    let before = Mutex::new(String::from("none"));
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner
            .run(&strategy, |req| {
                if Instant::now() > deadline {
                    return Err(TestCaseError::fail(format!(
                        "the fuzz ran over its budget of {BUDGET:?}"
                    )));
                }
                let op = &ops[req.op];
                let answer = handle.block_on(send(&http, &d.base, &op.method, &req));
                let previous = std::mem::replace(
                    &mut *before.lock().unwrap(),
                    format!(
                        "{} {req:?} -> {:?}",
                        op.method,
                        answer.as_ref().map(|a| a.0)
                    ),
                );
                let (status, media, body) = answer.map_err(|e| {
                    TestCaseError::fail(format!("{e}; the request before: {previous}"))
                })?;
                *sent.lock().unwrap() += 1;
                *seen.lock().unwrap().entry((req.op, status)).or_default() += 1;
                check_answer(&doc, op, status, &media, &body)
                    .and_then(|()| check_scope(op, &req, status, &body))
                    .map_err(|e| TestCaseError::fail(format!("{} {}: {e}", op.method, op.template)))
            })
            .map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        panic!("{e}");
    }

    let seen = seen.into_inner().unwrap();
    let mut per_op: BTreeMap<String, BTreeMap<u16, usize>> = BTreeMap::new();
    for ((op, status), n) in &seen {
        *per_op
            .entry(format!("{} {}", ops[*op].method, ops[*op].template))
            .or_default()
            .entry(*status)
            .or_default() += n;
    }
    eprintln!(
        "fuzz: {} requests, {:?} elapsed, status counts per operation:",
        sent.into_inner().unwrap(),
        BUDGET - deadline.saturating_duration_since(Instant::now())
    );
    for (op, counts) in &per_op {
        eprintln!("  {op}: {counts:?}");
    }
    assert_eq!(per_op.len(), ops.len(), "every operation was tried");
    let statuses: BTreeSet<u16> = seen.keys().map(|k| k.1).collect();
    assert!(
        statuses.iter().any(|s| (200..300).contains(s))
            && statuses.iter().any(|s| (400..500).contains(s)),
        "{statuses:?}"
    );
    d.stop().await;
}

backend_tests!(
    document_is_openapi_3_and_lists_exactly_the_served_routes,
    fuzz_the_api_against_its_own_document,
);
