//! `hoursync audit`: the audit trail, newest first, one JSON object a line.

use crate::startup::App;

pub async fn run(app: App, limit: usize) -> anyhow::Result<()> {
    for e in app.store.list_audit(i64::MAX, limit).await? {
        let view = crate::admin::AuditView::from(e);
        println!("{}", serde_json::to_string(&view)?);
    }
    Ok(())
}
