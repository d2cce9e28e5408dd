//! Reading `multipart/form-data` bodies (audio transcriptions) just enough to route them.
//!
//! The gateway needs the `model` field to pick a provider and must send the provider its own model name,
//! but the audio file itself is forwarded untouched. So the parser only locates parts: each part is a
//! name, optional filename and content type, and the byte range of its value inside the body. Nothing is
//! copied or decoded; the caller slices the body it already holds.

use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("Content-Type must be multipart/form-data with a boundary")]
    NotMultipart,
    #[error("the multipart body is malformed: {0}")]
    Malformed(&'static str),
    #[error("a multipart part has no Content-Disposition name")]
    UnnamedPart,
}

/// One part of a form: where its value lies in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormPart {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// The value's byte range in the body (without the part's headers and the CRLF before the next
    /// boundary).
    pub value: Range<usize>,
}

impl FormPart {
    /// The value as UTF-8 text, if it is.
    pub fn text<'a>(&self, body: &'a [u8]) -> Option<&'a str> {
        std::str::from_utf8(body.get(self.value.clone())?).ok()
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let mut params = split_params(content_type);
    let essence = params.next().unwrap_or_default();
    if !essence.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotMultipart);
    }
    params
        .filter_map(|p| param(&p, "boundary"))
        .find(|b| !b.is_empty() && b.len() <= 200)
        .ok_or(MultipartError::NotMultipart)
}

/// Locates every part of `body` (RFC 7578). A preamble before the first boundary and an epilogue after
/// the closing one are ignored; a body without its closing boundary is malformed (it was cut).
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<FormPart>, MultipartError> {
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    // The first boundary sits at the start or after a line break of the preamble.
    let mut pos = if body.starts_with(&delimiter) {
        delimiter.len()
    } else {
        memchr::memmem::find(body, &next_delimiter)
            .map(|i| i + next_delimiter.len())
            .ok_or(MultipartError::Malformed("no boundary found"))?
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding (spaces/tabs) may follow a boundary before its CRLF.
        let pad = rest.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
        if !rest[pad..].starts_with(b"\r\n") {
            return Err(MultipartError::Malformed(
                "a boundary is not followed by a line break",
            ));
        }
        let headers_start = pos + pad + 2;
        let headers_len = memchr::memmem::find(&body[headers_start..], b"\r\n\r\n");
        // A part without headers starts with the blank line right away.
        let (headers, value_start) = if body[headers_start..].starts_with(b"\r\n") {
            (&body[headers_start..headers_start], headers_start + 2)
        } else {
            let len = headers_len.ok_or(MultipartError::Malformed("a part's headers do not end"))?;
            (&body[headers_start..headers_start + len], headers_start + len + 4)
        };
        let value_len = memchr::memmem::find(&body[value_start..], &next_delimiter)
            .ok_or(MultipartError::Malformed("the closing boundary is missing"))?;
        let value = value_start..value_start + value_len;
        parts.push(part_from_headers(headers, value)?);
        pos = value_start + value_len + next_delimiter.len();
    }
}

fn part_from_headers(headers: &[u8], value: Range<usize>) -> Result<FormPart, MultipartError> {
    let text = String::from_utf8_lossy(headers);
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in text.split("\r\n") {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("content-disposition") {
            let mut params = split_params(val);
            let kind = params.next().unwrap_or_default();
            if !kind.trim().eq_ignore_ascii_case("form-data") {
                return Err(MultipartError::Malformed("a part is not form-data"));
            }
            for p in params {
                if let Some(v) = param(&p, "name") {
                    name = Some(v);
                } else if let Some(v) = param(&p, "filename") {
                    filename = Some(v);
                }
            }
        } else if key.eq_ignore_ascii_case("content-type") {
            content_type = Some(val.trim().to_owned());
        }
    }
    Ok(FormPart {
        name: name.ok_or(MultipartError::UnnamedPart)?,
        filename,
        content_type,
        value,
    })
}

/// Splits a header value on `;` outside quoted strings.
fn split_params(value: &str) -> impl Iterator<Item = String> + '_ {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' if quoted => {
                current.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    out.push(current);
    out.into_iter()
}

/// The value of `key=value` or `key="value"` (case-insensitive key), unquoted.
fn param(p: &str, key: &str) -> Option<String> {
    let (k, v) = p.split_once('=')?;
    if !k.trim().eq_ignore_ascii_case(key) {
        return None;
    }
    let v = v.trim();
    Some(match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if escaped || c != '\\' {
                    out.push(c);
                    escaped = false;
                } else {
                    escaped = true;
                }
            }
            out
        }
        None => v.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, value) in parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(f) => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: audio/wav\r\n\r\n")
                        .as_bytes(),
                ),
                None => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }

    #[test]
    fn boundary_from_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc123").unwrap(),
            "abc123"
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a;b c\"").unwrap(),
            "a;b c"
        );
        assert_eq!(boundary("application/json"), Err(MultipartError::NotMultipart));
        assert_eq!(boundary("multipart/form-data"), Err(MultipartError::NotMultipart));
    }

    #[test]
    fn finds_fields_after_the_file() {
        let wav: &[u8] = b"RIFF\x00\x01\r\n--notaboundary\r\n\x00data";
        let body = form(
            "XyZ",
            &[
                ("file", Some("a.wav"), wav),
                ("model", None, b"mittwald/whisper-large-v3-turbo"),
                ("language", None, b"de"),
            ],
        );
        let parts = parse(&body, "XyZ").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name, "file");
        assert_eq!(parts[0].filename.as_deref(), Some("a.wav"));
        assert_eq!(parts[0].content_type.as_deref(), Some("audio/wav"));
        assert_eq!(&body[parts[0].value.clone()], wav);
        assert_eq!(parts[1].text(&body), Some("mittwald/whisper-large-v3-turbo"));
        assert_eq!(parts[2].text(&body), Some("de"));
    }

    #[test]
    fn preamble_and_epilogue_are_ignored() {
        let mut body = b"this is a preamble\r\n".to_vec();
        body.extend(form("b", &[("model", None, b"m")]));
        body.extend_from_slice(b"epilogue");
        let parts = parse(&body, "b").unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].text(&body), Some("m"));
    }

    #[test]
    fn cut_and_malformed_bodies_are_errors() {
        let body = form("b", &[("model", None, b"m")]);
        let cut = &body[..body.len() - 12];
        assert!(matches!(parse(cut, "b"), Err(MultipartError::Malformed(_))));
        assert!(matches!(
            parse(b"no boundary here", "b"),
            Err(MultipartError::Malformed(_))
        ));
        let unnamed = b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n";
        assert_eq!(parse(unnamed, "b"), Err(MultipartError::UnnamedPart));
        assert_eq!(parse(b"--b--\r\n", "b"), Ok(vec![]));
    }

    proptest! {
        #[test]
        fn any_value_round_trips(
            file in proptest::collection::vec(any::<u8>(), 0..512),
            model in "[a-zA-Z0-9/._-]{1,40}",
        ) {
            let boundary = "----switchyardProptestBoundary7MA4YWxk";
            let body = form(boundary, &[("file", Some("x.bin"), &file), ("model", None, model.as_bytes())]);
            let parts = parse(&body, boundary).unwrap();
            prop_assert_eq!(parts.len(), 2);
            prop_assert_eq!(&body[parts[0].value.clone()], &file[..]);
            prop_assert_eq!(parts[1].text(&body), Some(model.as_str()));
        }
    }
}
