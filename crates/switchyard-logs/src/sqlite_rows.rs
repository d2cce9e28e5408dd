//! The SQLite store's writer: one connection of its own that inserts each batch in one transaction,
//! row by row through one prepared single-row statement, the values bound straight from the records.
//!
//! The reads, migrations and pruning stay on the sqlx pool. Writing rows through sqlx cost about
//! 30,000 instructions per row on top of SQLite's own work (BENCHMARKS.md): the multi-row statement's
//! text and a copy of every value were built per batch, sqlx bound each value through its argument
//! buffer and sent the statement to its worker thread, and the inserted ids came back as rows to be
//! hashed into a set. Here the statement is prepared once, a value is bound from a borrowed `&str`,
//! and "was this id new" is the statement's change count.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef as SqlValue};
use rusqlite::{params_from_iter, Connection, OpenFlags, TransactionBehavior};

use crate::sql::{self, Dialect, ValueRef};
use crate::{LogRecord, LogStoreError};

pub(crate) struct RowWriter {
    /// `None` once closed: writes fail from then on.
    conn: Mutex<Option<Connection>>,
    insert: String,
}

impl RowWriter {
    /// Opens the writer connection on a database whose schema is already in place.
    pub(crate) fn open(path: &Path) -> Result<RowWriter, LogStoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // The same settings as the pool's connections (`SqliteLogStore::open` says why).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -4096)?;
        Ok(RowWriter {
            conn: Mutex::new(Some(conn)),
            insert: sql::insert_log_row_sqlite(),
        })
    }

    /// Closes the connection; later writes fail.
    pub(crate) fn close(&self) {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    /// Inserts the rows not stored yet and adds them to the rollup, all in one transaction. Blocks
    /// for the length of the write: the caller runs it off the async workers.
    pub(crate) fn write(&self, records: &[LogRecord]) -> Result<(), LogStoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let conn = guard
            .as_mut()
            .ok_or_else(|| LogStoreError::Writer("the log store is closed".into()))?;
        // IMMEDIATE takes the write lock up front, so a concurrent prune makes this wait (busy
        // timeout) instead of failing on a read-to-write upgrade.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut inserted = Vec::with_capacity(records.len());
        {
            let mut insert = tx.prepare_cached(&self.insert)?;
            for r in records {
                let values = sql::record_values(r);
                // An id already stored (a batch retried after an ambiguous commit, or twice in one
                // batch) changes nothing and is not counted again.
                if insert.execute(params_from_iter(values.iter().map(bound)))? == 1 {
                    inserted.push(r);
                }
            }
        }
        let deltas = sql::rollup_deltas(inserted.into_iter());
        for upsert in sql::rollup_upserts(Dialect::Sqlite, &deltas) {
            let values = upsert.params.iter().map(|p| bound(&p.as_value()));
            tx.prepare_cached(&upsert.text)?
                .execute(params_from_iter(values))?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// A value as SQLite stores it (booleans as 0/1, as sqlx stores them).
fn bound<'a>(v: &ValueRef<'a>) -> ToSqlOutput<'a> {
    let value = match *v {
        ValueRef::I64(n) | ValueRef::OptI64(Some(n)) => SqlValue::Integer(n),
        ValueRef::F64(x) | ValueRef::OptF64(Some(x)) => SqlValue::Real(x),
        ValueRef::Bool(b) => SqlValue::Integer(i64::from(b)),
        ValueRef::Text(s) | ValueRef::OptText(Some(s)) => SqlValue::Text(s.as_bytes()),
        ValueRef::OptI64(None) | ValueRef::OptF64(None) | ValueRef::OptText(None) => SqlValue::Null,
    };
    ToSqlOutput::Borrowed(value)
}
