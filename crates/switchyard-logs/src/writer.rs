//! The request path's only way into the log store.
//!
//! A request must never wait for the log database: [`LogWriter::log`] only tries to put the record on
//! a bounded channel and returns. When the channel is full (the database is slow or down) the record is
//! dropped and counted, which the operator sees in [`LogWriter::dropped`] and in a warning at most once a
//! second. One background task drains the channel in batches, so the database sees a few multi-row
//! transactions per second instead of one per request.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch, Notify};

use crate::{LogRecord, LogStore};

/// Most rows written in one transaction.
const BATCH_MAX: usize = 512;
/// How long a started batch waits for more rows before it is written.
const BATCH_WAIT: Duration = Duration::from_millis(200);
/// Waits between attempts to write a batch the database refused; after the last, the batch is dropped.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1_600),
];
/// How often the retention task prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
const DAY_MS: i64 = 86_400_000;

#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
    written: AtomicU64,
    /// Records taken off the channel and not yet written (or dropped).
    in_flight: AtomicUsize,
    /// When the last "dropped" warning went out, for the once-a-second limit.
    last_drop_warning_ms: AtomicI64,
}

impl Counters {
    fn drop_records(&self, n: u64, reason: &'static str) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        let now = now_ms();
        let last = self.last_drop_warning_ms.load(Ordering::Relaxed);
        if now - last >= 1_000
            && self
                .last_drop_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(dropped_total = total, reason, "request logs dropped");
        }
    }
}

struct Inner {
    tx: mpsc::Sender<LogRecord>,
    /// Told when a whole batch is waiting, so the writer stops lingering.
    batch_ready: Arc<Notify>,
    counters: Arc<Counters>,
    close: watch::Sender<bool>,
    done: watch::Receiver<bool>,
}

/// Hands records to a background task that writes them in batches. Cheap to clone; all clones feed the
/// same task, and [`shutdown`](LogWriter::shutdown) on any of them stops it for all.
#[derive(Clone)]
pub struct LogWriter {
    inner: Arc<Inner>,
}

impl LogWriter {
    /// Starts the writer task on the current tokio runtime (so it must be called inside one).
    /// `capacity` is how many records may wait for the database before new ones are dropped (at least 1).
    pub fn spawn(store: Arc<dyn LogStore>, capacity: usize) -> LogWriter {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (close, close_rx) = watch::channel(false);
        let (done_tx, done) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let batch_ready = Arc::new(Notify::new());
        tokio::spawn(run(
            store,
            rx,
            counters.clone(),
            batch_ready.clone(),
            close_rx,
            done_tx,
        ));
        LogWriter {
            inner: Arc::new(Inner {
                tx,
                batch_ready,
                counters,
                close,
                done,
            }),
        }
    }

    /// Like [`spawn`](Self::spawn), plus a task that deletes records older than `retention_days` once at
    /// start and then hourly (0 keeps everything). It stops at shutdown.
    pub fn spawn_with_retention(store: Arc<dyn LogStore>, capacity: usize, retention_days: u32) -> LogWriter {
        let writer = LogWriter::spawn(store.clone(), capacity);
        if retention_days > 0 {
            let close = writer.inner.close.subscribe();
            tokio::spawn(retain(store, i64::from(retention_days) * DAY_MS, close));
        }
        writer
    }

    /// Queues a record for writing. Never blocks or waits: when the queue is full, or the writer has
    /// shut down, the record is dropped and counted.
    pub fn log(&self, record: LogRecord) {
        let tx = &self.inner.tx;
        match tx.try_send(record) {
            Ok(()) => {
                if tx.max_capacity() - tx.capacity() >= BATCH_MAX {
                    self.inner.batch_ready.notify_one();
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => self.inner.counters.drop_records(1, "queue full"),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.inner.counters.drop_records(1, "writer shut down")
            }
        }
    }

    /// Records dropped so far: queue full, logged after shutdown, or refused by the database.
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the store so far.
    pub fn written(&self) -> u64 {
        self.inner.counters.written.load(Ordering::Relaxed)
    }

    /// Records accepted but not yet written: waiting in the queue or in the batch being written.
    pub fn queued(&self) -> usize {
        let tx = &self.inner.tx;
        (tx.max_capacity() - tx.capacity()) + self.inner.counters.in_flight.load(Ordering::Relaxed)
    }

    /// Stops accepting records and returns once every record accepted before the call has been written
    /// (or, if the database kept refusing it, counted as dropped). This is how SIGTERM flushes.
    ///
    /// With the database down this takes up to four attempts per queued batch; a caller with a shutdown
    /// deadline wraps it in `tokio::time::timeout`.
    pub async fn shutdown(self) {
        self.inner.close.send_replace(true);
        let mut done = self.inner.done.clone();
        // An error means the task is gone, which is also "done".
        let _ = done.wait_for(|d| *d).await;
    }
}

async fn run(
    store: Arc<dyn LogStore>,
    mut rx: mpsc::Receiver<LogRecord>,
    counters: Arc<Counters>,
    batch_ready: Arc<Notify>,
    mut close: watch::Receiver<bool>,
    done: watch::Sender<bool>,
) {
    let mut buf: Vec<LogRecord> = Vec::with_capacity(BATCH_MAX);
    let mut closing = false;
    let mut linger = true;
    loop {
        // Wait for the first record of a batch. Once closing, the channel refuses new records and
        // `recv_many` returns what is buffered, then 0.
        if closing {
            if rx.recv_many(&mut buf, BATCH_MAX).await == 0 {
                break;
            }
        } else {
            tokio::select! {
                n = rx.recv_many(&mut buf, BATCH_MAX) => {
                    if n == 0 {
                        break;
                    }
                }
                _ = close.changed() => {
                    rx.close();
                    closing = true;
                    continue;
                }
            }
        }
        counters.in_flight.store(buf.len(), Ordering::Relaxed);
        // Let the batch fill for a moment, so a trickle of requests becomes one insert: one timer
        // per batch, and no wake-up of this task per record (a logger wakes it once a whole batch
        // waits). After a full batch more records are waiting, so the next one starts at once.
        if !closing && linger {
            tokio::select! {
                _ = tokio::time::sleep(BATCH_WAIT) => {}
                _ = batch_ready.notified() => {}
                _ = close.changed() => {
                    rx.close();
                    closing = true;
                }
            }
        }
        while buf.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(record) => buf.push(record),
                Err(_) => break,
            }
        }
        linger = buf.len() < BATCH_MAX;
        counters.in_flight.store(buf.len(), Ordering::Relaxed);
        let batch: Arc<[LogRecord]> = buf.drain(..).collect();
        write_batch(store.as_ref(), batch, &counters).await;
        counters.in_flight.store(0, Ordering::Relaxed);
    }
    done.send_replace(true);
}

/// Writes one batch, retrying with backoff; a batch the database keeps refusing is dropped and counted
/// rather than blocking every later batch behind it.
async fn write_batch(store: &dyn LogStore, batch: Arc<[LogRecord]>, counters: &Counters) {
    let mut attempt = 0;
    loop {
        match store.insert_shared(batch.clone()).await {
            Ok(()) => {
                counters.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
            Err(e) if attempt < RETRY_DELAYS.len() => {
                tracing::warn!(
                    error = %e,
                    rows = batch.len(),
                    attempt = attempt + 1,
                    "writing request logs failed; retrying"
                );
                tokio::time::sleep(RETRY_DELAYS[attempt]).await;
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    rows = batch.len(),
                    "writing request logs failed; dropping the batch"
                );
                counters.drop_records(batch.len() as u64, "database error");
                return;
            }
        }
    }
}

async fn retain(store: Arc<dyn LogStore>, keep_ms: i64, mut close: watch::Receiver<bool>) {
    loop {
        let cutoff = now_ms() - keep_ms;
        match store.prune(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, cutoff_ms = cutoff, "pruned old request logs"),
            Err(e) => tracing::warn!(error = %e, "pruning old request logs failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = close.wait_for(|closed| *closed) => return,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
