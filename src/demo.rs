//! `hoursync demo`: the main job, end to end, on a fresh machine. It writes
//! a realistic data set, starts the registry simulator (with faults) and
//! the daemon on SQLite, imports the data, waits until nothing is left to
//! send, converts some general-public accounts to show the backfill,
//! corrects a course's hours and revokes completions (corrections and
//! withdrawals), damages the simulated registries and lets a reconcile
//! repair them, and prints per registry what was delivered and why the rest
//! was not.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::dataset::{DatasetSpec, Profile};
use crate::domain::RegistryKind;
use crate::intake::{ImportOptions, import_files};
use crate::simulator::{Faults, SimConfig, Simulator};
use crate::startup::App;
use crate::store::{SharedStore, State};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Learners in the generated data set.
    #[arg(long, default_value_t = 2_000)]
    pub persons: usize,
    /// Working directory for the data, tokens and database (recreated).
    #[arg(long, default_value = "demo-data")]
    pub dir: PathBuf,
    /// Share of batches the simulated registries fail with 503.
    #[arg(long, default_value_t = 0.1)]
    pub error_rate: f64,
    /// Share of batches committed, then answered by a dropped connection.
    #[arg(long, default_value_t = 0.05)]
    pub drop_rate: f64,
}

pub async fn run(args: DemoArgs, base: Config) -> anyhow::Result<()> {
    let dir = &args.dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("tokens"))?;
    let token = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let token_file = dir.join("tokens/registry.token");
    crate::config::write_secret(&token_file, &token)?;

    let data = dir.join("learning-data.jsonl");
    let spec = DatasetSpec {
        persons: args.persons,
        completions_per_person: 4,
        courses: 120,
        seed: 2026,
        profile: Profile::Realistic,
        offset: 0,
    };
    let summary = crate::dataset::write(spec, &data)?;
    println!(
        "1. wrote {} ({} lines: {} learners, {} accounts, {} courses, {} completions)",
        data.display(),
        summary.lines,
        summary.persons,
        summary.accounts,
        summary.courses,
        summary.completions
    );

    let faults = Faults {
        error_rate: args.error_rate,
        drop_rate: args.drop_rate,
        latency_ms: 5,
        reject_courses: vec![],
        ..Faults::default()
    };
    let sim = Simulator::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            token,
            faults,
            rate_per_second: DEMO_RATE,
            burst: DEMO_RATE * 2,
            ..SimConfig::default()
        },
    )
    .await?;
    println!(
        "2. registry simulator on http://{} ({:.0}% of batches fail with 503, {:.0}% are credited and then the connection drops)",
        sim.addr(),
        args.error_rate * 100.0,
        args.drop_rate * 100.0
    );

    let config = demo_config(base, dir, &sim, &token_file);
    let App {
        config,
        store,
        registries,
        clock,
    } = App::build(config, Arc::new(SystemClock)).await?;
    let report = import_files(
        store.as_ref(),
        clock.as_ref(),
        &[data],
        ImportOptions {
            progress: true,
            max_future_days: config.intake.max_future_days,
            ..ImportOptions::default()
        },
    )
    .await?;
    println!(
        "3. imported {} lines ({} rows), {} rejected",
        report.lines, report.changed, report.rejected
    );

    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(crate::daemon::run(
        config.clone(),
        clock.clone(),
        shutdown.clone(),
    ));
    println!(
        "4. daemon running on {} (scan every 2 s, rate {} requests/s per registry)",
        crate::redact::redact_url(&config.database.url),
        config.registries[&RegistryKind::Lifelong].rate_per_second
    );
    let started = Instant::now();
    wait_until_drained(&store, Duration::from_secs(300)).await?;
    println!("   drained in {:.1} s", started.elapsed().as_secs_f64());

    let before_conversions = clock.now_ms();
    let converted = convert_accounts(dir, &store, clock.as_ref()).await?;
    if converted > 0 {
        println!(
            "5. {converted} general-public accounts converted to civil servant: their earlier hours go out without anything else being done"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        wait_until_drained(&store, Duration::from_secs(120)).await?;
    }

    let (courses, revoked) = correct_and_revoke(dir, &store, clock.as_ref()).await?;
    println!(
        "6. {courses} courses' lifelong hours corrected and {revoked} completions revoked: the registries get PUT corrections and DELETE withdrawals"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_until_drained(&store, Duration::from_secs(120)).await?;

    // The registry drifts: of its newest credits (the backfilled
    // conversions), three are lost and one holds other hours.
    sim.set_faults(Faults::default());
    let newest: Vec<_> = sim.credited("lifelong").into_iter().rev().take(4).collect();
    let mut damaged = 0;
    for c in &newest[..3] {
        damaged += usize::from(sim.forget("lifelong", &c.idempotency_key));
    }
    if let Some(c) = newest.get(3) {
        damaged += usize::from(sim.set_hours("lifelong", &c.idempotency_key, 999));
    }
    println!(
        "7. the lifelong registry lost 3 records and holds wrong hours for 1; a reconcile (nightly at 02:30) looks up everything credited since step 5:"
    );
    let all = crate::reconcile::ReconcileOptions {
        registry: None,
        since_ms: before_conversions,
        sample_percent: 100.0,
    };
    let report = crate::reconcile::run(store.as_ref(), clock.as_ref(), &registries, all).await?;
    for r in &report.repairs {
        println!("   {r}");
    }
    anyhow::ensure!(
        report.repairs.len() == damaged,
        "the reconcile repaired {} records, {damaged} were damaged",
        report.repairs.len()
    );
    wait_until_drained(&store, Duration::from_secs(120)).await?;
    let again = crate::reconcile::run(store.as_ref(), clock.as_ref(), &registries, all).await?;
    println!(
        "   repaired; a second reconcile looks {} records up and finds {} to repair",
        again.checked.values().sum::<usize>(),
        again.repairs.len()
    );

    shutdown.cancel();
    daemon.await??;
    print_summary(&store, &sim).await?;
    sim.shutdown().await;
    Ok(())
}

/// Requests per second per registry, in the simulator and in hoursync.
const DEMO_RATE: u32 = 100;

fn demo_config(mut config: Config, dir: &Path, sim: &Simulator, token_file: &Path) -> Config {
    config.database.url = format!(
        "sqlite://{}?mode=rwc",
        dir.join("hoursync-demo.db").display()
    );
    config.schedule.scan = "*/2 * * * * *".into();
    config.admin.listen = "127.0.0.1:0".into();
    config.retry.base_ms = 300;
    config.retry.max_ms = 3_000;
    config.dispatch.idle_poll_ms = 200;
    config.dispatch.lease_ms = 15_000;
    for (kind, r) in config.registries.iter_mut() {
        r.base_url = sim.base_url(kind.as_str());
        r.token_file = token_file.to_path_buf();
        r.timeout_ms = 5_000;
        r.rate_per_second = DEMO_RATE;
        // Small batches: enough requests for the simulator's faults to show.
        r.max_batch = 50;
    }
    config
}

async fn wait_until_drained(store: &SharedStore, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut last_print = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let counts = store.delivery_counts().await?;
        let open: i64 = counts
            .iter()
            .filter(|c| c.state.is_due_work())
            .map(|c| c.count)
            .sum();
        let delivered: i64 = counts
            .iter()
            .filter(|c| c.state == State::Delivered)
            .map(|c| c.count)
            .sum();
        if !counts.is_empty() && open == 0 {
            return Ok(());
        }
        if last_print.elapsed() > Duration::from_secs(2) {
            println!("   … {delivered} delivered, {open} still to send");
            last_print = Instant::now();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the backlog did not drain within {limit:?}"
        );
    }
}

/// Converts every general-public My e-Gov account of the demo data to civil
/// servant, as the platform's export would after review.
async fn convert_accounts(
    dir: &Path,
    store: &SharedStore,
    clock: &dyn crate::clock::Clock,
) -> anyhow::Result<usize> {
    let data = std::fs::read_to_string(dir.join("learning-data.jsonl"))?;
    let mut lines = Vec::new();
    for line in data.lines().filter(|l| l.contains("\"natural_person\"")) {
        let mut v: serde_json::Value = serde_json::from_str(line)?;
        v["identity"] = "civil_servant".into();
        lines.push(v.to_string());
    }
    let path = dir.join("conversions.jsonl");
    std::fs::write(&path, lines.join("\n"))?;
    import_files(store.as_ref(), clock, &[path], ImportOptions::default()).await?;
    Ok(lines.len())
}

/// Raises the lifelong hours (and the digital part) of two certified
/// courses by one hour, and revokes five completions: the platform's export
/// after an accreditation fix and a cheating case.
async fn correct_and_revoke(
    dir: &Path,
    store: &SharedStore,
    clock: &dyn crate::clock::Clock,
) -> anyhow::Result<(usize, usize)> {
    let data = std::fs::read_to_string(dir.join("learning-data.jsonl"))?;
    let plus_one = |v: &serde_json::Value| -> Option<String> {
        let h: f64 = v.as_str()?.parse().ok()?;
        Some(format!("{:.1}", h + 1.0))
    };
    let (mut lines, mut courses, mut revoked) = (Vec::new(), 0, 0);
    for line in data.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line)?;
        if courses < 2 && v["type"] == "course" && v["certified"]["lifelong"].is_string() {
            let (Some(total), Some(digital)) = (
                plus_one(&v["certified"]["lifelong"]),
                plus_one(&v["digital_hours"]),
            ) else {
                continue;
            };
            v["certified"]["lifelong"] = total.into();
            v["digital_hours"] = digital.into();
            courses += 1;
            lines.push(v.to_string());
        } else if revoked < 5 && v["type"] == "completion" && v["status"] == "completed" {
            v["status"] = "revoked".into();
            revoked += 1;
            lines.push(v.to_string());
        }
    }
    let path = dir.join("corrections.jsonl");
    std::fs::write(&path, lines.join("\n"))?;
    import_files(store.as_ref(), clock, &[path], ImportOptions::default()).await?;
    Ok((courses, revoked))
}

async fn print_summary(store: &SharedStore, sim: &Simulator) -> anyhow::Result<()> {
    let counts = store.delivery_counts().await?;
    println!("\nper registry:");
    for kind in RegistryKind::ALL {
        let of = |s: State| {
            counts
                .iter()
                .filter(|c| c.registry == kind && c.state == s)
                .map(|c| c.count)
                .sum::<i64>()
        };
        let credited = sim.credited(kind.as_str()).len();
        println!(
            "  {:<9} delivered {:>6} (simulator holds {:>6}), withdrawn {:>3}, rejected {:>4}, failed {:>4}, ineligible {:>6}",
            kind.as_str(),
            of(State::Delivered),
            credited,
            of(State::Withdrawn),
            of(State::Rejected),
            of(State::Failed),
            of(State::Ineligible)
        );
        let mut reasons: BTreeMap<&str, i64> = BTreeMap::new();
        for c in counts
            .iter()
            .filter(|c| c.registry == kind && c.state == State::Ineligible)
        {
            *reasons
                .entry(c.reason.as_deref().unwrap_or("?"))
                .or_default() += c.count;
        }
        for (reason, n) in reasons {
            println!("      {reason:<28} {n:>6}");
        }
    }
    let stats = sim.stats();
    println!("\nsimulator: {}", serde_json::to_string(&stats)?);
    Ok(())
}
