//! `hoursync status`: every completion × registry of one learner.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::NationalId;
use crate::startup::App;

pub async fn run(
    config: Config,
    clock: SharedClock,
    json: bool,
    national_id: &str,
) -> anyhow::Result<()> {
    let id = NationalId::parse(national_id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = App::read_only(config, clock).await?;
    let lines = crate::status::person_status(
        app.store.as_ref(),
        &id,
        app.clock.now_ms(),
        app.config.sla.at_risk(),
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        print!("{}", crate::status::render_text(&id, &lines));
    }
    Ok(())
}
