//! What a request asks of the cache, from Bifrost's `x-bf-cache-*` headers and `Cache-Control`. The
//! headers are read here, as text; none of them is ever sent upstream.

use std::time::Duration;

use crate::config::{check_cache_key, parse_duration, parse_threshold, CacheConfig};

/// Which lookups a request allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheType {
    /// Exact matches only.
    Direct,
    /// Similar requests only (an exact match is also similar).
    Semantic,
    /// Both (the default): exact first, then similar.
    Both,
}

/// The cache's settings for one request, config and headers combined.
#[derive(Clone, Debug, PartialEq)]
pub struct Directives {
    /// The request's cache key; `None`: the cache is not used for this request.
    pub cache_key: Option<String>,
    pub ttl: Duration,
    pub threshold: f64,
    pub cache_type: CacheType,
    /// Answer from the cache, but write nothing (`x-bf-cache-no-store`, `Cache-Control: no-store`).
    pub no_store: bool,
    /// Do not answer from the cache (`Cache-Control: no-cache`); the answer is still stored.
    pub no_cache: bool,
}

/// A bad directive: the header at fault and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectiveError {
    pub header: &'static str,
    pub message: String,
}

fn bad(header: &'static str, message: impl Into<String>) -> DirectiveError {
    DirectiveError {
        header,
        message: message.into(),
    }
}

impl Directives {
    /// Reads a request's headers (`get` returns a header's value as text, `None` when absent or not
    /// text) under the cache's config.
    pub fn read(
        config: &CacheConfig,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Directives, DirectiveError> {
        let cache_key = match get("x-bf-cache-key") {
            Some(k) => {
                let k = k.trim().to_owned();
                check_cache_key(&k).map_err(|m| bad("x-bf-cache-key", m))?;
                Some(k)
            }
            None => config.default_cache_key.clone(),
        };
        let ttl = match get("x-bf-cache-ttl") {
            Some(t) => parse_duration(&t)
                .filter(|d| d.as_secs() <= 365 * 24 * 3600)
                .ok_or_else(|| bad("x-bf-cache-ttl", "x-bf-cache-ttl must be a positive duration: seconds (\"2\") or a duration (\"2s\", \"5m\")"))?,
            None => config.ttl,
        };
        let threshold = match get("x-bf-cache-threshold") {
            // A request may only raise the configured threshold, never lower it.
            Some(t) => parse_threshold(&serde_json::Value::String(t))
                .map_err(|_| {
                    bad(
                        "x-bf-cache-threshold",
                        "x-bf-cache-threshold must be a number from 0 to 1",
                    )
                })?
                .max(config.threshold),
            None => config.threshold,
        };
        let cache_type = match get("x-bf-cache-type").as_deref().map(str::trim) {
            None => CacheType::Both,
            Some(t) if t.eq_ignore_ascii_case("direct") => CacheType::Direct,
            Some(t) if t.eq_ignore_ascii_case("semantic") => CacheType::Semantic,
            Some(_) => {
                return Err(bad(
                    "x-bf-cache-type",
                    "x-bf-cache-type must be 'direct' or 'semantic'",
                ))
            }
        };
        let mut no_store = match get("x-bf-cache-no-store").as_deref().map(str::trim) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
            Some(_) => {
                return Err(bad(
                    "x-bf-cache-no-store",
                    "x-bf-cache-no-store must be true or false",
                ))
            }
        };
        let mut no_cache = false;
        if let Some(cc) = get("cache-control") {
            for token in cc.split(',').map(|t| t.trim().to_ascii_lowercase()) {
                match token.as_str() {
                    "no-store" => no_store = true,
                    "no-cache" => no_cache = true,
                    _ => {}
                }
            }
        }
        Ok(Directives {
            cache_key,
            ttl,
            threshold,
            cache_type,
            no_store,
            no_cache,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(headers: &[(&str, &str)], config: &CacheConfig) -> Result<Directives, DirectiveError> {
        Directives::read(config, |name| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn headers_override_the_config_within_bounds() {
        let config = CacheConfig::default();
        let d = read(&[], &config).unwrap();
        assert_eq!(d.cache_key, None);
        let d = read(
            &[
                ("x-bf-cache-key", "campaign"),
                ("x-bf-cache-ttl", "2s"),
                ("x-bf-cache-threshold", "0.5"),
                ("cache-control", "max-age=0, No-Store"),
            ],
            &config,
        )
        .unwrap();
        assert_eq!(d.cache_key.as_deref(), Some("campaign"));
        assert_eq!(d.ttl, Duration::from_secs(2));
        assert_eq!(d.threshold, 0.8, "a request may not lower the threshold");
        assert!(d.no_store && !d.no_cache);
        let d = read(
            &[("x-bf-cache-threshold", "0.95"), ("x-bf-cache-ttl", "2")],
            &config,
        )
        .unwrap();
        assert_eq!(d.threshold, 0.95);
        assert_eq!(d.ttl, Duration::from_secs(2));
    }

    #[test]
    fn bad_headers_are_named() {
        let config = CacheConfig::default();
        for (h, v) in [
            ("x-bf-cache-ttl", "soon"),
            ("x-bf-cache-threshold", "high"),
            ("x-bf-cache-type", "fuzzy"),
            ("x-bf-cache-no-store", "maybe"),
            ("x-bf-cache-key", ""),
        ] {
            let e = read(&[(h, v)], &config).unwrap_err();
            assert_eq!(e.header, h);
        }
    }
}
