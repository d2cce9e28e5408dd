//! The Redis counters against the real Redis (`switchyard_testkit::RedisSpace`, by default
//! 127.0.0.1:6379; each test under its own key prefix; every key written expires): admission is
//! all-or-nothing and race-free.

use std::sync::Arc;

use switchyard_core::governance::{Level, LimitCheck, LimitKind};
use switchyard_gateway::governance::counters::{Counters, RedisCounters};
use switchyard_testkit::RedisSpace;

fn check(counter: &str, kind: LimitKind, max: i64, add: i64) -> LimitCheck {
    LimitCheck {
        counter: counter.into(),
        kind,
        level: Level::VirtualKey,
        level_name: "k".into(),
        max,
        add,
        duration: None,
        window_end_ms: 60_000,
    }
}

async fn counters(name: &str) -> Arc<dyn Counters> {
    let redis = RedisSpace::new(name);
    Arc::new(
        RedisCounters::connect(&redis.url, redis.prefix)
            .await
            .unwrap_or_else(|e| panic!("Redis at {}: {e}", redis.url)),
    )
}

#[tokio::test]
async fn redis_admission_reserves_all_or_nothing() {
    let c = counters("all-or-nothing").await;
    let checks = [
        check("req", LimitKind::Requests, 2, 1),
        check("usd", LimitKind::Budget, 100, 60),
    ];
    assert!(c.admit(&checks, 0).await.unwrap().is_ok());
    assert!(c.admit(&checks, 0).await.unwrap().is_ok());
    let r = c.admit(&checks, 0).await.unwrap().unwrap_err();
    assert_eq!((r.kind, r.current), (LimitKind::Requests, 2));
    assert_eq!(c.read(&["req".into(), "usd".into()]).await.unwrap(), vec![2, 120]);
    // A budget without headroom refuses even when the request count would fit.
    let r = c
        .admit(
            &[
                check("req2", LimitKind::Requests, 10, 1),
                check("usd", LimitKind::Budget, 100, 1),
            ],
            0,
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(r.kind, LimitKind::Budget);
    assert_eq!(
        c.read(&["req2".into()]).await.unwrap(),
        vec![0],
        "nothing reserved on refusal"
    );
    // Settlement changes existing counters only.
    c.apply(&[("usd".into(), -70), ("never-created".into(), 5)])
        .await
        .unwrap();
    assert_eq!(
        c.read(&["usd".into(), "never-created".into()]).await.unwrap(),
        vec![50, 0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_admission_has_no_check_then_set_race() {
    let c = counters("race").await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.admit(&[check("inflight", LimitKind::Concurrency, 7, 1)], 0)
                    .await
                    .unwrap()
                    .is_ok()
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 7);
    assert_eq!(c.read(&["inflight".into()]).await.unwrap(), vec![7]);
}

/// A budget refusal reads the budget's reservation companion in the same script: what calls in
/// flight hold is reported apart from what settled calls spent, in Redis as in memory.
#[tokio::test]
async fn redis_budget_refusals_tell_reserved_from_spent() {
    use switchyard_core::governance::admission::reserved_counter;
    let c = counters("reserved").await;
    let with_reservation = |add: i64| {
        [
            check("usd", LimitKind::Budget, 100, add),
            LimitCheck {
                counter: reserved_counter("usd"),
                kind: LimitKind::Reserved,
                max: i64::MAX,
                ..check("usd", LimitKind::Budget, 100, add)
            },
        ]
    };
    // One call settled at 30 (reserved 120, then corrected), one in flight holding 120.
    let first = with_reservation(120);
    assert!(c.admit(&first, 0).await.unwrap().is_ok());
    c.apply(&[("usd".into(), 30 - 120), (reserved_counter("usd"), -120)])
        .await
        .unwrap();
    assert!(c.admit(&with_reservation(120), 0).await.unwrap().is_ok());
    let r = c.admit(&with_reservation(120), 0).await.unwrap().unwrap_err();
    assert_eq!(r.kind, LimitKind::Budget);
    assert_eq!((r.current, r.reserved, r.spent()), (150, 120, 30));
}
