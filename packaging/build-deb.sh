#!/usr/bin/env bash
# Builds the Debian package: a release binary without the dev tools
# (simulator, demo, bench), its completions and man pages generated from
# the clap definitions into target/assets/, then `cargo deb --no-build`.
# Prints the path of the .deb. Needs cargo-deb (`cargo install cargo-deb --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || { echo "cargo-deb is required: cargo install cargo-deb --locked" >&2; exit 1; }

cargo build --release --locked --no-default-features
bin=target/release/hoursync

rm -rf target/assets
mkdir -p target/assets/completions target/assets/man
"$bin" completions bash > target/assets/completions/hoursync.bash
"$bin" completions zsh > target/assets/completions/_hoursync
"$bin" completions fish > target/assets/completions/hoursync.fish
"$bin" man target/assets/man

rm -f target/debian/hoursync_*.deb
cargo deb --no-build --no-default-features >&2
ls target/debian/hoursync_*.deb
