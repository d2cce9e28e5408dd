//! Detectors: one regex each (the `regex` crate: linear time in the text, whatever the pattern), plus a
//! check the regex cannot express (Luhn for cards, the IBAN checksum, a phone number's digit count).
//! Each detector knows two facts about its pattern, read from the parsed pattern (`regex-syntax`), that
//! the streaming scanner needs: the longest match in bytes, and the bytes a match can contain at all.

use regex::{Regex, RegexBuilder};
use regex_syntax::hir::{Class, Hir, HirKind};
use serde::{Deserialize, Serialize};

/// The longest custom pattern accepted, in characters.
pub const MAX_PATTERN_CHARS: usize = 1000;
/// The compiled size a custom pattern may take (the `regex` crate's own limit).
const MAX_COMPILED_BYTES: usize = 1 << 20;
/// The built-in patterns' bounded repetitions (`{1,64}`) compile larger.
const BUILTIN_COMPILED_BYTES: usize = 16 << 20;
/// How far a pattern without an upper bound (`\d+`) may reach across stream chunks, in bytes.
pub const UNBOUNDED_WINDOW: usize = 4096;

/// What a match is, and so its placeholder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Email,
    Phone,
    Iban,
    CreditCard,
    Secret,
    Custom,
}

impl Entity {
    /// LiteLLM's placeholder style.
    pub fn placeholder(self) -> &'static str {
        match self {
            Entity::Email => "[EMAIL_REDACTED]",
            Entity::Phone => "[PHONE_REDACTED]",
            Entity::Iban => "[IBAN_REDACTED]",
            Entity::CreditCard => "[CREDIT_CARD_REDACTED]",
            Entity::Secret => "[SECRET_REDACTED]",
            Entity::Custom => "[REDACTED]",
        }
    }

    /// The PII entities a `pii` guardrail may name.
    pub fn pii(name: &str) -> Option<Entity> {
        Some(match name {
            "email" => Entity::Email,
            "phone" => Entity::Phone,
            "iban" => Entity::Iban,
            "credit_card" => Entity::CreditCard,
            _ => return None,
        })
    }
}

/// What a candidate must also pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    None,
    Luhn,
    Iban,
    PhoneDigits,
}

/// One compiled pattern and what the scanner needs to know about it.
#[derive(Clone, Debug)]
pub struct Detector {
    pub entity: Entity,
    regex: Regex,
    check: Check,
    /// The longest match in bytes (capped at [`UNBOUNDED_WINDOW`]).
    pub max_len: usize,
    /// Bytes a match may contain (a superset).
    alphabet: [bool; 256],
    /// Bytes a match may start with (a superset).
    first: [bool; 256],
}

// `(?-u:\b)`: an ASCII word boundary. Unicode's cannot run in the fast lazy DFA on non-ASCII text
// (German prose), which made the scan many times slower; every entity here is ASCII anyway.
const EMAIL: &str =
    r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,6}\.[A-Za-z]{2,24}(?-u:\b)";
const PHONE_INTL: &str = r"(?:\+|(?-u:\b)00)[1-9][0-9]{0,3}(?:[ \-./]?\(?[0-9]{1,6}\)?){1,6}(?-u:\b)";
const PHONE_DE: &str = r"(?:\(0[1-9][0-9]{1,5}\)|(?-u:\b)0[1-9][0-9]{1,5})(?:[ \-/]?[0-9]{2,8}){1,3}(?-u:\b)";
const IBAN: &str =
    r"(?-u:\b)[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?-u:\b)";
const CARD: &str = r"(?-u:\b)[0-9](?:[ \-]?[0-9]){12,18}(?-u:\b)";
const SECRETS: [&str; 4] = [
    // AWS access key ids.
    r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?-u:\b)",
    // A PEM private key: the whole block (in a stream: when it ends within 4 KiB), else the header.
    r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----(?:[A-Za-z0-9+/=\r\n :,\-]*?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----)?",
    // GitHub tokens (classic and fine-grained).
    r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})(?-u:\b)",
    // `sk-` API keys (OpenAI, Anthropic, LiteLLM).
    r"(?-u:\b)sk-[A-Za-z0-9_\-]{20,200}(?-u:\b)",
];

impl Detector {
    fn builtin(entity: Entity, pattern: &str, check: Check) -> Detector {
        Detector::compile(entity, pattern, check, BUILTIN_COMPILED_BYTES).expect("built-in patterns compile")
    }

    /// The detectors of a built-in entity.
    pub fn for_entity(entity: Entity) -> Vec<Detector> {
        match entity {
            Entity::Email => vec![Detector::builtin(entity, EMAIL, Check::None)],
            Entity::Phone => vec![
                Detector::builtin(entity, PHONE_INTL, Check::PhoneDigits),
                Detector::builtin(entity, PHONE_DE, Check::PhoneDigits),
            ],
            Entity::Iban => vec![Detector::builtin(entity, IBAN, Check::Iban)],
            Entity::CreditCard => vec![Detector::builtin(entity, CARD, Check::Luhn)],
            Entity::Secret => SECRETS
                .iter()
                .map(|p| Detector::builtin(entity, p, Check::None))
                .collect(),
            Entity::Custom => Vec::new(),
        }
    }

    /// An operator's pattern; the error says what is wrong with it.
    pub fn custom(pattern: &str) -> Result<Detector, String> {
        if pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err(format!("must be at most {MAX_PATTERN_CHARS} characters"));
        }
        Detector::compile(Entity::Custom, pattern, Check::None, MAX_COMPILED_BYTES)
    }

    fn compile(entity: Entity, pattern: &str, check: Check, size_limit: usize) -> Result<Detector, String> {
        let hir = regex_syntax::Parser::new()
            .parse(pattern)
            .map_err(|e| format!("is not a valid regex: {e}"))?;
        if hir.properties().minimum_len().unwrap_or(0) == 0 {
            return Err("must not match empty text".into());
        }
        let regex = RegexBuilder::new(pattern)
            .size_limit(size_limit)
            .build()
            .map_err(|e| format!("is not a usable regex: {e}"))?;
        let mut alphabet = [false; 256];
        mark_alphabet(&hir, &mut alphabet);
        let mut first = [false; 256];
        mark_first(&hir, &mut first);
        Ok(Detector {
            entity,
            regex,
            check,
            max_len: hir
                .properties()
                .maximum_len()
                .map_or(UNBOUNDED_WINDOW, |n| n.min(UNBOUNDED_WINDOW)),
            alphabet,
            first,
        })
    }

    /// The leftmost candidate starting at or after `from` (text before `from` is context for `\b`).
    pub(crate) fn find_at(&self, hay: &str, from: usize) -> Option<(usize, usize)> {
        self.regex.find_at(hay, from).map(|m| (m.start(), m.end()))
    }

    /// How much of a candidate passes the detector's check (`None`: none of it). Only a phone number
    /// is shortened: to its longest prefix of whole digit groups with at most 15 digits.
    pub(crate) fn accepts(&self, candidate: &str) -> Option<usize> {
        let whole = Some(candidate.len());
        match self.check {
            Check::None => whole,
            Check::Luhn => whole.filter(|_| luhn(candidate)),
            Check::Iban => whole.filter(|_| candidate.parse::<iban::Iban>().is_ok()),
            Check::PhoneDigits => phone_prefix(candidate),
        }
    }

    /// The pattern, as compiled.
    pub fn pattern(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether `b` can be part of a match.
    pub(crate) fn may_contain(&self, b: u8) -> bool {
        self.alphabet[usize::from(b)]
    }

    /// Whether a match can start with `b`.
    pub(crate) fn may_start(&self, b: u8) -> bool {
        self.first[usize::from(b)]
    }
}

/// Marks every byte a match of `hir` can start with; returns whether `hir` can match empty text (so
/// what follows it can start the match too).
fn mark_first(hir: &Hir, set: &mut [bool; 256]) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(lit) => {
            lit.0
                .first()
                .into_iter()
                .for_each(|b| set[usize::from(*b)] = true);
            lit.0.is_empty()
        }
        HirKind::Class(_) => {
            mark_alphabet(hir, set);
            false
        }
        HirKind::Repetition(rep) => mark_first(&rep.sub, set) || rep.min == 0,
        HirKind::Capture(cap) => mark_first(&cap.sub, set),
        HirKind::Concat(subs) => subs.iter().all(|h| mark_first(h, set)),
        HirKind::Alternation(subs) => {
            // Every branch marks its first bytes, so no short-circuiting here.
            let mut empty = false;
            for h in subs {
                empty |= mark_first(h, set);
            }
            empty
        }
    }
}

/// Marks every byte a match of `hir` can contain (non-ASCII characters: every byte ≥ 0x80).
fn mark_alphabet(hir: &Hir, set: &mut [bool; 256]) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => lit.0.iter().for_each(|b| set[usize::from(*b)] = true),
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.ranges() {
                let (lo, hi) = (u32::from(r.start()), u32::from(r.end()));
                for b in lo..=hi.min(0x7f) {
                    set[b as usize] = true;
                }
                if hi >= 0x80 {
                    set[0x80..].iter_mut().for_each(|s| *s = true);
                }
            }
        }
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    set[usize::from(b)] = true;
                }
            }
        }
        HirKind::Repetition(rep) => mark_alphabet(&rep.sub, set),
        HirKind::Capture(cap) => mark_alphabet(&cap.sub, set),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().for_each(|h| mark_alphabet(h, set)),
    }
}

/// The longest prefix of `s` ending after a digit group (followed by a separator or the end) with 7
/// to 15 digits (E.164's maximum) in it.
fn phone_prefix(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut digits = 0;
    let mut best = None;
    for (i, c) in b.iter().enumerate() {
        if !c.is_ascii_digit() {
            continue;
        }
        digits += 1;
        if digits > 15 {
            break;
        }
        let group_end = b.get(i + 1).is_none_or(|n| !n.is_ascii_digit() && *n != b')');
        let group_end = group_end || b.get(i + 1) == Some(&b')');
        if group_end && digits >= 7 {
            best = Some(i + 1);
        }
    }
    best
}

/// The Luhn checksum over the digits of `s` (separators ignored), 13 to 19 digits.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(entity: Entity, text: &str) -> bool {
        Detector::for_entity(entity).iter().any(|d| {
            let mut from = 0;
            while let Some((s, e)) = d.find_at(text, from) {
                if d.accepts(&text[s..e]).is_some() {
                    return true;
                }
                from = s + text[s..].chars().next().map_or(1, char::len_utf8);
            }
            false
        })
    }

    #[test]
    fn each_entity_finds_its_examples_and_not_lookalikes() {
        let yes = [
            (Entity::Email, "write to max.mustermann@example.de today"),
            (Entity::Phone, "call +49 30 1234567"),
            (Entity::Phone, "ruf an: 030 12345678"),
            (Entity::Phone, "Tel. (089) 123 4567"),
            (Entity::Phone, "mobil 0171-1234567"),
            (Entity::Phone, "+1 (415) 555-2671"),
            (Entity::Iban, "IBAN DE89 3704 0044 0532 0130 00 bitte"),
            (Entity::Iban, "GB82WEST12345698765432"),
            (Entity::CreditCard, "card 4111 1111 1111 1111 exp"),
            (Entity::CreditCard, "5500-0000-0000-0004"),
            (Entity::Secret, "key AKIAIOSFODNN7EXAMPLE here"),
            (
                Entity::Secret,
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            ),
            (Entity::Secret, "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            (Entity::Secret, "sk-proj-abcdefghijklmnopqrstuvwx"),
        ];
        for (entity, text) in yes {
            assert!(hits(entity, text), "{entity:?} not found in {text:?}");
        }
        let no = [
            (Entity::Email, "no at sign here example.de"),
            (Entity::Phone, "in 2024 we sold 12 units"),
            (Entity::Iban, "DE89 3704 0044 0532 0130 01"), // checksum off by one
            (Entity::CreditCard, "4111 1111 1111 1112"),   // Luhn fails
            (Entity::Secret, "sk-short"),
        ];
        for (entity, text) in no {
            assert!(!hits(entity, text), "{entity:?} wrongly found in {text:?}");
        }
    }

    #[test]
    fn custom_patterns_are_checked() {
        assert!(Detector::custom("(").unwrap_err().contains("valid regex"));
        assert!(Detector::custom("a*").unwrap_err().contains("empty"));
        assert!(Detector::custom(&"a".repeat(1001)).is_err());
        assert_eq!(Detector::custom("[0-9]{4}").unwrap().max_len, 4);
        assert_eq!(Detector::custom(r"\d+").unwrap().max_len, UNBOUNDED_WINDOW);
        let d = Detector::custom("Projekt [A-Z]+").unwrap();
        assert!(d.may_contain(b'P') && d.may_contain(b' ') && !d.may_contain(b'.'));
        assert!(d.may_start(b'P') && !d.may_start(b'r'));
    }
}
