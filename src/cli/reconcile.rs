//! `hoursync reconcile`: the nightly lookups and repairs, by hand.

use super::{cli_actor, progress_spinner};
use crate::domain::RegistryKind;
use crate::startup::App;

pub async fn run(
    app: App,
    registry: Option<RegistryKind>,
    since: Option<chrono::NaiveDate>,
    all: bool,
    json: bool,
) -> anyhow::Result<()> {
    let mut opts = crate::reconcile::nightly_options(&app.config.reconcile, app.clock.now_ms());
    opts.registry = registry;
    if let Some(d) = since {
        opts.since_ms = crate::clock::taipei_midnight_ms(d);
    }
    if all {
        opts.sample_percent = 100.0;
    }
    let app = app.with_registries()?;
    let spinner = progress_spinner("reconcile: looking records up".into());
    let report = crate::reconcile::run_audited(
        app.store.as_ref(),
        app.clock.as_ref(),
        &app.registries,
        opts,
        app.config.history.retention(),
        &cli_actor(),
    )
    .await;
    spinner.finish_and_clear();
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for r in &report.repairs {
        println!("{r}");
    }
    let checked: usize = report.checked.values().sum();
    println!(
        "checked {checked}, repaired {}, lookup errors {}, skipped {} (a registry kept failing), changed meanwhile {}",
        report.repairs.len(),
        report.lookup_errors,
        report.skipped.values().sum::<usize>(),
        report.superseded
    );
    Ok(())
}
