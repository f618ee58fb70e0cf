//! The bench's child processes: the registry simulator and the daemons
//! (`hoursync run`), and what `/proc` says about any process: peak RSS
//! (`VmHWM`) and CPU time.

use crate::simulator::SimStats;
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A free TCP port on loopback (bound, then released for the child).
pub(super) fn free_port() -> anyhow::Result<u16> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(probe.local_addr()?.port())
}

async fn wait_listening(
    child: &mut tokio::process::Child,
    port: u16,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited at start ({status})");
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `hoursync simulate` as a child process, killed when dropped.
pub(super) struct SimChild {
    child: tokio::process::Child,
    pub port: u16,
}

impl SimChild {
    pub async fn start(token_file: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
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
        wait_listening(&mut sim.child, port, "the registry simulator").await?;
        Ok(sim)
    }

    pub async fn stats(&self) -> anyhow::Result<SimStats> {
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

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn peak_rss_mb(&self) -> f64 {
        self.pid().and_then(vm_hwm_kb).map_or(0.0, kb_to_mb)
    }

    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// One `hoursync run` process, configured through the environment; killed
/// (SIGKILL) when dropped, stopped with SIGTERM by [`DaemonChild::terminate`].
pub(super) struct DaemonChild {
    child: tokio::process::Child,
    pub pid: u32,
    pub admin_port: u16,
    /// Highest `VmHWM` read so far, kB.
    pub peak_kb: u64,
}

impl DaemonChild {
    pub fn spawn(env: &[(String, String)], admin_port: u16) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the hoursync executable")?;
        let child = tokio::process::Command::new(exe)
            .arg("run")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting a daemon (hoursync run)")?;
        let pid = child.id().context("the daemon has no pid")?;
        Ok(Self {
            child,
            pid,
            admin_port,
            peak_kb: 0,
        })
    }

    /// Reads `VmHWM` (keeping the highest) and fails if the process is gone.
    pub fn sample(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "daemon {} exited before the backlog drained ({status})",
                self.pid
            );
        }
        if let Some(kb) = vm_hwm_kb(self.pid) {
            self.peak_kb = self.peak_kb.max(kb);
        }
        Ok(())
    }

    pub fn peak_mb(&self) -> f64 {
        kb_to_mb(self.peak_kb)
    }

    /// The daemon's own metrics (Prometheus text) from its admin server.
    pub async fn metrics(&self) -> anyhow::Result<DaemonMetrics> {
        let url = format!("http://127.0.0.1:{}/metrics", self.admin_port);
        let response = reqwest::get(&url)
            .await
            .with_context(|| format!("GET {url}"))?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {url}: HTTP {}",
            response.status()
        );
        Ok(DaemonMetrics::parse(&response.text().await?))
    }

    /// Sends SIGTERM (`kill -TERM`).
    pub fn signal_term(&self) -> anyhow::Result<()> {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        anyhow::ensure!(sent.success(), "kill -TERM {} failed ({sent})", self.pid);
        Ok(())
    }

    /// Waits for the exit after [`DaemonChild::signal_term`] (SIGKILL after
    /// [`STOP_TIMEOUT`]); the exit status and how long it took.
    pub async fn wait_exit(&mut self) -> anyhow::Result<(ExitStatus, Duration)> {
        let t = Instant::now();
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => Ok((status?, t.elapsed())),
            Err(_) => {
                self.child.kill().await?;
                bail!("did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed)")
            }
        }
    }
}

/// What the bench reads from a daemon's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct DaemonMetrics {
    /// Records it delivered (`hoursync_deliveries_total{outcome="delivered"}`).
    pub delivered: u64,
    /// Batch requests to the registries, and their total time, seconds.
    pub requests: u64,
    pub request_secs: f64,
}

impl DaemonMetrics {
    fn parse(text: &str) -> Self {
        Self {
            delivered: metric_sum(text, "hoursync_deliveries_total", "outcome=\"delivered\"")
                as u64,
            requests: metric_sum(text, "hoursync_registry_request_duration_seconds_count", "")
                as u64,
            request_secs: metric_sum(text, "hoursync_registry_request_duration_seconds_sum", ""),
        }
    }
}

/// Sum over the series of `name` whose labels contain `label` (a
/// Prometheus text exposition).
fn metric_sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
                && l.contains(label)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(super) fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// `VmHWM` of a process, kB.
pub(super) fn vm_hwm_kb(pid: u32) -> Option<u64> {
    status_field_kb(&format!("/proc/{pid}/status"), "VmHWM:")
}

/// Peak resident set size of this process, MB (`VmHWM`).
pub(super) fn own_peak_rss_mb() -> f64 {
    status_field_kb("/proc/self/status", "VmHWM:").map_or(0.0, kb_to_mb)
}

fn status_field_kb(status_path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets this process's `VmHWM` to its current RSS (Linux ≥ 4.0), so each
/// phase reports its own peak. False when the kernel refused.
pub(super) fn reset_own_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// User + system CPU seconds of a process (`"self"` or a pid).
pub(super) fn cpu_secs(pid: &str) -> Option<f64> {
    parse_stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // The command name is in parentheses and may hold spaces: start after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted after the name: state is field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_S)
}

/// The machine's busy and total CPU seconds so far (`/proc/stat`, all cores).
pub(super) fn machine_cpu_secs() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((
        (total - idle) as f64 / TICKS_PER_S,
        total as f64 / TICKS_PER_S,
    ))
}

/// A process as `/proc/PID/stat` shows it.
pub(super) struct ProcCpu {
    /// The command name, without a kernel thread's `/…` suffix.
    pub name: String,
    /// When it started (clock ticks after boot): a pid with another start
    /// time is another process.
    pub started: u64,
    /// CPU seconds so far.
    pub cpu: f64,
}

/// Every process now, by pid.
pub(super) fn all_processes_cpu() -> HashMap<u32, ProcCpu> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if a >= b {
            continue;
        }
        let name = stat[a + 1..b].split('/').next().unwrap_or("").to_string();
        // Field 22 of proc(5), counted after the name: state is field 3.
        let started = stat[b + 1..]
            .split_whitespace()
            .nth(19)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        if let Some(cpu) = parse_stat_cpu(&stat) {
            out.insert(pid, ProcCpu { name, started, cpu });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_metrics_are_summed_over_registries() {
        let text = "# TYPE hoursync_deliveries_total counter\n\
            hoursync_deliveries_total{registry=\"lifelong\",outcome=\"delivered\"} 1500\n\
            hoursync_deliveries_total{registry=\"enved\",outcome=\"delivered\"} 500\n\
            hoursync_deliveries_total{registry=\"enved\",outcome=\"retrying\"} 7\n\
            hoursync_retries_total{registry=\"enved\"} 7\n\
            hoursync_registry_request_duration_seconds_sum{registry=\"enved\",status=\"200\"} 1.5\n\
            hoursync_registry_request_duration_seconds_count{registry=\"enved\",status=\"200\"} 3\n\
            hoursync_registry_request_duration_seconds_sum{registry=\"teacher\",status=\"200\"} 0.5\n\
            hoursync_registry_request_duration_seconds_count{registry=\"teacher\",status=\"200\"} 1\n";
        let m = DaemonMetrics::parse(text);
        assert_eq!(
            m,
            DaemonMetrics {
                delivered: 2000,
                requests: 4,
                request_secs: 2.0
            }
        );
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "4242 (tokio (worker) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1 2 3";
        assert_eq!(parse_stat_cpu(stat), Some(3.0));
        assert!(cpu_secs("self").is_some());
        assert!(machine_cpu_secs().is_some_and(|(busy, total)| busy <= total));
        assert!(all_processes_cpu().contains_key(&std::process::id()));
    }
}
