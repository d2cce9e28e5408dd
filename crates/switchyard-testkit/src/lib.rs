//! Test support shared by Switchyard's test suites: a dev-dependency only, never published.
//!
//! The suites that talk to real services reach them through here:
//! - PostgreSQL at `SWITCHYARD_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`):
//!   [`pg_url`], [`pg_connect`], and [`SchemaGuard`], a schema of the test's own that is dropped when
//!   the test ends (also when it panics);
//! - Redis at `SWITCHYARD_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`): [`RedisSpace`], the URL
//!   and a key prefix of the test's own.
//!
//! Both servers are shared by concurrent test runs, so every test works in a namespace of its own. When
//! a server does not answer, the test fails at once with a message saying which server, where, and how
//! to start it, instead of a pool timeout or a child process that never comes up.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection};

const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS_DEFAULT: &str = "redis://127.0.0.1:6379";
const HOW_TO_START: &str = "`bash scripts/services.sh` starts PostgreSQL and Redis where they are \
     installed and says what to install where they are not";
/// PostgreSQL's limit on identifiers, in bytes.
const PG_NAME_MAX: usize = 63;

/// Where the tests' PostgreSQL is: `SWITCHYARD_TEST_PG_URL`, or the local `test` database.
pub fn pg_url() -> String {
    std::env::var("SWITCHYARD_TEST_PG_URL").unwrap_or_else(|_| PG_DEFAULT.to_owned())
}

/// Where the tests' Redis is: `SWITCHYARD_TEST_REDIS_URL`, or the local server.
pub fn redis_url() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_URL").unwrap_or_else(|_| REDIS_DEFAULT.to_owned())
}

/// `{prefix}{sep}{test}{sep}{pid}{sep}{n}{sep}{nanos}` in at most `max` bytes: distinct for every call
/// of every test process running at once. A long test name is shortened, never the unique tail.
/// `prefix` and `test` are expected to be ASCII.
pub fn unique_name(prefix: &str, test: &str, sep: char, max: usize) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tail = format!("{sep}{}{sep}{n}{sep}{nanos}", std::process::id());
    let mut head = format!("{prefix}{sep}{test}");
    head.truncate(max.saturating_sub(tail.len()));
    head + &tail
}

/// Runs `work` to completion on a runtime of its own, on a thread of its own: usable from `Drop` and
/// from synchronous code, also while a test's runtime is running or unwinding.
fn on_own_runtime<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a test runtime")
            .block_on(work)
    })
    .join()
    .expect("the helper thread does not panic")
}

/// Fails the test with a clear message unless PostgreSQL answers at [`pg_url`]. Checked once per test
/// process.
#[track_caller]
pub fn require_postgres() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = CHECK.get_or_init(|| {
        let url = pg_url();
        on_own_runtime(async move {
            match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url)).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 10 s".to_owned()),
            }
        })
    });
    if let Err(e) = outcome {
        panic!(
            "this test needs PostgreSQL, and it cannot be reached at {}: {e}\n\
             {HOW_TO_START}; or point SWITCHYARD_TEST_PG_URL at a server and database the tests may use.",
            pg_url()
        );
    }
}

/// A connection to the tests' database ([`require_postgres`] first).
pub async fn pg_connect() -> PgConnection {
    require_postgres();
    PgConnection::connect(&pg_url())
        .await
        .unwrap_or_else(|e| panic!("connecting to PostgreSQL at {}: {e}", pg_url()))
}

/// A PostgreSQL schema name of the test's own, `{prefix}_{test}_{pid}_{n}_{nanos}` (at most 63
/// bytes), dropped with everything in it when the guard is dropped, also after a panic. The schema is
/// not created here: the store under test creates it (or the test does, with [`pg_connect`]).
pub struct SchemaGuard(String);

impl SchemaGuard {
    /// Checks that PostgreSQL answers ([`require_postgres`]) and picks the name.
    #[track_caller]
    pub fn new(prefix: &str, test: &str) -> SchemaGuard {
        require_postgres();
        SchemaGuard(unique_name(prefix, test, '_', PG_NAME_MAX))
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let schema = self.0.clone();
        let dropped = on_own_runtime(async move {
            let mut conn = PgConnection::connect(&pg_url()).await?;
            conn.execute(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str())
                .await?;
            conn.close().await
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.0);
        }
    }
}

/// The tests' Redis and a key prefix of the test's own (`switchyard-test:{test}:{pid}:{n}:{nanos}:`).
/// The code under test must let every key it writes expire, so nothing is cleaned up here.
pub struct RedisSpace {
    pub url: String,
    pub prefix: String,
}

impl RedisSpace {
    /// Checks that Redis answers ([`require_redis`]) and picks the prefix.
    #[track_caller]
    pub fn new(test: &str) -> RedisSpace {
        require_redis();
        RedisSpace {
            url: redis_url(),
            prefix: unique_name("switchyard-test", test, ':', 200) + ":",
        }
    }
}

/// Fails the test with a clear message unless a Redis server answers `PING` at [`redis_url`]. Checked
/// once per test process.
#[track_caller]
pub fn require_redis() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = CHECK.get_or_init(|| ping_redis(&redis_url())) {
        panic!(
            "this test needs Redis, and it cannot be reached at {}: {e}\n\
             {HOW_TO_START}; or point SWITCHYARD_TEST_REDIS_URL at a server the tests may use.",
            redis_url()
        );
    }
}

/// Sends `PING` in Redis's protocol and accepts any answer in it (`+PONG`, or an error such as
/// `-NOAUTH`, which the client under test will then report itself).
fn ping_redis(url: &str) -> Result<(), String> {
    let rest = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("{host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host_port}: no address"))?;
    let mut conn =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| format!("{addr}: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut first = [0u8; 1];
    conn.read_exact(&mut first)
        .map_err(|e| format!("no answer to PING: {e}"))?;
    match first[0] {
        b'+' | b'-' => Ok(()),
        other => Err(format!("not a Redis server (answered {:?})", other as char)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_fit() {
        let long = "a_test_name_long_enough_to_push_the_unique_tail_past_postgres_limit";
        let a = unique_name("sycfg", long, '_', PG_NAME_MAX);
        let b = unique_name("sycfg", long, '_', PG_NAME_MAX);
        assert_ne!(a, b);
        assert!(a.len() <= PG_NAME_MAX, "{a}");
        assert!(a.starts_with("sycfg_a_test_name"), "{a}");
        assert!(a.contains(&format!("_{}_", std::process::id())), "{a}");
        let short = unique_name("switchyard-test", "x", ':', 200);
        assert!(short.starts_with("switchyard-test:x:"), "{short}");
    }

    #[test]
    fn an_unreachable_redis_is_reported_not_hung() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = ping_redis(&format!("redis://127.0.0.1:{port}")).unwrap_err();
        assert!(err.contains(&port.to_string()), "{err}");
    }
}
