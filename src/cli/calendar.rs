//! `hoursync calendar import|show`: the office calendar the working days
//! are counted on.

use crate::startup::App;
use std::path::Path;

pub async fn import(app: App, file: &Path, dry_run: bool) -> anyhow::Result<()> {
    let summary =
        crate::calendar::import(app.store.as_ref(), file, dry_run, app.clock.now_ms()).await?;
    println!("{summary}");
    Ok(())
}

pub async fn show(app: App, json: bool) -> anyhow::Result<()> {
    let calendar = crate::calendar::load(app.store.as_ref()).await?;
    if json {
        let years: Vec<_> = calendar
            .years()
            .map(|y| {
                serde_json::json!({
                    "year": y.year(),
                    "days_off": y.days_off(),
                    "working_days": y.working_days(),
                })
            })
            .collect();
        let shown = serde_json::json!({
            "years": years,
            "covered_until": calendar.covered_until(),
        });
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    for y in calendar.years() {
        println!(
            "{}: {} days off, {} working days",
            y.year(),
            y.days_off(),
            y.working_days()
        );
    }
    match calendar.covered_until() {
        Some(d) => println!("covered until {d}"),
        None => println!("no calendar loaded: working days are counted Monday to Friday"),
    }
    Ok(())
}
