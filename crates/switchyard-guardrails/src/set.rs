//! A compiled set of guardrails (built once per config change) and what applies to one request.

use crate::config::{Guardrail, Kind, Scope, Stage};
use crate::detect::{Detector, Entity};
use crate::scan::{self, Findings, Rule, StreamScan};

/// Every enabled guardrail, compiled.
#[derive(Debug, Default)]
pub struct GuardrailSet {
    pub guardrails: Vec<Guardrail>,
    rules: Vec<Rule>,
    /// The same detectors, each redacting: for copies of a text kept in logs.
    scrub_rules: Vec<Rule>,
}

/// Which guardrails of a set apply to one request at one stage.
#[derive(Clone, Debug, Default)]
pub struct Applicable {
    /// Per rule: does not apply.
    pub off: Vec<bool>,
    /// The webhook guardrails that apply, by index.
    pub webhooks: Vec<usize>,
}

impl Applicable {
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.off.iter().all(|o| *o)
    }
}

impl GuardrailSet {
    /// Compiles the enabled guardrails (stored ones were validated when written; a pattern that no
    /// longer compiles is left out rather than failing every request).
    pub fn build(list: Vec<Guardrail>) -> GuardrailSet {
        let guardrails: Vec<Guardrail> = list.into_iter().filter(|g| g.enabled).collect();
        let mut rules = Vec::new();
        for (i, g) in guardrails.iter().enumerate() {
            let detectors: Vec<Detector> = match g.kind {
                Kind::Regex => g
                    .patterns
                    .iter()
                    .filter_map(|p| Detector::custom(p).ok())
                    .collect(),
                Kind::Secrets => Detector::for_entity(Entity::Secret),
                Kind::Pii => g.entities.iter().flat_map(|e| Detector::for_entity(*e)).collect(),
                Kind::Webhook => Vec::new(),
            };
            rules.extend(detectors.into_iter().map(|detector| Rule {
                detector,
                guardrail: i,
                action: g.action,
            }));
        }
        let scrub_rules = rules
            .iter()
            .map(|r| Rule {
                action: crate::scan::Action::Redact,
                ..r.clone()
            })
            .collect();
        GuardrailSet {
            guardrails,
            rules,
            scrub_rules,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.guardrails.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The guardrails for `stage` whose scope `in_scope` accepts.
    pub fn applicable(&self, stage: Stage, in_scope: impl Fn(&Scope) -> bool) -> Applicable {
        let on: Vec<bool> = self
            .guardrails
            .iter()
            .map(|g| g.stage.covers(stage) && in_scope(&g.scope))
            .collect();
        Applicable {
            off: self.rules.iter().map(|r| !on[r.guardrail]).collect(),
            webhooks: self
                .guardrails
                .iter()
                .enumerate()
                .filter(|(i, g)| on[*i] && g.kind == Kind::Webhook)
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// Scans texts in place: redactions written back, findings of all of them.
    pub fn scan_texts<'a>(&self, off: &[bool], texts: impl IntoIterator<Item = &'a mut String>) -> Findings {
        let mut all = Findings::default();
        for t in texts {
            let (redacted, found) = scan::scan_text(&self.rules, off, t);
            all.merge(&found);
            if all.blocked_by.is_some() {
                break;
            }
            if let Some(r) = redacted {
                *t = r;
            }
        }
        all
    }

    /// `text` with every match of every guardrail's detectors redacted, whatever their actions,
    /// stages and scopes: what a log may keep of a text a guardrail matched.
    pub fn scrub(&self, text: &str) -> Option<String> {
        let off = vec![false; self.scrub_rules.len()];
        scan::scan_text(&self.scrub_rules, &off, text).0
    }

    pub fn stream(&self, off: &[bool]) -> StreamScan {
        StreamScan::new(off)
    }
}
