//! The embedded default: `logs.db` in the app dir.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool};

use crate::bucket::Agg;
use crate::engine::{self, Backend};
use crate::sql::{self, Dialect, Sql};
use crate::sqlite_rows::{RowThread, RowWriter};
use crate::{
    decode, GroupBy, HistogramBucket, LogFilter, LogPage, LogQuery, LogRecord, LogStats, LogStore,
    LogStoreError, SpendGroup, SpendRow,
};

fn query(sql: &Sql) -> sqlx::query::Query<'_, Sqlite, <Sqlite as sqlx::Database>::Arguments<'_>> {
    sql::query(sql)
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteLogStore {
    pool: SqlitePool,
    /// Inserts the rows (reads, migrations and pruning use `pool`).
    rows: RowThread,
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
            // 4 MB of page cache per connection instead of 2 MB: the rows' ids are time-ordered (UUID
            // v7) and every index leads with a low-cardinality column or the time, so the writer only
            // touches the right edge of each index. A larger cache (32 MB was tried) just grew into
            // the gateway's RSS under load without making inserts measurably cheaper.
            .pragma("cache_size", "-4096");
        // One connection writes at a time (SQLite's rule); the others serve the API's reads, which WAL
        // lets run alongside the writer.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let rows = RowThread::start(RowWriter::open(path)?)?;
        let store = SqliteLogStore { pool, rows };
        store.optimize().await?;
        Ok(store)
    }

    pub async fn close(&self) {
        self.rows.close();
        self.pool.close().await;
    }

    /// Refreshes the planner's statistics when they are stale (cheap: SQLite samples). Without them it
    /// guesses index selectivity, and may sort a month of rows where an index would have served.
    async fn optimize(&self) -> Result<(), LogStoreError> {
        sqlx::query("PRAGMA optimize").execute(&self.pool).await?;
        Ok(())
    }
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

    async fn fetch_spend(&self, sql: &Sql, group: SpendGroup) -> Result<Vec<SpendRow>, LogStoreError> {
        let rows = query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(|r| decode::spend(r, group)).collect()
    }

    async fn execute(&self, sql: &Sql) -> Result<u64, LogStoreError> {
        Ok(query(sql).execute(&self.pool).await?.rows_affected())
    }
}

crate::mcp_calls::mcp_call_methods!(SqliteLogStore, Dialect::Sqlite);

#[async_trait]
impl LogStore for SqliteLogStore {
    async fn insert_batch(&self, records: &[LogRecord]) -> Result<(), LogStoreError> {
        self.insert_shared(records.into()).await
    }

    async fn insert_shared(&self, records: Arc<[LogRecord]>) -> Result<(), LogStoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.rows.write(records).await
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
        group: SpendGroup,
        virtual_key_id: Option<&str>,
    ) -> Result<Vec<SpendRow>, LogStoreError> {
        engine::spend(self, from_ms, to_ms, group, virtual_key_id).await
    }

    async fn insert_mcp_call(&self, r: &crate::McpCallRecord) -> Result<(), LogStoreError> {
        self.insert_mcp_call_row(r).await
    }

    async fn mcp_calls(
        &self,
        q: &crate::McpCallQuery,
    ) -> Result<(Vec<crate::McpCallRecord>, u64), LogStoreError> {
        self.mcp_call_rows(q).await
    }

    async fn prune(&self, older_than_ms: i64) -> Result<u64, LogStoreError> {
        sqlx::query(&crate::mcp_calls::prune(Dialect::Sqlite))
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        let mut deleted = engine::prune_chunks(self, older_than_ms).await?;
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
