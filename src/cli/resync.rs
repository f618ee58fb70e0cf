//! `hoursync resync`: judge a scope again and queue what is not delivered;
//! `--verify` also asks the registries about delivered records.

use super::{cli_actor, progress_spinner};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::startup::App;

#[derive(clap::Args, Debug)]
pub struct ResyncArgs {
    #[arg(long)]
    pub national_id: Option<String>,
    #[arg(long)]
    pub course: Option<String>,
    #[arg(long)]
    pub registry: Option<crate::domain::RegistryKind>,
    /// First completion date (YYYY-MM-DD, Asia/Taipei), inclusive.
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last completion date, inclusive.
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Also look delivered records up at the registry and resend what it lacks.
    #[arg(long)]
    pub verify: bool,
    /// Only count what the scope covers.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: ResyncArgs, config: Config, clock: SharedClock) -> anyhow::Result<()> {
    let req = crate::admin::ResyncRequest {
        national_id: args.national_id,
        course_code: args.course,
        registry: args.registry,
        completed_from: args.from,
        completed_to: args.to,
        dry_run: args.dry_run,
        verify: args.verify,
    };
    let scope = req.scope().map_err(|e| anyhow::anyhow!("{}", e.1))?;
    if args.dry_run {
        let app = App::read_only(config, clock).await?;
        let summary = crate::resync::dry_run(app.store.as_ref(), &scope).await?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let app = App::open(config, clock).await?;
    let app = if args.verify {
        app.with_registries()?
    } else {
        app
    };
    let planned = crate::resync::dry_run(app.store.as_ref(), &scope).await?;
    let id = crate::resync::open_audit(
        app.store.as_ref(),
        app.clock.as_ref(),
        &cli_actor(),
        &scope,
        args.verify,
    )
    .await?;
    let spinner = progress_spinner(format!(
        "resync {id}: {} completions, {} records{}",
        planned.completions,
        planned.records,
        if args.verify {
            ", verifying delivered records at the registries"
        } else {
            ""
        }
    ));
    let summary = crate::resync::run(
        app.store.as_ref(),
        app.clock.as_ref(),
        &app.registries,
        &scope,
        args.verify,
        id,
    )
    .await;
    spinner.finish_and_clear();
    let summary = summary?;
    eprintln!(
        "resync {id} done: {} requeued, {} missing at a registry",
        summary.requeued, summary.missing_at_registry
    );
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
