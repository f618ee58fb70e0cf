//! The admin server under a crowd of idle and slow connections: they can
//! neither lock out `/healthz` nor hold descriptors for ever. Real sockets
//! against the daemon, with a low connection limit and short timeouts.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: usize = 20;
const SUPPORT: &str = "support-token-0123456789";
const TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the server closed `stream` (end of stream or reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An answer (a 408, say) before the close: read on.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_neither_lock_out_health_nor_stay_open() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let sim = simulator(Default::default()).await;
    let tokens = env.path("admin.tokens");
    std::fs::write(&tokens, format!("alice support {SUPPORT}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut config = env.config(&sim);
    config.admin.max_connections = LIMIT;
    config.admin.header_read_timeout_ms = TIMEOUT.as_millis() as u64;
    config.admin.idle_timeout_ms = TIMEOUT.as_millis() as u64;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = hoursync::daemon::start(config, clock(), shutdown.clone())
        .await
        .unwrap();
    let addr = running.admin_addr;

    // Three hundred connections that send nothing, and one that sends
    // half a request and stops.
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();

    // /healthz answers at once, long before any timeout: the crowd made
    // room by closing its idlest.
    let asked = Instant::now();
    let http = reqwest::Client::new();
    let answer = tokio::time::timeout(TIMEOUT, http.get(format!("http://{addr}/healthz")).send())
        .await
        .expect("/healthz answers while 300 idle connections are open")
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(asked.elapsed() < TIMEOUT, "{:?}", asked.elapsed());
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    // Every idle and the slow connection is closed once the timeouts pass.
    assert!(
        closed_within(&mut slow, TIMEOUT * 3).await,
        "a request that never finished its headers is still open"
    );
    for (i, stream) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(stream, TIMEOUT * 3).await,
            "idle connection {i} is still open"
        );
    }

    // An authorised request whose body stalls after its first bytes (the
    // handler waits for the rest) is closed too.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/resyncs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SUPPORT}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"co"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut stalled, TIMEOUT * 3).await,
        "a stalled body is still open"
    );
    assert!(
        started.elapsed() >= TIMEOUT / 2,
        "closed at once ({:?}): not the idle timer",
        started.elapsed()
    );

    shutdown.cancel();
    running.wait().await.unwrap();
}
