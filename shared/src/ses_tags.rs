//! SES message tags that carry any value and come back unchanged in SES events.
//!
//! SES allows only ASCII letters, digits, `_`, `-`, `.` and `@` in tag values, at most 256
//! characters. A value made only of those (and not starting with `@`) is sent as it is, so tags of
//! emails sent before this encoding read the same. Any other value is sent as `@` followed by the
//! value's UTF-8 bytes with each byte outside `[A-Za-z0-9_.-]` written `@XX` (upper-case hex):
//! `gid://shopify/Customer/123` becomes `@gid@3A@2F@2Fshopify@2FCustomer@2F123`. A value longer
//! than 256 characters is split over the tags `name`, `name.2`, `name.3`, … (SES allows 50 tags
//! per email) and joined again when read.

/// The most characters SES takes in one tag value.
pub const MAX_TAG_VALUE: usize = 256;

fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// The SES-safe form of `value` (possibly longer than one tag holds).
pub fn encode(value: &str) -> String {
    if !value.starts_with('@') && value.bytes().all(|b| plain(b) || b == b'@') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() * 3 + 1);
    out.push('@');
    for b in value.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("@{b:02X}"));
        }
    }
    out
}

/// The value [`encode`] made; `None` when `text` is not a form it makes.
pub fn decode(text: &str) -> Option<String> {
    let Some(rest) = text.strip_prefix('@') else {
        return Some(text.to_string());
    };
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'@' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The tags (name, value) that carry `value` under `name`: one, or several when it is long.
pub fn tags(name: &str, value: &str) -> Vec<(String, String)> {
    let encoded = encode(value);
    let mut out = Vec::new();
    let mut rest = encoded.as_str();
    loop {
        let (head, tail) = rest.split_at(rest.len().min(MAX_TAG_VALUE));
        let tag_name = match out.len() {
            0 => name.to_string(),
            n => format!("{name}.{}", n + 1),
        };
        out.push((tag_name, head.to_string()));
        if tail.is_empty() {
            return out;
        }
        rest = tail;
    }
}

/// Reads back the value [`tags`] spread under `name`; `get` gives a tag's value by name.
pub fn read<'a>(name: &str, get: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
    let mut joined = get(name)?.to_string();
    for n in 2.. {
        match get(&format!("{name}.{n}")) {
            Some(part) => joined.push_str(part),
            None => break,
        }
    }
    decode(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn round_trip(value: &str) -> Option<String> {
        let t: HashMap<String, String> = tags("customer_id", value).into_iter().collect();
        for v in t.values() {
            assert!(v.len() <= MAX_TAG_VALUE, "{v}");
            assert!(v.bytes().all(|b| plain(b) || b == b'@'), "{v}");
        }
        read("customer_id", |n| t.get(n).map(String::as_str))
    }

    #[test]
    fn safe_ids_stay_as_they_were_and_others_are_escaped() {
        assert_eq!(encode("c-1001"), "c-1001");
        assert_eq!(encode("ada@example.com"), "ada@example.com");
        assert_eq!(
            encode("gid://shopify/Customer/123"),
            "@gid@3A@2F@2Fshopify@2FCustomer@2F123"
        );
        assert_eq!(encode("@handle"), "@@40handle");
        assert_eq!(
            decode("@gid@3A@2F@2Fshopify@2FCustomer@2F123").as_deref(),
            Some("gid://shopify/Customer/123")
        );
        assert_eq!(decode("@bad@Z1"), None);
    }

    #[test]
    fn a_long_id_is_split_over_several_tags_and_joined_again() {
        let id = "/".repeat(200);
        let t = tags("customer_id", &id);
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].0, "customer_id.2");
        assert_eq!(round_trip(&id).as_deref(), Some(id.as_str()));
    }

    proptest! {
        #[test]
        fn any_id_comes_back_unchanged(id in "\\PC{1,200}") {
            prop_assert_eq!(round_trip(&id), Some(id.clone()));
        }
    }
}
