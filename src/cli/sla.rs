//! `hoursync sla due|report`: the 3-working-day promise.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::RegistryKind;
use crate::startup::App;

pub async fn due(config: Config, clock: SharedClock, from: &str) -> anyhow::Result<()> {
    let from = chrono::DateTime::parse_from_rfc3339(from).map_err(|e| {
        anyhow::anyhow!("--from {from:?} is not an RFC 3339 time with an offset: {e}")
    })?;
    let app = App::read_only(config, clock).await?;
    let calendar = crate::calendar::load(app.store.as_ref()).await?;
    let due = crate::sla::due_at(&calendar, from.to_utc());
    if due.fallback_used {
        eprintln!(
            "warning: a date on the way is not in the loaded office calendar: counted Monday to Friday"
        );
    }
    println!("{}", due.at.to_rfc3339());
    Ok(())
}

pub async fn report(
    app: App,
    registry: Option<RegistryKind>,
    since: Option<chrono::NaiveDate>,
    json: bool,
    limit: usize,
) -> anyhow::Result<()> {
    let since_ms = since.map(crate::clock::taipei_midnight_ms);
    let filter = crate::store::SlaFilter { registry, since_ms };
    let report = crate::sla_report::build(
        app.store.as_ref(),
        app.clock.now_ms(),
        app.config.sla.at_risk_ms(),
        filter,
        limit,
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::sla_report::render_text(&report));
    }
    Ok(())
}
