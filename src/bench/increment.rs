//! `--scan-increment N`: N new completions (of new learners) imported into
//! the full tables, and the scan of just those changes timed, to show that
//! its cost follows what changed rather than the size of the tables. Then a
//! scan that finds nothing changed.

use super::fmt_int;
use crate::clock::Clock;
use crate::dataset::DatasetSpec;
use crate::intake::{ImportOptions, import_files};
use crate::store::Store;
use anyhow::Context;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

/// Goal: the scan of an increment takes at most this long, whatever the table size.
pub(super) const GOAL_SCAN_INCREMENT_SECS: f64 = 0.3;

pub(super) struct Increment {
    pub completions_asked: usize,
    pub learners: usize,
    pub lines: usize,
    pub import_secs: f64,
    /// Table sizes when the scan ran (completions include the new ones;
    /// deliveries are those written before it).
    pub table_completions: i64,
    pub table_deliveries: i64,
    pub scanned: usize,
    pub rows_written: usize,
    pub scan_secs: f64,
    /// `scan_window` + `changed_completions` alone, timed before the scan
    /// (which then runs them again, then one `scan_chunk` per
    /// [`crate::scan::CHUNK`] completions).
    pub find_secs: f64,
    pub idle_scanned: usize,
    pub idle_scan_secs: f64,
    /// Where the scan of the changes spent its time (see [`crate::scan::stages`]).
    pub stages: Vec<(&'static str, f64)>,
}

impl Increment {
    pub fn render(&self) -> String {
        let v = |secs: f64| super::verdict(secs <= GOAL_SCAN_INCREMENT_SECS);
        format!(
            "scan increment: {} new completions of {} new learners ({} lines) imported in {:.2} s\n\
             scan of {} changes on a table of {} completions / {} deliveries: {:.3} s ({} rows written)  goal ≤ {GOAL_SCAN_INCREMENT_SECS:.1} s {}\n\
             \x20 of which finding the changes (scan_window + changed_completions, timed alone) {:.3} s; the rest ({} scan_chunk calls, the calendar, the cursor) ≈ {:.3} s ({:.0} ms per chunk)\n\
             \x20 stages: {}\n\
             scan with nothing changed ({} completions): {:.3} s  goal ≤ {GOAL_SCAN_INCREMENT_SECS:.1} s {}",
            fmt_int(self.completions_asked as u64),
            fmt_int(self.learners as u64),
            fmt_int(self.lines as u64),
            self.import_secs,
            fmt_int(self.scanned as u64),
            fmt_int(self.table_completions.max(0) as u64),
            fmt_int(self.table_deliveries.max(0) as u64),
            self.scan_secs,
            fmt_int(self.rows_written as u64),
            v(self.scan_secs),
            self.find_secs,
            self.chunks(),
            (self.scan_secs - self.find_secs).max(0.0),
            (self.scan_secs - self.find_secs).max(0.0) * 1e3 / self.chunks().max(1) as f64,
            super::render_stages(&self.stages),
            self.idle_scanned,
            self.idle_scan_secs,
            v(self.idle_scan_secs),
        )
    }

    fn chunks(&self) -> usize {
        self.scanned.div_ceil(crate::scan::CHUNK)
    }

    pub fn met(&self) -> bool {
        self.scan_secs <= GOAL_SCAN_INCREMENT_SECS
            && self.idle_scan_secs <= GOAL_SCAN_INCREMENT_SECS
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "completions": self.scanned,
            "table_completions": self.table_completions,
            "table_deliveries": self.table_deliveries,
            "import_secs": round3(self.import_secs),
            "scan_secs": round3(self.scan_secs),
            "find_changes_secs": round3(self.find_secs),
            "rows_written": self.rows_written,
            "idle_scan_secs": round3(self.idle_scan_secs),
            "stage_secs": super::stages_json(&self.stages),
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Imports `n` new completions after the `first` data set and times their scan.
pub(super) async fn run(
    store: &dyn Store,
    clock: &dyn Clock,
    dir: &Path,
    first: DatasetSpec,
    n: usize,
) -> anyhow::Result<Increment> {
    let spec = DatasetSpec {
        persons: n.div_ceil(first.completions_per_person),
        // Another seed: other national IDs. Its courses would differ from
        // the first set's too, and a changed course rescans every completion
        // of it, so only learners, accounts and completions are kept.
        seed: first.seed + 1,
        offset: first.offset + first.persons,
        ..first
    };
    let raw = dir.join("bench-increment-all.jsonl");
    let data = dir.join("bench-increment.jsonl");
    crate::dataset::write(spec, &raw).with_context(|| format!("writing {}", raw.display()))?;
    let lines = keep_learners_only(&raw, &data)?;
    std::fs::remove_file(&raw).ok();

    let t = Instant::now();
    let report = import_files(
        store,
        clock,
        std::slice::from_ref(&data),
        ImportOptions::default(),
    )
    .await?;
    let import_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.rejected == 0,
        "the increment had {} rejected lines: {:?}",
        report.rejected,
        report.errors.first()
    );
    let tables = store.table_counts().await?;

    let t = Instant::now();
    let (from, to) = store.scan_window().await?;
    let found = store.changed_completions(from, to).await?.len();
    let find_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    crate::scan::stages::take();
    let scan = crate::scan::scan_once(store, clock).await?;
    let stages = crate::scan::stages::take();
    anyhow::ensure!(
        scan.completions == found,
        "the scan judged {} completions, changed_completions found {found}",
        scan.completions
    );
    let scan_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let idle = crate::scan::scan_once(store, clock).await?;
    let idle_scan_secs = t.elapsed().as_secs_f64();
    Ok(Increment {
        completions_asked: spec.persons * spec.completions_per_person,
        learners: spec.persons,
        lines,
        import_secs,
        table_completions: tables.completions,
        table_deliveries: tables.deliveries,
        scanned: scan.completions,
        rows_written: scan.rows_written,
        scan_secs,
        find_secs,
        idle_scanned: idle.completions,
        idle_scan_secs,
        stages,
    })
}

/// Copies the person, account and completion lines of `from` to `to`.
fn keep_learners_only(from: &Path, to: &Path) -> anyhow::Result<usize> {
    let input = std::io::BufReader::new(std::fs::File::open(from)?);
    let mut out = std::io::BufWriter::new(std::fs::File::create(to)?);
    let mut kept = 0;
    for line in input.lines() {
        let line = line?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        if matches!(
            v["type"].as_str(),
            Some("person" | "account" | "completion")
        ) {
            writeln!(out, "{line}")?;
            kept += 1;
        }
    }
    out.flush()?;
    Ok(kept)
}
