//! The daemon's log stream belongs to the host (journald, a terminal, a
//! `| cat`), and it can break: its reader can die (every write fails with
//! EPIPE) or stop reading (the pipe fills and a write would block). Either
//! way deliveries go on, the lost lines are counted, and SIGTERM still
//! stops the daemon.

mod common;

use common::*;
use hoursync::dataset::{DatasetSpec, Profile};
use std::process::Stdio;
use std::time::Duration;

/// What happens to the process reading the daemon's stderr.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// Killed: the pipe has no reader, writes fail.
    Dies,
    /// Alive but not reading (as under SIGSTOP): the pipe is full, writes
    /// would block.
    StopsReading,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

async fn deliveries_and_shutdown_survive(reader: Reader) {
    let env = TestEnv::new(Backend::Sqlite).await;
    let sim = simulator(Default::default()).await;
    let store = env.store().await;
    let data = env.path("d.jsonl");
    let spec = DatasetSpec {
        persons: 500,
        completions_per_person: 4,
        courses: 20,
        seed: 11,
        profile: Profile::AllEligible,
        offset: 0,
    };
    hoursync::dataset::write(spec, &data).unwrap();
    assert_eq!(import(&store, &[data]).await.rejected, 0);

    // The reader: `cat`, killed later; or the test itself, never reading.
    let (mut cat, mut unread) = (None, None);
    let pipe = match reader {
        Reader::Dies => {
            let mut child = std::process::Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            let pipe = Stdio::from(child.stdin.take().unwrap());
            cat = Some(child);
            pipe
        }
        Reader::StopsReading => {
            let (read_end, write_end) = std::io::pipe().unwrap();
            // Full (64 KiB) before the daemon starts: each line it writes
            // would block, from the first.
            let mut filler = write_end.try_clone().unwrap();
            let fill = std::thread::spawn(move || {
                std::io::Write::write_all(&mut filler, &[b'#'; 64 * 1024])
            });
            wait_for(Duration::from_secs(10), "the pipe to fill", || {
                std::future::ready(fill.is_finished())
            })
            .await;
            fill.join().unwrap().unwrap();
            unread = Some(read_end);
            Stdio::from(write_end)
        }
    };
    let admin = format!("127.0.0.1:{}", free_port());
    let mut cmd = env.command(&sim, &["run"]);
    // Trace logging: every query and request is many lines, so the broken
    // stream is hit (and a stopped reader's pipe fills) all through the
    // drain; small batches at a modest rate make it last several seconds.
    cmd.env("HOURSYNC_LOG__LEVEL", "trace")
        .env("HOURSYNC_ADMIN__LISTEN", &admin)
        .stdout(Stdio::null())
        .stderr(pipe);
    for r in ["LIFELONG", "TEACHER", "ENVED"] {
        cmd.env(format!("HOURSYNC_REGISTRIES__{r}__MAX_BATCH"), "20")
            .env(format!("HOURSYNC_REGISTRIES__{r}__RATE_PER_SECOND"), "15");
    }
    let mut daemon = cmd.spawn().unwrap();
    // The command holds its copy of the pipe's write end until dropped.
    drop(cmd);

    wait_for(
        Duration::from_secs(60),
        "the first credited records",
        || async { !sim.credited("lifelong").is_empty() },
    )
    .await;
    if let Some(cat) = cat.as_mut() {
        cat.kill().unwrap();
        cat.wait().unwrap();
    }
    let credited_then: usize = ["lifelong", "teacher", "enved"]
        .iter()
        .map(|r| sim.credited(r).len())
        .sum();
    assert!(
        credited_then < 500 * 4 * 3,
        "the drain ended too soon to tell"
    );

    wait_drained(&store, Duration::from_secs(120)).await;
    let credited: usize = ["lifelong", "teacher", "enved"]
        .iter()
        .map(|r| sim.credited(r).len())
        .sum();
    assert_eq!(credited, 500 * 4 * 3, "every record credited once");

    let http = reqwest::Client::new();
    let ready = http
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    if let Reader::Dies = reader {
        let ready: serde_json::Value = ready.json().await.unwrap();
        assert!(
            ready["log_lines_dropped"].as_u64().unwrap() > 0,
            "lost lines are counted: {ready}"
        );
        let metrics = http
            .get(format!("http://{admin}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let series = "hoursync_log_lines_dropped_total{reason=\"write_failed\"} ";
        let dropped: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
            .parse()
            .unwrap();
        assert!(dropped > 0.0, "{series}{dropped}");
    }

    signal(daemon.id().unwrap(), "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), daemon.wait())
        .await
        .expect("the daemon stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    drop(unread);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_reader_that_dies_never_stops_deliveries_or_shutdown() {
    deliveries_and_shutdown_survive(Reader::Dies).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_reader_that_stops_reading_never_blocks_deliveries_or_shutdown() {
    deliveries_and_shutdown_survive(Reader::StopsReading).await;
}
