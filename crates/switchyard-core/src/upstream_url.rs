//! Joining a provider's base URL with an API path.

/// Joins `base_url` and an OpenAI-style path such as `/chat/completions`.
///
/// The seed registers endpoints as `https://host/v1`, other guides as `https://host`: both must reach
/// `https://host/v1/chat/completions`, and nothing may ever produce `/v1/v1/...`. A base URL whose last
/// segment is a version (`/v1`, `/v1beta`, `/v2`) is used as is; otherwise `/v1` is inserted.
pub fn openai_endpoint(base_url: &str, path: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let last_segment = base.rsplit('/').next().unwrap_or("");
    let versioned = last_segment.len() >= 2
        && last_segment.starts_with('v')
        && last_segment[1..].starts_with(|c: char| c.is_ascii_digit());
    // "https://host": no path that could hold a version.
    let scheme_only = base.matches('/').count() <= 2;
    let version = if versioned && !scheme_only { "" } else { "/v1" };
    // Built on every request: pushed into one allocation rather than through `format!`.
    let mut url = String::with_capacity(base.len() + version.len() + path.len());
    url.push_str(base);
    url.push_str(version);
    url.push_str(path);
    url
}

/// The Gemini `generateContent` / `streamGenerateContent` URL for `model`. A base URL that already
/// ends in a version (`/v1beta`, `/v1`) is used as is; otherwise `/v1beta` is inserted.
pub fn gemini_endpoint(base_url: &str, model: &str, stream: bool) -> String {
    let base = base_url.trim_end_matches('/');
    let last = base.rsplit('/').next().unwrap_or("");
    let versioned = base.matches('/').count() > 2
        && last.starts_with('v')
        && last[1..].starts_with(|c: char| c.is_ascii_digit());
    let action = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    if versioned {
        format!("{base}/models/{model}:{action}")
    } else {
        format!("{base}/v1beta/models/{model}:{action}")
    }
}

/// Gemini's model list, `GET {base}/v1beta/models` (the version inserted unless the base has one).
pub fn gemini_models_endpoint(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let last = base.rsplit('/').next().unwrap_or("");
    if base.matches('/').count() > 2 && is_version_segment(last) {
        format!("{base}/models")
    } else {
        format!("{base}/v1beta/models")
    }
}

fn is_version_segment(seg: &str) -> bool {
    seg.len() >= 2 && seg.starts_with('v') && seg[1..].starts_with(|c: char| c.is_ascii_digit())
}

/// The upstream URL of a raw pass-through call: `rest` (the path after `/openai_passthrough/`,
/// `/passthrough/{provider}/`, ...) appended to the provider's base URL, with the query string kept.
///
/// Clients write the provider's own paths (`v1/chat/completions`, `v1beta/models/...`), while base URLs
/// are registered with or without a version (`https://host/v1`, `https://host`): when both carry a
/// version segment the base's is dropped, so `/v1/v1/...` never happens. `..` and empty segments are
/// refused, so a pass-through can never leave the base URL's path.
pub fn passthrough_url(base_url: &str, rest: &str, query: Option<&str>) -> Result<String, &'static str> {
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        return Err("the pass-through path is empty; append the provider's own API path");
    }
    if rest
        .split('/')
        .any(|seg| seg == ".." || seg == "." || seg.contains('\\'))
    {
        return Err("the pass-through path must not contain '.' or '..' segments");
    }
    // `rest` is already percent-decoded: a `%3F` here would turn into the upstream's query (around
    // the strip of `key`), a `%0d%0a` or `%20` into an invalid request line.
    if rest
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b == b'?' || b == b'#')
    {
        return Err(
            "the pass-through path must not contain spaces, control or non-ASCII characters, '?' or '#' \
             (percent-encoded or not); send query parameters in the query string",
        );
    }
    let mut base = base_url.trim_end_matches('/');
    let scheme_only = base.matches('/').count() <= 2;
    let base_last = base.rsplit('/').next().unwrap_or("");
    let rest_first = rest.split('/').next().unwrap_or("");
    if !scheme_only && is_version_segment(base_last) && is_version_segment(rest_first) {
        base = &base[..base.len() - base_last.len() - 1];
    }
    let mut url = format!("{base}/{rest}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_paths_with_hidden_queries_or_bad_bytes_are_refused() {
        let base = "https://api.example.com/v1";
        for rest in [
            "v1/chat?key=x",
            "a b",
            "a\r\nHost: evil",
            "a#frag",
            "modèle",
            "a\tb",
        ] {
            assert!(passthrough_url(base, rest, None).is_err(), "{rest:?}");
        }
        assert_eq!(
            passthrough_url(base, "v1/models/gpt-4o:generate", Some("alt=sse")).unwrap(),
            "https://api.example.com/v1/models/gpt-4o:generate?alt=sse"
        );
    }

    #[test]
    fn gemini_urls() {
        assert_eq!(
            gemini_endpoint(
                "https://generativelanguage.googleapis.com",
                "gemini-2.5-pro",
                false
            ),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            gemini_endpoint("http://127.0.0.1:9/v1beta/", "g", true),
            "http://127.0.0.1:9/v1beta/models/g:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn gemini_model_list_url() {
        assert_eq!(
            gemini_models_endpoint("https://generativelanguage.googleapis.com"),
            "https://generativelanguage.googleapis.com/v1beta/models"
        );
        assert_eq!(
            gemini_models_endpoint("http://127.0.0.1:9/v1beta/"),
            "http://127.0.0.1:9/v1beta/models"
        );
    }

    #[test]
    fn passthrough_urls() {
        let p = |b, r, q| passthrough_url(b, r, q).unwrap();
        assert_eq!(
            p(
                "https://llm.aihosting.mittwald.de/v1",
                "v1/chat/completions",
                None
            ),
            "https://llm.aihosting.mittwald.de/v1/chat/completions"
        );
        assert_eq!(
            p("https://llm.aihosting.mittwald.de/v1/", "chat/completions", None),
            "https://llm.aihosting.mittwald.de/v1/chat/completions"
        );
        assert_eq!(
            p("https://api.anthropic.com", "v1/messages", None),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            p(
                "https://g.example/v1beta",
                "v1beta/models/g:generateContent",
                Some("alt=sse")
            ),
            "https://g.example/v1beta/models/g:generateContent?alt=sse"
        );
        assert_eq!(
            p("https://api.groq.com/openai/v1", "v1/models", Some("")),
            "https://api.groq.com/openai/v1/models"
        );
        assert!(passthrough_url("http://h/v1", "", None).is_err());
        assert!(passthrough_url("http://h/v1", "v1/../admin", None).is_err());
        assert!(passthrough_url("http://h/v1", "./x", None).is_err());
    }

    #[test]
    fn with_and_without_v1() {
        for base in [
            "https://llm.aihosting.mittwald.de/v1",
            "https://llm.aihosting.mittwald.de/v1/",
            "https://llm.aihosting.mittwald.de",
        ] {
            assert_eq!(
                openai_endpoint(base, "/chat/completions"),
                "https://llm.aihosting.mittwald.de/v1/chat/completions"
            );
        }
        assert_eq!(
            openai_endpoint("https://api.groq.com/openai/v1", "/models"),
            "https://api.groq.com/openai/v1/models"
        );
        assert_eq!(
            openai_endpoint("http://127.0.0.1:9000", "/models"),
            "http://127.0.0.1:9000/v1/models"
        );
        assert_eq!(
            openai_endpoint("https://openrouter.ai/api/v1", "/models"),
            "https://openrouter.ai/api/v1/models"
        );
        assert_eq!(openai_endpoint("http://v1", "/models"), "http://v1/v1/models");
        assert_eq!(
            openai_endpoint("https://x/openai", "/models"),
            "https://x/openai/v1/models"
        );
    }
}
