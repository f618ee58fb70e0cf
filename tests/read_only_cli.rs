//! A command that only reads never answers from a database it made up: in
//! a directory with no database, or against one this version has not
//! migrated, `status`, `deliveries`, `history` and `audit` exit 4, say
//! which database they looked at and how to point at the right one, and
//! leave nothing behind.

mod common;

use common::*;
use std::process::Output;

async fn hoursync(env: &TestEnv, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hoursync"))
        .args(args)
        .current_dir(env.dir.path())
        .env_remove("HOURSYNC_CONFIG")
        .env("HOURSYNC_DATABASE__URL", &env.db_url)
        .env("HOURSYNC_CALENDAR__DIR", calendar_dir())
        .output()
        .await
        .unwrap()
}

fn assert_refused(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{what}: {stderr}");
    assert!(
        stderr.contains("HOURSYNC_DATABASE__URL") && stderr.contains("--config"),
        "{what}: says how to point at the right database: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{what}: printed an answer");
}

async fn a_read_only_command_never_creates_or_migrates_a_database(backend: Backend) {
    let env = TestEnv::new(backend).await;
    for args in [
        &["status", "A123456789"][..],
        &["deliveries"],
        &["history", "1"],
        &["audit"],
    ] {
        let out = hoursync(&env, args).await;
        assert_refused(&out, &args.join(" "));
    }
    // Nothing was left behind: no SQLite file, no tables in PostgreSQL.
    match backend {
        Backend::Sqlite => assert!(
            !env.dir.path().join("hoursync.db").exists(),
            "a database file was created"
        ),
        Backend::Postgres => {
            let store = hoursync::store::open(&env.db_url, 1, 1_000).await.unwrap();
            assert!(
                store.pending_migrations().await.unwrap() > 0,
                "tables were created"
            );
        }
    }

    // Migrated: the same command answers.
    let out = hoursync(&env, &["migrate"]).await;
    assert!(out.status.success(), "{out:?}");
    let out = hoursync(&env, &["status", "A123456789"]).await;
    assert!(out.status.success(), "{out:?}");
}

async fn a_database_of_an_older_version_is_not_migrated_by_a_read(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.migrate_to(8, None).await;
    let out = hoursync(&env, &["status", "A123456789"]).await;
    assert_refused(&out, "status");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hoursync migrate"),
        "{out:?}"
    );
    let store = hoursync::store::open(&env.db_url, 1, 1_000).await.unwrap();
    assert!(
        store.pending_migrations().await.unwrap() > 0,
        "the read migrated the database"
    );
}

backend_tests!(
    a_read_only_command_never_creates_or_migrates_a_database,
    a_database_of_an_older_version_is_not_migrated_by_a_read,
);

#[tokio::test]
async fn calendar_show_json_lists_the_stored_years_and_how_far_they_reach() {
    let env = TestEnv::new(Backend::Sqlite).await;
    assert!(hoursync(&env, &["migrate"]).await.status.success());
    let out = hoursync(&env, &["calendar", "show", "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let year = &shown["years"][0];
    assert_eq!(year["year"], 2026);
    let (off, working) = (
        year["days_off"].as_u64().unwrap(),
        year["working_days"].as_u64().unwrap(),
    );
    assert_eq!(off + working, 365);
    assert!(working > 240 && working < 260, "{working}");
    assert_eq!(shown["covered_until"], "2026-12-31");
}
