//! The **cache** phase, between plan inputs and dispatch: a request that names a cache key (header
//! `x-bf-cache-key` or the plugin's `default_cache_key`) is looked up before any upstream is asked
//! (exactly by its key, then by the similarity of its prompt's embedding within its scope), and a
//! hit is answered from the cache: no upstream call, its own log row with `cache_hit: true` and cost
//! 0, the caller's reservation released. A miss goes on to dispatch, and the answer the client got
//! is stored when it succeeded (JSON whole; a stream event by event, once it has ended cleanly).
//! Errors are never stored. With no plugin enabled the phase is one atomic load.
//!
//! Keys, configs and directives are built in the pure `switchyard-cache` crate; the entries live in
//! `switchyard_runtime::cache`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde_json::{json, Value};
use switchyard_cache::directives::Directives;
use switchyard_cache::key::{keyed, KeyParts, KeyedRequest};
use switchyard_cache::{CacheConfig, CacheType, CachedAnswer, CachedBody, Family};
use switchyard_core::model_ref::{parse_model, ModelRef};
use switchyard_runtime::cache::CacheStore;
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_translate::Protocol;

use super::Admitted;

/// The most bytes of one answer the cache records (larger answers are served, not stored).
const MAX_RECORDED_BYTES: usize = 8 * 1024 * 1024;

/// The cache family of a chat call in the client's protocol (Gemini is not cached).
pub(crate) fn chat_family(shape: Protocol) -> Option<Family> {
    match shape {
        Protocol::OpenAi => Some(Family::OpenAiChat),
        Protocol::Anthropic => Some(Family::AnthropicMessages),
        _ => None,
    }
}

/// Runs `serve` (plan, dispatch, respond) unless the cache answers first; stores its answer after.
pub(crate) async fn around<F, Fut>(
    adm: &Admitted,
    family: Option<Family>,
    serve: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let Some(config) = family.and(adm.state().cache.active()) else {
        return serve().await;
    };
    if super::guard::request_stage_may_apply(adm) {
        return serve().await;
    }
    let Some(mut lookup) = Lookup::start(adm, family.expect("checked above"), config).map_err(|e| *e)? else {
        return serve().await;
    };
    if let Some((answer, hit)) = lookup.find(adm).await {
        return Ok(hit_response(adm, &answer, &hit));
    }
    let resp = serve().await?;
    Ok(lookup.fill(adm, resp).await)
}

/// A request the cache applies to.
struct Lookup {
    directives: Directives,
    keyed: KeyedRequest,
    config: CacheConfig,
    /// The prompt's embedding, once computed (kept for the fill).
    vector: Option<Vec<f32>>,
}

/// How an answer was found.
struct Hit {
    hit_type: &'static str,
    similarity: Option<f64>,
    threshold: f64,
}

impl Lookup {
    fn start(adm: &Admitted, family: Family, config: CacheConfig) -> Result<Option<Lookup>, Box<ApiError>> {
        let headers = adm.headers();
        let directives = Directives::read(&config, |name| {
            headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        })
        .map_err(|e| {
            Box::new(adm.fail(GatewayError::BadRequest {
                message: e.message,
                param: Some(e.header.to_owned()),
            }))
        })?;
        let Some(cache_key) = directives.cache_key.as_deref() else {
            return Ok(None);
        };
        let requested = adm.spec().model.as_deref().unwrap_or_default();
        let (provider, model) = match parse_model(requested, |p| adm.config().provider(p).is_some()) {
            ModelRef::Qualified { provider, model } => (Some(provider), model),
            ModelRef::Bare(m) => (None, m),
        };
        let identity = match (&adm.admission, config.disable_identity_scoping) {
            (Some(a), false) => Some(a.vk.id.as_str()),
            _ => None,
        };
        let parts = KeyParts {
            family,
            provider,
            model,
            stream: adm.spec().stream,
            cache_key,
            identity,
        };
        let Some(keyed) = keyed(&parts, adm.body()) else {
            return Ok(None);
        };
        Ok(Some(Lookup {
            directives,
            keyed,
            config,
            vector: None,
        }))
    }

    /// An exact match, then a similar one; counted as a hit or a miss.
    async fn find(&mut self, adm: &Admitted) -> Option<(CachedAnswer, Hit)> {
        if self.directives.no_cache {
            return None;
        }
        let store = adm.state().cache.store().clone();
        let threshold = self.directives.threshold;
        let mut found = None;
        if self.directives.cache_type != CacheType::Semantic {
            found = get(&*store, &self.keyed.exact).await.map(|a| {
                let hit = Hit {
                    hit_type: "direct",
                    similarity: None,
                    threshold,
                };
                (a, hit)
            });
        }
        if found.is_none() && self.directives.cache_type != CacheType::Direct {
            found = self.find_similar(adm, &*store).await;
        }
        let state = adm.state();
        state.cache.count(found.is_some());
        state
            .metrics
            .cache_lookup(found.as_ref().map_or("", |(_, h)| h.hit_type));
        found
    }

    async fn find_similar(&mut self, adm: &Admitted, store: &dyn CacheStore) -> Option<(CachedAnswer, Hit)> {
        let semantic = self.config.semantic.as_ref()?;
        if self.keyed.prompt_text.trim().is_empty() {
            return None;
        }
        let vector = super::cache_embed::embed(adm, &semantic.model_ref(), &self.keyed.prompt_text).await?;
        let nearest = store.nearest(&self.keyed.scope, &vector).await;
        self.vector = Some(vector);
        let (key, similarity) = match nearest {
            Ok(Some(n)) => n,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "semantic cache lookup failed; answered upstream");
                return None;
            }
        };
        if similarity < self.directives.threshold {
            return None;
        }
        let answer = get(store, &key).await?;
        let hit = Hit {
            hit_type: "semantic",
            similarity: Some(similarity),
            threshold: self.directives.threshold,
        };
        Some((answer, hit))
    }

    /// Stores a successful answer (unless the request said no-store) and returns it to the client.
    async fn fill(self, adm: &Admitted, resp: Response) -> Response {
        if self.directives.no_store || !resp.status().is_success() {
            return resp;
        }
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let (provider, model) = served_by(adm);
        let status = resp.status().as_u16();
        let answer = |body| CachedAnswer {
            id: uuid::Uuid::now_v7().to_string(),
            status,
            content_type: content_type.clone(),
            body,
            provider: provider.clone(),
            model: model.clone(),
            created_ms: switchyard_runtime::governance::now_ms(),
        };
        let write = Write {
            store: adm.state().cache.store().clone(),
            key: self.keyed.exact,
            scope: self.keyed.scope,
            vector: self.vector,
            ttl: self.directives.ttl,
        };
        if content_type.starts_with("text/event-stream") {
            let template = answer(CachedBody::Stream { chunks: Vec::new() });
            let (mut parts, body) = resp.into_parts();
            parts
                .headers
                .insert("x-switchyard-cache", HeaderValue::from_static("miss"));
            let recording = Recording {
                inner: body,
                chunks: Vec::new(),
                bytes: 0,
                done: Some((write, template)),
            };
            return Response::from_parts(parts, Body::new(recording));
        }
        // JSON answers are built whole: their exact size is known before anything is read.
        let size = resp.body().size_hint().upper();
        if size.is_none_or(|n| n > MAX_RECORDED_BYTES as u64) {
            return resp;
        }
        let (mut parts, body) = resp.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_RECORDED_BYTES).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "answer body could not be read for the cache");
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                return r;
            }
        };
        if let Ok(text) = std::str::from_utf8(&bytes) {
            write
                .run(answer(CachedBody::Json {
                    body: text.to_owned(),
                }))
                .await;
        }
        parts
            .headers
            .insert("x-switchyard-cache", HeaderValue::from_static("miss"));
        Response::from_parts(parts, Body::from(bytes))
    }
}

async fn get(store: &dyn CacheStore, key: &str) -> Option<CachedAnswer> {
    match store.get(key).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cache lookup failed; answered upstream");
            None
        }
    }
}

/// The provider and model the observation says served the call.
fn served_by(adm: &Admitted) -> (Option<String>, Option<String>) {
    let mut out = (None, None);
    adm.observe(|d| out = (d.provider.clone(), d.model.clone()));
    out
}

/// Where and for how long an answer is stored.
struct Write {
    store: Arc<dyn CacheStore>,
    key: String,
    scope: String,
    vector: Option<Vec<f32>>,
    ttl: std::time::Duration,
}

impl Write {
    async fn run(self, answer: CachedAnswer) {
        if let Err(e) = self.store.put(&self.key, &answer, self.ttl).await {
            tracing::warn!(error = %e, "cache write failed");
            return;
        }
        if let Some(v) = &self.vector {
            if let Err(e) = self.store.put_vector(&self.scope, &self.key, v, self.ttl).await {
                tracing::warn!(error = %e, "cache write (embedding) failed");
            }
        }
    }
}

/// A stream's body, recorded event by event as the client gets it; stored when it ends cleanly (its
/// last event is `[DONE]` or Anthropic's `message_stop`) and not over the size cap.
struct Recording {
    inner: Body,
    chunks: Vec<String>,
    bytes: usize,
    done: Option<(Write, CachedAnswer)>,
}

impl Recording {
    fn finish(&mut self) {
        let Some((write, mut answer)) = self.done.take() else {
            return;
        };
        let clean = self
            .chunks
            .last()
            .is_some_and(|c| c.contains("data: [DONE]") || c.contains("message_stop"));
        if !clean {
            return;
        }
        answer.body = CachedBody::Stream {
            chunks: std::mem::take(&mut self.chunks),
        };
        tokio::spawn(write.run(answer));
    }
}

impl HttpBody for Recording {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len();
                    match std::str::from_utf8(data) {
                        Ok(text) if this.bytes <= MAX_RECORDED_BYTES && this.done.is_some() => {
                            this.chunks.push(text.to_owned());
                        }
                        _ => this.done = None,
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => this.done = None,
            Poll::Ready(None) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The `cache_debug` block of a hit (Bifrost's fields).
fn cache_debug(adm: &Admitted, answer: &CachedAnswer, hit: &Hit) -> Value {
    let mut debug = json!({
        "cache_hit": true,
        "hit_type": hit.hit_type,
        "cache_id": answer.id,
        "requested_model": adm.spec().model,
        "provider_used": answer.provider,
        "model_used": answer.model,
    });
    if let Some(s) = hit.similarity {
        debug["similarity"] = json!(s);
        debug["threshold"] = json!(hit.threshold);
    }
    debug
}

/// Adds `extra_fields.cache_debug` to a JSON object's text (anything else is returned as is).
fn with_debug(text: &str, debug: &Value, extra: &Value) -> Option<String> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object_mut()?;
    let mut fields = extra.clone();
    fields["cache_debug"] = debug.clone();
    obj.insert("extra_fields".into(), fields);
    serde_json::to_string(&v).ok()
}

/// The answer from the cache, marked, and the observation filled as a hit (cost 0).
fn hit_response(adm: &Admitted, answer: &CachedAnswer, hit: &Hit) -> Response {
    let debug = cache_debug(adm, answer, hit);
    let extra = json!({
        "request_type": adm.spec().request_type,
        "provider": answer.provider,
        "model_requested": adm.spec().model,
        "resolved_model_used": answer.model,
        "latency": adm.obs().elapsed_ms() as u64,
    });
    let body = match &answer.body {
        CachedBody::Json { body } => {
            let usage_format = match adm.spec().shape {
                Protocol::Anthropic => switchyard_translate::usage::UsageFormat::Anthropic,
                _ => switchyard_translate::usage::UsageFormat::OpenAi,
            };
            let usage = switchyard_translate::usage::usage_from_json(usage_format, body.as_bytes());
            adm.observe(|d| d.usage = usage);
            Body::from(with_debug(body, &debug, &extra).unwrap_or_else(|| body.clone()))
        }
        CachedBody::Stream { chunks } => {
            let mut chunks = chunks.clone();
            mark_stream(&mut chunks, &debug, &extra);
            let frames = chunks
                .into_iter()
                .map(|c| Ok::<_, std::convert::Infallible>(Bytes::from(c)));
            Body::from_stream(futures_util::stream::iter(frames))
        }
    };
    adm.observe(|d| {
        d.cache_hit = true;
        d.provider = answer.provider.clone();
        d.model = answer.model.clone();
        d.served_model = answer.model.clone();
        d.upstream_ms = Some(0.0);
    });
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let h = resp.headers_mut();
    if let Ok(ct) = HeaderValue::from_str(&answer.content_type) {
        h.insert(http::header::CONTENT_TYPE, ct);
    }
    if matches!(answer.body, CachedBody::Stream { .. }) {
        h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    h.insert("x-switchyard-cache", HeaderValue::from_static("hit"));
    h.insert("x-switchyard-cache-type", HeaderValue::from_static(hit.hit_type));
    resp
}

/// Puts the hit's marker in one event of a replayed stream: the last `data:` line holding a JSON
/// object.
fn mark_stream(chunks: &mut [String], debug: &Value, extra: &Value) {
    for chunk in chunks.iter_mut().rev() {
        let lines: Vec<&str> = chunk.split('\n').collect();
        let Some(i) = lines.iter().rposition(|l| {
            l.strip_prefix("data:")
                .is_some_and(|d| d.trim_start().starts_with('{'))
        }) else {
            continue;
        };
        let data = lines[i].strip_prefix("data:").unwrap_or_default().trim_start();
        let Some(marked) = with_debug(data, debug, extra) else {
            continue;
        };
        let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        out[i] = format!("data: {marked}");
        *chunk = out.join("\n");
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_goes_in_the_last_json_event_only() {
        let mut chunks = vec![
            "data: {\"id\":\"a\",\"choices\":[]}\n\n".to_owned(),
            "data: {\"id\":\"b\",\"choices\":[]}\n\n".to_owned(),
            "data: [DONE]\n\n".to_owned(),
        ];
        mark_stream(&mut chunks, &json!({"cache_hit": true}), &json!({}));
        assert!(!chunks[0].contains("cache_debug"));
        assert!(chunks[1].contains("\"cache_debug\":{\"cache_hit\":true}"));
        assert!(chunks[1].ends_with("}\n\n"));
        assert_eq!(chunks[2], "data: [DONE]\n\n");
    }
}
