//! Admin authentication for the management API, the metrics and the UI: the check
//! ([`admin_check`]) that the server's one request layer runs in front of the whole router, and the login endpoints and page.
//!
//! Credentials: bearer admin tokens (`Authorization: Bearer ...`, for scripts and Prometheus) and a
//! username/password (Argon2id) that a browser exchanges for a session cookie at `/login`. The cookie
//! is `HttpOnly; SameSite=Strict`, and every state-changing request made with it also needs the CSRF
//! token (`X-CSRF-Token`, from `GET /api/auth/session`) and, when the browser sends one, a same-origin
//! `Origin`. Inference routes are not admin routes (virtual keys govern them); which paths are admin
//! paths is decided by `switchyard_core::admin_auth::is_admin_path`.
//!
//! Sessions are stateless: the cookie carries the user and expiry under an HMAC-SHA256 whose key is
//! derived from the session secret and the password hash, so replicas sharing the secret share
//! sessions, and changing the password ends every session. Logging out revokes the cookie in this
//! process until it would have expired.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchyard_core::admin_auth::{
    cookie_value, is_admin_path, is_state_changing, parse_bearer, CSRF_HEADER, SESSION_COOKIE,
};
use tokio::sync::Semaphore;

use switchyard_runtime::browser;
use switchyard_runtime::error::GatewayError;
use switchyard_runtime::security::{AdminMode, SecurityConfig};

use crate::throttle::Throttle;

type HmacSha256 = Hmac<Sha256>;

/// Largest login body read.
const LOGIN_BODY_LIMIT: usize = 16 * 1024;
/// Password verifications running at once: Argon2 is deliberately expensive, so a flood of login
/// attempts queues here instead of taking every core.
const CONCURRENT_VERIFICATIONS: usize = 2;

/// Hashes a password with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes) and a random
/// salt, in PHC format.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Checks that a configured hash is an Argon2id PHC string.
pub fn check_password_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| format!("the admin password hash is not a PHC string ($argon2id$v=19$...): {e}"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "the admin password hash uses '{}'; generate an argon2id hash with `switchyard --hash-password`",
            parsed.algorithm
        ));
    }
    Ok(())
}

/// Who passed the gate, for handlers that care.
#[derive(Clone, Debug)]
pub enum AdminPrincipal {
    /// Admin auth is off (open on loopback, or insecure).
    Open,
    Token,
    Session {
        username: String,
    },
}

pub struct AdminAuth {
    mode: AdminMode,
    username: String,
    password_hash: Option<String>,
    /// SHA-256 of each admin token: compared in constant time, and the tokens themselves are not kept.
    token_digests: Vec<[u8; 32]>,
    session_key: [u8; 32],
    session_ttl: Duration,
    secure_cookies: bool,
    /// Logged-out cookies (their MAC) until their expiry.
    revoked: Mutex<HashMap<String, u64>>,
    verifications: Semaphore,
    /// Failed passwords and tokens, per source and in total.
    throttle: Throttle,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("mode", &self.mode)
            .field("username", &self.username)
            .field("tokens", &self.token_digests.len())
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
        m.update(b"\x1f");
    }
    m.finalize().into_bytes().into()
}

impl AdminAuth {
    pub fn new(mode: AdminMode, security: &SecurityConfig) -> AdminAuth {
        let base: Vec<u8> = match &security.session_secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => {
                let mut b = vec![0u8; 32];
                OsRng.fill_bytes(&mut b);
                b
            }
        };
        let hash = security.admin.password_hash.clone().unwrap_or_default();
        AdminAuth {
            mode,
            username: security.admin.username.clone(),
            password_hash: security.admin.password_hash.clone(),
            token_digests: security.admin.tokens.iter().map(|t| digest(t.expose())).collect(),
            session_key: mac(&base, &[b"switchyard session v1", hash.as_bytes()]),
            session_ttl: security.session_ttl,
            secure_cookies: security.secure_cookies,
            revoked: Mutex::new(HashMap::new()),
            verifications: Semaphore::new(CONCURRENT_VERIFICATIONS),
            throttle: Throttle::new(security.login_throttle, Instant::now()),
        }
    }

    pub fn mode(&self) -> AdminMode {
        self.mode
    }

    fn token_is_valid(&self, token: &str) -> bool {
        let d = digest(token);
        // Every digest is compared, so the time taken does not say which one matched.
        self.token_digests
            .iter()
            .fold(false, |found, known| found | bool::from(known.ct_eq(&d)))
    }

    /// `Err(wait)` when the source was locked out while this attempt queued for a verification slot
    /// (Argon2 does not run then).
    async fn password_is_valid(
        &self,
        source: Option<IpAddr>,
        username: &str,
        password: &str,
    ) -> Result<bool, Duration> {
        let Some(hash) = self.password_hash.clone() else {
            return Ok(false);
        };
        let user_ok = bool::from(username.as_bytes().ct_eq(self.username.as_bytes()));
        let Ok(_permit) = self.verifications.acquire().await else {
            return Ok(false);
        };
        self.throttle.check(source, Instant::now())?;
        let password = password.to_owned();
        // The hash is verified even for a wrong user name, so timing does not tell user names apart.
        let verified = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        Ok(user_ok && verified)
    }

    /// A new session cookie value for `username`.
    fn issue(&self, username: &str) -> (String, u64) {
        let expires = now_secs() + self.session_ttl.as_secs();
        let user = B64.encode(username.as_bytes());
        let payload = format!("v1.{expires}.{user}");
        let tag = B64.encode(mac(&self.session_key, &[payload.as_bytes()]));
        (format!("{payload}.{tag}"), expires)
    }

    /// The user of a valid, unexpired, unrevoked session cookie.
    fn verify_session(&self, cookie: &str) -> Option<String> {
        let mut parts = cookie.split('.');
        let (v, expires, user, tag) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if v != "v1" || parts.next().is_some() {
            return None;
        }
        let payload = format!("v1.{expires}.{user}");
        let expected = mac(&self.session_key, &[payload.as_bytes()]);
        let given = B64.decode(tag).ok()?;
        if !bool::from(given.as_slice().ct_eq(&expected)) {
            return None;
        }
        let expires: u64 = expires.parse().ok()?;
        if expires <= now_secs() {
            return None;
        }
        if self
            .revoked
            .lock()
            .expect("revocation list lock")
            .contains_key(tag)
        {
            return None;
        }
        String::from_utf8(B64.decode(user).ok()?).ok()
    }

    fn revoke(&self, cookie: &str) {
        let mut parts = cookie.split('.');
        let (Some(_), Some(expires), Some(_), Some(tag)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let now = now_secs();
        let mut revoked = self.revoked.lock().expect("revocation list lock");
        revoked.retain(|_, exp| *exp > now);
        revoked.insert(tag.to_owned(), expires.parse().unwrap_or(now));
    }

    /// The CSRF token that belongs to a session cookie.
    fn csrf_token(&self, cookie: &str) -> String {
        B64.encode(mac(&self.session_key, &[b"csrf", cookie.as_bytes()]))
    }

    fn session_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("cookie values are base64 and digits")
    }
}

/// The address the connection came from (set by the accept loop).
fn source_of(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

fn throttled(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    GatewayError::TooManyAttempts {
        message: format!("too many failed admin logins or tokens from this address; try again in {secs} s"),
        retry_after_secs: secs.max(1),
    }
    .into_response()
}

fn session_cookie_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, SESSION_COOKIE))
}

/// A browser request made by another site's page (`switchyard_runtime::browser`).
fn is_cross_site(req: &Request) -> bool {
    browser::is_cross_site(req.headers(), req.uri())
}

fn cross_site_refusal() -> Response {
    GatewayError::Forbidden {
        message: "cross-site requests to the admin API are refused".into(),
        code: "cross_site_request",
    }
    .into_response()
}

/// The admin gate, run in front of every route: non-admin paths pass untouched; on admin paths the
/// mode's rule applies, and a request it lets through carries its [`AdminPrincipal`]. `Err` is the
/// answer to send instead. Deciding needs no I/O, so the layer calling it adds no future of its own.
pub fn admin_check(auth: &AdminAuth, req: &mut Request) -> Result<(), Box<Response>> {
    if !is_admin_path(req.uri().path()) {
        return Ok(());
    }
    let changes_state = is_state_changing(req.method().as_str());
    match auth.mode {
        AdminMode::OpenOnLoopback | AdminMode::OpenInsecure => {
            if auth.mode == AdminMode::OpenOnLoopback && browser::is_foreign_host(req.headers(), req.uri()) {
                // A page on another site that rebinds its DNS name to 127.0.0.1 sends its own name.
                return Err(Box::new(
                    GatewayError::Forbidden {
                        message: "the open admin API only answers requests addressed to localhost; \
                              configure admin credentials to serve it under another name"
                            .into(),
                        code: "foreign_host",
                    }
                    .into_response(),
                ));
            }
            if changes_state && is_cross_site(req) {
                return Err(Box::new(cross_site_refusal()));
            }
            req.extensions_mut().insert(AdminPrincipal::Open);
            return Ok(());
        }
        AdminMode::Required => {}
    }
    if let Some(authz) = req.headers().get(header::AUTHORIZATION) {
        let source = source_of(req.extensions());
        if let Err(wait) = auth.throttle.check(source, Instant::now()) {
            return Err(Box::new(throttled(wait)));
        }
        let token = authz.to_str().ok().and_then(parse_bearer);
        return match token {
            Some(t) if auth.token_is_valid(t) => {
                req.extensions_mut().insert(AdminPrincipal::Token);
                Ok(())
            }
            _ => {
                auth.throttle.failed(source, Instant::now());
                Err(Box::new(unauthorized("the admin token is not valid")))
            }
        };
    }
    if let Some(cookie) = session_cookie_of(req.headers()).map(str::to_owned) {
        if let Some(username) = auth.verify_session(&cookie) {
            if changes_state {
                if is_cross_site(req) {
                    return Err(Box::new(cross_site_refusal()));
                }
                let given = req
                    .headers()
                    .get(CSRF_HEADER)
                    .map(|v| v.as_bytes().to_vec())
                    .unwrap_or_default();
                let expected = auth.csrf_token(&cookie);
                if !bool::from(given.as_slice().ct_eq(expected.as_bytes())) {
                    return Err(Box::new(GatewayError::Forbidden {
                        message: format!(
                            "missing or wrong CSRF token: send the {CSRF_HEADER} header from GET /api/auth/session"
                        ),
                        code: "csrf_token_invalid",
                    }
                    .into_response()));
                }
            }
            req.extensions_mut().insert(AdminPrincipal::Session { username });
            return Ok(());
        }
    }
    if req.uri().path() == "/" && req.method() == Method::GET {
        return Err(Box::new(redirect("/login")));
    }
    Err(Box::new(unauthorized(
        "admin credentials required: send 'Authorization: Bearer <admin token>' or log in at /login",
    )))
}

fn unauthorized(message: &str) -> Response {
    let mut resp = GatewayError::Unauthorized {
        message: message.to_owned(),
        code: "admin_auth_required",
    }
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"switchyard\""),
    );
    resp
}

fn redirect(to: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static(to))],
    )
        .into_response()
}

/// `/login` and `/api/auth/*`.
pub fn router<S: Clone + Send + Sync + 'static>(auth: Arc<AdminAuth>) -> Router<S> {
    Router::new()
        .route("/login", get(login_page))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/session", get(session))
        .with_state(auth)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginInput {
    username: Option<String>,
    password: Option<String>,
    /// An admin token may be exchanged for a session too (token-only setups).
    token: Option<String>,
}

async fn login(State(auth): State<Arc<AdminAuth>>, req: Request) -> Response {
    let source = source_of(req.extensions());
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        // A cross-site HTML form cannot send JSON: requiring it closes login CSRF.
        return GatewayError::BadRequest {
            message: "send the login as JSON (Content-Type: application/json)".into(),
            param: None,
        }
        .into_response();
    }
    if auth.mode != AdminMode::Required {
        return GatewayError::BadRequest {
            message: "admin auth is not configured on this gateway; nothing to log in to".into(),
            param: None,
        }
        .into_response();
    }
    let input: LoginInput = match switchyard_runtime::body::read_limited(body, LOGIN_BODY_LIMIT)
        .await
        .and_then(|b| switchyard_runtime::body::parse_json(&b))
    {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    if let (None, None, None) = (&input.token, &input.username, &input.password) {
        return GatewayError::BadRequest {
            message: "send {\"username\", \"password\"} or {\"token\"}".into(),
            param: Some("username".into()),
        }
        .into_response();
    }
    if let Err(wait) = auth.throttle.check(source, Instant::now()) {
        return throttled(wait);
    }
    let accepted = match (&input.token, &input.username, &input.password) {
        (Some(t), _, _) => auth.token_is_valid(t).then(|| "token".to_owned()),
        (None, Some(u), Some(p)) => match auth.password_is_valid(source, u, p).await {
            Ok(valid) => valid.then(|| u.clone()),
            Err(wait) => return throttled(wait),
        },
        _ => None,
    };
    let Some(username) = accepted else {
        // Counted, and reported once per burst by the throttle rather than once per guess.
        auth.throttle.failed(source, Instant::now());
        tracing::debug!(source = ?source, "admin login failed");
        return unauthorized("wrong user name, password or token");
    };
    auth.throttle.succeeded(source, Instant::now());
    let (cookie, expires) = auth.issue(&username);
    let csrf = auth.csrf_token(&cookie);
    tracing::info!(user = %username, "admin logged in");
    let mut resp = Json(json!({
        "authenticated": true,
        "username": username,
        "csrf_token": csrf,
        "expires_at": expires,
    }))
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        auth.session_cookie(&cookie, auth.session_ttl.as_secs()),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn logout(State(auth): State<Arc<AdminAuth>>, headers: HeaderMap) -> Response {
    if let Some(cookie) = session_cookie_of(&headers) {
        auth.revoke(cookie);
    }
    let mut resp = Json(json!({"authenticated": false})).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, auth.session_cookie("", 0));
    resp
}

async fn session(State(auth): State<Arc<AdminAuth>>, headers: HeaderMap) -> Response {
    let required = auth.mode == AdminMode::Required;
    let body = match session_cookie_of(&headers).and_then(|c| auth.verify_session(c).map(|u| (c, u))) {
        Some((cookie, username)) if required => json!({
            "auth_required": true,
            "authenticated": true,
            "username": username,
            "csrf_token": auth.csrf_token(cookie),
        }),
        _ => json!({"auth_required": required, "authenticated": !required}),
    };
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

const LOGIN_HTML: &str = include_str!("ui/assets/login.html");

async fn login_page(State(auth): State<Arc<AdminAuth>>, headers: HeaderMap) -> Response {
    let logged_in = session_cookie_of(&headers).is_some_and(|c| auth.verify_session(c).is_some());
    if auth.mode != AdminMode::Required || logged_in {
        return redirect("/");
    }
    let html = LOGIN_HTML.replace("{{VERSION}}", crate::ui::asset_version());
    let mut resp = html.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    crate::ui::security_headers(&mut resp);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::secret::Secret;

    fn auth() -> AdminAuth {
        let mut sec = SecurityConfig::default();
        sec.admin.tokens.push(Secret::new("sy-admin-0123456789abcdef"));
        AdminAuth::new(AdminMode::Required, &sec)
    }

    #[test]
    fn sessions_verify_and_tampering_fails() {
        let a = auth();
        let (cookie, _) = a.issue("admin");
        assert_eq!(a.verify_session(&cookie).as_deref(), Some("admin"));
        let forged = cookie.replacen("v1.", "v1.9", 1);
        assert_eq!(a.verify_session(&forged), None, "a longer expiry breaks the MAC");
        let other = auth();
        assert_eq!(other.verify_session(&cookie), None, "another secret, another key");
        a.revoke(&cookie);
        assert_eq!(a.verify_session(&cookie), None, "logged out");
        for junk in ["", "v1", "v1.1.2.3", "v2.1.YQ.x", "....."] {
            assert_eq!(a.verify_session(junk), None);
        }
    }

    #[test]
    fn tokens_and_csrf() {
        let a = auth();
        assert!(a.token_is_valid("sy-admin-0123456789abcdef"));
        assert!(!a.token_is_valid("sy-admin-0123456789abcdeX"));
        let (c1, _) = a.issue("admin");
        let (c2, _) = a.issue("other");
        assert_ne!(a.csrf_token(&c1), a.csrf_token(&c2));
        assert!(!format!("{a:?}").contains("0123456789"));
    }

    #[test]
    fn password_hashes() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        check_password_hash(&h).unwrap();
        assert!(check_password_hash("plain").is_err());
    }
}
