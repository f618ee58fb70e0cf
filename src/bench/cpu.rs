//! Where the machine's CPU went during the drain: every process's CPU time
//! (`/proc/*/stat`), sampled while it runs, split into the daemons,
//! the simulator, PostgreSQL, the bench itself and anything else running
//! on the machine (which, on a shared machine, competes for the same cores).

use super::procs::{all_processes_cpu, machine_cpu_secs};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Follows the CPU time of the machine and of every process, sampled
/// often enough ([`CpuTracker::sample`]) that processes which start and end
/// during the drain (someone's compiler, a test run) are counted too.
pub(super) struct CpuTracker {
    at: Instant,
    machine_busy: f64,
    machine_total: f64,
    /// pid → (command name, start time, CPU seconds when first seen, when last seen).
    procs: HashMap<u32, (String, u64, f64, f64)>,
}

impl CpuTracker {
    pub fn start() -> Self {
        let (machine_busy, machine_total) = machine_cpu_secs().unwrap_or((0.0, 0.0));
        let procs = all_processes_cpu()
            .into_iter()
            .map(|(pid, p)| (pid, (p.name, p.started, p.cpu, p.cpu)))
            .collect();
        Self {
            at: Instant::now(),
            machine_busy,
            machine_total,
            procs,
        }
    }

    pub fn sample(&mut self) {
        for (pid, p) in all_processes_cpu() {
            match self.procs.get_mut(&pid) {
                Some((name, started, _, last)) if *started == p.started => {
                    // A program may exec another under the same pid.
                    *name = p.name;
                    *last = p.cpu;
                }
                // New since the start: all of its CPU time is the drain's.
                _ => {
                    self.procs.insert(pid, (p.name, p.started, 0.0, p.cpu));
                }
            }
        }
    }

    pub fn finish(mut self, daemon_pids: &[u32], sim_pid: Option<u32>) -> CpuSplit {
        self.sample();
        let (busy, total) = machine_cpu_secs().unwrap_or((0.0, 0.0));
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let mut split = CpuSplit {
            cores: (total - self.machine_total) / wall,
            machine: (busy - self.machine_busy) / wall,
            ..CpuSplit::default()
        };
        let me = std::process::id();
        let mut others: BTreeMap<String, f64> = BTreeMap::new();
        for (pid, (name, _, first, last)) in &self.procs {
            let used = (last - first).max(0.0) / wall;
            if daemon_pids.contains(pid) {
                split.daemons += used;
            } else if Some(*pid) == sim_pid {
                split.sim += used;
            } else if *pid == me {
                split.bench += used;
            } else if name == "postgres" {
                split.postgres += used;
            } else if used > 0.0 {
                *others.entry(name.clone()).or_default() += used;
            }
        }
        split.others = others.into_iter().collect();
        split.others.sort_by(|x, y| y.1.total_cmp(&x.1));
        split
    }
}

/// CPU of the drain, in cores busy on average.
#[derive(Default)]
pub(super) struct CpuSplit {
    cores: f64,
    machine: f64,
    daemons: f64,
    sim: f64,
    postgres: f64,
    bench: f64,
    /// Other processes by command name, most first.
    others: Vec<(String, f64)>,
}

impl CpuSplit {
    fn other_total(&self) -> f64 {
        self.others.iter().map(|(_, x)| x).sum()
    }

    /// Busy time no process accounts for: interrupts, processes that
    /// lived between two samples (the readings are not taken at the same
    /// instant, so a few hundredths either way are noise: shown as 0).
    fn unaccounted(&self) -> f64 {
        (self.machine - self.daemons - self.sim - self.postgres - self.bench - self.other_total())
            .max(0.0)
    }

    pub fn render(&self) -> String {
        let top: Vec<String> = self
            .others
            .iter()
            .take(4)
            .map(|(n, x)| format!("{n} {x:.2}"))
            .collect();
        format!(
            "  CPU during the drain, in cores busy on average (of {:.0}): {:.2} = daemons {:.2} + simulator {:.2}{} + bench {:.2} + other programs {:.2} ({}) + unaccounted {:.2}",
            self.cores,
            self.machine,
            self.daemons,
            self.sim,
            if self.postgres > 0.0 {
                format!(" + PostgreSQL {:.2}", self.postgres)
            } else {
                String::new()
            },
            self.bench,
            self.other_total(),
            if top.is_empty() {
                "none".to_string()
            } else {
                top.join(", ")
            },
            self.unaccounted()
        )
    }

    pub fn json(&self) -> serde_json::Value {
        let r = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "machine": r(self.machine),
            "daemons": r(self.daemons),
            "simulator": r(self.sim),
            "postgres": r(self.postgres),
            "bench": r(self.bench),
            "other_programs": r(self.other_total()),
            "unaccounted": r(self.unaccounted()),
        })
    }
}
