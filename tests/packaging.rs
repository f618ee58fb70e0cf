//! What the Debian package ships (packaging/, README.md "Install (Debian
//! package)"): completions and man pages generated from the command line's
//! own definitions, a configuration that differs from the defaults only in
//! its paths, and a unit that is the source unit with the installed binary
//! and the package's system user. `packaging/check-deb.sh` checks the built
//! package itself.

use hoursync::config::Config;
use hoursync::domain::RegistryKind;
use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn hoursync(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hoursync"))
        .args(args)
        .env_remove("HOURSYNC_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_shell_completions_offer_the_commands_and_their_options() {
    let bash = hoursync(&["completions", "bash"]);
    for word in ["status", "deliveries", "config", "--json", "--config"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    assert!(hoursync(&["completions", "zsh"]).contains("#compdef hoursync"));
    assert!(hoursync(&["completions", "fish"]).contains("complete -c hoursync"));
}

#[test]
fn the_man_pages_describe_hoursync_and_each_command() {
    let dir = tempfile::tempdir().unwrap();
    hoursync(&["man", dir.path().to_str().unwrap()]);
    let main = std::fs::read_to_string(dir.path().join("hoursync.1")).unwrap();
    assert!(main.contains(".TH hoursync 1"), "{main}");
    assert!(main.contains("hoursync\\-status(1)"), "{main}");
    let status = std::fs::read_to_string(dir.path().join("hoursync-status.1")).unwrap();
    assert!(status.contains("NATIONAL_ID"), "{status}");
    assert!(dir.path().join("hoursync-config-show.1").exists());
    assert!(
        !dir.path().join("hoursync-man.1").exists(),
        "hidden commands get no page"
    );
}

#[test]
fn the_packaged_configuration_differs_from_the_defaults_only_in_its_paths() {
    let packaged = Config::load(Some(&repo("packaging/hoursync.toml"))).unwrap();
    assert_eq!(
        packaged.database.url,
        "sqlite:///var/lib/hoursync/hoursync.db?mode=rwc"
    );
    assert_eq!(
        packaged.calendar.dir,
        Path::new("/usr/share/hoursync/calendar")
    );
    assert!(
        repo("config/calendar/2026.csv").exists(),
        "the package ships config/calendar/*.csv there"
    );
    let mut expected = Config::default();
    expected.database.url = packaged.database.url.clone();
    expected.calendar.dir = packaged.calendar.dir.clone();
    expected.admin.tokens_file = "admin.tokens".into();
    for kind in RegistryKind::ALL {
        expected.registries.get_mut(&kind).unwrap().token_file = format!("{kind}.token").into();
    }
    expected.source = packaged.source.clone();
    assert_eq!(packaged, expected);
}

/// The unit's lines that are not comments.
fn directives(path: &str) -> Vec<String> {
    std::fs::read_to_string(repo(path))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn the_packaged_unit_is_the_source_unit_with_the_installed_binary_and_a_system_user() {
    let source: Vec<String> = directives("systemd/hoursync.service")
        .into_iter()
        .flat_map(|l| match l.as_str() {
            "DynamicUser=yes" => vec!["User=hoursync".into(), "Group=hoursync".into()],
            _ => vec![l.replace("/usr/local/bin/hoursync", "/usr/bin/hoursync")],
        })
        .collect();
    let packaged = directives("packaging/hoursync.service");
    assert_eq!(packaged, source);
    assert!(packaged.contains(
        &"ExecStart=/usr/bin/hoursync --config /etc/hoursync/hoursync.toml run".to_string()
    ));
    assert!(packaged.contains(&"StateDirectory=hoursync".to_string()));
}
