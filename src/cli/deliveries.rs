//! `hoursync deliveries`: deliveries by state and registry, IDs masked.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::RegistryKind;
use crate::startup::App;

pub async fn run(
    config: Config,
    clock: SharedClock,
    state: Option<&str>,
    registry: Option<RegistryKind>,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let wanted = match state {
        None => None,
        Some(s) => Some(
            crate::store::State::parse(s).ok_or_else(|| anyhow::anyhow!("unknown state {s:?}"))?,
        ),
    };
    let app = App::read_only(config, clock).await?;
    let (mut after, mut shown) = (0, 0);
    let mut views = Vec::new();
    while shown < limit {
        let page = app
            .store
            .list_deliveries(wanted, registry, after, (limit - shown).min(500))
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        shown += page.len();
        if json {
            views.extend(page.into_iter().map(crate::admin::api::DeliveryView::from));
            continue;
        }
        for d in page {
            println!(
                "#{:<8} {:<9} {} {:<14} {:<16} {:<10} {:<22} attempts {:<3} {}",
                d.id,
                d.registry,
                d.national_id,
                d.course_code,
                d.completion_id,
                d.state.as_str(),
                d.reason.as_deref().unwrap_or("-"),
                d.attempts,
                d.last_error.as_deref().unwrap_or("")
            );
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    }
    Ok(())
}
