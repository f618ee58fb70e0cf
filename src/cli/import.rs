//! `hoursync import`: JSON Lines files of learning data (INTAKE.md).

use super::EXIT_REJECTED;
use crate::intake::{ImportOptions, import_files};
use crate::startup::App;
use std::path::PathBuf;
use std::process::ExitCode;

pub async fn run(app: App, strict: bool, files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let opts = ImportOptions {
        strict,
        progress: true,
        max_future_days: app.config.intake.max_future_days,
    };
    let report = import_files(app.store.as_ref(), app.clock.as_ref(), &files, opts).await?;
    for e in &report.errors {
        eprintln!("{e}");
    }
    if report.rejected > report.errors.len() {
        eprintln!(
            "… and {} more rejected lines",
            report.rejected - report.errors.len()
        );
    }
    for f in &report.files_skipped {
        eprintln!("{f}: nothing applied (--strict)");
    }
    println!(
        "{} lines read, {} applied ({} rows changed), {} rejected",
        report.lines, report.applied, report.changed, report.rejected
    );
    if report.rejected > 0 {
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}
