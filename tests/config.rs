//! Configuration from the environment, as ops set it: HOURSYNC_<SECTION>__<KEY>
//! overrides, other HOURSYNC_ variables are not keys, a misspelt key is named.

mod common;

use common::*;

#[tokio::test]
async fn only_section_keys_of_the_environment_are_configuration() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let file = env.path("hoursync.toml");
    std::fs::write(&file, "[retry]\nmax_attempts = 5\n").unwrap();
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hoursync"));
        cmd.arg("migrate")
            .current_dir(env.dir.path())
            .env("HOURSYNC_DATABASE__URL", &env.db_url);
        cmd.env("HOURSYNC_CALENDAR__DIR", calendar_dir());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // HOURSYNC_CONFIG names the file; another HOURSYNC_ variable is no key.
    let ok = run(&[
        ("HOURSYNC_CONFIG", file.to_str().unwrap()),
        ("HOURSYNC_TEST_SOMETHING", "1"),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A misspelt section key is refused, by name.
    let typo = run(&[("HOURSYNC_RETRY__MAX_ATEMPTS", "3")]);
    assert!(!typo.status.success());
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("max_atempts"),
        "{}",
        String::from_utf8_lossy(&typo.stderr)
    );
}

/// `hoursync config show --json` run in `dir` with only `vars` of the
/// HOURSYNC_ environment.
fn config_show(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hoursync"));
    cmd.args(args)
        .args(["config", "show", "--json"])
        .current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("HOURSYNC_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_config_flag_beats_hoursync_config_which_beats_the_working_directory_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let write = |name: &str, attempts: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("[retry]\nmax_attempts = {attempts}\n")).unwrap();
        path.to_str().unwrap().to_string()
    };
    write("config/hoursync.toml", 7);
    let from_env = write("from-env.toml", 6);
    let from_flag = write("from-flag.toml", 5);
    let attempts = |shown: &serde_json::Value| shown["config"]["retry"]["max_attempts"].clone();

    let shown = config_show(dir.path(), &[], &[]);
    assert_eq!(attempts(&shown), 7);
    assert_eq!(shown["file"]["origin"], "working_dir");

    let shown = config_show(dir.path(), &[], &[("HOURSYNC_CONFIG", &from_env)]);
    assert_eq!(attempts(&shown), 6);
    assert_eq!(shown["file"]["origin"], "env_var");
    assert_eq!(shown["sources"]["retry.max_attempts"]["path"], *from_env);

    let shown = config_show(
        dir.path(),
        &["--config", &from_flag],
        &[("HOURSYNC_CONFIG", &from_env)],
    );
    assert_eq!(attempts(&shown), 5);
    assert_eq!(shown["file"]["origin"], "flag");
    assert_eq!(shown["file"]["path"], *from_flag);
    assert_eq!(shown["sources"]["retry.base_ms"]["kind"], "default");
}

#[test]
fn config_show_hides_a_url_password_and_names_the_variable_behind_an_override() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://hoursync:s3cret@db.example:5432/hoursync";
    let vars = [("HOURSYNC_DATABASE__URL", url)];
    let shown = config_show(dir.path(), &[], &vars);
    assert_eq!(
        shown["config"]["database"]["url"],
        "postgres://***@db.example:5432/hoursync"
    );
    assert_eq!(
        shown["sources"]["database.url"]["name"],
        "HOURSYNC_DATABASE__URL"
    );
    assert!(!shown.to_string().contains("s3cret"));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hoursync"))
        .args(["config", "show"])
        .current_dir(dir.path())
        .env_remove("HOURSYNC_CONFIG")
        .envs(vars)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !text.contains("s3cret"), "{text}");
    let url_line = text
        .lines()
        .find(|l| l.starts_with("url = "))
        .unwrap_or_else(|| panic!("no url line in:\n{text}"));
    assert!(url_line.contains("***@db.example"), "{url_line}");
    assert!(
        url_line.ends_with("# env HOURSYNC_DATABASE__URL"),
        "{url_line}"
    );
}
