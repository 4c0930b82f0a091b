//! Plain HTTP helpers: responses, headers, query strings, languages.

use serde_json::{json, Value};

use crate::{HttpRequest, HttpResponse};

/// Bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Bodies of the platforms' webhooks (whole orders) above this are refused with 413.
pub const PLATFORM_MAX_BODY_BYTES: usize = 512 * 1024;

impl HttpRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// What bodiless signed requests sign: the path, and `?query` when there is one.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// A JSON response.
pub fn json_response(status: u16, body: &Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: body.to_string(),
    }
}

/// A JSON error: `{"error": message}` plus `field` when one field is at fault.
pub fn json_error(status: u16, message: &str, field: Option<&str>) -> HttpResponse {
    let mut body = json!({ "error": message });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    json_response(status, &body)
}

/// An HTML page. Link pages carry tokens in their URL: no caching, no referrer, no indexing.
pub fn html_response(status: u16, html: String) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("cache-control".into(), "no-store".into()),
            ("referrer-policy".into(), "no-referrer".into()),
            ("x-robots-tag".into(), "noindex".into()),
            (
                "content-security-policy".into(),
                "default-src 'none'; style-src 'unsafe-inline'".into(),
            ),
        ],
        body: html,
    }
}

/// Decodes `%XX` escapes of a path segment; `None` if an escape is malformed (`%` not followed
/// by two hex digits, which `percent-encoding` would keep as it is) or the bytes are not UTF-8.
pub fn percent_decode(segment: &str) -> Option<String> {
    let malformed = segment.match_indices('%').any(|(i, _)| {
        !segment
            .get(i + 1..i + 3)
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if malformed {
        return None;
    }
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The languages of an `Accept-Language` header, best first (quality order, ties in order).
pub fn accepted_languages(header: Option<&str>) -> Vec<String> {
    let Some(h) = header else {
        return Vec::new();
    };
    let mut langs: Vec<(f32, usize, String)> = h
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            if tag.is_empty() || tag == "*" {
                return None;
            }
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((q, i, tag.to_string()))
        })
        .collect();
    langs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    langs.into_iter().map(|(_, _, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode_and_broken_ones_are_refused() {
        assert_eq!(percent_decode("c%2D1%20x").as_deref(), Some("c-1 x"));
        assert_eq!(percent_decode("plain"), Some("plain".into()));
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("cut%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn accept_language_is_read_in_quality_order() {
        assert_eq!(
            accepted_languages(Some("en;q=0.5, sv-SE, da;q=0.8")),
            vec!["sv-SE", "da", "en"]
        );
        assert!(accepted_languages(None).is_empty());
        assert!(accepted_languages(Some("*")).is_empty());
    }
}
