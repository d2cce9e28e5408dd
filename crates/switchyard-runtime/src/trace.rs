//! OpenTelemetry traces over OTLP/HTTP (JSON encoding), off unless an endpoint is configured.
//!
//! One server span per inference request, with a client span per upstream attempt, named and
//! attributed after the GenAI semantic conventions (`gen_ai.operation.name`, `gen_ai.provider.name`,
//! `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.*`). Spans are queued without
//! waiting and sent in batches by a background task; a full queue drops spans (counted), never blocks a
//! request. The exporter is a few dozen lines over the gateway's own HTTP client instead of the
//! `opentelemetry` crates, whose APIs change every minor release and which would add a second HTTP
//! stack to the build.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http::{Method, Request};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::upstream::UpstreamClient;

#[derive(Clone, Debug)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Float(f64),
}

#[derive(Clone, Debug)]
pub struct SpanData {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub name: String,
    /// 2 = server, 3 = client (OTLP `SpanKind`).
    pub kind: u8,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, AttrValue)>,
    pub error: Option<String>,
}

pub struct Tracer {
    tx: mpsc::Sender<SpanData>,
    dropped: Arc<AtomicU64>,
}

pub fn new_trace_id(rng: &mut fastrand::Rng) -> [u8; 16] {
    let mut id = [0u8; 16];
    rng.fill(&mut id);
    id
}

pub fn new_span_id(rng: &mut fastrand::Rng) -> [u8; 8] {
    let mut id = [0u8; 8];
    rng.fill(&mut id);
    id
}

/// Reads a W3C `traceparent` header (`00-<trace id>-<parent span id>-<flags>`).
pub fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8])> {
    let mut parts = value.trim().split('-');
    let (_version, trace, parent) = (parts.next()?, parts.next()?, parts.next()?);
    let mut t = [0u8; 16];
    let mut p = [0u8; 8];
    hex::decode_to_slice(trace, &mut t).ok()?;
    hex::decode_to_slice(parent, &mut p).ok()?;
    (t != [0; 16] && p != [0; 8]).then_some((t, p))
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .to_string()
}

fn attr_json(key: &str, v: &AttrValue) -> Value {
    let value = match v {
        AttrValue::Str(s) => json!({"stringValue": s}),
        AttrValue::Int(i) => json!({"intValue": i.to_string()}),
        AttrValue::Float(f) => json!({"doubleValue": f}),
    };
    json!({"key": key, "value": value})
}

/// The OTLP/JSON `ExportTraceServiceRequest` for a batch.
pub fn export_body(service_name: &str, spans: &[SpanData]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": hex::encode(s.trace_id),
                "spanId": hex::encode(s.span_id),
                "name": s.name,
                "kind": s.kind,
                "startTimeUnixNano": nanos(s.start),
                "endTimeUnixNano": nanos(s.end),
                "attributes": s.attributes.iter().map(|(k, v)| attr_json(k, v)).collect::<Vec<_>>(),
                "status": match &s.error {
                    Some(m) => json!({"code": 2, "message": m}),
                    None => json!({"code": 1}),
                },
            });
            if let Some(p) = s.parent_span_id {
                span["parentSpanId"] = Value::String(hex::encode(p));
            }
            span
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [attr_json("service.name", &AttrValue::Str(service_name.to_owned()))]},
        "scopeSpans": [{"scope": {"name": "switchyard", "version": env!("CARGO_PKG_VERSION")}, "spans": spans}]
    }]})
}

impl Tracer {
    /// Starts the exporter: batches of up to 512 spans, sent at least every `flush_every`.
    pub fn spawn(
        client: UpstreamClient,
        endpoint: &str,
        service_name: String,
        flush_every: Duration,
    ) -> Tracer {
        let (tx, mut rx) = mpsc::channel::<SpanData>(8192);
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(512);
            loop {
                let got = tokio::time::timeout(flush_every, rx.recv_many(&mut batch, 512)).await;
                let closed = matches!(got, Ok(0));
                if !batch.is_empty() {
                    let body = export_body(&service_name, &batch).to_string();
                    let req = Request::builder()
                        .method(Method::POST)
                        .uri(&url)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(Body::from(body));
                    match req {
                        Ok(req) => match client.send("otlp", req).await {
                            Ok(resp) if resp.status().is_success() => {}
                            Ok(resp) => {
                                tracing::warn!(status = resp.status().as_u16(), "OTLP export rejected")
                            }
                            Err(e) => tracing::warn!(error = %e, "OTLP export failed"),
                        },
                        Err(e) => tracing::warn!(error = %e, "invalid OTLP endpoint"),
                    }
                    batch.clear();
                }
                if closed {
                    break;
                }
            }
        });
        Tracer {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn record(&self, span: SpanData) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent() {
        let (t, p) = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(hex::encode(t), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(p), "00f067aa0ba902b7");
        assert!(parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
        assert!(parse_traceparent("garbage").is_none());
    }

    #[test]
    fn otlp_json_shape() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        let span = SpanData {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            name: "chat gpt".into(),
            kind: 3,
            start: t,
            end: t + Duration::from_millis(5),
            attributes: vec![("gen_ai.usage.input_tokens", AttrValue::Int(7))],
            error: None,
        };
        let v = export_body("switchyard", &[span]);
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "01010101010101010101010101010101");
        assert_eq!(s["parentSpanId"], "0303030303030303");
        assert_eq!(s["startTimeUnixNano"], "1000000000");
        assert_eq!(s["endTimeUnixNano"], "1005000000");
        assert_eq!(s["attributes"][0]["value"]["intValue"], "7");
    }
}
