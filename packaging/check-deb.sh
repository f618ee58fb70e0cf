#!/usr/bin/env bash
# CI check of the Debian package (README.md, "Install (Debian package)"):
# build it, check its contents, install it on this machine, verify the
# installed unit and its sandboxing (exposure ≤ 1.5), run `hoursync
# --version` and `migrate` as the service user, then remove (data and
# configuration kept) and purge (configuration gone). Needs root; purges any
# earlier install first and on failure, so it can run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "check-deb: SKIPPED, needs root to install the package" >&2
    [ -z "${CI:-}" ] || exit 1
    exit 0
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

fail() { echo "check-deb: FAILED: $*" >&2; exit 1; }
# /var/lib/hoursync is removed only when this script made it (the marker):
# on a host with a real install it holds the delivery receipts.
marker=/var/lib/hoursync/.made-by-check-deb
cleanup() {
    dpkg --purge hoursync >/dev/null 2>&1 || true
    if [ -e "$marker" ]; then rm -rf /var/lib/hoursync; else rmdir /var/lib/hoursync 2>/dev/null || true; fi
}
if [ -e /var/lib/hoursync/hoursync.db ] && [ ! -e "$marker" ]; then
    fail "/var/lib/hoursync holds a database this check did not make: not touching a real install"
fi
cleanup
trap cleanup EXIT

deb=$(bash packaging/build-deb.sh | tail -1)
[ -f "$deb" ] || fail "no package built"
echo "check-deb: $deb, $(du -k "$deb" | cut -f1) KiB"

contents=$(dpkg-deb -c "$deb")
for path in \
    ./usr/bin/hoursync \
    ./etc/hoursync/hoursync.toml \
    ./usr/lib/systemd/system/hoursync.service \
    ./usr/lib/sysusers.d/hoursync.conf \
    ./usr/lib/tmpfiles.d/hoursync.conf \
    ./usr/share/hoursync/calendar/2026.csv \
    ./usr/share/hoursync/monitoring/alerts.yml \
    ./usr/share/hoursync/monitoring/dashboard.json \
    ./usr/share/bash-completion/completions/hoursync \
    ./usr/share/zsh/vendor-completions/_hoursync \
    ./usr/share/fish/vendor_completions.d/hoursync.fish \
    ./usr/share/man/man1/hoursync.1.gz \
    ./usr/share/man/man1/hoursync-status.1.gz \
    ./usr/share/doc/hoursync/README.md; do
    grep -q " $path\$" <<<"$contents" || fail "$path missing from the package"
done
dpkg-deb -f "$deb" Conffiles 2>/dev/null | grep -q /etc/hoursync/hoursync.toml \
    || dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -q /etc/hoursync/hoursync.toml \
    || fail "/etc/hoursync/hoursync.toml is not a conffile"
echo "check-deb: $(grep -c '^-' <<<"$contents") files:"
awk '/^-/ {print "  " $3 "\t" $6}' <<<"$contents"

status=0
dpkg -i "$deb" || status=$?
[ -d /var/lib/hoursync ] && [ ! -e /var/lib/hoursync/hoursync.db ] && touch "$marker"
[ "$status" = 0 ] || fail "dpkg -i exited $status"
unit=/lib/systemd/system/hoursync.service
getent passwd hoursync >/dev/null || fail "no hoursync user"
[ "$(stat -c %U /var/lib/hoursync)" = hoursync ] || fail "/var/lib/hoursync is not the service user's"
grep -q '^ExecStart=/usr/bin/hoursync --config /etc/hoursync/hoursync.toml run$' "$unit" \
    || fail "ExecStart is not the installed binary with the installed configuration"

if command -v systemd-analyze >/dev/null; then
    said=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $said"
    if grep -q hoursync.service <<<"$said"; then fail "systemd-analyze verify: $said"; fi
    security=$(systemd-analyze security --offline=true "$unit" 2>&1 | grep 'Overall exposure') \
        || fail "no exposure level from systemd-analyze security"
    echo "check-deb: $security"
    level=$(grep -o '[0-9]*\.[0-9]*' <<<"$security" | head -1)
    awk -v l="$level" 'BEGIN { exit !(l <= 1.5) }' || fail "exposure $level > 1.5"
else
    echo "check-deb: systemd-analyze missing, unit not verified" >&2
    [ -z "${CI:-}" ] || fail "systemd-analyze is required under CI"
fi

/usr/bin/hoursync --version
# From / : no ./config/hoursync.toml, so the system file is the one read.
# (Output captured before grep -q, which may stop reading early.)
shown=$(cd / && runuser -u hoursync -- hoursync config show)
grep -q '^# File: /etc/hoursync/hoursync.toml (the system file' <<<"$shown" \
    || fail "config show does not name /etc/hoursync/hoursync.toml"
(cd / && runuser -u hoursync -- hoursync --config /etc/hoursync/hoursync.toml migrate)
[ -f /var/lib/hoursync/hoursync.db ] || fail "migrate made no /var/lib/hoursync/hoursync.db"
calendar=$(cd / && runuser -u hoursync -- hoursync calendar show)
grep -q '^2026: ' <<<"$calendar" || fail "the packaged calendar was not loaded: $calendar"

dpkg -r hoursync
[ -f /etc/hoursync/hoursync.toml ] || fail "remove deleted the configuration"
[ -f /var/lib/hoursync/hoursync.db ] || fail "remove deleted the database"
dpkg --purge hoursync
[ ! -e /etc/hoursync ] || fail "purge left /etc/hoursync"
[ -f /var/lib/hoursync/hoursync.db ] || fail "purge deleted the database (it keeps it)"
echo "check-deb: OK"
