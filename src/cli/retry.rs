//! `hoursync retry`: one failed or rejected delivery back in the queue.

use super::cli_actor;
use crate::startup::App;

pub async fn run(app: App, delivery_id: i64) -> anyhow::Result<()> {
    let result = crate::resync::retry_one(
        app.store.as_ref(),
        app.clock.as_ref(),
        &cli_actor(),
        delivery_id,
    )
    .await?;
    match result {
        None => anyhow::bail!("no delivery {delivery_id}"),
        Some(Err(state)) => anyhow::bail!(
            "delivery {delivery_id} is {}: only failed or rejected records are retried",
            state.as_str()
        ),
        Some(Ok(was)) => println!("delivery {delivery_id}: {} -> pending", was.as_str()),
    }
    Ok(())
}
