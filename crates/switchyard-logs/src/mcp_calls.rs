//! MCP tool-call rows (`mcp_calls`, migration `0004`): one per call through the gateway's MCP hub,
//! with the SQL both stores run.

use serde::{Deserialize, Serialize};

use crate::sql::Dialect;

/// One MCP tool call, as `/api/mcp-logs` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct McpCallRecord {
    pub id: String,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    pub tool: String,
    pub server: String,
    pub virtual_key_id: Option<String>,
    pub latency_ms: f64,
    /// `success`, `tool_error` (the tool answered `isError`), `error`, `timeout` or `blocked`.
    pub status: String,
    pub error: Option<String>,
}

/// Which calls to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct McpCallQuery {
    pub server: Option<String>,
    pub virtual_key_id: Option<String>,
    pub limit: u32,
}

fn ph(d: Dialect, n: usize) -> String {
    match d {
        Dialect::Sqlite => "?".to_owned(),
        Dialect::Postgres => format!("${n}"),
    }
}

pub(crate) fn insert(d: Dialect) -> String {
    let p: Vec<String> = (1..=8).map(|n| ph(d, n)).collect();
    format!(
        "INSERT INTO mcp_calls (id, timestamp_ms, tool, server, virtual_key_id, latency_ms, status, error) \
         VALUES ({}) ON CONFLICT (id) DO NOTHING",
        p.join(", ")
    )
}

/// The page and the count statements, and the values to bind to each (in order).
pub(crate) fn select(d: Dialect, q: &McpCallQuery) -> (String, String, Vec<String>) {
    let mut conds = Vec::new();
    let mut binds = Vec::new();
    for (col, v) in [("server", &q.server), ("virtual_key_id", &q.virtual_key_id)] {
        if let Some(v) = v {
            binds.push(v.clone());
            conds.push(format!("{col} = {}", ph(d, binds.len())));
        }
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    let page = format!(
        "SELECT id, timestamp_ms, tool, server, virtual_key_id, latency_ms, status, error FROM mcp_calls{filter} \
         ORDER BY timestamp_ms DESC, id DESC LIMIT {}",
        q.limit.clamp(1, 1000)
    );
    (page, format!("SELECT COUNT(*) FROM mcp_calls{filter}"), binds)
}

pub(crate) fn prune(d: Dialect) -> String {
    format!("DELETE FROM mcp_calls WHERE timestamp_ms < {}", ph(d, 1))
}

/// Runs the insert, the page and count queries, and the prune on one pool (the SQL differs by
/// dialect only).
macro_rules! mcp_call_methods {
    ($store:ty, $dialect:expr) => {
        impl $store {
            async fn insert_mcp_call_row(
                &self,
                r: &$crate::McpCallRecord,
            ) -> Result<(), $crate::LogStoreError> {
                sqlx::query(&$crate::mcp_calls::insert($dialect))
                    .bind(&r.id)
                    .bind(r.timestamp_ms)
                    .bind(&r.tool)
                    .bind(&r.server)
                    .bind(&r.virtual_key_id)
                    .bind(r.latency_ms)
                    .bind(&r.status)
                    .bind(&r.error)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn mcp_call_rows(
                &self,
                q: &$crate::McpCallQuery,
            ) -> Result<(Vec<$crate::McpCallRecord>, u64), $crate::LogStoreError> {
                let (page, count, binds) = $crate::mcp_calls::select($dialect, q);
                let mut rows = sqlx::query_as::<_, $crate::McpCallRecord>(&page);
                let mut total = sqlx::query_scalar::<_, i64>(&count);
                for b in &binds {
                    rows = rows.bind(b);
                    total = total.bind(b);
                }
                let rows = rows.fetch_all(&self.pool).await?;
                let total = total.fetch_one(&self.pool).await?;
                Ok((rows, total.max(0) as u64))
            }
        }
    };
}

pub(crate) use mcp_call_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_bind_in_order() {
        let q = McpCallQuery {
            server: Some("a".into()),
            virtual_key_id: Some("k".into()),
            limit: 5000,
        };
        let (page, count, binds) = select(Dialect::Postgres, &q);
        assert!(
            page.contains("WHERE server = $1 AND virtual_key_id = $2") && page.ends_with("LIMIT 1000"),
            "{page}"
        );
        assert!(count.ends_with("WHERE server = $1 AND virtual_key_id = $2"));
        assert_eq!(binds, ["a", "k"]);
        let (page, _, binds) = select(
            Dialect::Sqlite,
            &McpCallQuery {
                virtual_key_id: Some("k".into()),
                ..Default::default()
            },
        );
        assert!(
            page.contains("WHERE virtual_key_id = ?") && page.ends_with("LIMIT 1"),
            "{page}"
        );
        assert_eq!(binds.len(), 1);
    }
}
