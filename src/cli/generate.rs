//! `hoursync completions SHELL` and `hoursync man DIR`: hidden commands the
//! packaging step (`packaging/build-deb.sh`) runs on the release binary, so
//! the completions and man pages are generated from the same clap
//! definitions as `--help` and never drift from them (no build script).

use clap::CommandFactory;
use std::path::Path;

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) {
    let mut cmd = super::Cli::command();
    clap_complete::generate(shell, &mut cmd, "hoursync", &mut std::io::stdout());
}

/// Writes `hoursync.1` and one `hoursync-COMMAND.1` per visible command
/// into `dir` (created if missing).
pub fn man(dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(super::Cli::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))
}
