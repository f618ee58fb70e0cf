//! `hoursync config show`: the effective configuration and where each
//! value came from; it reads no database.

use crate::config::Layered;

pub fn show(layered: &Layered, json: bool) -> anyhow::Result<()> {
    let shown = crate::config::show(layered);
    if json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        print!("{}", shown.to_toml());
    }
    Ok(())
}
