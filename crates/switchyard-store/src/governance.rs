//! Where governance lives between restarts: virtual keys, teams, customers, price overrides, client
//! settings and persisted usage counters. [`GovernanceStore`] is implemented for the SQLite config
//! store (same `config.db`, migration `0002_governance.sql`) and for PostgreSQL
//! ([`PostgresGovernanceStore`]); both pass one contract suite (`tests/governance_contract.rs`).

use async_trait::async_trait;
use serde::Serialize;
use switchyard_core::governance::{Group, VirtualKey};
use switchyard_guardrails::Guardrail;

use crate::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    Team,
    Customer,
}

impl GroupKind {
    pub fn label(self) -> &'static str {
        match self {
            GroupKind::Team => "team",
            GroupKind::Customer => "customer",
        }
    }
}

pub use switchyard_core::governance::PriceOverride;

/// A persisted usage counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterRow {
    pub name: String,
    pub value: i64,
    pub expires_at_ms: i64,
}

/// Everything governance keeps, as loaded at start-up and after each change.
#[derive(Clone, Debug, Default)]
pub struct GovernanceData {
    pub virtual_keys: Vec<VirtualKey>,
    pub teams: Vec<Group>,
    pub customers: Vec<Group>,
    pub price_overrides: Vec<PriceOverride>,
    pub guardrails: Vec<Guardrail>,
}

#[async_trait]
pub trait GovernanceStore: Send + Sync + 'static {
    async fn load_governance(&self) -> Result<GovernanceData, StoreError>;
    /// Fails with `Conflict` for a duplicate id or value, `NotFound` for an unknown team or customer.
    async fn insert_virtual_key(&self, vk: &VirtualKey) -> Result<(), StoreError>;
    async fn update_virtual_key(&self, vk: &VirtualKey) -> Result<(), StoreError>;
    async fn delete_virtual_key(&self, id: &str) -> Result<(), StoreError>;
    async fn insert_group(&self, kind: GroupKind, group: &Group) -> Result<(), StoreError>;
    async fn update_group(&self, kind: GroupKind, group: &Group) -> Result<(), StoreError>;
    /// Fails with `Conflict` while virtual keys or teams still belong to it.
    async fn delete_group(&self, kind: GroupKind, id: &str) -> Result<(), StoreError>;
    async fn put_price_override(&self, p: &PriceOverride) -> Result<(), StoreError>;
    async fn delete_price_override(&self, provider: &str, model: &str) -> Result<(), StoreError>;
    async fn get_setting(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError>;
    async fn put_setting(&self, name: &str, value: &serde_json::Value) -> Result<(), StoreError>;
    /// Fails with `Conflict` for a duplicate id or name.
    async fn insert_guardrail(&self, g: &Guardrail) -> Result<(), StoreError>;
    /// Fails with `NotFound` for an unknown id, `Conflict` for a name another guardrail has.
    async fn update_guardrail(&self, g: &Guardrail) -> Result<(), StoreError>;
    async fn delete_guardrail(&self, id: &str) -> Result<(), StoreError>;
    /// Replaces every persisted counter with `rows` in one transaction.
    async fn save_counters(&self, rows: &[CounterRow]) -> Result<(), StoreError>;
    /// The persisted counters that have not expired at `now_ms`.
    async fn load_counters(&self, now_ms: i64) -> Result<Vec<CounterRow>, StoreError>;
}

pub(crate) fn to_doc<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("governance types always serialise")
}

pub(crate) fn from_doc<T: serde::de::DeserializeOwned>(what: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Maps integrity violations to the errors the API reports.
pub(crate) fn integrity(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("{what} already exists (same id or value)"))
        }
        // SQLite reports `ON DELETE RESTRICT` as a trigger constraint (1811), not as 787.
        sqlx::Error::Database(db)
            if db.is_foreign_key_violation() || db.message().contains("FOREIGN KEY constraint failed") =>
        {
            StoreError::Conflict(format!(
                "{what}: it refers to a team or customer that does not exist, or others still belong to it"
            ))
        }
        _ => StoreError::Database(e),
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One implementation for both databases: the statements differ only in placeholders, which `q`
/// rewrites for PostgreSQL (`?` to `$n`).
macro_rules! impl_governance_store {
    ($ty:ty, $pg:expr) => {
        impl $ty {
            fn q(sql: &'static str) -> std::borrow::Cow<'static, str> {
                if $pg {
                    let mut out = String::with_capacity(sql.len() + 8);
                    let mut n = 0;
                    for c in sql.chars() {
                        if c == '?' {
                            n += 1;
                            out.push_str(&format!("${n}"));
                        } else {
                            out.push(c);
                        }
                    }
                    std::borrow::Cow::Owned(out)
                } else {
                    std::borrow::Cow::Borrowed(sql)
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::governance::GovernanceStore for $ty {
            async fn load_governance(&self) -> Result<$crate::governance::GovernanceData, $crate::StoreError> {
                use sqlx::Row;
                use $crate::governance::from_doc;
                let mut data = $crate::governance::GovernanceData::default();
                for row in sqlx::query(&Self::q("SELECT doc FROM governance_virtual_keys ORDER BY created_at, id"))
                    .fetch_all(&self.pool)
                    .await?
                {
                    data.virtual_keys.push(from_doc("virtual key", row.try_get::<&str, _>(0)?)?);
                }
                for row in sqlx::query(&Self::q("SELECT doc FROM governance_teams ORDER BY created_at, id"))
                    .fetch_all(&self.pool)
                    .await?
                {
                    data.teams.push(from_doc("team", row.try_get::<&str, _>(0)?)?);
                }
                for row in sqlx::query(&Self::q("SELECT doc FROM governance_customers ORDER BY created_at, id"))
                    .fetch_all(&self.pool)
                    .await?
                {
                    data.customers.push(from_doc("customer", row.try_get::<&str, _>(0)?)?);
                }
                for row in sqlx::query(&Self::q("SELECT doc FROM governance_price_overrides ORDER BY provider, model"))
                    .fetch_all(&self.pool)
                    .await?
                {
                    data.price_overrides.push(from_doc("price override", row.try_get::<&str, _>(0)?)?);
                }
                for row in sqlx::query(&Self::q("SELECT doc FROM guardrails ORDER BY created_at, id"))
                    .fetch_all(&self.pool)
                    .await?
                {
                    data.guardrails.push(from_doc("guardrail", row.try_get::<&str, _>(0)?)?);
                }
                Ok(data)
            }

            async fn insert_virtual_key(&self, vk: &switchyard_core::governance::VirtualKey) -> Result<(), $crate::StoreError> {
                let t = $crate::governance::now_secs();
                sqlx::query(&Self::q(
                    "INSERT INTO governance_virtual_keys (id, value_hash, team_id, customer_id, doc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(&vk.id)
                .bind(&vk.value_hash)
                .bind(&vk.team_id)
                .bind(&vk.customer_id)
                .bind($crate::governance::to_doc(vk))
                .bind(t)
                .bind(t)
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::governance::integrity(e, &format!("virtual key '{}'", vk.id)))?;
                Ok(())
            }

            async fn update_virtual_key(&self, vk: &switchyard_core::governance::VirtualKey) -> Result<(), $crate::StoreError> {
                let r = sqlx::query(&Self::q(
                    "UPDATE governance_virtual_keys SET team_id = ?, customer_id = ?, doc = ?, updated_at = ? WHERE id = ?",
                ))
                .bind(&vk.team_id)
                .bind(&vk.customer_id)
                .bind($crate::governance::to_doc(vk))
                .bind($crate::governance::now_secs())
                .bind(&vk.id)
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::governance::integrity(e, &format!("virtual key '{}'", vk.id)))?;
                if r.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound(format!("virtual key '{}' not found", vk.id)));
                }
                Ok(())
            }

            async fn delete_virtual_key(&self, id: &str) -> Result<(), $crate::StoreError> {
                let r = sqlx::query(&Self::q("DELETE FROM governance_virtual_keys WHERE id = ?"))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                if r.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound(format!("virtual key '{id}' not found")));
                }
                Ok(())
            }

            async fn insert_group(&self, kind: $crate::governance::GroupKind, g: &switchyard_core::governance::Group) -> Result<(), $crate::StoreError> {
                let t = $crate::governance::now_secs();
                let what = format!("{} '{}'", kind.label(), g.id);
                let doc = $crate::governance::to_doc(g);
                let team_sql = Self::q(
                    "INSERT INTO governance_teams (id, customer_id, doc, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                );
                let customer_sql =
                    Self::q("INSERT INTO governance_customers (id, doc, created_at, updated_at) VALUES (?, ?, ?, ?)");
                let q = match kind {
                    $crate::governance::GroupKind::Team => sqlx::query(&team_sql).bind(&g.id).bind(&g.customer_id),
                    $crate::governance::GroupKind::Customer => sqlx::query(&customer_sql).bind(&g.id),
                };
                q.bind(doc)
                    .bind(t)
                    .bind(t)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::governance::integrity(e, &what))?;
                Ok(())
            }

            async fn update_group(&self, kind: $crate::governance::GroupKind, g: &switchyard_core::governance::Group) -> Result<(), $crate::StoreError> {
                let what = format!("{} '{}'", kind.label(), g.id);
                let doc = $crate::governance::to_doc(g);
                let t = $crate::governance::now_secs();
                let team_sql = Self::q("UPDATE governance_teams SET customer_id = ?, doc = ?, updated_at = ? WHERE id = ?");
                let customer_sql = Self::q("UPDATE governance_customers SET doc = ?, updated_at = ? WHERE id = ?");
                let q = match kind {
                    $crate::governance::GroupKind::Team => sqlx::query(&team_sql).bind(&g.customer_id).bind(doc),
                    $crate::governance::GroupKind::Customer => sqlx::query(&customer_sql).bind(doc),
                };
                let r = q
                    .bind(t)
                    .bind(&g.id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::governance::integrity(e, &what))?;
                if r.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound(format!("{what} not found")));
                }
                Ok(())
            }

            async fn delete_group(&self, kind: $crate::governance::GroupKind, id: &str) -> Result<(), $crate::StoreError> {
                let what = format!("{} '{id}'", kind.label());
                let sql = match kind {
                    $crate::governance::GroupKind::Team => "DELETE FROM governance_teams WHERE id = ?",
                    $crate::governance::GroupKind::Customer => "DELETE FROM governance_customers WHERE id = ?",
                };
                let r = sqlx::query(&Self::q(sql))
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| match $crate::governance::integrity(e, &what) {
                        $crate::StoreError::Conflict(_) => $crate::StoreError::Conflict(format!(
                            "{what} still has virtual keys or teams; move or delete them first"
                        )),
                        other => other,
                    })?;
                if r.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound(format!("{what} not found")));
                }
                Ok(())
            }

            async fn put_price_override(&self, p: &$crate::governance::PriceOverride) -> Result<(), $crate::StoreError> {
                sqlx::query(&Self::q(
                    "INSERT INTO governance_price_overrides (provider, model, doc) VALUES (?, ?, ?)
                     ON CONFLICT (provider, model) DO UPDATE SET doc = excluded.doc",
                ))
                .bind(&p.provider)
                .bind(&p.model)
                .bind($crate::governance::to_doc(p))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_price_override(&self, provider: &str, model: &str) -> Result<(), $crate::StoreError> {
                let r = sqlx::query(&Self::q("DELETE FROM governance_price_overrides WHERE provider = ? AND model = ?"))
                    .bind(provider)
                    .bind(model)
                    .execute(&self.pool)
                    .await?;
                if r.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound(format!("no price override for {provider}/{model}")));
                }
                Ok(())
            }

            async fn get_setting(&self, name: &str) -> Result<Option<serde_json::Value>, $crate::StoreError> {
                use sqlx::Row;
                let row = sqlx::query(&Self::q("SELECT doc FROM governance_settings WHERE name = ?"))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| $crate::governance::from_doc("setting", r.try_get::<&str, _>(0)?))
                    .transpose()
            }

            async fn put_setting(&self, name: &str, value: &serde_json::Value) -> Result<(), $crate::StoreError> {
                sqlx::query(&Self::q(
                    "INSERT INTO governance_settings (name, doc) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                ))
                .bind(name)
                .bind(value.to_string())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn insert_guardrail(&self, g: &switchyard_guardrails::Guardrail) -> Result<(), $crate::StoreError> {
                let t = $crate::governance::now_secs();
                sqlx::query(&Self::q(
                    "INSERT INTO guardrails (id, name, doc, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                ))
                .bind(&g.id)
                .bind(&g.name)
                .bind($crate::governance::to_doc(g))
                .bind(t)
                .bind(t)
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::governance::integrity(e, &format!("guardrail '{}'", g.name)))?;
                Ok(())
            }

            async fn update_guardrail(&self, g: &switchyard_guardrails::Guardrail) -> Result<(), $crate::StoreError> {
                let r = sqlx::query(&Self::q("UPDATE guardrails SET name = ?, doc = ?, updated_at = ? WHERE id = ?"))
                    .bind(&g.name)
                    .bind($crate::governance::to_doc(g))
                    .bind($crate::governance::now_secs())
                    .bind(&g.id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::governance::integrity(e, &format!("guardrail '{}'", g.name)))?;
                if r.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound(format!("guardrail '{}' not found", g.id)));
                }
                Ok(())
            }

            async fn delete_guardrail(&self, id: &str) -> Result<(), $crate::StoreError> {
                let r = sqlx::query(&Self::q("DELETE FROM guardrails WHERE id = ?"))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                if r.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound(format!("guardrail '{id}' not found")));
                }
                Ok(())
            }

            async fn save_counters(&self, rows: &[$crate::governance::CounterRow]) -> Result<(), $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM governance_counters").execute(&mut *tx).await?;
                for r in rows {
                    sqlx::query(&Self::q("INSERT INTO governance_counters (name, value, expires_at_ms) VALUES (?, ?, ?)"))
                        .bind(&r.name)
                        .bind(r.value)
                        .bind(r.expires_at_ms)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn load_counters(&self, now_ms: i64) -> Result<Vec<$crate::governance::CounterRow>, $crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(&Self::q(
                    "SELECT name, value, expires_at_ms FROM governance_counters WHERE expires_at_ms > ? ORDER BY name",
                ))
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::governance::CounterRow {
                            name: r.try_get(0)?,
                            value: r.try_get(1)?,
                            expires_at_ms: r.try_get(2)?,
                        })
                    })
                    .collect()
            }
        }
    };
}

impl_governance_store!(crate::SqliteConfigStore, false);
impl_governance_store!(PostgresGovernanceStore, true);

/// Governance on PostgreSQL. It takes a pool whose `search_path` is already set (the deployment's
/// schema); [`PostgresGovernanceStore::migrate`] brings that schema up to date.
pub struct PostgresGovernanceStore {
    pool: sqlx::PgPool,
}

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PostgresGovernanceStore {
    pub fn new(pool: sqlx::PgPool) -> Self {
        PostgresGovernanceStore { pool }
    }

    /// Runs the PostgreSQL migrations (`migrations/postgres`), then returns the store.
    pub async fn migrate(pool: sqlx::PgPool) -> Result<Self, StoreError> {
        PG_MIGRATOR.run(&pool).await?;
        Ok(PostgresGovernanceStore { pool })
    }
}
