//! Prometheus metrics at `GET /metrics`.
//!
//! Labels are kept low-cardinality: provider names come from the config; model names are capped (the
//! first 200 distinct served models get their own label value, the rest share `other`), because a `*`
//! key lets callers invent model names and an unbounded label set would grow without end.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

const MAX_MODEL_LABELS: usize = 200;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub provider: String,
    pub model: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub provider: String,
    pub model: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    pub provider: String,
    pub key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardrailLabels {
    pub guardrail: String,
    pub decision: &'static str,
}

/// `guardrail_decisions`, registered.
fn guardrail_family(registry: &mut Registry) -> Family<GuardrailLabels, Counter> {
    let family = Family::<GuardrailLabels, Counter>::default();
    registry.register(
        "guardrail_decisions",
        "Guardrail matches by guardrail and decision (block, redact, log, allow/block on error)",
        family.clone(),
    );
    family
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~9 min
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

fn overhead_histogram() -> Histogram {
    // 10 µs .. ~160 ms: the gateway's own time.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 15))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: String,
    hit_type: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily<ProviderLabels>,
    upstream: HistogramFamily<ProviderLabels>,
    ttft: HistogramFamily<ProviderLabels>,
    overhead: Histogram,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<ModelLabels, Counter<f64, AtomicU64>>,
    unknown_cost: Family<ModelLabels, Counter>,
    retries: Family<ProviderLabels, Counter>,
    fallbacks: Family<ProviderLabels, Counter>,
    in_flight: Gauge,
    key_up: Family<KeyLabels, Gauge>,
    guardrails: Family<GuardrailLabels, Counter>,
    dropped_logs: Counter,
    cache_lookups: Family<CacheLabels, Counter>,
    dropped_seen: AtomicU64,
    models: Mutex<HashSet<String>>,
    /// Resolved series by the hash of their labels (`series_of`).
    series: RwLock<foldhash::HashMap<u64, Vec<Arc<Series>>>>,
    series_hasher: foldhash::fast::RandomState,
}

/// How many series `record` keeps resolved.
const MAX_CACHED_SERIES: usize = 4_096;

/// What one (route, provider, model, status) records into. The series that not every request
/// touches are created on first use, so `/metrics` shows them only once they count something.
struct Series {
    route: String,
    /// The model as the sample named it (`model` is its label value).
    model_raw: String,
    status: u16,
    /// Label values: the provider, and the model as capped by `model_label`.
    provider: String,
    model: String,
    requests: Counter,
    duration: Histogram,
    upstream: OnceLock<Histogram>,
    ttft: OnceLock<Histogram>,
    retries: OnceLock<Counter>,
    fallbacks: OnceLock<Counter>,
    /// Input, output, cached.
    tokens: [OnceLock<Counter>; 3],
    cost: OnceLock<Counter<f64, AtomicU64>>,
    unknown_cost: OnceLock<Counter>,
}

impl Series {
    fn provider_labels(&self) -> ProviderLabels {
        ProviderLabels {
            provider: self.provider.clone(),
        }
    }

    fn model_labels(&self) -> ModelLabels {
        ModelLabels {
            provider: self.provider.clone(),
            model: self.model.clone(),
        }
    }
}

/// Everything one finished request contributes.
pub struct RequestSample<'a> {
    pub route: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub status: u16,
    pub total_secs: f64,
    pub upstream_secs: Option<f64>,
    pub ttft_secs: Option<f64>,
    pub retries: u64,
    pub fell_back: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub cost_usd: Option<f64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration: HistogramFamily<ProviderLabels> = Family::new_with_constructor(latency_histogram);
        let upstream: HistogramFamily<ProviderLabels> = Family::new_with_constructor(latency_histogram);
        let ttft: HistogramFamily<ProviderLabels> = Family::new_with_constructor(latency_histogram);
        let overhead = overhead_histogram();
        let tokens = Family::<TokenLabels, Counter>::default();
        let cost = Family::<ModelLabels, Counter<f64, AtomicU64>>::default();
        let unknown_cost = Family::<ModelLabels, Counter>::default();
        let retries = Family::<ProviderLabels, Counter>::default();
        let fallbacks = Family::<ProviderLabels, Counter>::default();
        let in_flight = Gauge::default();
        let key_up = Family::<KeyLabels, Gauge>::default();
        let dropped_logs = Counter::default();
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Response cache lookups by result (hit, miss) and match type (direct, semantic)",
            cache_lookups.clone(),
        );
        let guardrails = guardrail_family(&mut registry);
        registry.register(
            "requests",
            "Inference requests by route, provider, model and status",
            requests.clone(),
        );
        registry.register("request_duration_seconds", "Total request time", duration.clone());
        registry.register(
            "upstream_duration_seconds",
            "Time spent in upstream calls",
            upstream.clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Time to the first stream event",
            ttft.clone(),
        );
        registry.register(
            "gateway_overhead_seconds",
            "Request time not spent waiting on upstreams (gateway overhead)",
            overhead.clone(),
        );
        registry.register(
            "tokens",
            "Tokens by provider, model and kind (input, output, cached)",
            tokens.clone(),
        );
        registry.register("cost_usd", "Cost in USD of priced requests", cost.clone());
        registry.register(
            "unknown_cost_requests",
            "Requests whose model has no known price",
            unknown_cost.clone(),
        );
        registry.register(
            "upstream_retries",
            "Retries of upstream attempts",
            retries.clone(),
        );
        registry.register(
            "fallbacks",
            "Requests served by a fallback target",
            fallbacks.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Inference requests in progress",
            in_flight.clone(),
        );
        registry.register(
            "key_up",
            "1 when a key is usable and not ejected by its circuit breaker",
            key_up.clone(),
        );
        registry.register(
            "log_records_dropped",
            "Request log records dropped (full queue)",
            dropped_logs.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            upstream,
            ttft,
            overhead,
            tokens,
            cost,
            unknown_cost,
            retries,
            fallbacks,
            in_flight,
            key_up,
            guardrails,
            dropped_logs,
            cache_lookups,
            dropped_seen: AtomicU64::new(0),
            models: Mutex::new(HashSet::new()),
            series: RwLock::new(HashMap::default()),
            series_hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// One response cache lookup: `hit_type` is `direct` or `semantic` for a hit, empty for a miss.
    pub fn cache_lookup(&self, hit_type: &str) {
        let labels = CacheLabels {
            result: if hit_type.is_empty() { "miss" } else { "hit" }.to_owned(),
            hit_type: hit_type.to_owned(),
        };
        self.cache_lookups.get_or_create(&labels).inc();
    }

    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// One guardrail decision.
    pub fn guardrail(&self, guardrail: &str, decision: &'static str) {
        self.guardrails
            .get_or_create(&GuardrailLabels {
                guardrail: guardrail.to_owned(),
                decision,
            })
            .inc();
    }

    fn model_label(&self, model: &str) -> String {
        let mut seen = self.models.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(model) {
            return model.to_owned();
        }
        if seen.len() < MAX_MODEL_LABELS {
            seen.insert(model.to_owned());
            return model.to_owned();
        }
        "other".to_owned()
    }

    pub fn record(&self, s: &RequestSample<'_>) {
        let series = self.series_of(s);
        series.requests.inc();
        series.duration.observe(s.total_secs);
        if let Some(u) = s.upstream_secs {
            series
                .upstream
                .get_or_init(|| self.upstream.get_or_create(&series.provider_labels()).clone())
                .observe(u);
            self.overhead.observe((s.total_secs - u).max(0.0));
        }
        if let Some(t) = s.ttft_secs {
            series
                .ttft
                .get_or_init(|| self.ttft.get_or_create(&series.provider_labels()).clone())
                .observe(t);
        }
        if s.retries > 0 {
            series
                .retries
                .get_or_init(|| self.retries.get_or_create(&series.provider_labels()).clone())
                .inc_by(s.retries);
        }
        if s.fell_back {
            series
                .fallbacks
                .get_or_init(|| self.fallbacks.get_or_create(&series.provider_labels()).clone())
                .inc();
        }
        let kinds = ["input", "output", "cached"];
        for (i, n) in [s.input_tokens, s.output_tokens, s.cached_tokens]
            .into_iter()
            .enumerate()
        {
            if n > 0 {
                series.tokens[i]
                    .get_or_init(|| {
                        let labels = TokenLabels {
                            provider: series.provider.clone(),
                            model: series.model.clone(),
                            kind: kinds[i],
                        };
                        self.tokens.get_or_create(&labels).clone()
                    })
                    .inc_by(n);
            }
        }
        if s.status < 400 && !s.provider.is_empty() {
            match s.cost_usd {
                Some(c) => {
                    series
                        .cost
                        .get_or_init(|| self.cost.get_or_create(&series.model_labels()).clone())
                        .inc_by(c);
                }
                None => {
                    series
                        .unknown_cost
                        .get_or_init(|| self.unknown_cost.get_or_create(&series.model_labels()).clone())
                        .inc();
                }
            }
        }
    }

    /// The handles of the sample's series: looked up by one hash of its labels (no label strings
    /// built), resolved through the families on its first request.
    fn series_of(&self, s: &RequestSample<'_>) -> Arc<Series> {
        let hash = self
            .series_hasher
            .hash_one((s.route, s.provider, s.model, s.status));
        let matches = |x: &Series| {
            x.route == s.route && x.provider == s.provider && x.model_raw == s.model && x.status == s.status
        };
        {
            let cache = self.series.read().unwrap_or_else(|p| p.into_inner());
            if let Some(found) = cache.get(&hash).and_then(|v| v.iter().find(|x| matches(x))) {
                return found.clone();
            }
        }
        let model = self.model_label(s.model);
        let labels = RequestLabels {
            route: s.route.to_owned(),
            provider: s.provider.to_owned(),
            model: model.clone(),
            status: s.status,
        };
        let p = ProviderLabels {
            provider: s.provider.to_owned(),
        };
        let series = Arc::new(Series {
            route: s.route.to_owned(),
            model_raw: s.model.to_owned(),
            status: s.status,
            provider: s.provider.to_owned(),
            model,
            requests: self.requests.get_or_create(&labels).clone(),
            duration: self.duration.get_or_create(&p).clone(),
            upstream: OnceLock::new(),
            ttft: OnceLock::new(),
            retries: OnceLock::new(),
            fallbacks: OnceLock::new(),
            tokens: Default::default(),
            cost: OnceLock::new(),
            unknown_cost: OnceLock::new(),
        });
        let mut cache = self.series.write().unwrap_or_else(|p| p.into_inner());
        // Callers can invent model names: past the bound a series is resolved per request instead.
        if cache.len() < MAX_CACHED_SERIES {
            let chain = cache.entry(hash).or_default();
            if let Some(found) = chain.iter().find(|x| matches(x)) {
                return found.clone();
            }
            chain.push(series.clone());
        }
        series
    }

    /// Renders the exposition text; `keys` gives each key's current up/down state, `dropped_logs` the
    /// log writer's running count.
    pub fn render(&self, keys: impl Iterator<Item = (String, String, bool)>, dropped_logs: u64) -> String {
        for (provider, key, up) in keys {
            self.key_up
                .get_or_create(&KeyLabels { provider, key })
                .set(i64::from(up));
        }
        let before = self.dropped_seen.swap(dropped_logs, Ordering::AcqRel);
        if dropped_logs > before {
            self.dropped_logs.inc_by(dropped_logs - before);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
