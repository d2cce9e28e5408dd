//! The response cache shared by replicas through the real Redis (`switchyard_testkit::RedisSpace`,
//! each test under its own key prefix): two gateways, one configured with `--redis-url` and one with
//! Bifrost's `vector_store` block in `config.json`, answer each other's requests from the cache,
//! exact and semantic (embeddings kept in plain Redis, no search module needed).

mod common;

use std::time::Duration;

use common::governance::{Answer, PROVIDER, UPSTREAM_KEY};
use common::TestGateway;
use serde_json::{json, Value};
use switchyard_gateway::ServerConfig;
use switchyard_mock::{start, MockOptions};
use switchyard_testkit::RedisSpace;

const MODEL: &str = "mittwald-shared/m";

fn base(dir: &tempfile::TempDir, redis: &RedisSpace) -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        redis_key_prefix: redis.prefix.clone(),
        ..ServerConfig::default()
    }
}

async fn prepare(gw: &TestGateway, mock_url: &str) {
    gw.add_openai_compatible(PROVIDER, mock_url, UPSTREAM_KEY).await;
    let config =
        json!({"provider": PROVIDER, "embedding_model": "bow-embed", "dimension": 512, "threshold": 0.8});
    let (s, b) = gw
        .put(
            "/api/plugins/semantic_cache",
            json!({"enabled": true, "config": config}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

async fn ask(gw: &TestGateway, q: &str) -> Answer {
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("x-bf-cache-key", "shared")
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": q}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Answer {
        status,
        headers,
        body: r.json().await.unwrap_or(Value::Null),
    }
}

fn hit_type(a: &Answer) -> Option<&str> {
    a.body["extra_fields"]["cache_debug"]["hit_type"].as_str()
}

#[tokio::test]
async fn two_gateways_sharing_one_redis_share_hits() {
    let redis = RedisSpace::new("cache-shared");
    let mock = start(MockOptions {
        api_key: Some(UPSTREAM_KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestGateway::start_with(ServerConfig {
        redis_url: Some(redis.url.clone()),
        ..base(&dir_a, &redis)
    })
    .await;
    let file = dir_b.path().join("config.json");
    let vector_store = json!({"enabled": true, "type": "redis", "config": {"addr": redis.url}});
    std::fs::write(&file, json!({"vector_store": vector_store}).to_string()).unwrap();
    let b = TestGateway::start_with(ServerConfig {
        config_file: Some(file),
        ..base(&dir_b, &redis)
    })
    .await;
    prepare(&a, &mock.base_url()).await;
    prepare(&b, &mock.base_url()).await;
    for gw in [&a, &b] {
        let (_, stats) = gw.get("/api/cache/stats").await;
        assert_eq!(stats["store"], "redis", "{stats}");
    }

    let first = ask(&a, "What is the capital of France?").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(hit_type(&first), None);
    let exact = ask(&b, "What is the capital of France?").await;
    assert_eq!(hit_type(&exact), Some("direct"), "{}", exact.body);
    assert_eq!(exact.body["choices"], first.body["choices"]);
    let similar = ask(&b, "Tell me the capital city of France").await;
    assert_eq!(hit_type(&similar), Some("semantic"), "{}", similar.body);
    let unrelated = ask(&a, "How do I bake sourdough bread?").await;
    assert_eq!(hit_type(&unrelated), None, "{}", unrelated.body);
    assert_eq!(mock.call_count("chat"), 2);

    // Clearing on one replica clears the shared store.
    let (s, cleared) = b.delete("/api/cache").await;
    assert_eq!(s, 200, "{cleared}");
    assert_eq!(cleared["cleared"], 2, "{cleared}");
    assert_eq!(hit_type(&ask(&a, "What is the capital of France?").await), None);
    assert_eq!(mock.call_count("chat"), 3);
    a.delete("/api/cache").await;
    a.stop().await;
    b.stop().await;
}
