//! The pure half of admin authentication: which paths need an admin, and parsing of the headers and
//! files that carry admin credentials. The gateway's `auth` module does the I/O (hashing, cookies).

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "switchyard_session";
/// The header the UI sends the CSRF token in on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Paths under `/api/` an anonymous caller may reach even when admin auth is on: logging in, asking
/// whether one is logged in, and logging out.
pub const PUBLIC_API_PATHS: &[&str] = &["/api/auth/login", "/api/auth/session", "/api/auth/logout"];

/// Whether a request path belongs to the admin surface: the management API (`/api/*`), the metrics
/// and the UI shell (`/`). Inference routes (`/v1/*`, `/openai/*`, `/anthropic/*`, `/genai/*`), `/health`,
/// the login page and the static UI assets (which hold no data) are not admin routes.
///
/// The path is the raw request path, exactly as the router matches it (no percent-decoding, no
/// slash folding), so anything the router would hand to a management handler is classified here as
/// admin. `/api` and everything below it is admin by default, so routes added later are covered.
pub fn is_admin_path(path: &str) -> bool {
    if PUBLIC_API_PATHS.contains(&path) {
        return false;
    }
    path == "/" || path == "/metrics" || path == "/api" || path.starts_with("/api/")
}

/// Whether a method changes state (and so needs the CSRF token when the caller is a cookie session).
pub fn is_state_changing(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The token of an `Authorization: Bearer <token>` header value. The scheme is case-insensitive
/// (RFC 9110); the token must be a non-empty RFC 6750 `b64token` and nothing may follow it.
pub fn parse_bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ');
    let is_b64token_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.bytes().all(is_b64token_char) {
        return None;
    }
    Some(token)
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`). The first occurrence wins; values
/// may be quoted.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if k.trim() != name {
            return None;
        }
        let v = v.trim();
        Some(v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v))
    })
}

/// Whether a bind address is loopback-only: `127.0.0.0/8`, `::1`, or `localhost`. `0.0.0.0` and `::`
/// listen on every interface and are not.
pub fn is_loopback_bind(host: &str) -> bool {
    let h = host.trim();
    let h = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(h);
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a `Host` header names this machine's loopback (`localhost`, `127.x.y.z`, `[::1]`, with or
/// without a port). Used while the admin API is open on loopback: a browser tricked by DNS rebinding
/// sends the attacker's host name, which this refuses.
pub fn is_loopback_host_header(host: &str) -> bool {
    let h = host.trim();
    let name = if let Some(rest) = h.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inner, after)) if after.is_empty() || is_port_suffix(after) => inner,
            _ => return false,
        }
    } else {
        match h.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => h,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_port_suffix(s: &str) -> bool {
    s.strip_prefix(':').is_some_and(is_port)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// Whether an `Origin` header (`scheme://host[:port]`, or `null`) names the same host and port as the
/// request's `Host`. Browsers send `Origin` on cross-site state-changing requests; a mismatch means the
/// request was made by another site's page.
pub fn origin_matches_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let with_port = |a: &str| -> String {
        let a = a.trim().trim_end_matches('/').to_ascii_lowercase();
        let has_port = match a.rfind(']') {
            Some(i) => a[i..].contains(':'),
            None => a.contains(':'),
        };
        if has_port {
            a
        } else {
            format!("{a}:{default_port}")
        }
    };
    !authority.is_empty() && !authority.contains(['/', '@']) && with_port(authority) == with_port(host)
}

/// Admin tokens as given in `SWITCHYARD_ADMIN_TOKENS` or a tokens file: separated by commas or line
/// breaks, surrounding whitespace ignored, empty entries and `#` comment lines skipped.
pub fn parse_token_list(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Why an admin token is refused at start-up.
pub fn token_problem(token: &str) -> Option<&'static str> {
    if token.len() < 16 {
        return Some("admin tokens must be at least 16 characters");
    }
    if parse_bearer(&format!("Bearer {token}")) != Some(token) {
        return Some("admin tokens may only contain letters, digits and - . _ ~ + / (and trailing =)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn admin_paths() {
        for p in [
            "/",
            "/metrics",
            "/api",
            "/api/providers",
            "/api/logs/1",
            "/api/routing/explain",
        ] {
            assert!(is_admin_path(p), "{p}");
        }
        for p in [
            "/v1/chat/completions",
            "/openai/v1/models",
            "/anthropic/v1/messages",
            "/genai/v1beta/models/x:generateContent",
            "/health",
            "/login",
            "/ui/abc/app.js",
            "/api/auth/login",
            "/api/auth/session",
            "/apis",
        ] {
            assert!(!is_admin_path(p), "{p}");
        }
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(parse_bearer("Bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("bearer   abc=="), Some("abc=="));
        assert_eq!(parse_bearer("BEARER a.b-c_d~e+f/g"), Some("a.b-c_d~e+f/g"));
        assert_eq!(parse_bearer("Basic abc"), None);
        assert_eq!(parse_bearer("Bearer"), None);
        assert_eq!(parse_bearer("Bearer "), None);
        assert_eq!(parse_bearer("Bearer a b"), None);
        assert_eq!(parse_bearer("Bearer ="), None);
        assert_eq!(parse_bearer("Bearer a=b"), None);
    }

    #[test]
    fn cookies() {
        assert_eq!(
            cookie_value("a=1; switchyard_session=xyz; b=2", SESSION_COOKIE),
            Some("xyz")
        );
        assert_eq!(
            cookie_value("switchyard_session=\"q\"", SESSION_COOKIE),
            Some("q")
        );
        assert_eq!(cookie_value("xswitchyard_session=1", SESSION_COOKIE), None);
        assert_eq!(cookie_value("", SESSION_COOKIE), None);
        assert_eq!(cookie_value("a=1;b", "b"), None);
    }

    #[test]
    fn loopback_binds_and_hosts() {
        for h in ["127.0.0.1", "::1", "[::1]", "localhost", "127.1.2.3"] {
            assert!(is_loopback_bind(h), "{h}");
        }
        for h in ["0.0.0.0", "::", "10.0.0.1", "example.com", ""] {
            assert!(!is_loopback_bind(h), "{h}");
        }
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "[::1]",
            "LOCALHOST.",
        ] {
            assert!(is_loopback_host_header(h), "{h}");
        }
        for h in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "[::1]x",
            "localhost:",
            "10.0.0.1",
            "::1",
        ] {
            assert!(!is_loopback_host_header(h), "{h}");
        }
    }

    #[test]
    fn origins() {
        assert!(origin_matches_host("http://localhost:8080", "localhost:8080"));
        assert!(origin_matches_host("http://LOCALHOST:8080", "localhost:8080"));
        assert!(origin_matches_host("https://gw.example", "gw.example:443"));
        assert!(origin_matches_host("http://[::1]:8080", "[::1]:8080"));
        assert!(!origin_matches_host("http://evil.example", "localhost:8080"));
        assert!(!origin_matches_host("http://localhost:8081", "localhost:8080"));
        assert!(!origin_matches_host("null", "localhost:8080"));
        assert!(!origin_matches_host("http://a@localhost:8080", "localhost:8080"));
    }

    #[test]
    fn token_lists() {
        assert_eq!(
            parse_token_list("# admins\n tok-a , tok-b\n\n,tok-c\n"),
            ["tok-a", "tok-b", "tok-c"]
        );
        assert!(token_problem("short").is_some());
        assert!(token_problem("has space in it, long").is_some());
        assert!(token_problem("sy-admin-0123456789abcdef").is_none());
    }

    proptest! {
        #[test]
        fn bearer_round_trips_every_valid_token(t in "[A-Za-z0-9._~+/-]{1,64}={0,2}") {
            let header = format!("Bearer {t}");
            prop_assert_eq!(parse_bearer(&header), Some(t.as_str()));
        }

        #[test]
        fn bearer_never_panics_and_returns_a_suffix(s in "\\PC{0,80}") {
            if let Some(t) = parse_bearer(&s) {
                prop_assert!(s.ends_with(t));
                prop_assert!(!t.is_empty() && !t.contains(' '));
            }
        }

        #[test]
        fn cookie_value_finds_what_was_set(v in "[A-Za-z0-9._-]{0,40}", other in "[a-z]{1,8}") {
            let header = format!("{other}=1; {SESSION_COOKIE}={v}; z=2");
            let expected = if other == SESSION_COOKIE { "1" } else { v.as_str() };
            prop_assert_eq!(cookie_value(&header, SESSION_COOKIE), Some(expected));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,80}") {
            let _ = cookie_value(&s, SESSION_COOKIE);
            let _ = is_loopback_host_header(&s);
            let _ = is_loopback_bind(&s);
            let _ = parse_token_list(&s);
            let _ = is_admin_path(&s);
        }

        #[test]
        fn everything_under_api_is_admin_except_the_login_endpoints(rest in "[a-z0-9/{}._-]{0,40}") {
            let p = format!("/api/{rest}");
            prop_assert_eq!(is_admin_path(&p), !PUBLIC_API_PATHS.contains(&p.as_str()));
        }

        #[test]
        fn an_origin_matches_its_own_host(host in "[a-z][a-z0-9.-]{0,20}", port in 1u16..) {
            let origin = format!("http://{host}:{port}");
            let host_header = format!("{host}:{port}");
            prop_assert!(origin_matches_host(&origin, &host_header));
            let other = format!("{host}x:{port}");
            prop_assert!(!origin_matches_host(&origin, &other));
            let _ = origin_matches_host(&host_header, &origin);
        }

        #[test]
        fn token_lists_keep_every_entry(tokens in proptest::collection::vec("[A-Za-z0-9_-]{1,20}", 0..8)) {
            let joined = tokens.join(",\n ");
            prop_assert_eq!(parse_token_list(&joined), tokens);
        }
    }
}
