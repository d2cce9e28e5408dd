//! Scanning text with several guardrails at once, whole or as a stream.
//!
//! The one scanning rule: from the current position, take the earliest candidate of any detector (ties:
//! the first detector). A candidate that fails its check is skipped for its detector only. A `log`
//! match is recorded once per guardrail and consumes nothing; a `redact` match is replaced and scanning
//! goes on after it; a `block` match ends the scan.
//!
//! A stream ([`StreamScan`]) runs the same rule over a buffer and releases only text no later chunk can
//! change: a detector's match is at most `max_len` bytes long and consists of bytes from its alphabet,
//! so text before `len - max_len` and before the last byte outside every alphabet is decided. So the
//! scanner holds back the current run of characters that could still become a match (for e-mail
//! addresses the current word, for an IBAN at most 42 characters), never more than the longest match.
//! Split anywhere, a stream's output equals the whole text's (proptest `stream_equals_whole`).

use crate::detect::Detector;

/// What a guardrail does with a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Block,
    Redact,
    Log,
}

/// A detector as used by one guardrail of a set.
#[derive(Clone, Debug)]
pub struct Rule {
    pub detector: Detector,
    /// The guardrail's index in its set.
    pub guardrail: usize,
    pub action: Action,
}

/// What a scan found: which guardrails matched (each once, in the order first matched), and whether
/// one blocked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub matched: Vec<(usize, Action)>,
    pub blocked_by: Option<usize>,
}

impl Findings {
    fn note(&mut self, guardrail: usize, action: Action) {
        if !self.matched.iter().any(|(g, _)| *g == guardrail) {
            self.matched.push((guardrail, action));
        }
    }

    pub fn merge(&mut self, other: &Findings) {
        for (g, a) in &other.matched {
            self.note(*g, *a);
        }
        self.blocked_by = self.blocked_by.or(other.blocked_by);
    }

    pub fn redacted(&self) -> bool {
        self.matched.iter().any(|(_, a)| *a == Action::Redact)
    }
}

/// Scans `text` whole: its redacted form (`None`: unchanged) and what matched. On a block the text is
/// not returned.
/// `off[i]`: rule `i` does not apply here (another stage, scope or a disabled guardrail).
pub fn scan_text(rules: &[Rule], off: &[bool], text: &str) -> (Option<String>, Findings) {
    let mut findings = Findings::default();
    let mut out = String::new();
    let mut fired = off.to_vec();
    let end = scan_from(rules, text, 0, text.len(), &mut fired, &mut findings, &mut out);
    if findings.blocked_by.is_some() || !findings.redacted() {
        return (None, findings);
    }
    out.push_str(&text[end..]);
    (Some(out), findings)
}

/// Runs the scanning rule over `hay` from `pos`, treating only candidates that start before `limit` as
/// decided. Appends the decided text (redacted) to `out` and returns where the decided text ends.
fn scan_from(
    rules: &[Rule],
    hay: &str,
    mut pos: usize,
    limit: usize,
    fired: &mut [bool],
    findings: &mut Findings,
    out: &mut String,
) -> usize {
    let mut next: Vec<Option<(usize, usize)>> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if fired[i] {
                None
            } else {
                r.detector.find_at(hay, pos)
            }
        })
        .collect();
    loop {
        let best = next
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|(s, e)| (s, i, e)))
            .min();
        let Some((s, i, e)) = best.filter(|b| b.0 < limit) else {
            let done = pos.max(limit);
            out.push_str(&hay[pos..done]);
            return done;
        };
        let rule = &rules[i];
        let Some(accepted) = rule.detector.accepts(&hay[s..e]) else {
            next[i] = rule.detector.find_at(hay, s + char_len_at(hay, s));
            continue;
        };
        let e = s + accepted;
        findings.note(rule.guardrail, rule.action);
        match rule.action {
            Action::Block => {
                findings.blocked_by = Some(rule.guardrail);
                return pos;
            }
            Action::Log => {
                // Recorded once; the guardrail's detectors have nothing more to say.
                for (j, r) in rules.iter().enumerate() {
                    if r.guardrail == rule.guardrail {
                        fired[j] = true;
                        next[j] = None;
                    }
                }
            }
            Action::Redact => {
                out.push_str(&hay[pos..s]);
                out.push_str(rule.detector.entity.placeholder());
                pos = e;
                for (j, c) in next.iter_mut().enumerate() {
                    if c.is_some_and(|(cs, _)| cs < pos) {
                        *c = rules[j].detector.find_at(hay, pos);
                    }
                }
            }
        }
    }
}

fn char_len_at(s: &str, i: usize) -> usize {
    s[i..].chars().next().map_or(1, char::len_utf8)
}

/// A stream's scanner: push text as it arrives, take what may be released.
#[derive(Debug, Default)]
pub struct StreamScan {
    /// The last released character (context for `\b`), then the text held back.
    buf: String,
    ctx: usize,
    fired: Vec<bool>,
    pub findings: Findings,
}

impl StreamScan {
    /// `off[i]`: rule `i` does not apply (as for [`scan_text`]).
    pub fn new(off: &[bool]) -> StreamScan {
        StreamScan {
            fired: off.to_vec(),
            ..StreamScan::default()
        }
    }

    /// Adds `chunk`; returns the text that may be sent now (redacted). After a block nothing more
    /// is released (`findings.blocked_by`).
    pub fn push(&mut self, rules: &[Rule], chunk: &str) -> String {
        if self.findings.blocked_by.is_some() {
            return String::new();
        }
        self.buf.push_str(chunk);
        let limit = self.hold_from(rules);
        self.release(rules, limit)
    }

    /// The end of the stream: everything held back, decided.
    pub fn finish(&mut self, rules: &[Rule]) -> String {
        if self.findings.blocked_by.is_some() {
            return String::new();
        }
        let len = self.buf.len();
        self.release(rules, len)
    }

    /// Whether text is being held back.
    pub fn holding(&self) -> bool {
        self.buf.len() > self.ctx
    }

    fn release(&mut self, rules: &[Rule], limit: usize) -> String {
        let mut out = String::new();
        let done = scan_from(
            rules,
            &self.buf,
            self.ctx,
            limit,
            &mut self.fired,
            &mut self.findings,
            &mut out,
        );
        if self.findings.blocked_by.is_some() {
            self.buf.clear();
            self.ctx = 0;
            return String::new();
        }
        // Keep the last decided character as context.
        let keep_from = self.buf[..done]
            .char_indices()
            .next_back()
            .map_or(done, |(i, _)| i);
        self.buf.drain(..keep_from);
        self.ctx = done - keep_from;
        out
    }

    /// Where the text that a later chunk could still change begins.
    fn hold_from(&self, rules: &[Rule]) -> usize {
        let bytes = self.buf.as_bytes();
        let len = bytes.len();
        let mut hold = len;
        for (i, r) in rules.iter().enumerate() {
            if self.fired[i] {
                continue;
            }
            // One character of lookahead decides a trailing `\b`.
            let by_len = len.saturating_sub(r.detector.max_len + 4);
            let by_alphabet = bytes[self.ctx..]
                .iter()
                .rposition(|b| !r.detector.may_contain(*b))
                .map_or(self.ctx, |q| self.ctx + q + 1);
            // An unfinished match starts after both bounds, on a byte a match can start with.
            let from = by_len.max(by_alphabet);
            let start = bytes[from..]
                .iter()
                .position(|b| r.detector.may_start(*b))
                .map_or(len, |i| from + i);
            hold = hold.min(start);
        }
        let mut hold = hold.max(self.ctx);
        while !self.buf.is_char_boundary(hold) {
            hold -= 1;
        }
        hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Entity;
    use proptest::prelude::*;

    fn rules(action: Action) -> Vec<Rule> {
        let mut out = Vec::new();
        for (g, e) in [
            Entity::Email,
            Entity::Iban,
            Entity::CreditCard,
            Entity::Phone,
            Entity::Secret,
        ]
        .into_iter()
        .enumerate()
        {
            for detector in Detector::for_entity(e) {
                out.push(Rule {
                    detector,
                    guardrail: g,
                    action,
                });
            }
        }
        out.push(Rule {
            detector: Detector::custom(r"Projekt [A-Z][a-z]{2,10}").unwrap(),
            guardrail: 9,
            action,
        });
        out
    }

    const OFF: [bool; 16] = [false; 16];

    const SAMPLES: &[&str] = &[
        "max@example.de",
        "DE89 3704 0044 0532 0130 00",
        "4111 1111 1111 1111",
        "+49 30 1234567",
        "AKIAIOSFODNN7EXAMPLE",
        "sk-abcdefghijklmnopqrstuvwxyz",
        "Projekt Falke",
        "Grüße, ",
        " und ",
        ". ",
        "0",
        "DE",
        "@",
        "x",
        "\n",
    ];

    #[test]
    fn redaction_keeps_the_rest_of_the_text() {
        let (out, f) = scan_text(
            &rules(Action::Redact),
            &OFF,
            "Mail max@example.de, IBAN DE89 3704 0044 0532 0130 00, Karte 4111 1111 1111 1111.",
        );
        assert_eq!(
            out.unwrap(),
            "Mail [EMAIL_REDACTED], IBAN [IBAN_REDACTED], Karte [CREDIT_CARD_REDACTED]."
        );
        assert_eq!(f.matched.len(), 3);
    }

    #[test]
    fn block_and_log_report_the_guardrail() {
        let (out, f) = scan_text(&rules(Action::Block), &OFF, "x 4111 1111 1111 1111");
        assert_eq!((out, f.blocked_by), (None, Some(2)));
        let (out, f) = scan_text(&rules(Action::Log), &OFF, "a@b.de and c@d.de");
        assert_eq!((out, f.matched), (None, vec![(0, Action::Log)]));
    }

    #[test]
    fn the_stream_holds_back_only_a_possible_match() {
        let r = rules(Action::Redact);
        let mut s = StreamScan::new(&OFF[..r.len()]);
        let mut got = vec![s.push(&r, "Hallo. Schreib an max")];
        got.push(s.push(&r, "@example.de, danke."));
        got.push(s.finish(&r));
        // "danke." could still begin an address ("danke.schoen@..."): held until the end.
        assert_eq!(got, ["Hallo. Schreib an ", "[EMAIL_REDACTED], ", "danke."]);
    }

    fn text_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(SAMPLES.to_vec()), 0..12).prop_map(|v| v.concat())
    }

    /// Samples as words: a redaction cannot create a word boundary that was not there.
    fn words_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(SAMPLES.to_vec()), 0..12).prop_map(|v| v.join(" "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn stream_equals_whole(text in prop_oneof![text_strategy(), words_strategy()], cuts in prop::collection::vec(0usize..400, 0..6), action in prop::sample::select(vec![Action::Redact, Action::Block, Action::Log])) {
            let r = rules(action);
            let (whole, wf) = scan_text(&r, &OFF[..r.len()], &text);
            let whole = whole.unwrap_or_else(|| text.clone());
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).filter(|c| text.is_char_boundary(*c)).collect();
            points.sort_unstable();
            let mut s = StreamScan::new(&OFF[..r.len()]);
            let mut out = String::new();
            let mut last = 0;
            for p in points.into_iter().chain([text.len()]) {
                out.push_str(&s.push(&r, &text[last..p]));
                last = p;
            }
            out.push_str(&s.finish(&r));
            prop_assert_eq!(&s.findings.blocked_by, &wf.blocked_by);
            prop_assert_eq!(&s.findings.matched, &wf.matched);
            if wf.blocked_by.is_none() {
                prop_assert_eq!(out, whole);
            }
        }

        #[test]
        fn redaction_leaves_no_detected_entity(text in words_strategy()) {
            let r = rules(Action::Redact);
            let (out, _) = scan_text(&r, &OFF[..r.len()], &text);
            let out = out.unwrap_or(text);
            let (again, f) = scan_text(&r, &OFF[..r.len()], &out);
            prop_assert!(again.is_none() && f.matched.is_empty(), "left in {out:?}: {f:?}");
        }

        #[test]
        fn no_panic_on_any_text(text in "\\PC{0,200}") {
            let r = rules(Action::Redact);
            let _ = scan_text(&r, &OFF[..r.len()], &text);
            let mut s = StreamScan::new(&OFF[..r.len()]);
            let _ = s.push(&r, &text);
            let _ = s.finish(&r);
        }
    }
}
