//! The alert runbooks (config/monitoring/alerts.yml), followed step by step
//! as on-call would, against a daemon running as its own process: what a
//! runbook tells a person to type must work, and must be enough.

mod common;

use common::*;
use hoursync::simulator::Faults;
use hoursync::store::State;
use std::time::Duration;

fn alerts() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/monitoring/alerts.yml"),
    )
    .unwrap()
}

/// HoursyncDeliveriesFailed: "Run `hoursync deliveries --state failed
/// --registry R` and `hoursync history ID` for their last errors; fix the
/// data or the registry issue, then `hoursync retry ID` (one record) or
/// `hoursync resync` sends them again."
async fn the_deliveries_failed_runbook_finds_explains_and_resends_them(backend: Backend) {
    for step in [
        "hoursync deliveries --state failed --registry",
        "hoursync history ID",
        "hoursync retry ID",
        "hoursync resync",
    ] {
        assert!(
            alerts().contains(step),
            "the runbook no longer says {step:?}"
        );
    }
    let env = TestEnv::new(backend).await;
    // The registry is down: every upload answers 503 until it is fixed.
    let sim = simulator(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let (mut daemon, _) =
        env.spawn_serving_daemon(&sim, &[("HOURSYNC_RETRY__MAX_ATTEMPTS", "2".to_string())]);
    let store = env.store().await;
    import(&store, &[env.write("d.jsonl", &fixture::lines())]).await;
    let failed = || async {
        let out = cli_ok(
            &env,
            &sim,
            &[
                "deliveries",
                "--state",
                "failed",
                "--registry",
                "lifelong",
                "--json",
            ],
        )
        .await;
        serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
    };
    wait_for(
        Duration::from_secs(60),
        "lifelong records given up on",
        || async { !failed().await.is_empty() && open_deliveries(&store).await == 0 },
    )
    .await;
    let listed = failed().await;
    let id = listed[0]["id"].as_i64().unwrap().to_string();
    // Its history names the registry's answer.
    let history = cli_ok(&env, &sim, &["history", &id]).await;
    assert!(history.contains("503"), "{history}");
    // The registry is fixed; one record is sent again by hand.
    sim.set_faults(Faults::default());
    let before = sim.credited("lifelong").len();
    cli_ok(&env, &sim, &["retry", &id]).await;
    wait_for(
        Duration::from_secs(30),
        "the retried record credited",
        || async { sim.credited("lifelong").len() == before + 1 },
    )
    .await;
    // The rest of the registry's failed records through a resync.
    cli_ok(&env, &sim, &["resync", "--registry", "lifelong"]).await;
    wait_for(
        Duration::from_secs(60),
        "every failed record credited",
        || async {
            failed().await.is_empty() && sim.credited("lifelong").len() == before + listed.len()
        },
    )
    .await;
    // The other registries' failed records were not in the resync's scope.
    assert!(count_where(&store, |s| s == State::Failed).await > 0);
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
}

/// HoursyncCalendarRunningOut: "load it with `hoursync calendar import
/// FILE` (`--dry-run` first); no restart."
async fn the_calendar_runbook_loads_next_year_without_a_restart(backend: Backend) {
    for step in ["hoursync calendar import FILE", "--dry-run", "no restart"] {
        assert!(
            alerts().contains(step),
            "the runbook no longer says {step:?}"
        );
    }
    let env = TestEnv::new(backend).await;
    let sim = simulator(Faults::default()).await;
    let (mut daemon, base) = env.spawn_serving_daemon(&sim, &[]);
    let covered = || async {
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("hoursync_calendar_covered_until_timestamp_seconds "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    wait_for(
        Duration::from_secs(30),
        "the daemon's calendar gauge",
        || async { covered().await.is_some() },
    )
    .await;
    let before = covered().await.unwrap();
    // Next year's file in the published format: weekends off.
    let next = env.path("2027.csv");
    std::fs::write(&next, calendar_year(2027)).unwrap();
    let file = next.display().to_string();
    let dry = cli_ok(&env, &sim, &["calendar", "import", "--dry-run", &file]).await;
    assert!(dry.contains("2027"), "{dry}");
    cli_ok(&env, &sim, &["calendar", "import", &file]).await;
    // The running daemon reaches a year further, without a restart.
    wait_for(
        Duration::from_secs(40),
        "the gauge to reach into 2027",
        || async {
            covered()
                .await
                .is_some_and(|c| c > before + 300.0 * 86_400.0)
        },
    )
    .await;
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon restarted");
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
}

/// A year of the office calendar's CSV, weekends off and no holidays.
fn calendar_year(year: i32) -> String {
    use chrono::Datelike;
    let mut csv = String::from("西元日期,星期,是否放假,備註\n");
    let mut day = chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
    while day.year() == year {
        let n = day.weekday().num_days_from_sunday() as usize;
        let name = ["日", "一", "二", "三", "四", "五", "六"][n];
        let off = if n == 0 || n == 6 { 2 } else { 0 };
        csv.push_str(&format!("{},{name},{off},\n", day.format("%Y%m%d")));
        day = day.succ_opt().unwrap();
    }
    csv
}

backend_tests!(
    the_deliveries_failed_runbook_finds_explains_and_resends_them,
    the_calendar_runbook_loads_next_year_without_a_restart,
);
