//! [`Run`] over sqlx, written once for both engines: on a pool, or in a
//! transaction.

use super::{Arg, Run};
use crate::store::Result;
use crate::store::record_columns::WriteRow;
use crate::store::rowmap::{ByName, ReadRow};
use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, Transaction, Type};
use std::borrow::Cow;

pub type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments>;

/// The two things sqlx leaves to each engine: how a list of ids is bound
/// (see [`Dialect::in_list`](crate::store::dialect::Dialect::in_list)), and
/// how many rows a statement changed.
pub trait Engine: Database {
    fn bind_ids<'q>(query: Query<'q, Self>, ids: &'q [i64]) -> Query<'q, Self>;
    fn bind_texts<'q>(query: Query<'q, Self>, texts: &'q [&'q str]) -> Query<'q, Self>;
    fn bind_write_rows<'q>(query: Query<'q, Self>, rows: &'q [WriteRow<'q>]) -> Query<'q, Self>;
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

fn bind<'q, DB>(mut query: Query<'q, DB>, args: &[Arg<'q>]) -> Query<'q, DB>
where
    DB: Engine,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB>,
{
    for arg in args {
        query = match *arg {
            Arg::Int(v) => query.bind(v),
            Arg::OptInt(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::OptText(v) => query.bind(v),
            Arg::Ids(ids) => DB::bind_ids(query, ids),
            Arg::Texts(texts) => DB::bind_texts(query, texts),
            Arg::WriteRows(rows) => DB::bind_write_rows(query, rows),
        };
    }
    query
}

fn statement<'q, DB: Database>(sql: Cow<'static, str>) -> Query<'q, DB> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
}

/// A pool, as a place to run statements.
pub struct OnPool<'a, DB: Database>(pub &'a Pool<DB>);

/// The connection statements run on: the pool's or the transaction's.
pub trait Conn {
    type DB: Database;
    fn conn(&mut self) -> impl Executor<'_, Database = Self::DB>;
    /// Commits a transaction; nothing to do on the pool.
    fn finish(self) -> impl Future<Output = sqlx::Result<()>> + Send;
}

impl<DB: Database> Conn for OnPool<'_, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type DB = DB;
    fn conn(&mut self) -> impl Executor<'_, Database = DB> {
        self.0
    }
    fn finish(self) -> impl Future<Output = sqlx::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

impl<DB: Database> Conn for Transaction<'static, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type DB = DB;
    fn conn(&mut self) -> impl Executor<'_, Database = DB> {
        &mut **self
    }
    fn finish(self) -> impl Future<Output = sqlx::Result<()>> + Send {
        self.commit()
    }
}

#[async_trait]
impl<C, DB> Run for C
where
    C: Conn<DB = DB> + Send,
    DB: Engine,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB> + Send,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    DB::Row: ByName + ReadRow + Send + Sync,
{
    type Row = DB::Row;

    async fn fetch_all(
        &mut self,
        sql: impl Into<Cow<'static, str>> + Send,
        args: &[Arg<'_>],
    ) -> Result<Vec<Self::Row>> {
        Ok(bind(statement(sql.into()), args)
            .fetch_all(self.conn())
            .await?)
    }

    async fn fetch_optional(
        &mut self,
        sql: impl Into<Cow<'static, str>> + Send,
        args: &[Arg<'_>],
    ) -> Result<Option<Self::Row>> {
        Ok(bind(statement(sql.into()), args)
            .fetch_optional(self.conn())
            .await?)
    }

    async fn execute(
        &mut self,
        sql: impl Into<Cow<'static, str>> + Send,
        args: &[Arg<'_>],
    ) -> Result<u64> {
        let result = bind(statement(sql.into()), args)
            .execute(self.conn())
            .await?;
        Ok(DB::rows_affected(&result))
    }

    async fn finish(self) -> Result<()> {
        Ok(Conn::finish(self).await?)
    }
}
