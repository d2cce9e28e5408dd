//! An independent SigV4 verifier (hmac + sha2, written from AWS's description of the algorithm), so
//! the mock checks the gateway's signatures with a second implementation instead of trusting the
//! signing crate to agree with itself.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The access key the mock knows, with its secret (long-term credentials).
pub const MOCK_AWS_ACCESS_KEY_ID: &str = "AKIDMOCKSWITCHYARD01";
pub const MOCK_AWS_SECRET_ACCESS_KEY: &str = "mockSecretKey/K7MDENG+bPxRfiCYSWITCHYARD";
/// Temporary credentials: this access key is only valid with [`MOCK_AWS_SESSION_TOKEN`].
pub const MOCK_AWS_TEMP_ACCESS_KEY_ID: &str = "ASIAMOCKSWITCHYARD02";
pub const MOCK_AWS_SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEMockSessionTokenForSwitchyard//Tests==";

pub(crate) fn secret_for(access_key: &str) -> Option<&'static str> {
    match access_key {
        MOCK_AWS_ACCESS_KEY_ID | MOCK_AWS_TEMP_ACCESS_KEY_ID => Some(MOCK_AWS_SECRET_ACCESS_KEY),
        _ => None,
    }
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// URI-encodes per SigV4: everything but `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`).
pub(crate) fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical request. `path` is the path as sent on the wire (already percent-encoded once);
/// services other than S3 encode it a second time. `headers` are (lowercase name, value) pairs of the
/// signed headers.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload_hash: &str,
) -> String {
    let uri = if path.is_empty() {
        "/".to_owned()
    } else {
        uri_encode(path, true)
    };
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    params.sort();
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    hs.sort();
    let canonical_headers: String = hs.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed = hs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    format!("{method}\n{uri}\n{query}\n{canonical_headers}\n{signed}\n{payload_hash}")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

pub fn signature(secret: &str, date: &str, region: &str, service: &str, string_to_sign: &str) -> String {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug)]
pub(crate) struct AuthHeader {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub(crate) fn parse_authorization(value: &str) -> Result<AuthHeader, String> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization header requires the AWS4-HMAC-SHA256 algorithm")?;
    let mut credential = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or("malformed Authorization header")?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => return Err(format!("unexpected Authorization component '{k}'")),
        }
    }
    let credential = credential.ok_or("Authorization header requires 'Credential' parameter")?;
    let signed = signed.ok_or("Authorization header requires 'SignedHeaders' parameter")?;
    let sig = sig.ok_or("Authorization header requires 'Signature' parameter")?;
    let c: Vec<&str> = credential.split('/').collect();
    if c.len() != 5 || c[4] != "aws4_request" || c[1].len() != 8 || !c[1].bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("malformed Credential '{credential}'"));
    }
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Signature must be 64 hex digits".into());
    }
    Ok(AuthHeader {
        access_key: c[0].to_owned(),
        date: c[1].to_owned(),
        region: c[2].to_owned(),
        service: c[3].to_owned(),
        signed_headers: signed.split(';').map(str::to_owned).collect(),
        signature: sig.to_owned(),
    })
}

/// `YYYYMMDDTHHMMSSZ`
pub(crate) fn is_amz_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16 && b[8] == b'T' && b[15] == b'Z' && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    //! AWS's public SigV4 test suite (credentials AKIDEXAMPLE, region us-east-1, service `service`,
    //! 2015-08-30T12:36:00Z): canonical request, string to sign and signature of each case.
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SCOPE: &str = "20150830/us-east-1/service/aws4_request";

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn check(cr: &str, expected_cr: &str, expected_sts: &str, expected_sig: &str) {
        assert_eq!(cr, expected_cr);
        let sts = string_to_sign("20150830T123600Z", SCOPE, cr);
        assert_eq!(sts, expected_sts);
        assert_eq!(
            signature(SECRET, "20150830", "us-east-1", "service", &sts),
            expected_sig
        );
    }

    #[test]
    fn get_vanilla() {
        let cr = canonical_request(
            "GET",
            "/",
            "",
            &h(&[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
            ]),
            EMPTY_HASH,
        );
        check(
            &cr,
            &format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_HASH}"),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
    }

    #[test]
    fn post_vanilla_query() {
        let cr = canonical_request(
            "POST",
            "/",
            "Param1=value1",
            &h(&[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
            ]),
            EMPTY_HASH,
        );
        check(
            &cr,
            &format!("POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_HASH}"),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        );
    }

    #[test]
    fn get_vanilla_with_session_token() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let cr = canonical_request(
            "GET",
            "/",
            "",
            &h(&[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("x-amz-security-token", token),
            ]),
            EMPTY_HASH,
        );
        check(
            &cr,
            &format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:{token}\n\nhost;x-amz-date;x-amz-security-token\n{EMPTY_HASH}"),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        );
    }

    #[test]
    fn post_x_www_form_urlencoded() {
        let body_hash = sha256_hex(b"Param1=value1");
        assert_eq!(
            body_hash,
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        );
        let cr = canonical_request(
            "POST",
            "/",
            "",
            &h(&[
                ("content-length", "13"),
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", "example.amazonaws.com"),
                ("x-amz-content-sha256", &body_hash),
                ("x-amz-date", "20150830T123600Z"),
            ]),
            &body_hash,
        );
        let sts = string_to_sign("20150830T123600Z", SCOPE, &cr);
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nb1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb"
        );
        assert_eq!(
            signature(SECRET, "20150830", "us-east-1", "service", &sts),
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
        );
    }

    #[test]
    fn bedrock_paths_are_encoded_twice() {
        let cr = canonical_request(
            "POST",
            "/model/anthropic.claude-v2%3A1/converse",
            "",
            &[],
            EMPTY_HASH,
        );
        assert!(
            cr.starts_with("POST\n/model/anthropic.claude-v2%253A1/converse\n"),
            "{cr}"
        );
    }

    #[test]
    fn authorization_parsing() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        )
        .unwrap();
        assert_eq!(
            (a.access_key.as_str(), a.region.as_str(), a.service.as_str()),
            ("AKID", "us-east-1", "bedrock")
        );
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        assert!(parse_authorization("Bearer x").is_err());
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/2015/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00").is_err());
        assert!(is_amz_date("20150830T123600Z"));
        assert!(!is_amz_date("2015-08-30T12:36:00Z"));
    }
}
