//! Governance, the pure part: virtual keys, teams and customers with their budgets and rate limits
//! (`model`), reset windows (`window`), the admission decision and settlement (`admission`), and the
//! estimate reserved before a call (`estimate`). Counters and storage live at the edges.

pub mod admission;
pub mod estimate;
pub mod model;
pub mod price;
pub mod window;

pub use admission::{Estimate, Level, LevelLimits, LimitCheck, LimitKind, Rejection};
pub use model::{
    Budget, Denial, Group, GroupInput, ProviderRule, RateLimit, VirtualKey, VirtualKeyInput, VK_PREFIX,
};
pub use price::PriceOverride;
pub use window::ResetDuration;

use sha2::{Digest, Sha256};

/// How a virtual key value is stored and looked up: SHA-256, hex. Values carry 128+ bits of
/// randomness, so a fast hash is enough (no password stretching needed).
pub fn hash_vk_value(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// What lists show of a value: the prefix and four characters.
pub fn vk_hint(value: &str) -> String {
    let shown: String = value.chars().take(VK_PREFIX.len() + 4).collect();
    format!("{shown}…")
}

/// The virtual key in a request's headers: `x-bf-vk` (any value), or a `sk-bf-` value in
/// `Authorization: Bearer`, `x-api-key`, `api-key` or `x-goog-api-key`. `get` reads a header by name.
pub fn vk_from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = get("x-bf-vk") {
        return Some(v.trim());
    }
    let bearer = get("authorization").and_then(|a| {
        let (scheme, rest) = a.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    [bearer, get("x-api-key"), get("api-key"), get("x-goog-api-key")]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| v.starts_with(VK_PREFIX))
}

/// Which target a virtual key's `provider_configs` weights put first. `providers` are the plan's
/// targets' providers in order; `weight_of` gives a provider's weight (`None`: no rule). Draws one
/// provider among those with a rule and a positive weight, proportionally to the weights (weight 0:
/// never first, still a fallback), and returns the index of its first target. `None` (keep the plan's
/// order) when fewer than two providers with a rule compete, or none has a positive weight.
pub fn weighted_primary(
    providers: &[&str],
    weight_of: impl Fn(&str) -> Option<f64>,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let mut candidates: Vec<(usize, f64)> = Vec::new();
    let mut ruled = 0;
    for (i, p) in providers.iter().enumerate() {
        if providers[..i].contains(p) {
            continue;
        }
        let Some(w) = weight_of(p) else { continue };
        ruled += 1;
        if w > 0.0 && w.is_finite() {
            candidates.push((i, w));
        }
    }
    if ruled < 2 || candidates.is_empty() {
        return None;
    }
    let total: f64 = candidates.iter().map(|c| c.1).sum();
    let mut draw = rng.f64() * total;
    for &(i, w) in &candidates {
        if draw < w {
            return Some(i);
        }
        draw -= w;
    }
    candidates.last().map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_pick_the_primary_provider() {
        let providers = ["a", "a", "b", "c"];
        let weights = |p: &str| match p {
            "a" => Some(1.0),
            "b" => Some(3.0),
            _ => None,
        };
        let mut rng = fastrand::Rng::with_seed(7);
        let mut firsts = [0usize; 4];
        for _ in 0..4000 {
            firsts[weighted_primary(&providers, weights, &mut rng).unwrap()] += 1;
        }
        // "a" at index 0 about a quarter of the time, "b" (index 2) about three quarters, "c" never.
        assert_eq!(firsts[1] + firsts[3], 0);
        assert!((800..1200).contains(&firsts[0]), "{firsts:?}");
        // One provider with a rule: the plan's order stays. Weight 0 is never first.
        assert_eq!(weighted_primary(&["a", "c"], weights, &mut rng), None);
        let b_only = |p: &str| Some(if p == "b" { 1.0 } else { 0.0 });
        assert_eq!(weighted_primary(&["a", "b"], b_only, &mut rng), Some(1));
        assert_eq!(weighted_primary(&["a", "b"], |_| Some(0.0), &mut rng), None);
    }

    #[test]
    fn vk_is_found_in_each_header() {
        let v = "sk-bf-0123456789abcdef0123";
        let one = |name: &'static str, value: &'static str| move |h: &str| (h == name).then_some(value);
        assert_eq!(vk_from_headers(one("x-bf-vk", "legacy")), Some("legacy"));
        assert_eq!(
            vk_from_headers(one("authorization", "Bearer sk-bf-0123456789abcdef0123")),
            Some(v)
        );
        assert_eq!(
            vk_from_headers(one("x-api-key", "sk-bf-0123456789abcdef0123")),
            Some(v)
        );
        assert_eq!(
            vk_from_headers(one("api-key", "sk-bf-0123456789abcdef0123")),
            Some(v)
        );
        // A provider key in Authorization is not a virtual key.
        assert_eq!(vk_from_headers(one("authorization", "Bearer sk-proj-123")), None);
    }

    #[test]
    fn hashes_are_stable_hex() {
        assert_eq!(
            hash_vk_value("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(vk_hint("sk-bf-0123456789"), "sk-bf-0123…");
    }
}
