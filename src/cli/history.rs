//! `hoursync history`: every request made for one delivery.

use crate::startup::App;
use crate::status::AttemptLine;

pub async fn run(app: App, delivery_id: i64, json: bool) -> anyhow::Result<()> {
    let Some(d) = app.store.delivery(delivery_id).await? else {
        anyhow::bail!("no delivery {delivery_id}");
    };
    let attempts = app.store.attempts_of(delivery_id).await?;
    if json {
        let lines: Vec<_> = attempts.iter().map(AttemptLine::from).collect();
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(());
    }
    println!(
        "#{} {} {} {} {}: {}",
        d.id,
        d.registry,
        d.national_id,
        d.course_code,
        d.completion_id,
        d.state.as_str()
    );
    for a in &attempts {
        let l = AttemptLine::from(a);
        println!(
            "{} rev {:<3} {:<8} {:<4} {:<12} {} {}",
            l.at,
            l.revision,
            l.action,
            l.http_status.map_or("-".into(), |s| s.to_string()),
            l.result,
            l.request_id,
            l.error.as_deref().unwrap_or("")
        );
    }
    if attempts.is_empty() {
        println!("(no attempts kept)");
    }
    Ok(())
}
