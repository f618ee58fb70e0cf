//! The bench's database: a fresh SQLite file (the default), or a fresh
//! database created for the run on a PostgreSQL server and dropped at the end.

use anyhow::{Context, bail};
use sqlx::Connection;
use std::path::{Path, PathBuf};

pub(super) enum BenchDb {
    Sqlite {
        url: String,
        path: PathBuf,
    },
    Postgres {
        /// The URL given: the server, and the database to connect to while
        /// creating and dropping ours.
        server_url: String,
        name: String,
        url: String,
    },
}

impl BenchDb {
    /// `database`: `None` for `DIR/bench.db` (replaced), a `sqlite://` URL
    /// naming a file that must not exist yet, or a `postgres://` URL of a
    /// server on which a new database is created.
    pub async fn create(database: Option<&str>, dir: &Path) -> anyhow::Result<Self> {
        match database {
            None => {
                let path = dir.join("bench.db");
                for f in [
                    path.clone(),
                    with_suffix(&path, "-wal"),
                    with_suffix(&path, "-shm"),
                ] {
                    remove_if_present(&f)?;
                }
                Ok(Self::Sqlite {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    path,
                })
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = PathBuf::from(sqlite_path(url));
                if path.exists() {
                    bail!(
                        "{} exists: the bench needs a fresh database (remove it, or omit --database)",
                        path.display()
                    );
                }
                Ok(Self::Sqlite {
                    url: url.to_string(),
                    path,
                })
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let name = format!(
                    "hs_bench_{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                let mut conn = sqlx::PgConnection::connect(url)
                    .await
                    .with_context(|| format!("connecting to {}", crate::config::redact_url(url)))?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .with_context(|| format!("CREATE DATABASE {name}"))?;
                conn.close().await.ok();
                Ok(Self::Postgres {
                    server_url: url.to_string(),
                    url: with_database(url, &name)?,
                    name,
                })
            }
            Some(url) => bail!(
                "--database {:?}: expected a sqlite:// or postgres:// URL",
                crate::redact::redact_url(url)
            ),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    /// Runs `ANALYZE` on the whole database; how long it took, seconds.
    pub async fn analyze(&self) -> anyhow::Result<f64> {
        let t = std::time::Instant::now();
        match self {
            Self::Postgres { url, .. } => {
                let mut conn = sqlx::PgConnection::connect(url).await?;
                sqlx::query("ANALYZE").execute(&mut conn).await?;
                conn.close().await.ok();
            }
            Self::Sqlite { url, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await?;
                sqlx::query("ANALYZE").execute(&mut conn).await?;
                conn.close().await.ok();
            }
        }
        Ok(t.elapsed().as_secs_f64())
    }

    /// What the run used, for the report (no password).
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { path, .. } => format!("SQLite {}", path.display()),
            Self::Postgres { url, .. } => format!("PostgreSQL {}", crate::config::redact_url(url)),
        }
    }

    /// Drops a PostgreSQL database unless `keep` (a SQLite file stays, as before).
    pub async fn finish(&self, keep: bool) -> anyhow::Result<()> {
        let Self::Postgres {
            server_url,
            name,
            url,
        } = self
        else {
            return Ok(());
        };
        if keep {
            eprintln!("kept database {} (--keep)", crate::config::redact_url(url));
            return Ok(());
        }
        let mut conn = sqlx::PgConnection::connect(server_url)
            .await
            .context("connecting to drop the bench database")?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .with_context(|| format!("DROP DATABASE {name}"))?;
        conn.close().await.ok();
        Ok(())
    }
}

/// `url` with its database (path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let start = url.find("://").context("a database URL needs ://")? + 3;
    let rest = &url[start..];
    let query = rest.find('?').map_or("", |q| &rest[q..]);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    Ok(format!("{}{authority}/{name}{query}", &url[..start]))
}

/// The file of a `sqlite://PATH?…` (or `sqlite:PATH`) URL.
fn sqlite_path(url: &str) -> &str {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    path.split('?').next().unwrap_or(path)
}

pub(super) fn remove_if_present(f: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(f) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", f.display()))
        }
        _ => Ok(()),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "hs_bench_1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/hs_bench_1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/test?sslmode=disable", "b").unwrap(),
            "postgresql://u:p@h/b?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "b").unwrap(),
            "postgres://h:5432/b"
        );
        assert_eq!(
            with_database("postgres://h?x=1", "b").unwrap(),
            "postgres://h/b?x=1"
        );
    }

    #[test]
    fn the_file_of_a_sqlite_url() {
        assert_eq!(sqlite_path("sqlite:///tmp/a.db?mode=rwc"), "/tmp/a.db");
        assert_eq!(sqlite_path("sqlite:b.db"), "b.db");
    }
}
