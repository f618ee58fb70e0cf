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
