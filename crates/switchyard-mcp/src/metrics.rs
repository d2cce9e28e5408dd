//! `/metrics` for tool calls: `switchyard_mcp_tool_calls_total{tool,server,status}` and
//! `switchyard_mcp_tool_call_duration_seconds{tool,server}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub tool: String,
    pub server: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub tool: String,
    pub server: String,
}

type Histograms = Family<ToolLabels, Histogram, fn() -> Histogram>;

pub struct McpMetrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    duration: Histograms,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for McpMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchyard_mcp");
        let calls = Family::<CallLabels, Counter>::default();
        let duration: Histograms = Family::new_with_constructor(latency);
        registry.register("tool_calls", "MCP tool calls through the gateway", calls.clone());
        registry.register(
            "tool_call_duration_seconds",
            "Time from a tool call's arrival to its answer",
            duration.clone(),
        );
        McpMetrics {
            registry,
            calls,
            duration,
        }
    }
}

impl McpMetrics {
    pub fn record(&self, tool: &str, server: &str, status: &str, seconds: f64) {
        self.calls
            .get_or_create(&CallLabels {
                tool: tool.to_owned(),
                server: server.to_owned(),
                status: status.to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&ToolLabels {
                tool: tool.to_owned(),
                server: server.to_owned(),
            })
            .observe(seconds);
    }

    /// The families in the Prometheus text format, without the closing `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out.trim_end().trim_end_matches("# EOF").trim_end().to_owned()
    }
}
