//! The store, written once for both databases. [`SqlStore`] implements
//! every concern (`sql/<concern>.rs`) over a [`Backend`]: a pool that runs a
//! named statement with plain arguments and hands back rows read by name.
//! The backends (`sqlite.rs`, `postgres.rs`) only open their pool, bind
//! arguments and run migrations; what differs in their SQL is named in
//! [`dialect`](super::dialect).

/// The arguments of a statement, in placeholder order. Defined before the
/// concern modules, which use it by textual scope.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(crate::store::sql::Arg::from($a)),*] };
}

mod bench_reference;
mod calendar;
mod copy;
mod dispatch;
mod history;
mod intake;
mod leases;
mod run;
mod scan;
mod support;
mod transitions;

pub use bench_reference::Reference;
pub(super) use run::{Engine, OnPool, Query};

use super::dialect::{Dialect, Sql};
use super::record_columns::WriteRow;
use super::rowmap::{ByName, ReadRow};
use super::{Result, Store, StoreError};
use async_trait::async_trait;
use std::borrow::Cow;

/// A statement argument. Ids are a list bound the way the dialect reads
/// a list ([`Dialect::in_list`]); JSON is text the statement reads as a
/// table ([`Dialect::json_rows`]). No `Debug`: an argument may be a
/// national ID.
#[derive(Clone, Copy)]
pub enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Ids(&'a [i64]),
    Texts(&'a [&'a str]),
    /// The rows of a [`Dialect::write_rows`] statement, after its first
    /// parameter.
    WriteRows(&'a [WriteRow<'a>]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::OptText(v.as_deref())
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}

impl<'a> From<&'a [&'a str]> for Arg<'a> {
    fn from(v: &'a [&'a str]) -> Self {
        Arg::Texts(v)
    }
}

impl<'a> From<&'a [i64]> for Arg<'a> {
    fn from(v: &'a [i64]) -> Self {
        Arg::Ids(v)
    }
}

/// Where statements run: the pool, or one transaction.
#[async_trait]
pub trait Run: Send {
    type Row: ByName + ReadRow + Send + Sync;

    async fn fetch_all(
        &mut self,
        sql: impl Into<Cow<'static, str>> + Send,
        args: &[Arg<'_>],
    ) -> Result<Vec<Self::Row>>;
    async fn fetch_optional(
        &mut self,
        sql: impl Into<Cow<'static, str>> + Send,
        args: &[Arg<'_>],
    ) -> Result<Option<Self::Row>>;
    /// Runs a statement; how many rows it changed.
    async fn execute(
        &mut self,
        sql: impl Into<Cow<'static, str>> + Send,
        args: &[Arg<'_>],
    ) -> Result<u64>;

    /// Ends the unit of work: commits a transaction; nothing on the pool.
    async fn finish(self) -> Result<()>;

    async fn fetch_one(
        &mut self,
        sql: impl Into<Cow<'static, str>> + Send,
        args: &[Arg<'_>],
    ) -> Result<Self::Row> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or_else(|| StoreError::Fatal("a statement that returns a row returned none".into()))
    }
}

/// One database engine: its pool, its transactions, its migrations.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    const DIALECT: Dialect;
    type Row: ByName + ReadRow + Send + Sync;
    type Pool<'a>: Run<Row = Self::Row>;
    type Tx: Run<Row = Self::Row> + 'static;
    /// Where a statement that writes runs alone: SQLite must take the
    /// write lock before it reads (`BEGIN IMMEDIATE`), or a writer waiting
    /// for the lock fails at once instead of waiting; PostgreSQL runs it on
    /// the pool.
    type Alone<'a>: Run<Row = Self::Row>;

    /// Statements outside a transaction.
    fn pool(&self) -> Self::Pool<'_>;
    /// A transaction that will write: it holds what it reads until it ends.
    async fn begin(&self) -> Result<Self::Tx>;
    async fn alone(&self) -> Result<Self::Alone<'_>>;

    async fn migrate(&self) -> Result<()>;
    /// Versions of the migrations applied (none: an empty database).
    async fn applied_migrations(&self) -> Result<Vec<i64>>;
    fn migrator() -> sqlx::migrate::Migrator;
    async fn analyze(&self) -> Result<()>;
    async fn encrypted(&self) -> Result<Option<bool>>;
}

/// The store over one backend.
pub struct SqlStore<B> {
    pub(super) db: B,
}

impl<B: Backend> SqlStore<B> {
    pub(super) fn new(db: B) -> Self {
        Self { db }
    }

    /// A named statement in this backend's dialect.
    fn sql(statement: &'static Sql) -> &'static str {
        statement.get(B::DIALECT)
    }

    /// The rows a read on the pool returns, each mapped by `map`.
    async fn read<T>(
        &self,
        statement: &'static Sql,
        args: &[Arg<'_>],
        map: fn(&B::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let rows = self.db.pool().fetch_all(Self::sql(statement), args).await?;
        rows.iter().map(map).collect()
    }

    /// The row a read on the pool returns, if any, mapped by `map`.
    async fn read_optional<T>(
        &self,
        statement: &'static Sql,
        args: &[Arg<'_>],
        map: fn(&B::Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let row = self
            .db
            .pool()
            .fetch_optional(Self::sql(statement), args)
            .await?;
        row.as_ref().map(map).transpose()
    }

    /// Runs one writing statement in a transaction of its own; how many
    /// rows it changed.
    async fn write(&self, statement: &'static Sql, args: &[Arg<'_>]) -> Result<u64> {
        let mut alone = self.db.alone().await?;
        let n = alone.execute(Self::sql(statement), args).await?;
        alone.finish().await?;
        Ok(n)
    }

    /// [`write`](Self::write), for a statement that returns a row.
    async fn write_returning(
        &self,
        statement: &'static Sql,
        args: &[Arg<'_>],
    ) -> Result<Option<B::Row>> {
        let mut alone = self.db.alone().await?;
        let row = alone.fetch_optional(Self::sql(statement), args).await?;
        alone.finish().await?;
        Ok(row)
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn pending_migrations(&self) -> Result<usize> {
        let applied = self.db.applied_migrations().await?;
        Ok(super::missing(&B::migrator(), &applied))
    }

    async fn migrate(&self) -> Result<()> {
        self.db.migrate().await
    }

    async fn analyze(&self) -> Result<()> {
        self.db.analyze().await
    }

    async fn ping(&self) -> Result<()> {
        self.db.pool().execute("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn encrypted(&self) -> Result<Option<bool>> {
        self.db.encrypted().await
    }
}
