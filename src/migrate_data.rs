//! `hoursync migrate-data --from URL --to URL`: copies a whole database to
//! another (typically the embedded SQLite file to PostgreSQL when moving to
//! several daemons), then verifies that every table holds as many rows as
//! the source and that the change sequence matches.
//!
//! Stop the daemon first: a copy of a database that is being written is a
//! copy of some moment, not of the end.

use crate::config::redact_url;
use crate::store::{self, CopyTable, PageKey, TableCounts};
use anyhow::{Context, bail, ensure};

/// Rows per page read from the source and written to the target.
const PAGE: usize = 5_000;

#[derive(clap::Args, Debug, Clone)]
pub struct MigrateDataArgs {
    /// The database to copy from, e.g. sqlite://hoursync.db
    #[arg(long)]
    pub from: String,
    /// The database to copy to; it must be empty (it is migrated first).
    #[arg(long)]
    pub to: String,
}

pub async fn run(args: MigrateDataArgs) -> anyhow::Result<TableCounts> {
    let source = store::open(&args.from, 2, 30_000)
        .await
        .with_context(|| format!("opening {}", redact_url(&args.from)))?;
    source.migrate().await?;
    let target = store::open(&args.to, 2, 30_000)
        .await
        .with_context(|| format!("opening {}", redact_url(&args.to)))?;
    target.migrate().await?;
    let before = target.table_counts().await?;
    if before != (TableCounts::default()) {
        bail!(
            "{} already holds data ({before:?}); migrate-data copies into an empty database only",
            redact_url(&args.to)
        );
    }
    for table in CopyTable::ALL {
        let mut after = PageKey::Start;
        let mut copied = 0u64;
        loop {
            let rows = source.export_page(table, &after, PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = PageKey::of(table, last);
            copied += target
                .import_page(table, &rows)
                .await
                .with_context(|| format!("writing {}", table.name()))?;
        }
        println!("{:<12} {copied:>10} rows", table.name());
    }
    target.finish_import().await?;
    let (want, got) = (source.table_counts().await?, target.table_counts().await?);
    ensure!(
        want == got,
        "the copy does not match its source: source {want:?}, copy {got:?}"
    );
    println!(
        "verified: every table holds as many rows as the source, change sequence {}",
        got.change_seq
    );
    Ok(got)
}
