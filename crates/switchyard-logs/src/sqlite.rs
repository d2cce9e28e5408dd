//! The embedded default: `logs.db` in the app dir.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool};

use crate::bucket::Agg;
use crate::engine::{self, Backend};
use crate::sql::{self, Dialect, Param, Sql, INSERT_CHUNK};
use crate::{
    decode, GroupBy, HistogramBucket, LogFilter, LogPage, LogQuery, LogRecord, LogStats, LogStore,
    LogStoreError,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Rows deleted per transaction while pruning.
const PRUNE_CHUNK: i64 = 20_000;

pub struct SqliteLogStore {
    pool: SqlitePool,
}

impl SqliteLogStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, LogStoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Logs are not worth an fsync per batch: in WAL mode NORMAL can lose the last batches on
            // power loss, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // 32 MB of page cache per connection instead of 2 MB, so the index pages the writer
            // appends to stay in memory; it only grows as far as it is used.
            .pragma("cache_size", "-32768");
        // One connection writes at a time (SQLite's rule); the others serve the API's reads, which WAL
        // lets run alongside the writer.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let store = SqliteLogStore { pool };
        store.optimize().await?;
        Ok(store)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Refreshes the planner's statistics when they are stale (cheap: SQLite samples). Without them it
    /// guesses index selectivity, and may sort a month of rows where an index would have served.
    async fn optimize(&self) -> Result<(), LogStoreError> {
        sqlx::query("PRAGMA optimize").execute(&self.pool).await?;
        Ok(())
    }
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    params: &'q [Param],
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    for p in params {
        q = match p {
            Param::I64(v) => q.bind(*v),
            Param::F64(v) => q.bind(*v),
            Param::Bool(v) => q.bind(*v),
            Param::Text(v) => q.bind(v.as_str()),
            Param::OptI64(v) => q.bind(*v),
            Param::OptF64(v) => q.bind(*v),
            Param::OptText(v) => q.bind(v.as_deref()),
        };
    }
    q
}

fn query(sql: &Sql) -> sqlx::query::Query<'_, Sqlite, SqliteArguments<'_>> {
    bind(sqlx::query(&sql.text), &sql.params)
}

#[async_trait]
impl Backend for SqliteLogStore {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn fetch_records(&self, sql: &Sql) -> Result<Vec<LogRecord>, LogStoreError> {
        let rows = query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(decode::record).collect()
    }

    async fn fetch_aggs(
        &self,
        sql: &Sql,
        from_rollup: bool,
    ) -> Result<Vec<(i64, String, Agg)>, LogStoreError> {
        let rows = query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(|r| decode::agg(r, from_rollup)).collect()
    }

    async fn fetch_count(&self, sql: &Sql) -> Result<i64, LogStoreError> {
        Ok(query(sql).fetch_one(&self.pool).await?.try_get(0)?)
    }
}

#[async_trait]
impl LogStore for SqliteLogStore {
    async fn insert_batch(&self, records: &[LogRecord]) -> Result<(), LogStoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let mut inserted: HashSet<String> = HashSet::with_capacity(records.len());
        for chunk in records.chunks(INSERT_CHUNK) {
            let stmt = sql::insert_logs(Dialect::Sqlite, chunk);
            for row in query(&stmt).fetch_all(&mut *tx).await? {
                inserted.insert(row.try_get(0)?);
            }
        }
        // Each inserted id counts once, even if the batch held it twice.
        let deltas = sql::rollup_deltas(records.iter().filter(|r| inserted.remove(&r.id)));
        for stmt in sql::rollup_upserts(Dialect::Sqlite, &deltas) {
            query(&stmt).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn query(&self, q: &LogQuery) -> Result<LogPage, LogStoreError> {
        engine::query(self, q).await
    }

    async fn get(&self, id: &str) -> Result<Option<LogRecord>, LogStoreError> {
        engine::get(self, id).await
    }

    async fn stats(&self, filter: &LogFilter) -> Result<LogStats, LogStoreError> {
        engine::stats(self, filter).await
    }

    async fn histogram(
        &self,
        filter: &LogFilter,
        bucket_seconds: u64,
        group_by: Option<GroupBy>,
    ) -> Result<Vec<HistogramBucket>, LogStoreError> {
        engine::histogram(self, filter, bucket_seconds, group_by).await
    }

    async fn spend(
        &self,
        from_ms: i64,
        to_ms: i64,
        group: crate::SpendGroup,
        virtual_key_id: Option<&str>,
    ) -> Result<Vec<crate::SpendRow>, LogStoreError> {
        let text = group.sql(false, virtual_key_id.is_some());
        let mut q = sqlx::query(&text).bind(from_ms).bind(to_ms);
        if let Some(k) = virtual_key_id {
            q = q.bind(k);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let (label, day) = if group == crate::SpendGroup::Day {
                (None, r.try_get::<Option<i64>, _>(0)?)
            } else {
                (r.try_get::<Option<String>, _>(0)?, None)
            };
            out.push(crate::spend_row(
                group,
                label,
                day,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
            ));
        }
        // One order on every database: calls without a group first (NULL sorts differently in each).
        out.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(out)
    }

    async fn prune(&self, older_than_ms: i64) -> Result<u64, LogStoreError> {
        let mut deleted = 0u64;
        loop {
            let stmt = sql::prune_chunk(Dialect::Sqlite, older_than_ms, PRUNE_CHUNK);
            let n = query(&stmt).execute(&self.pool).await?.rows_affected();
            deleted += n;
            if n < PRUNE_CHUNK as u64 {
                break;
            }
        }
        let (stragglers, rollup_fix) = sql::prune_final(Dialect::Sqlite, older_than_ms);
        let mut tx = self.pool.begin().await?;
        deleted += query(&stragglers).execute(&mut *tx).await?.rows_affected();
        for stmt in &rollup_fix {
            query(stmt).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.optimize().await?;
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), LogStoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
