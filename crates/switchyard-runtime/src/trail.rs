//! The routing trail: one [`AttemptRecord`] per upstream attempt or skipped target, shown to callers
//! (headers, `extra_fields`, error bodies) and kept in the log row and the trace.

use serde::{Serialize, Serializer};

/// What became of one attempt (or why a target was skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The upstream answered with this status.
    Status(u16),
    ConnectionError,
    Timeout,
    QueueFull,
    /// The target was not tried; the reason is shown.
    Skipped(&'static str),
}

impl AttemptOutcome {
    /// Whether the attempt got a usable (non-error) answer.
    pub fn is_success(self) -> bool {
        matches!(self, AttemptOutcome::Status(s) if s < 400)
    }

    /// How the outcome reads in the trail: the status, `connection_error`, `timeout`, `queue_full` or
    /// `skipped: <why>`.
    pub fn label(self) -> String {
        match self {
            AttemptOutcome::Status(s) => s.to_string(),
            AttemptOutcome::ConnectionError => "connection_error".into(),
            AttemptOutcome::Timeout => "timeout".into(),
            AttemptOutcome::QueueFull => "queue_full".into(),
            AttemptOutcome::Skipped(why) => format!("skipped: {why}"),
        }
    }
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

impl Serialize for AttemptOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

/// One line of the routing trail.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptRecord {
    pub provider: String,
    pub model: String,
    /// The key's name; `None` for a skipped target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub outcome: AttemptOutcome,
    pub latency_ms: u64,
    /// When the attempt started (for trace spans; not shown to callers).
    #[serde(skip)]
    pub started_at: Option<std::time::SystemTime>,
}

impl AttemptRecord {
    /// Appends `provider/model:key=outcome` to `out`.
    fn write_compact(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str(&self.provider);
        out.push('/');
        out.push_str(&self.model);
        if let Some(k) = &self.key {
            out.push(':');
            out.push_str(k);
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "={}", self.outcome);
    }
}

/// The `x-switchyard-trail` header: each attempt as `provider/model:key=outcome`, comma-separated.
pub fn trail_header(trail: &[AttemptRecord]) -> String {
    let mut out = String::with_capacity(64);
    for (i, a) in trail.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        a.write_compact(&mut out);
    }
    out
}

/// Time spent upstream over a whole trail.
pub fn upstream_ms(trail: &[AttemptRecord]) -> f64 {
    trail.iter().map(|a| a.latency_ms as f64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_as_before_in_the_trail() {
        let rec = |key: Option<&str>, outcome| AttemptRecord {
            provider: "p".into(),
            model: "m".into(),
            key: key.map(str::to_owned),
            outcome,
            latency_ms: 3,
            started_at: None,
        };
        assert_eq!(
            trail_header(&[rec(Some("k"), AttemptOutcome::Status(503))]),
            "p/m:k=503"
        );
        assert_eq!(
            trail_header(&[rec(None, AttemptOutcome::Skipped("queue full"))]),
            "p/m=skipped: queue full"
        );
        let json = serde_json::to_value(rec(Some("k"), AttemptOutcome::ConnectionError)).unwrap();
        assert_eq!(json["outcome"], "connection_error");
        assert!(AttemptOutcome::Status(200).is_success());
        assert!(!AttemptOutcome::Timeout.is_success());
    }
}
