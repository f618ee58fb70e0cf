//! The drain: `--daemons` processes of `hoursync run`, configured through
//! the environment, until no delivery is pending or retrying; what each
//! daemon used (peak RSS, CPU, its own metrics), where the machine's CPU
//! went, and (PostgreSQL) what the database connections were doing.

use super::procs::{DaemonChild, DaemonMetrics, SimChild, cpu_secs, kb_to_mb};
use super::{
    CHECK_EVERY, GOAL_PEAK_RSS_MB, POLL, STALL, count_of, cpu, database::BenchDb, fmt_int,
    pgsample, procs, round1, verdict,
};
use crate::config::Config;
use crate::domain::RegistryKind;
use crate::simulator::SimStats;
use crate::store::{SharedStore, State};
use anyhow::bail;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Prints the drain's figures and adds them to `figures`.
pub(super) fn report(d: &Drain, stats: &SimStats, sim_peak: f64, figures: &mut serde_json::Value) {
    println!(
        "\ndrain by registry (the three run at once; time from the daemons' start until the simulator had credited all of the registry's records):"
    );
    let mut per_registry = BTreeMap::new();
    for kind in RegistryKind::ALL {
        let delivered = d.delivered_by.get(&kind).copied().unwrap_or(0);
        let secs = d.drained_at.get(&kind).copied().unwrap_or(d.secs);
        let s = stats.registry(kind.as_str());
        let rate = if secs > 0.0 {
            delivered as f64 / secs
        } else {
            0.0
        };
        println!(
            "  {:<9} delivered {:>9} in {:>6.2} s = {:>7} records/s; simulator: {} accepted, {} duplicates, {} requests",
            kind.as_str(),
            fmt_int(delivered as u64),
            secs,
            fmt_int(rate as u64),
            fmt_int(s.records_accepted),
            fmt_int(s.duplicates),
            fmt_int(s.batch_requests)
        );
        per_registry.insert(kind.as_str(), rate.round());
    }
    let accepted: u64 = stats.registries.values().map(|s| s.records_accepted).sum();
    let duplicates: u64 = stats.registries.values().map(|s| s.duplicates).sum();
    let credited_ok = accepted == d.delivered as u64;
    println!(
        "  check: delivered {} = simulator accepted {} {}; duplicates {}; not delivered {}",
        fmt_int(d.delivered as u64),
        fmt_int(accepted),
        verdict(credited_ok),
        fmt_int(duplicates),
        fmt_int(d.other as u64)
    );
    println!(
        "\n{} daemon process{} (`hoursync run`; peak RSS is VmHWM, read every {} ms and just before SIGTERM):",
        d.daemons.len(),
        if d.daemons.len() == 1 { "" } else { "es" },
        POLL.as_millis()
    );
    let requests: u64 = stats.registries.values().map(|s| s.batch_requests).sum();
    for (i, x) in d.daemons.iter().enumerate() {
        let m = x.metrics.unwrap_or_default();
        println!(
            "  daemon {} (pid {}): delivered {} = {} records/s; peak RSS {:.1} MB (≤ {GOAL_PEAK_RSS_MB:.0} MB {}); CPU {:.1} s; {} requests, {:.1} ms each on average; SIGTERM: {}",
            i + 1,
            x.pid,
            x.metrics.map_or("?".into(), |m| fmt_int(m.delivered)),
            fmt_int((m.delivered as f64 / d.secs.max(1e-9)) as u64),
            x.peak_mb,
            verdict(x.peak_mb <= GOAL_PEAK_RSS_MB),
            x.cpu_secs,
            fmt_int(m.requests),
            m.request_secs * 1e3 / m.requests.max(1) as f64,
            x.exit
        );
    }
    let loops = d.daemons.len() * RegistryKind::ALL.len();
    let http_secs: f64 = d
        .daemons
        .iter()
        .filter_map(|x| x.metrics)
        .map(|m| m.request_secs)
        .sum();
    println!(
        "  the {loops} dispatch loops ({} per daemon) had {:.0} loop-seconds: {:.0} s ({:.0}%) waiting for the simulator's answers, {:.0} s for the database and the rest; {:.1} ms per batch of {}",
        RegistryKind::ALL.len(),
        loops as f64 * d.secs,
        http_secs,
        100.0 * http_secs / (loops as f64 * d.secs).max(1e-9),
        loops as f64 * d.secs - http_secs,
        loops as f64 * d.secs * 1e3 / requests.max(1) as f64,
        fmt_int(d.delivered as u64 / requests.max(1)),
    );
    println!("{}", d.cpu.render());
    if let Some(samples) = &d.db {
        print!("{}", samples.render(d.secs, requests));
    }
    println!(
        "  the bench read the delivery counts {} times ({:.0} ms each); simulator process peak RSS {:.1} MB (not counted above)",
        d.polls,
        d.poll_secs * 1e3 / d.polls.max(1) as f64,
        sim_peak
    );
    figures["daemons"] = json!(d.daemons.len());
    figures["drain_records_per_s"] = json!((d.delivered as f64 / d.secs.max(1e-9)).round());
    figures["drain_secs"] = json!((d.secs * 100.0).round() / 100.0);
    figures["drain_records_per_s_by_registry"] = json!(per_registry);
    figures["daemon_peak_rss_mb"] = json!(
        d.daemons
            .iter()
            .map(|x| round1(x.peak_mb))
            .collect::<Vec<_>>()
    );
    figures["daemon_delivered"] = json!(
        d.daemons
            .iter()
            .map(|x| x.metrics.map(|m| m.delivered))
            .collect::<Vec<_>>()
    );
    figures["drain_cpu_cores"] = d.cpu.json();
    figures["delivered"] = json!(d.delivered);
    figures["not_delivered"] = json!(d.other);
    figures["sim_accepted"] = json!(accepted);
    figures["sim_duplicates"] = json!(duplicates);
    figures["sim_peak_rss_mb"] = json!(round1(sim_peak));
}

/// The environment of a daemon process: the bench configuration as
/// `HOURSYNC_…` variables (they override any configuration file).
pub(super) fn daemon_env(
    config: &Config,
    admin_port: u16,
) -> anyhow::Result<Vec<(String, String)>> {
    let calendar = std::path::absolute(&config.calendar.dir)?;
    let mut env: Vec<(String, String)> = [
        ("HOURSYNC_DATABASE__URL", config.database.url.clone()),
        (
            "HOURSYNC_DISPATCH__IDLE_POLL_MS",
            config.dispatch.idle_poll_ms.to_string(),
        ),
        (
            "HOURSYNC_DISPATCH__LEASE_MS",
            config.dispatch.lease_ms.to_string(),
        ),
        ("HOURSYNC_SCHEDULE__SCAN", config.schedule.scan.clone()),
        ("HOURSYNC_ADMIN__LISTEN", format!("127.0.0.1:{admin_port}")),
        ("HOURSYNC_LOG__LEVEL", "warn".into()),
        ("HOURSYNC_CALENDAR__DIR", calendar.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (kind, r) in &config.registries {
        let prefix = format!("HOURSYNC_REGISTRIES__{}__", kind.as_str().to_uppercase());
        for (key, value) in [
            ("ENABLED", r.enabled.to_string()),
            ("BASE_URL", r.base_url.clone()),
            (
                "TOKEN_FILE",
                std::path::absolute(&r.token_file)?.display().to_string(),
            ),
            ("RATE_PER_SECOND", r.rate_per_second.to_string()),
            ("MAX_BATCH", r.max_batch.to_string()),
            ("TIMEOUT_MS", r.timeout_ms.to_string()),
        ] {
            env.push((format!("{prefix}{key}"), value));
        }
    }
    Ok(env)
}

/// One daemon process, as it was when the backlog had drained.
struct DaemonFigures {
    pid: u32,
    /// Its own counters, if they could be read.
    metrics: Option<DaemonMetrics>,
    peak_mb: f64,
    cpu_secs: f64,
    /// How it ended after SIGTERM.
    exit: String,
}

pub(super) struct Drain {
    /// From the daemons' start until the database had nothing pending or retrying.
    pub secs: f64,
    pub delivered: i64,
    /// Rows neither delivered nor open (rejected, failed) at the end.
    other: i64,
    delivered_by: BTreeMap<RegistryKind, i64>,
    /// Seconds from the daemons' start until the simulator had credited
    /// every pending record of a registry.
    drained_at: BTreeMap<RegistryKind, f64>,
    /// `delivery_counts` calls and their total time.
    polls: u32,
    poll_secs: f64,
    daemons: Vec<DaemonFigures>,
    cpu: cpu::CpuSplit,
    db: Option<pgsample::DbSamples>,
}

impl Drain {
    /// The highest peak RSS of the daemons, MB.
    pub fn peak_mb(&self) -> f64 {
        self.daemons.iter().map(|x| x.peak_mb).fold(0.0, f64::max)
    }
}

/// Starts `n` daemon processes and runs them until no delivery is pending
/// or retrying; then reads their figures and stops them with SIGTERM.
pub(super) async fn drain(
    config: &Config,
    n: usize,
    db: &BenchDb,
    watcher: &SharedStore,
    sim: &SimChild,
    pending_by: &BTreeMap<RegistryKind, i64>,
) -> anyhow::Result<Drain> {
    let sampler = match db {
        BenchDb::Postgres {
            server_url, name, ..
        } => Some(pgsample::DbSampler::start(server_url, name).await?),
        BenchDb::Sqlite { .. } => None,
    };
    let mut cpu_tracker = cpu::CpuTracker::start();
    let started = Instant::now();
    let mut daemons = Vec::with_capacity(n);
    for _ in 0..n {
        let port = procs::free_port()?;
        daemons.push(DaemonChild::spawn(&daemon_env(config, port)?, port)?);
    }
    let watched = watch_drain(
        watcher,
        sim,
        pending_by,
        started,
        &mut daemons,
        &mut cpu_tracker,
    )
    .await;

    // Read everything before the daemons stop.
    let pids: Vec<u32> = daemons.iter().map(|d| d.pid).collect();
    let cpu_split = cpu_tracker.finish(&pids, sim.pid());
    let mut figures = Vec::with_capacity(n);
    for d in &mut daemons {
        let _ = d.sample();
        figures.push(DaemonFigures {
            pid: d.pid,
            metrics: d.metrics().await.ok(),
            peak_mb: d.peak_mb(),
            cpu_secs: cpu_secs(&d.pid.to_string()).unwrap_or(0.0),
            exit: String::new(),
        });
    }
    let samples = match sampler {
        Some(s) => Some(s.finish().await?),
        None => None,
    };
    for d in &daemons {
        d.signal_term()?;
    }
    for (d, f) in daemons.iter_mut().zip(&mut figures) {
        f.exit = match d.wait_exit().await {
            Ok((status, took)) => format!("{status} after {:.2} s", took.as_secs_f64()),
            Err(e) => format!("{e:#}"),
        };
    }
    let mut d = watched?;
    d.cpu = cpu_split;
    d.daemons = figures;
    d.db = samples;
    Ok(d)
}

/// Follows the drain through the simulator's counters, which cost the
/// daemons nothing, and asks the database (a `GROUP BY` over every
/// delivery) only once the simulator has credited everything, or every
/// few seconds in case some records never will be. Reads each daemon's
/// `VmHWM` on every round.
async fn watch_drain(
    store: &SharedStore,
    sim: &SimChild,
    pending_by: &BTreeMap<RegistryKind, i64>,
    started: Instant,
    daemons: &mut [DaemonChild],
    cpu: &mut cpu::CpuTracker,
) -> anyhow::Result<Drain> {
    let mut d = Drain {
        secs: 0.0,
        delivered: 0,
        other: 0,
        delivered_by: BTreeMap::new(),
        drained_at: BTreeMap::new(),
        polls: 0,
        poll_secs: 0.0,
        daemons: Vec::new(),
        cpu: cpu::CpuSplit::default(),
        db: None,
    };
    let mut credited_before = 0;
    let mut last_progress = Instant::now();
    let mut last_print = Instant::now();
    let mut next_check = Instant::now() + CHECK_EVERY;
    loop {
        tokio::time::sleep(POLL).await;
        for daemon in daemons.iter_mut() {
            daemon.sample()?;
        }
        cpu.sample();
        let stats = sim.stats().await?;
        let elapsed = started.elapsed().as_secs_f64();
        let mut credited = 0;
        for kind in RegistryKind::ALL {
            let s = stats.registry(kind.as_str());
            let n = (s.records_accepted + s.duplicates + s.rejected) as i64;
            credited += n;
            if n >= pending_by.get(&kind).copied().unwrap_or(0) {
                d.drained_at.entry(kind).or_insert(elapsed);
            }
        }
        if credited > credited_before {
            credited_before = credited;
            last_progress = Instant::now();
        }
        if d.drained_at.len() == RegistryKind::ALL.len() || Instant::now() >= next_check {
            next_check = Instant::now() + CHECK_EVERY;
            // What the query sees was true when it started.
            let at = started.elapsed().as_secs_f64();
            let t = Instant::now();
            let counts = store.delivery_counts().await?;
            d.poll_secs += t.elapsed().as_secs_f64();
            d.polls += 1;
            let open = count_of(&counts, |c| {
                matches!(c.state, State::Pending | State::Retrying)
            });
            if !counts.is_empty() && open == 0 {
                d.secs = at;
                d.delivered = count_of(&counts, |c| c.state == State::Delivered);
                d.other = count_of(&counts, |c| {
                    matches!(c.state, State::Rejected | State::Failed)
                });
                for kind in RegistryKind::ALL {
                    let n = count_of(&counts, |c| {
                        c.registry == kind && c.state == State::Delivered
                    });
                    d.delivered_by.insert(kind, n);
                }
                return Ok(d);
            }
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            let rss: Vec<String> = daemons
                .iter()
                .map(|x| format!("{:.0}", kb_to_mb(x.peak_kb)))
                .collect();
            eprintln!(
                "  … {elapsed:.0} s: the simulator holds {} records; daemon peak RSS {} MB",
                fmt_int(credited as u64),
                rss.join(" / ")
            );
            last_print = Instant::now();
        }
        if last_progress.elapsed() > STALL {
            bail!("the simulator received nothing for {STALL:?} ({credited} records so far)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::bench_config;
    use super::*;
    use std::path::Path;

    #[test]
    fn the_daemon_environment_carries_the_bench_config() {
        let c = bench_config(
            Config::default(),
            "postgres://h/db",
            Path::new("/tmp/x/t"),
            4321,
        );
        let env: BTreeMap<String, String> = daemon_env(&c, 9999).unwrap().into_iter().collect();
        assert_eq!(env["HOURSYNC_DATABASE__URL"], "postgres://h/db");
        assert_eq!(
            env["HOURSYNC_REGISTRIES__ENVED__BASE_URL"],
            "http://127.0.0.1:4321/enved"
        );
        assert_eq!(env["HOURSYNC_REGISTRIES__LIFELONG__TOKEN_FILE"], "/tmp/x/t");
        assert_eq!(env["HOURSYNC_REGISTRIES__TEACHER__RATE_PER_SECOND"], "0");
        assert_eq!(env["HOURSYNC_REGISTRIES__TEACHER__MAX_BATCH"], "500");
        assert_eq!(env["HOURSYNC_SCHEDULE__SCAN"], "0 0 0 1 1 *");
        assert_eq!(env["HOURSYNC_ADMIN__LISTEN"], "127.0.0.1:9999");
        assert_eq!(env["HOURSYNC_LOG__LEVEL"], "warn");
        assert!(Path::new(&env["HOURSYNC_CALENDAR__DIR"]).is_absolute());
    }
}
