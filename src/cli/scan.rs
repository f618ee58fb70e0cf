//! `hoursync scan`: one scan pass now, its report as JSON.

use crate::startup::App;

pub async fn run(app: App) -> anyhow::Result<()> {
    let report = crate::scan::scan_once(app.store.as_ref(), app.clock.as_ref()).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
