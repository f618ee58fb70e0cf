//! The monitoring kit in `config/monitoring/`: the alert rules load and pass
//! their unit tests, the exported metrics pass `promtool check metrics`, and
//! the rules and the dashboard only use metric names `src/metrics.rs`
//! defines. The promtool checks need `promtool` (Debian: `apt-get install
//! prometheus`); without it they are skipped, except under `CI=true`, where
//! they fail.

use hoursync::metrics::{self, BACKLOG_STATES, Kind, METRICS, OUTCOMES, REPAIRS};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const REGISTRIES: [&str; 3] = ["lifelong", "teacher", "enved"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn monitoring(file: &str) -> PathBuf {
    root().join("config/monitoring").join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(monitoring(file))
        .unwrap_or_else(|e| panic!("reading config/monitoring/{file}: {e}"))
}

/// `promtool`, if installed. Missing: a failure under `CI=true`, else a skip
/// (the caller returns).
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("promtool");
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "promtool not installed, and CI=true: install it with `apt-get install -y prometheus` \
             (Debian/Ubuntu; it provides promtool)"
        );
    }
    println!("SKIPPED: promtool not installed (apt-get install prometheus)");
    None
}

fn show(out: &Output) -> String {
    format!(
        "exit: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("running promtool");
    assert!(out.status.success(), "{cmd:?} failed\n{}", show(&out));
    out
}

// ---------------------------------------------------------------------------
// Metric names in PromQL

/// Metric names `src/metrics.rs` defines, with the series a histogram adds.
fn defined_series() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for m in METRICS {
        names.insert(m.name.to_owned());
        if m.kind == Kind::Histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{}{suffix}", m.name));
            }
        }
    }
    names
}

/// The metric a series name belongs to (`x_bucket` → `x` for a histogram).
fn base_metric(series: &str) -> &str {
    for m in METRICS.iter().filter(|m| m.kind == Kind::Histogram) {
        if let Some(rest) = series.strip_prefix(m.name)
            && ["", "_bucket", "_sum", "_count"].contains(&rest)
        {
            return m.name;
        }
    }
    series
}

fn skip_quoted(b: &[u8], mut i: usize) -> usize {
    let quote = b[i];
    i += 1;
    while i < b.len() && b[i] != quote {
        if b[i] == b'\\' && quote != b'`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// Skips from an opening bracket to after its closing one, stepping over
/// quoted strings.
fn skip_group(b: &[u8], mut i: usize, open: u8, close: u8) -> usize {
    let mut depth = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => {
                i = skip_quoted(b, i);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// The metric names a PromQL expression (possibly with Grafana `$variables`)
/// selects: identifiers that are not functions, aggregations, keywords,
/// label names or inside strings, label matchers and ranges.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 8] = [
        "and", "or", "unless", "bool", "offset", "inf", "nan", "atan2",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let b = expr.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'"' | b'\'' | b'`') {
            i = skip_quoted(b, i);
        } else if c == b'{' {
            i = skip_group(b, i, b'{', b'}');
        } else if c == b'[' {
            i = skip_group(b, i, b'[', b']');
        } else if c == b'$' {
            i += 1;
            if b.get(i) == Some(&b'{') {
                i = skip_group(b, i, b'{', b'}');
            } else {
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || c == b'.' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let ident = &expr[start..i];
            let mut next = i;
            while next < b.len() && b[next].is_ascii_whitespace() {
                next += 1;
            }
            // A function call, or an aggregation written `sum by (x) (…)`.
            let word_after: String = b[next..]
                .iter()
                .take_while(|c| is_ident(**c))
                .map(|c| *c as char)
                .collect();
            let call = b.get(next) == Some(&b'(')
                || (word_after == "by" || word_after == "without") && !LABEL_LISTS.contains(&ident);
            if LABEL_LISTS.contains(&ident) {
                if call {
                    i = skip_group(b, next, b'(', b')');
                }
            } else if !call && !KEYWORDS.contains(&ident) {
                names.insert(ident.to_owned());
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn the_promql_name_extractor_finds_metrics_only() {
    let got = metric_names(
        r#"histogram_quantile(0.95, sum by (registry, le) (rate(hoursync_registry_request_duration_seconds_bucket{registry=~"$registry",status!~"2.."}[$__rate_interval])))
           / on (job) group_left (version) hoursync_build_info offset 5m
           and time() - x:y_z > 30 * 60 unless absent(up{job="hoursync"}) or sum(a) without (b) > bool 1e3"#,
    );
    let want: BTreeSet<String> = [
        "hoursync_registry_request_duration_seconds_bucket",
        "hoursync_build_info",
        "x:y_z",
        "up",
        "a",
    ]
    .map(String::from)
    .into();
    assert_eq!(got, want);
}

/// `(alert name, expr)` for every rule of a rules file, read line by line:
/// `expr:` either inline or as a `|`/`>` block.
fn rule_exprs(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = vec![];
    let mut alert = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            alert = name.trim().to_owned();
        } else if let Some(rest) = trimmed.strip_prefix("expr:") {
            let rest = rest.trim();
            let indent = line.len() - trimmed.len();
            if rest.starts_with('|') || rest.starts_with('>') {
                let mut expr = String::new();
                while i + 1 < lines.len() {
                    let next = lines[i + 1];
                    let next_indent = next.len() - next.trim_start().len();
                    if !next.trim().is_empty() && next_indent <= indent {
                        break;
                    }
                    expr.push_str(next.trim());
                    expr.push('\n');
                    i += 1;
                }
                out.push((alert.clone(), expr));
            } else {
                let unquoted = rest
                    .strip_prefix('\'')
                    .and_then(|r| r.strip_suffix('\''))
                    .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
                    .unwrap_or(rest);
                out.push((alert.clone(), unquoted.to_owned()));
            }
        }
        i += 1;
    }
    out
}

fn alert_names(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// Alert rules

#[test]
fn alert_rules_pass_promtool_check() {
    let Some(promtool) = promtool() else { return };
    let out = run_ok(
        Command::new(promtool)
            .args(["check", "rules"])
            .arg(monitoring("alerts.yml")),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SUCCESS"),
        "{}",
        show(&out)
    );
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let out = run_ok(
        Command::new(promtool)
            .args(["test", "rules"])
            .arg(monitoring("alerts_test.yml")),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SUCCESS"),
        "{}",
        show(&out)
    );
}

#[test]
fn alert_rules_use_only_metrics_hoursync_exports() {
    let defined = defined_series();
    let exprs = rule_exprs(&read("alerts.yml"));
    assert!(exprs.len() >= 10, "{exprs:?}");
    for (alert, expr) in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{alert}: no metric in {expr:?}");
        for name in names {
            assert!(
                name == "up" || defined.contains(&name),
                "{alert} uses {name}, which src/metrics.rs does not define: {expr}"
            );
        }
    }
}

#[test]
fn every_alert_has_severity_summary_description_and_runbook() {
    let yaml = read("alerts.yml");
    let chunks: Vec<&str> = yaml.split("- alert:").skip(1).collect();
    assert_eq!(chunks.len(), alert_names(&yaml).len());
    for chunk in chunks {
        let name = chunk.lines().next().unwrap().trim();
        let severity = chunk
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity:"))
            .unwrap_or_else(|| panic!("{name}: no severity label"));
        assert!(
            ["critical", "warning"].contains(&severity.trim()),
            "{name}: severity {severity}"
        );
        for key in ["summary:", "description:", "runbook:"] {
            let value = chunk
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .unwrap_or_else(|| panic!("{name}: no {key} annotation"));
            assert!(value.trim().len() > 10, "{name}: {key} is empty");
        }
    }
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let rules = read("alerts.yml");
    let tests = read("alerts_test.yml");
    let required = [
        "HoursyncSlaBreached",
        "HoursyncSlaAtRiskGrowing",
        "HoursyncRegistryDown",
        "HoursyncRegistryAuthRejected",
        "HoursyncScanStale",
        "HoursyncBacklogNotShrinking",
        "HoursyncCalendarRunningOut",
        "HoursyncCalendarFallbackUsed",
        "HoursyncDown",
        "HoursyncAbsent",
        "HoursyncReconcileStale",
        "HoursyncReconcileRepairs",
        "HoursyncCorrectionsStuck",
    ];
    let names = alert_names(&rules);
    for r in required {
        assert!(names.iter().any(|n| n == r), "alerts.yml lacks {r}");
    }
    // Each `alertname:` entry is followed by its exp_alerts: `[]` (quiet) or
    // a list (fires).
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for name in &names {
        let (mut quiet, mut fires) = (0, 0);
        for (i, line) in lines.iter().enumerate() {
            if line.strip_prefix("alertname:").map(str::trim) == Some(name.as_str()) {
                match lines.get(i + 1).copied() {
                    Some("exp_alerts: []") => quiet += 1,
                    Some("exp_alerts:") => fires += 1,
                    other => panic!("{name}: unexpected line after alertname: {other:?}"),
                }
            }
        }
        assert!(
            quiet > 0 && fires > 0,
            "{name}: {quiet} quiet, {fires} firing tests"
        );
    }
    // The input series of the tests are real metrics too.
    let defined = defined_series();
    for line in &lines {
        if let Some(series) = line.strip_prefix("- series:") {
            let series = series.trim().trim_matches('\'').trim_matches('"');
            let name = series.split('{').next().unwrap();
            assert!(
                name == "up" || defined.contains(name),
                "alerts_test.yml feeds {name}, which src/metrics.rs does not define"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Exported metrics

fn record_every_metric() {
    for r in REGISTRIES {
        for outcome in OUTCOMES {
            metrics::delivery(r, outcome, 3);
        }
        for state in BACKLOG_STATES {
            metrics::backlog(r, state, 5);
        }
        metrics::ineligible(r, "social_login", 7);
        metrics::ineligible(r, "service_unit_invalid", 2);
        for (status, seconds) in [
            ("200", 0.12),
            ("429", 0.01),
            ("503", 1.5),
            ("timeout", 10.0),
            ("connect", 0.001),
            ("error", 0.3),
        ] {
            metrics::request(r, status, seconds);
        }
        metrics::registry_up(r, true);
        metrics::auth_failed(r, false);
        metrics::retries(r, 2);
        metrics::leases_expired(r, 1);
        metrics::sla(r, 1, 0);
        metrics::oldest_undelivered(r, 3600.0);
        for repair in REPAIRS {
            metrics::reconcile_repair(r, repair, 1);
        }
        metrics::reconcile_checked(r, 40, 1);
    }
    metrics::registry_up("teacher", false);
    metrics::auth_failed("enved", true);
    metrics::scan_finished(1234, 0.8, 1_790_000_000.0);
    metrics::calendar_covered_until(1_798_732_799.0);
    metrics::calendar_fallback();
    metrics::log_line_dropped("write_failed");
    metrics::reconcile_finished(1_790_005_400.0);
    metrics::build_info();
    // Wrong arguments must not put personal data into a label.
    metrics::delivery("A123456789", "delivered", 1);
    metrics::backlog("lifelong", "B223456789", 1);
    metrics::ineligible("enved", "C123456789", 1);
    metrics::request("F123456789", "A223456789", 0.1);
    metrics::reconcile_repair("D123456789", "E123456789", 1);
    metrics::reconcile_checked("G123456789", 1, 1);
}

/// A letter followed by nine digits: the shape of a national ID.
fn national_id_shapes(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(9))
        .filter(|&i| b[i].is_ascii_alphabetic() && b[i + 1..i + 10].iter().all(u8::is_ascii_digit))
        .map(|i| &text[i..i + 10])
        .collect()
}

#[test]
fn the_id_shape_detector_works() {
    assert_eq!(national_id_shapes("x{r=\"A123456789\"} 1"), ["A123456789"]);
    assert!(national_id_shapes("hoursync_last 1790000000\nle=\"0.005\"").is_empty());
}

#[test]
fn exported_metrics_pass_promtool_and_carry_no_personal_data() {
    let handle = metrics::install().expect("installing the recorder");
    let again = metrics::install().expect("a second install");
    record_every_metric();
    // Series order varies from one rendering to the next.
    let sorted = |t: &str| {
        let mut lines: Vec<String> = t.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    assert!(
        sorted(&handle.render()) == sorted(&again.render()),
        "install() must return the same handle"
    );
    // What /metrics serves: with the process metrics read at the scrape.
    let text = metrics::render(&handle);
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .unwrap_or_else(|| panic!("no resident memory figure:\n{text}"));
    assert!(rss.trim().parse::<f64>().unwrap() > 1e6, "{rss}");
    assert!(text.contains("\nprocess_open_fds "), "{text}");
    assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");

    for m in METRICS {
        let kind = m.kind.as_str();
        assert!(
            text.contains(&format!("# TYPE {} {kind}\n", m.name)),
            "{} ({kind}) missing from the rendering:\n{text}",
            m.name
        );
        assert!(
            text.contains(&format!("# HELP {} ", m.name)),
            "{} has no help:\n{text}",
            m.name
        );
    }
    // Every sample's name is defined, and its labels are the declared ones.
    let defined = defined_series();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap();
        if metrics::PROCESS_METRICS.contains(&name) {
            continue;
        }
        assert!(defined.contains(name), "undeclared series {line}");
        let metric = METRICS
            .iter()
            .find(|m| m.name == base_metric(name))
            .unwrap();
        if let Some(labels) = line.split_once('{').and_then(|(_, r)| r.split_once('}')) {
            for pair in labels.0.split(',') {
                let key = pair.split('=').next().unwrap();
                assert!(
                    metric.labels.contains(&key) || (key == "le" && metric.kind == Kind::Histogram),
                    "{line}: label {key} not declared for {}",
                    metric.name
                );
            }
        }
    }
    let ids = national_id_shapes(&text);
    assert!(
        ids.is_empty(),
        "ID-shaped values in the metrics: {ids:?}\n{text}"
    );
    assert!(text.contains(r#"hoursync_deliveries_total{registry="other",outcome="delivered"} 1"#));
    assert!(
        text.contains(r#"hoursync_reconcile_repairs_total{registry="other",repair="other"} 1"#)
    );
    assert!(text.contains(r#"hoursync_build_info{version=""#));

    let Some(promtool) = promtool() else { return };
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file.path()).unwrap())
        .output()
        .expect("running promtool check metrics");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics complains\n{}\nmetrics:\n{text}",
        show(&out)
    );
}

// ---------------------------------------------------------------------------
// Dashboard

fn dashboard() -> Value {
    serde_json::from_str(&read("dashboard.json")).expect("dashboard.json is valid JSON")
}

/// Every panel that is not a row, rows' nested panels included.
fn panels(dash: &Value) -> Vec<&Value> {
    let mut out = vec![];
    for p in dash["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            for nested in p["panels"].as_array().into_iter().flatten() {
                out.push(nested);
            }
        } else {
            out.push(p);
        }
    }
    out
}

fn exprs(panel: &Value) -> Vec<&str> {
    panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["expr"].as_str())
        .collect()
}

#[test]
fn dashboard_has_the_variables_and_schema_grafana_needs() {
    let dash = dashboard();
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    let vars = dash["templating"]["list"].as_array().unwrap();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {name} variable"))
    };
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let registry = var("registry");
    assert_eq!(registry["type"], "query");
    let query = registry["query"]["query"]
        .as_str()
        .or(registry["query"].as_str())
        .unwrap();
    assert_eq!(
        query,
        "label_values(hoursync_backlog{job=~\"$job\",instance=~\"$instance\"}, registry)"
    );
    assert_eq!(registry["datasource"]["uid"], "${datasource}");
    // With several daemons: pick the job, then one daemon or all of them.
    for name in ["job", "instance"] {
        let v = var(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["includeAll"], true, "{name}");
        assert_eq!(v["allValue"], ".*", "{name}");
    }

    let mut ids = BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        for key in ["x", "y", "w", "h"] {
            assert!(p["gridPos"][key].is_u64(), "{}: gridPos.{key}", p["title"]);
        }
    }
    for p in panels(&dash) {
        let title = p["title"].as_str().unwrap();
        assert!(!title.is_empty());
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let e = exprs(p);
        assert!(!e.is_empty(), "{title}: no query");
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
}

#[test]
fn dashboard_queries_use_only_metrics_hoursync_exports() {
    let dash = dashboard();
    let defined = defined_series();
    let mut used = BTreeSet::new();
    for p in panels(&dash) {
        let title = p["title"].as_str().unwrap();
        for expr in exprs(p) {
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: no metric in {expr}");
            for name in names {
                assert!(
                    defined.contains(&name) || metrics::PROCESS_METRICS.contains(&name.as_str()),
                    "panel {title:?} uses {name}, which src/metrics.rs does not define: {expr}"
                );
                used.insert(base_metric(&name).to_owned());
            }
        }
    }
    // Everything exported is on the dashboard somewhere.
    for m in METRICS {
        assert!(used.contains(m.name), "no panel shows {}", m.name);
    }
    // The panels on-call opens first.
    let titles: Vec<String> = panels(&dash)
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_lowercase())
        .collect();
    for want in [
        "backlog",
        "delivered",
        "sla",
        "oldest undelivered",
        "latency",
        "status",
        "up",
        "token refused",
        "retries",
        "scan",
        "calendar",
        "repairs",
        "lookup",
        "reconcile",
        "corrections",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no panel about {want}"
        );
    }
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let Some(promtool) = promtool() else { return };
    let dash = dashboard();
    let mut rules = vec![];
    for (i, p) in panels(&dash).iter().enumerate() {
        for (j, expr) in exprs(p).iter().enumerate() {
            let expr = expr
                .replace("$__rate_interval", "5m")
                .replace("$__range", "1d")
                .replace("$__interval", "1m")
                .replace("$registry", ".*")
                .replace("$job", ".*")
                .replace("$instance", ".*");
            assert!(!expr.contains('$'), "unknown variable in {expr}");
            rules.push(
                serde_json::json!({"record": format!("dashboard:panel_{i}_{j}"), "expr": expr}),
            );
        }
    }
    // JSON is YAML: promtool parses every query as a recording rule.
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let mut tmp = tempfile::Builder::new().suffix(".yml").tempfile().unwrap();
    tmp.write_all(file.to_string().as_bytes()).unwrap();
    run_ok(
        Command::new(promtool)
            .args(["check", "rules"])
            .arg(tmp.path()),
    );
}

// ---------------------------------------------------------------------------
// README

#[test]
fn readme_documents_every_metric_and_alert() {
    let readme = read("README.md");
    for m in METRICS {
        assert!(
            readme.contains(&format!("`{}`", m.name)),
            "README lacks {}",
            m.name
        );
    }
    for name in alert_names(&read("alerts.yml")) {
        assert!(readme.contains(&name), "README lacks alert {name}");
    }
    assert!(Path::new(&monitoring("dashboard.json")).exists());
}

/// Gauges every daemon exports with the same value, because they describe
/// the shared database.
const DATABASE_WIDE: [&str; 5] = [
    "hoursync_sla_records",
    "hoursync_backlog",
    "hoursync_ineligible_records",
    "hoursync_oldest_undelivered_age_seconds",
    "hoursync_calendar_covered_until_timestamp_seconds",
];

/// Whether `expr` takes the `max` across daemons of every database-wide
/// gauge it reads (a `sum` would count the database once per daemon). The
/// check is on the text: each such gauge sits inside a `max` aggregation.
fn aggregates_database_wide_gauges_with_max(expr: &str) -> bool {
    DATABASE_WIDE
        .iter()
        .flat_map(|g| expr.match_indices(g).map(|(at, _)| at))
        .all(|at| expr[..at].contains("max(") || expr[..at].contains("max by ("))
}

#[test]
fn with_several_daemons_no_rule_or_panel_counts_the_database_twice() {
    assert!(aggregates_database_wide_gauges_with_max(
        "max by (registry) (sum by (instance, registry) (hoursync_backlog{a=\"b\"}))"
    ));
    assert!(!aggregates_database_wide_gauges_with_max(
        "sum(hoursync_backlog)"
    ));
    for (alert, expr) in rule_exprs(&read("alerts.yml")) {
        assert!(
            aggregates_database_wide_gauges_with_max(&expr),
            "{alert}: {expr}"
        );
    }
    let dash = dashboard();
    for p in panels(&dash) {
        for expr in exprs(p) {
            assert!(
                aggregates_database_wide_gauges_with_max(expr),
                "panel {:?}: {expr}",
                p["title"]
            );
        }
    }
}
