//! `hoursync bench`: the throughput and memory figures of issue 2, measured
//! and printed (never asserted): import lines/s, scan completions/s,
//! re-import lines/s (the no-op path), end-to-end delivered records/s to the
//! registry simulator on loopback, and the peak RSS of this process after
//! each phase. The simulator runs as a child process so that its memory is
//! not counted; the daemon runs in this process, as it would in production,
//! after the importer's connections are closed (`hoursync import` and
//! `hoursync run` are separate processes). The drain is followed through the
//! simulator's counters, so that watching it costs the daemon next to nothing.

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::dataset::{DatasetSpec, Profile};
use crate::domain::RegistryKind;
use crate::intake::{ImportOptions, import_files};
use crate::simulator::SimStats;
use crate::store::{SharedStore, State, StateCount};
use anyhow::{Context, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const GOAL_IMPORT_LINES_PER_S: f64 = 100_000.0;
const GOAL_SCAN_COMPLETIONS_PER_S: f64 = 100_000.0;
const GOAL_DRAIN_RECORDS_PER_S: f64 = 20_000.0;
const GOAL_PEAK_RSS_MB: f64 = 150.0;

/// How often the drain is checked (through the simulator's counters).
const POLL: Duration = Duration::from_millis(250);
/// How often the database is asked even when the simulator's counters say
/// the drain is not done (records rejected or given up never reach them).
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// The drain gives up when the simulator received nothing for this long.
const STALL: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Eligible delivery records to generate and drain (three per completion).
    #[arg(long, default_value_t = 200_000)]
    pub records: usize,
    /// Working directory for the data, token and database (the bench's own
    /// files in it are replaced).
    #[arg(long, default_value = "bench-data")]
    pub dir: PathBuf,
    /// Measure import and scan only: no simulator, no daemon.
    #[arg(long)]
    pub skip_drain: bool,
}

/// One line of the table.
struct Phase {
    name: &'static str,
    amount: u64,
    unit: &'static str,
    secs: f64,
    /// Goal in `unit`s per second, if the phase has one.
    goal: Option<f64>,
    /// Peak RSS of this process during the phase, MB.
    peak_mb: f64,
}

impl Phase {
    fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.amount as f64 / self.secs
        } else {
            0.0
        }
    }
}

pub async fn run(args: BenchArgs, config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(args.records > 0, "--records must be positive");
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("bench.db");
    let data = dir.join("bench-data.jsonl");
    let token_file = dir.join("bench.token");
    for f in [
        db.clone(),
        with_suffix(&db, "-wal"),
        with_suffix(&db, "-shm"),
        data.clone(),
        token_file.clone(),
    ] {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", f.display()));
            }
            _ => {}
        }
    }
    let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
    write_secret(&token_file, &token)
        .with_context(|| format!("writing {}", token_file.display()))?;
    let peak_reset = reset_peak_rss();
    let mut phases: Vec<Phase> = Vec::new();

    // Data: every completion eligible for all three registries.
    let persons = args.records.div_ceil(12);
    let spec = DatasetSpec {
        persons,
        completions_per_person: 4,
        courses: 120,
        seed: 2026,
        profile: Profile::AllEligible,
        offset: 0,
    };
    let t = Instant::now();
    let summary = crate::dataset::write(spec, &data)
        .with_context(|| format!("writing {}", data.display()))?;
    let generate_secs = t.elapsed().as_secs_f64();
    let data_mb = std::fs::metadata(&data)?.len() as f64 / 1e6;
    println!(
        "hoursync bench: {} learners × 4 completions × 3 registries = {} records; {} ({} lines, {:.1} MB) written in {:.2} s",
        fmt_int(persons as u64),
        fmt_int(summary.completions as u64 * 3),
        data.display(),
        fmt_int(summary.lines as u64),
        data_mb,
        generate_secs
    );

    // The simulator, in its own process, before anything is measured.
    let mut sim = if args.skip_drain {
        None
    } else {
        Some(SimChild::start(&token_file).await?)
    };

    let config = bench_config(config, &db, &token_file, sim.as_ref().map_or(0, |s| s.port));
    let store = crate::daemon::open_store(&config).await?;
    let clock: SharedClock = std::sync::Arc::new(SystemClock);

    // Import into the fresh database.
    reset_peak_rss();
    let t = Instant::now();
    let report = import_files(
        store.as_ref(),
        clock.as_ref(),
        std::slice::from_ref(&data),
        ImportOptions::default(),
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.rejected == 0,
        "the generated data had {} rejected lines: {:?}",
        report.rejected,
        report.errors.first()
    );
    phases.push(Phase {
        name: "import",
        amount: report.lines as u64,
        unit: "lines",
        secs,
        goal: Some(GOAL_IMPORT_LINES_PER_S),
        peak_mb: peak_rss_mb(),
    });

    // Scan everything just imported.
    reset_peak_rss();
    let t = Instant::now();
    let scan = crate::scan::scan_once(store.as_ref(), clock.as_ref()).await?;
    let secs = t.elapsed().as_secs_f64();
    phases.push(Phase {
        name: "scan",
        amount: scan.completions as u64,
        unit: "completions",
        secs,
        goal: Some(GOAL_SCAN_COMPLETIONS_PER_S),
        peak_mb: peak_rss_mb(),
    });
    let counts = store.delivery_counts().await?;
    let pending = count_of(&counts, |c| c.state == State::Pending);
    let pending_by: BTreeMap<RegistryKind, i64> = RegistryKind::ALL
        .into_iter()
        .map(|k| {
            (
                k,
                count_of(&counts, |c| c.registry == k && c.state == State::Pending),
            )
        })
        .collect();

    // The same file again: nothing may change.
    reset_peak_rss();
    let t = Instant::now();
    let again = import_files(
        store.as_ref(),
        clock.as_ref(),
        std::slice::from_ref(&data),
        ImportOptions::default(),
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    phases.push(Phase {
        name: "re-import",
        amount: again.lines as u64,
        unit: "lines",
        secs,
        goal: None,
        peak_mb: peak_rss_mb(),
    });
    let rescan = crate::scan::scan_once(store.as_ref(), clock.as_ref()).await?;
    // `hoursync import` and `hoursync run` are separate processes: close
    // the importer's connections (and their page caches) before the daemon
    // starts, and watch the drain through a single connection.
    drop(store);

    // Drain every pending record through the daemon.
    let drained = match sim.as_mut() {
        Some(sim) => {
            let mut watch_config = config.clone();
            watch_config.database.max_connections = 1;
            let watcher = crate::daemon::open_store(&watch_config).await?;
            reset_peak_rss();
            let d = drain(&config, &watcher, sim, &pending_by, clock.clone()).await?;
            phases.push(Phase {
                name: "drain",
                amount: d.delivered as u64,
                unit: "records",
                secs: d.secs,
                goal: Some(GOAL_DRAIN_RECORDS_PER_S),
                peak_mb: peak_rss_mb(),
            });
            let stats = sim.stats().await?;
            let sim_peak = sim.peak_rss_mb();
            Some((d, stats, sim_peak))
        }
        None => None,
    };
    if let Some(mut sim) = sim.take() {
        sim.stop().await;
    }
    let peak = phases
        .iter()
        .map(|p| p.peak_mb)
        .fold(peak_rss_mb(), f64::max);

    // The table.
    println!();
    println!(
        "{:<10} {:>20} {:>9} {:>24} {:>18} {:>10}",
        "phase", "amount", "time", "rate", "goal", "peak RSS"
    );
    for p in &phases {
        let goal = match p.goal {
            Some(g) => format!("≥ {} {}", fmt_int(g as u64), verdict(p.rate() >= g)),
            None => String::new(),
        };
        println!(
            "{:<10} {:>20} {:>7.2} s {:>24} {:>18} {:>7.1} MB",
            p.name,
            format!("{} {}", fmt_int(p.amount), p.unit),
            p.secs,
            format!("{} {}/s", fmt_int(p.rate() as u64), p.unit),
            goal,
            p.peak_mb
        );
    }
    println!(
        "{:<10} {:>20} {:>9} {:>24} {:>18} {:>7.1} MB{}",
        "peak RSS",
        "",
        "",
        "",
        format!(
            "≤ {GOAL_PEAK_RSS_MB:.0} MB {}",
            verdict(peak <= GOAL_PEAK_RSS_MB)
        ),
        peak,
        if peak_reset {
            ""
        } else {
            "  (VmHWM could not be reset: figures are cumulative)"
        }
    );
    println!(
        "import: {} rows changed; scan: {} rows written, {} pending; re-import: {} rows changed, {} completions rescanned",
        fmt_int(report.changed),
        fmt_int(scan.rows_written as u64),
        fmt_int(pending as u64),
        fmt_int(again.changed),
        fmt_int(rescan.completions as u64)
    );

    let mut figures = json!({
        "records": args.records,
        "lines": report.lines,
        "completions": scan.completions,
        "pending": pending,
        "import_lines_per_s": phases[0].rate().round(),
        "scan_completions_per_s": phases[1].rate().round(),
        "reimport_lines_per_s": phases[2].rate().round(),
        "reimport_rows_changed": again.changed,
        "peak_rss_mb": round1(peak),
        "peak_rss_mb_by_phase": phases.iter().map(|p| (p.name, round1(p.peak_mb))).collect::<BTreeMap<_, _>>(),
    });
    if let Some((d, stats, sim_peak)) = &drained {
        println!(
            "\ndrain by registry (the three run at once; time from daemon start until the simulator had credited all of the registry's records):"
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
                "  {:<9} delivered {:>8} in {:>6.2} s = {:>7} records/s; simulator: {} accepted, {} duplicates, {} requests",
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
            "  the bench read the delivery counts {} times ({:.0} ms each); simulator process peak RSS {:.1} MB (not counted above)",
            d.polls,
            d.poll_secs * 1e3 / d.polls.max(1) as f64,
            sim_peak
        );
        figures["drain_records_per_s"] = json!(phases[3].rate().round());
        figures["drain_secs"] = json!((d.secs * 100.0).round() / 100.0);
        figures["drain_records_per_s_by_registry"] = json!(per_registry);
        figures["delivered"] = json!(d.delivered);
        figures["not_delivered"] = json!(d.other);
        figures["sim_accepted"] = json!(accepted);
        figures["sim_duplicates"] = json!(duplicates);
        figures["sim_peak_rss_mb"] = json!(round1(*sim_peak));
    }
    figures["goals_met"] = json!(goals_met(&phases, peak));
    println!("\n{figures}");
    Ok(())
}

fn goals_met(phases: &[Phase], peak: f64) -> bool {
    phases.iter().all(|p| p.goal.is_none_or(|g| p.rate() >= g)) && peak <= GOAL_PEAK_RSS_MB
}

/// The passed configuration, pointed at the bench database and the
/// simulator, with rate limits off and the cron scan out of the way.
fn bench_config(mut config: Config, db: &Path, token_file: &Path, port: u16) -> Config {
    config.database.url = format!("sqlite://{}?mode=rwc", db.display());
    config.schedule.scan = "0 0 0 1 1 *".into();
    config.dispatch.idle_poll_ms = 50;
    config.dispatch.lease_ms = config.dispatch.lease_ms.max(30_000);
    for (kind, r) in config.registries.iter_mut() {
        r.enabled = true;
        r.base_url = format!("http://127.0.0.1:{port}/{kind}");
        r.token_file = token_file.to_path_buf();
        r.rate_per_second = 0;
        r.max_batch = 500;
        r.timeout_ms = 10_000;
    }
    config
}

struct Drain {
    /// From daemon start until the database had nothing pending or retrying.
    secs: f64,
    delivered: i64,
    /// Rows neither delivered nor open (rejected, failed) at the end.
    other: i64,
    delivered_by: BTreeMap<RegistryKind, i64>,
    /// Seconds from daemon start until the simulator had credited every
    /// pending record of a registry.
    drained_at: BTreeMap<RegistryKind, f64>,
    /// `delivery_counts` calls and their total time.
    polls: u32,
    poll_secs: f64,
}

/// Runs the daemon until no delivery is pending or retrying.
async fn drain(
    config: &Config,
    watcher: &SharedStore,
    sim: &SimChild,
    pending_by: &BTreeMap<RegistryKind, i64>,
    clock: SharedClock,
) -> anyhow::Result<Drain> {
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let daemon = tokio::spawn(crate::daemon::run(config.clone(), clock, shutdown.clone()));
    let watched = watch_drain(watcher, sim, pending_by, started, &daemon).await;
    shutdown.cancel();
    let stopped = daemon.await;
    let drain = watched?;
    stopped
        .context("the daemon task panicked")?
        .context("the daemon failed")?;
    Ok(drain)
}

/// Follows the drain through the simulator's counters, which cost the
/// daemon nothing, and asks the database (a `GROUP BY` over every delivery:
/// hundreds of milliseconds and a full page cache at this size) only once
/// the simulator has credited everything, or every few seconds in case
/// some records never will be.
async fn watch_drain(
    store: &SharedStore,
    sim: &SimChild,
    pending_by: &BTreeMap<RegistryKind, i64>,
    started: Instant,
    daemon: &JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<Drain> {
    let mut d = Drain {
        secs: 0.0,
        delivered: 0,
        other: 0,
        delivered_by: BTreeMap::new(),
        drained_at: BTreeMap::new(),
        polls: 0,
        poll_secs: 0.0,
    };
    let mut credited_before = 0;
    let mut last_progress = Instant::now();
    let mut last_print = Instant::now();
    let mut next_check = Instant::now() + CHECK_EVERY;
    loop {
        tokio::time::sleep(POLL).await;
        if daemon.is_finished() {
            bail!("the daemon stopped before the backlog drained");
        }
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
        if last_print.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "  … {elapsed:.0} s: the simulator holds {} records",
                fmt_int(credited as u64)
            );
            last_print = Instant::now();
        }
        if last_progress.elapsed() > STALL {
            bail!("the simulator received nothing for {STALL:?} ({credited} records so far)");
        }
    }
}

fn count_of(counts: &[StateCount], f: impl Fn(&StateCount) -> bool) -> i64 {
    counts.iter().filter(|c| f(c)).map(|c| c.count).sum()
}

/// `hoursync simulate` as a child process, killed when dropped.
struct SimChild {
    child: tokio::process::Child,
    port: u16,
}

impl SimChild {
    async fn start(token_file: &Path) -> anyhow::Result<Self> {
        let port = {
            let probe =
                std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
            probe.local_addr()?.port()
        };
        let exe = std::env::current_exe().context("locating the hoursync executable")?;
        let child = tokio::process::Command::new(exe)
            .arg("simulate")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--token-file")
            .arg(token_file)
            .args(["--rate", "0", "--burst", "1000000"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the registry simulator")?;
        let mut sim = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = sim.child.try_wait()? {
                bail!("the registry simulator exited at start ({status})");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(sim);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the registry simulator did not listen on port {port} within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stats(&self) -> anyhow::Result<SimStats> {
        let url = format!("http://127.0.0.1:{}/_sim/stats", self.port);
        let response = reqwest::get(&url)
            .await
            .with_context(|| format!("GET {url}"))?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {url}: HTTP {}",
            response.status()
        );
        response
            .json()
            .await
            .with_context(|| format!("reading {url}"))
    }

    fn peak_rss_mb(&self) -> f64 {
        self.child
            .id()
            .and_then(|pid| vm_hwm_kb(&format!("/proc/{pid}/status")))
            .map_or(0.0, |kb| kb as f64 / 1024.0)
    }

    async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Peak resident set size of this process, MB (`VmHWM`).
fn peak_rss_mb() -> f64 {
    vm_hwm_kb("/proc/self/status").map_or(0.0, |kb| kb as f64 / 1024.0)
}

fn vm_hwm_kb(status_path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0), so each phase reports
/// its own peak. False when the kernel refused.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut f, secret.as_bytes())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// 1234567 → "1,234,567".
fn fmt_int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_int(1_000), "1,000");
        assert_eq!(fmt_int(200_004), "200,004");
        assert_eq!(fmt_int(1_234_567), "1,234,567");
    }

    #[test]
    fn the_bench_config_points_everything_at_the_simulator() {
        let c = bench_config(
            Config::default(),
            Path::new("/tmp/x/bench.db"),
            Path::new("/tmp/x/t"),
            4321,
        );
        assert_eq!(c.database.url, "sqlite:///tmp/x/bench.db?mode=rwc");
        for (kind, r) in &c.registries {
            assert_eq!(r.base_url, format!("http://127.0.0.1:4321/{kind}"));
            assert_eq!(r.rate_per_second, 0);
        }
    }
}
