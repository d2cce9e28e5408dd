//! The SQLite store's writer: one connection of its own that inserts each batch in one transaction,
//! row by row through one prepared single-row statement, the values bound straight from the records.
//!
//! The reads, migrations and pruning stay on the sqlx pool. Writing rows through sqlx cost about
//! 30,000 instructions per row on top of SQLite's own work (BENCHMARKS.md): the multi-row statement's
//! text and a copy of every value were built per batch, sqlx bound each value through its argument
//! buffer and sent the statement to its worker thread, and the inserted ids came back as rows to be
//! hashed into a set. Here the statement is prepared once, a value is bound from a borrowed `&str`,
//! and "was this id new" is the statement's change count.
//!
//! The connection lives on a thread of its own ([`RowThread`]), as sqlx's connections do: one thread
//! doing all of SQLite's allocations keeps them in one C allocator arena (on the blocking pool, every
//! thread that ran a batch grew an arena of its own: +10 MB RSS at 32 connections).

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use rusqlite::types::{ToSqlOutput, ValueRef as SqlValue};
use rusqlite::{params_from_iter, Connection, OpenFlags, TransactionBehavior};

use crate::sql::{self, Dialect, ValueRef};
use crate::{LogRecord, LogStoreError};

type Job = (Arc<[LogRecord]>, oneshot::Sender<Result<(), LogStoreError>>);

/// The writer connection's thread: batches go in over a channel, each answered when it is written.
pub(crate) struct RowThread {
    /// `None` once closed: writes fail from then on, and the thread ends (closing the connection).
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl RowThread {
    pub(crate) fn start(writer: RowWriter) -> Result<RowThread, LogStoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("log-rows".into())
            .spawn(move || {
                let mut writer = writer;
                let mut pace = Pace::default();
                for (records, done) in queue {
                    let polite = pace.starting(Instant::now());
                    // The waiting writer may be gone (shut down); the rows are written all the same.
                    let _ = done.send(writer.write(&records, polite));
                    pace.finished(Instant::now());
                }
            })
            .map_err(|e| LogStoreError::Writer(format!("cannot start the log writer thread: {e}")))?;
        Ok(RowThread {
            jobs: Mutex::new(Some(jobs)),
        })
    }

    /// Writes the batch on the thread and waits for the outcome (without blocking the runtime).
    pub(crate) async fn write(&self, records: Arc<[LogRecord]>) -> Result<(), LogStoreError> {
        let (done, outcome) = oneshot::channel();
        let sent = match &*self.jobs.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(jobs) => jobs.send((records, done)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(LogStoreError::Writer("the log store is closed".into()));
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(LogStoreError::Writer("the log writer thread stopped".into())))
    }

    /// Refuses further writes; the thread ends once the batch in hand is written.
    pub(crate) fn close(&self) {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

/// Whether the writer keeps up with ease: it was idle since its last batch at least as long as that
/// batch took. Then it can offer its CPU to other threads while it writes (see
/// [`YIELD_EVERY_ROWS`]); when batches come back to back it takes its full share, or the queue in
/// front of it would fill and records would be dropped.
struct Pace {
    last_start: Instant,
    last_end: Instant,
}

impl Default for Pace {
    fn default() -> Self {
        let now = Instant::now();
        Pace {
            last_start: now,
            last_end: now,
        }
    }
}

impl Pace {
    /// A batch starts at `now`: whether it may yield.
    fn starting(&mut self, now: Instant) -> bool {
        let busy = self.last_end.saturating_duration_since(self.last_start);
        let idle = now.saturating_duration_since(self.last_end);
        self.last_start = now;
        idle >= busy
    }

    fn finished(&mut self, now: Instant) {
        self.last_end = now;
    }
}

pub(crate) struct RowWriter {
    conn: Connection,
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
        // As the pool's connections (`SqliteLogStore::open` says why), with 1 MB of page cache: the
        // rows only touch the right edge of each index and of the table, a few dozen pages.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -1024)?;
        Ok(RowWriter {
            conn,
            insert: sql::insert_log_row_sqlite(),
        })
    }

    /// Inserts the rows not stored yet and adds them to the rollup, all in one transaction. Blocks
    /// for the length of the write (it runs on [`RowThread`]).
    fn write(&mut self, records: &[LogRecord], polite: bool) -> Result<(), LogStoreError> {
        let conn = &mut self.conn;
        // IMMEDIATE takes the write lock up front, so a concurrent prune makes this wait (busy
        // timeout) instead of failing on a read-to-write upgrade.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut inserted = Vec::with_capacity(records.len());
        {
            let mut insert = tx.prepare_cached(&self.insert)?;
            for (i, r) in records.iter().enumerate() {
                if polite && i % YIELD_EVERY_ROWS == YIELD_EVERY_ROWS - 1 {
                    // A batch is milliseconds of CPU: on a machine with few cores it would hold
                    // one from the request path for a whole scheduler slice (p99 +2 ms at c=1).
                    std::thread::yield_now();
                }
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

/// Rows inserted between two offers of the CPU to other threads (about 0.3 ms of work).
const YIELD_EVERY_ROWS: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::{Duration, Instant};

    #[test]
    fn a_writer_yields_only_while_it_keeps_up_with_ease() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut pace = Pace {
            last_start: t0,
            last_end: t0,
        };
        // A trickle: 6 ms of writing, then 94 ms idle before the next batch.
        assert!(pace.starting(t0));
        pace.finished(t0 + ms(6));
        assert!(pace.starting(t0 + ms(100)));
        pace.finished(t0 + ms(106));
        // Saturation: the next batch was waiting when this one ended.
        let t1 = t0 + ms(106);
        assert!(!pace.starting(t1 + ms(1)));
        pace.finished(t1 + ms(7));
        assert!(!pace.starting(t1 + ms(8)));
        pace.finished(t1 + ms(14));
        // Idle as long as it was busy: yielding again.
        assert!(pace.starting(t1 + ms(20)));
    }
}
