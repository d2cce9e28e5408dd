//! Requests a browser sends on behalf of another site, for the surfaces that are open without
//! credentials on a loopback bind (the admin API, and inference when no virtual key is required):
//! a page elsewhere can make the operator's browser POST to `localhost` (cross-site request forgery),
//! or rebind its own DNS name to 127.0.0.1 and then read the answers (DNS rebinding). Both are told
//! apart from local tools here, once: scripts, SDKs and CLIs send neither `Origin` nor
//! `Sec-Fetch-Site`, and address the gateway by a loopback name.

use axum::http::{header, HeaderMap, Uri};
use switchyard_core::admin_auth::{is_loopback_host_header, origin_matches_host};

/// The host a request is addressed to: its `Host` header, or the authority of an absolute URI (h2).
pub fn host_of<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

/// Addressed to a name other than this machine's loopback (`localhost`, `127.x`, `[::1]`): what a
/// DNS-rebound page sends.
pub fn is_foreign_host(headers: &HeaderMap, uri: &Uri) -> bool {
    !host_of(headers, uri).is_some_and(is_loopback_host_header)
}

/// A browser request made by another site's page: `Sec-Fetch-Site: cross-site`, or an `Origin` that
/// is not this host (`null` included).
pub fn is_cross_site(headers: &HeaderMap, uri: &Uri) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return true;
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        host_of(headers, uri),
    ) {
        (Some(origin), Some(host)) => !origin_matches_host(origin, host),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// A body declared `text/plain`: the one type a cross-site page may POST without a CORS preflight
/// that a JSON API could still mistake for JSON (forms send the other two "simple" types).
pub fn is_plain_text(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("text/plain")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn local_tools_pass_and_other_sites_do_not() {
        let uri: Uri = "/v1/chat/completions".parse().unwrap();
        let curl = headers(&[("host", "localhost:8080")]);
        assert!(!is_foreign_host(&curl, &uri) && !is_cross_site(&curl, &uri));
        let rebound = headers(&[("host", "evil.example:8080")]);
        assert!(is_foreign_host(&rebound, &uri));
        let same = headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]);
        assert!(!is_cross_site(&same, &uri));
        for (name, value) in [
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let h = headers(&[("host", "localhost:8080"), (name, value)]);
            assert!(is_cross_site(&h, &uri), "{name}: {value}");
        }
        assert!(is_plain_text(&headers(&[(
            "content-type",
            "text/plain;charset=UTF-8"
        )])));
        assert!(!is_plain_text(&headers(&[("content-type", "application/json")])));
    }
}
