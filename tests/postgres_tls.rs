//! TLS to PostgreSQL and the database password, through hoursync's own way
//! of opening a store: `sslmode=require` against the test server (TLS on),
//! `verify-full` and `verify-ca` against a throwaway server of our own whose
//! certificate a CA made here signed, and the password from
//! `database.password_file` or `PGPASSFILE` against that server, which asks
//! for one (scram-sha-256), unlike the test server (trust).

mod common;

use common::{Backend, calendar_dir, postgres_admin_url};
use hoursync::store;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

#[tokio::test]
async fn require_gives_an_encrypted_connection_and_disable_a_plain_one() {
    if !Backend::postgres_ready().await {
        return;
    }
    let url = with_params(&postgres_admin_url(), "sslmode=require");
    let tls = store::open(&url, 1, 5_000)
        .await
        .unwrap_or_else(|e| panic!("sslmode=require against a server with ssl on: {e}"));
    assert_eq!(tls.encrypted().await.unwrap(), Some(true));
    let url = with_params(&postgres_admin_url(), "sslmode=disable");
    let plain = store::open(&url, 1, 5_000).await.unwrap();
    assert_eq!(plain.encrypted().await.unwrap(), Some(false));
}

/// Every database connection sends each message at once: without
/// `TCP_NODELAY` a transaction's next statement waits for the server's
/// delayed ACK, up to 40 ms a round trip (sqlx 0.9.0 dropped the setting;
/// `vendor/README.md`). Read off this process's own sockets to the server.
#[tokio::test]
async fn database_connections_send_each_message_without_waiting_for_an_ack() {
    if !Backend::postgres_ready().await {
        return;
    }
    let url = postgres_admin_url();
    let port = url::Url::parse(&url).unwrap().port().unwrap_or(5432);
    for mode in ["sslmode=disable", "sslmode=require"] {
        let db = store::open(&with_params(&url, mode), 2, 5_000)
            .await
            .unwrap();
        db.encrypted().await.unwrap(); // a connection is open
        let mut checked = 0;
        for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
            let Ok(fd) = entry.unwrap().file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            // SAFETY: the descriptor is only borrowed for two getsockopt
            // calls, which fail harmlessly on one that is not a socket.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let socket = socket2::SockRef::from(&fd);
            let to_server = socket
                .peer_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .is_some_and(|a| a.port() == port);
            if to_server {
                // A connection another test of this binary (or this pool)
                // is opening right now is connected a moment before sqlx
                // sets the option: a socket still without it a little
                // later is one that never gets it. A descriptor closed
                // meanwhile is no longer a connection to look at.
                let mut nodelay = socket.tcp_nodelay();
                if matches!(nodelay, Ok(false)) {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    nodelay = socket.tcp_nodelay();
                }
                if let Ok(nodelay) = nodelay {
                    assert!(nodelay, "{mode}: Nagle is on");
                    checked += 1;
                }
            }
        }
        assert!(checked > 0, "{mode}: no connection to the server found");
    }
}

#[tokio::test]
async fn verify_full_trusts_our_ca_for_the_name_in_the_certificate_only() {
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let ca = server.file("ca.pem");
    let url = |host: &str, mode: &str, ca: &Path| {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode={mode}&sslrootcert={}",
            server.port,
            ca.display()
        )
    };
    let open = |url: String| async move {
        store::open_with_password(&url, Some(PASSWORD), 1, 5_000)
            .await
            .map_err(|e| e.to_string())
    };

    let trusted = open(url("localhost", "verify-full", &ca)).await.unwrap();
    assert_eq!(trusted.encrypted().await.unwrap(), Some(true));

    let err = open(url(
        "localhost",
        "verify-full",
        &server.file("wrong-ca.pem"),
    ))
    .await
    .err()
    .expect("a certificate from another CA is refused");
    assert!(
        err.contains("invalid peer certificate") && err.contains("UnknownIssuer"),
        "{err}"
    );

    // The certificate names `localhost`, not 127.0.0.1: verify-full
    // refuses the address, verify-ca checks the CA only.
    let err = open(url("127.0.0.1", "verify-full", &ca))
        .await
        .err()
        .expect("a host the certificate does not name is refused");
    assert!(
        err.contains("invalid peer certificate") && err.contains("not valid for name"),
        "{err}"
    );
    let by_ca = open(url("127.0.0.1", "verify-ca", &ca)).await.unwrap();
    assert_eq!(by_ca.encrypted().await.unwrap(), Some(true));
}

#[tokio::test]
async fn the_password_comes_from_password_file_or_pgpassfile_and_never_shows() {
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        server.port,
        server.file("ca.pem").display()
    );
    let migrate = |vars: &[(&str, &Path)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoursync"));
        cmd.arg("migrate")
            .current_dir(server.dir.path())
            .env("HOME", server.dir.path())
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            .env("HOURSYNC_DATABASE__URL", &url)
            .env("HOURSYNC_CALENDAR__DIR", calendar_dir());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), said)
    };
    let secret = |name: &str, text: &str| {
        let path = server.dir.path().join(name);
        hoursync::config::write_secret(&path, text).unwrap();
        path
    };

    // No password anywhere: the server refuses.
    let (ok, said) = migrate(&[]);
    assert!(!ok, "{said}");
    assert!(said.contains("password"), "{said}");

    // A wrong one is refused, and never printed.
    let wrong = secret("wrong.password", "not-the-password\n");
    let (ok, said) = migrate(&[("HOURSYNC_DATABASE__PASSWORD_FILE", &wrong)]);
    assert!(!ok, "{said}");
    assert!(said.contains("password authentication failed"), "{said}");
    assert!(!said.contains("not-the-password"), "{said}");

    // The right one, by its name in $CREDENTIALS_DIRECTORY.
    let creds = server.dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    hoursync::config::write_secret(&creds.join("db.password"), &format!("{PASSWORD}\n")).unwrap();
    let (ok, said) = migrate(&[
        ("HOURSYNC_DATABASE__PASSWORD_FILE", Path::new("db.password")),
        ("CREDENTIALS_DIRECTORY", &creds),
    ]);
    assert!(ok, "{said}");
    assert!(!said.contains(PASSWORD), "{said}");

    // libpq's password file, which sqlx reads itself.
    let pgpass = secret(
        "pgpass",
        &format!("localhost:{}:*:postgres:{PASSWORD}\n", server.port),
    );
    let (ok, said) = migrate(&[("PGPASSFILE", &pgpass)]);
    assert!(ok, "{said}");
    // One that others may read is ignored, as libpq does.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, said) = migrate(&[("PGPASSFILE", &pgpass)]);
    assert!(!ok, "{said}");
}

/// The superuser's password on the private server.
const PASSWORD: &str = "s3cret-for-the-throwaway-server";

/// A PostgreSQL server of this test's own, in a temporary directory, on a
/// free port, with TLS on (a certificate for `localhost` signed by a CA
/// made here) and passwords required on TCP. Stopped when dropped.
struct PrivateServer {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

impl PrivateServer {
    /// `None`, saying so, where PostgreSQL's server programs are missing;
    /// under CI (`CI=true`) that fails the test instead.
    fn start() -> Option<Self> {
        let Some(bin) = server_bin_dir() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL's initdb is required under CI (set HOURSYNC_TEST_PG_BINDIR)"
            );
            eprintln!("SKIPPED: no initdb (set HOURSYNC_TEST_PG_BINDIR)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let server = Self {
            port: free_port(),
            // initdb refuses to run as root.
            as_postgres: run_ok(Command::new("id").arg("-u")).trim() == "0",
            dir,
            bin,
        };
        server.write_certificates();
        std::fs::write(server.file("pw"), PASSWORD).unwrap();
        if server.as_postgres {
            run_ok(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres:")
                    .arg(server.dir.path()),
            );
        }
        let data = server.file("data");
        run_ok(server.command("initdb").args([
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            &format!("--pwfile={}", server.file("pw").display()),
            "-A",
            "scram-sha-256",
            "--no-sync",
            "--no-locale",
            "--no-instructions",
        ]));
        let d = server.dir.path().display();
        let options = format!(
            "-p {} -c listen_addresses=localhost -c unix_socket_directories={d} -c fsync=off \
             -c ssl=on -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key",
            server.port
        );
        run_ok(server.command("pg_ctl").args([
            "-D",
            data.to_str().unwrap(),
            "-l",
            &format!("{d}/server.log"),
            "-w",
            "-t",
            "30",
            "-o",
            &options,
            "start",
        ]));
        Some(server)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// A CA, a certificate for `localhost` it signs, and another CA.
    fn write_certificates(&self) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
        };
        let ours = ca("hoursync test CA");
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ours)
            .unwrap();
        std::fs::write(self.file("ca.pem"), ours.pem()).unwrap();
        std::fs::write(self.file("wrong-ca.pem"), ca("another CA").pem()).unwrap();
        std::fs::write(self.file("server.crt"), cert.pem()).unwrap();
        // The server refuses a key file others may read.
        hoursync::config::write_secret(&self.file("server.key"), &key.serialize_pem()).unwrap();
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.file("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

/// `HOURSYNC_TEST_PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`
/// with an `initdb` (Debian's layout).
fn server_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HOURSYNC_TEST_PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs `cmd`, failing the test with its output unless it succeeds.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
