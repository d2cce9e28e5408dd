//! PostgreSQL: the store several gateway replicas share.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Row};

use crate::bucket::Agg;
use crate::engine::{self, Backend};
use crate::sql::{self, Dialect, Sql};
use crate::{
    decode, GroupBy, HistogramBucket, LogFilter, LogPage, LogQuery, LogRecord, LogStats, LogStore,
    LogStoreError, SpendGroup, SpendRow,
};

fn query(sql: &Sql) -> sqlx::query::Query<'_, Postgres, <Postgres as sqlx::Database>::Arguments<'_>> {
    sql::query(sql)
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresLogStore {
    pool: PgPool,
}

impl PostgresLogStore {
    /// Connects to `url` and brings the schema up to date in the connection's default schema
    /// (`search_path`, usually `public`).
    ///
    /// sqlx keeps its migration ledger (`_sqlx_migrations`) per schema, so a database that another
    /// sqlx-migrated store also uses in the same schema will refuse one of the two ledgers; give the
    /// logs their own schema with [`connect_in_schema`](Self::connect_in_schema) in that case.
    pub async fn connect(url: &str) -> Result<Self, LogStoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = pool_options().connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresLogStore { pool })
    }

    /// Like [`connect`](Self::connect), but every table (the migration ledger included) lives in
    /// `schema`, created if missing. Lets several stores share one database without seeing each other:
    /// tests run in parallel this way, and a deployment can keep logs apart from other data.
    /// `schema` must be a plain identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, LogStoreError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(LogStoreError::Invalid(format!(
                "schema name '{schema}' must match [a-z_][a-z0-9_]* (at most 63 bytes)"
            )));
        }
        let options = PgConnectOptions::from_str(url)?;
        let mut conn = PgConnection::connect_with(&options).await?;
        conn.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str())
            .await?;
        conn.close().await?;
        let set_path = format!("SET search_path TO \"{schema}\"");
        let pool = pool_options()
            .after_connect(move |conn, _meta| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    conn.execute(set_path.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresLogStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
}

#[async_trait]
impl Backend for PostgresLogStore {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
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

crate::mcp_calls::mcp_call_methods!(PostgresLogStore, Dialect::Postgres);

#[async_trait]
impl LogStore for PostgresLogStore {
    async fn insert_batch(&self, records: &[LogRecord]) -> Result<(), LogStoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let mut inserted: HashSet<String> = HashSet::with_capacity(records.len());
        for chunk in sql::shaped_chunks(records) {
            let stmt = sql::insert_logs(Dialect::Postgres, chunk);
            for row in query(&stmt).fetch_all(&mut *tx).await? {
                inserted.insert(row.try_get(0)?);
            }
        }
        // Each inserted id counts once, even if the batch held it twice. The deltas are applied in
        // key order, so two gateways upserting the same rollup rows wait for each other instead of
        // deadlocking.
        let deltas = sql::rollup_deltas(records.iter().filter(|r| inserted.remove(&r.id)));
        for stmt in sql::rollup_upserts(Dialect::Postgres, &deltas) {
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
        sqlx::query(&crate::mcp_calls::prune(Dialect::Postgres))
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        let mut deleted = engine::prune_chunks(self, older_than_ms).await?;
        let (stragglers, rollup_fix) = sql::prune_final(Dialect::Postgres, older_than_ms);
        let mut tx = self.pool.begin().await?;
        // Recomputing a bucket from raw rows must not interleave with another gateway's upsert into
        // it; this mode blocks concurrent writers of the rollup (not its readers) until commit.
        sqlx::query("LOCK TABLE log_rollup IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        deleted += query(&stragglers).execute(&mut *tx).await?.rows_affected();
        for stmt in &rollup_fix {
            query(stmt).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), LogStoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
