//! Colour codes in log lines only for a person at a terminal: none when
//! stderr is a file, a pipe or the journal (they break `grep`), and none
//! when `NO_COLOR` is set (https://no-color.org).

use std::process::Command;

/// `hoursync migrate` with debug logging in a fresh directory, run through
/// `sh -c` so a test can give it a terminal with `script`.
fn migrate_line(dir: &std::path::Path) -> String {
    format!(
        "cd '{}' && HOURSYNC_LOG__LEVEL=debug HOURSYNC_CALENDAR__DIR='{}/config/calendar' '{}' migrate",
        dir.display(),
        env!("CARGO_MANIFEST_DIR"),
        env!("CARGO_BIN_EXE_hoursync")
    )
}

fn has_colour(text: &str) -> bool {
    text.contains("\x1b[")
}

#[test]
fn log_lines_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .args(["-c", &migrate_line(dir.path())])
        .env_remove("HOURSYNC_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "no log lines: {stderr}");
    assert!(!has_colour(&stderr), "{stderr:?}");
}

#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    let on_terminal = |no_color: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &migrate_line(dir.path()), "/dev/null"])
            .env_remove("HOURSYNC_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        cmd.output()
    };
    let Ok(plain) = on_terminal(None) else {
        eprintln!("SKIPPED: no `script` (util-linux) to give the command a terminal");
        return;
    };
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(text.contains("DEBUG"), "no log lines: {text}");
    assert!(has_colour(&text), "a terminal gets colour: {text:?}");
    let text = String::from_utf8_lossy(&on_terminal(Some("1")).unwrap().stdout).to_string();
    assert!(text.contains("DEBUG") && !has_colour(&text), "{text:?}");
}
