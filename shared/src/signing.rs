//! Signatures: the shop's webhook signature (`Winback-Signature`) and the signed, expiring,
//! purpose-bound tokens in email links.

use crate::domain::edge::CustomerId;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Signatures older (or newer) than this are refused.
pub const TOLERANCE_SECONDS: i64 = 300;

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Why a webhook signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing Winback-Signature header: sign the request as docs/http.md says")]
    Missing,
    #[error("malformed Winback-Signature header: expected t=<unix seconds>,v2=<hex HMAC-SHA256>")]
    Malformed,
    #[error("signature timestamp is more than 300 s from now: sign each request when sending it")]
    Stale,
    #[error(
        "signature does not match: check the signing key and that the method, path, query and raw body are signed unchanged"
    )]
    Mismatch,
    #[error("this deployment no longer takes v1 signatures: sign with v2 (method, path, query and body) as docs/http.md says")]
    V1Retired,
}

/// `t=<t>,v1=<hex>` for `payload` (the raw body, or the path and query for bodiless requests).
pub fn sign_webhook(key: &[u8], t: i64, payload: &[u8]) -> String {
    let ts = t.to_string();
    let m = mac(key, &[ts.as_bytes(), b".", payload]);
    format!("t={t},v1={}", hex::encode(m))
}

/// A `Winback-Signature` header read: its timestamp and the signatures of each scheme.
struct SignatureHeader {
    t: i64,
    v1: Vec<Vec<u8>>,
    v2: Vec<Vec<u8>>,
}

fn parse_header(header: Option<&str>) -> Result<SignatureHeader, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<i64> = None;
    let (mut v1, mut v2) = (Vec::new(), Vec::new());
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse().map_err(|_| SignatureError::Malformed)?),
            "v1" => v1.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            "v2" => v2.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if v1.is_empty() && v2.is_empty() {
        return Err(SignatureError::Malformed);
    }
    Ok(SignatureHeader { t, v1, v2 })
}

fn fresh(t: i64, now: DateTime<Utc>) -> Result<(), SignatureError> {
    if now.timestamp().abs_diff(t) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// Whether any of `sigs` is the MAC of `parts` under any of `keys`. Constant-time.
fn any_matches(sigs: &[Vec<u8>], keys: &[Vec<u8>], parts: &[&[u8]]) -> bool {
    let mut ok = 0u8;
    for key in keys {
        let expected = mac(key, parts);
        for s in sigs {
            ok |= expected.ct_eq(s.as_slice()).unwrap_u8();
        }
    }
    ok == 1
}

/// Verifies a `Winback-Signature` header against any of `keys` (newest first; several during
/// rotation), any of the header's `v1` values, within the tolerance of `now`. Constant-time.
/// (The scheme Stripe uses too; the webhook's own routes verify with [`verify_request`].)
pub fn verify_webhook(
    header: Option<&str>,
    payload: &[u8],
    keys: &[Vec<u8>],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let h = parse_header(header)?;
    if h.v1.is_empty() {
        return Err(SignatureError::Malformed);
    }
    fresh(h.t, now)?;
    let ts = h.t.to_string();
    if any_matches(&h.v1, keys, &[ts.as_bytes(), b".", payload]) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// What a `v2` signature covers: the request's method, its path and query exactly as sent, and
/// its raw body.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// Upper case: `POST`, `GET`, `DELETE`.
    pub method: &'a str,
    /// The path, and `?` and the query when there is one: `/v1/rewards/WB-1/reserve`.
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    /// What `v1` signed: the body, or the path and query of a request without one.
    fn v1_payload(&self) -> &[u8] {
        if self.body.is_empty() {
            self.path_and_query.as_bytes()
        } else {
            self.body
        }
    }
}

/// The bytes a `v2` signature is the HMAC-SHA256 of:
/// `"<t>\n<METHOD>\n<path and query>\n<raw body>"` (neither a method nor a path and query
/// holds a line break, so no two requests share them).
fn v2_parts<'a>(ts: &'a str, r: &'a SignedRequest<'a>) -> [&'a [u8]; 7] {
    [
        ts.as_bytes(),
        b"\n",
        r.method.as_bytes(),
        b"\n",
        r.path_and_query.as_bytes(),
        b"\n",
        r.body,
    ]
}

/// `t=<t>,v2=<hex>` for `request`: the shop's signature that binds the route to the body.
pub fn sign_request(key: &[u8], t: i64, request: &SignedRequest<'_>) -> String {
    let ts = t.to_string();
    format!(
        "t={t},v2={}",
        hex::encode(mac(key, &v2_parts(&ts, request)))
    )
}

/// Which scheme a request was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `v1`: the timestamp and the body (or the path and query), not the route: accepted only
    /// while a deployment still allows it (the transition; `signature_v1` in the secret).
    V1,
    /// `v2`: the timestamp, method, path and query, and body.
    V2,
}

/// Verifies a shop request's `Winback-Signature`: a `v2` value over the method, path, query and
/// body, or, while `accept_v1`, a `v1` value over the body (the path and query of a bodiless
/// request). Any of `keys`, any of the header's values, within the tolerance of `now`.
/// Constant-time. Answers the scheme that matched.
pub fn verify_request(
    header: Option<&str>,
    request: &SignedRequest<'_>,
    keys: &[Vec<u8>],
    accept_v1: bool,
    now: DateTime<Utc>,
) -> Result<Scheme, SignatureError> {
    let h = parse_header(header)?;
    fresh(h.t, now)?;
    let ts = h.t.to_string();
    if any_matches(&h.v2, keys, &v2_parts(&ts, request)) {
        return Ok(Scheme::V2);
    }
    if !h.v1.is_empty() && h.v2.is_empty() && !accept_v1 {
        return Err(SignatureError::V1Retired);
    }
    if accept_v1 && any_matches(&h.v1, keys, &[ts.as_bytes(), b".", request.v1_payload()]) {
        return Ok(Scheme::V1);
    }
    Err(SignatureError::Mismatch)
}

/// What a link may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Survey,
    Unsubscribe,
    FewerEmails,
    /// The team's link to a customer's record, and to close their follow-up.
    FollowUp,
}

impl Purpose {
    /// Whether a token for this purpose stops working at its expiry. An unsubscribe link never
    /// does: an authentic one unsubscribes however old the email is (RFC 8058 one-click, and the
    /// law's "easy to withdraw"); only its signature is checked.
    pub fn expires(self) -> bool {
        self != Purpose::Unsubscribe
    }
}

/// The claims inside a link token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    #[serde(rename = "p")]
    pub purpose: Purpose,
    #[serde(rename = "c")]
    pub customer_id: CustomerId,
    #[serde(rename = "k")]
    pub campaign: String,
    #[serde(rename = "e")]
    pub enrollment_id: String,
    #[serde(rename = "s")]
    pub step: u8,
    /// Expiry, unix seconds.
    #[serde(rename = "x")]
    pub expires: i64,
}

/// Why a link token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("this link is damaged: copy the whole link from the email")]
    Malformed,
    #[error("this link is not valid")]
    Forged,
    #[error("this link has expired")]
    Expired,
    #[error("this link is meant for something else")]
    WrongPurpose,
}

/// The keys that sign and verify link tokens, newest first: the newest signs, every listed key
/// verifies, so links already sent keep working after a rotation for as long as their key stays
/// listed. Each key has an id derived from it (8 hex digits) that a token names.
///
/// Retired keys (listed after `retired:` in the secret) sign nothing and verify unsubscribe
/// links only: a key taken out of use, or revoked after a leak, no longer answers a survey or
/// opens anything, while every email it signed can still be unsubscribed from (an unsubscribe
/// link never expires).
#[derive(Clone, PartialEq, Eq)]
pub struct LinkKeys {
    active: Vec<(String, Vec<u8>)>,
    retired: Vec<(String, Vec<u8>)>,
}

/// The prefix that marks a retired key in a key list: `"new,old,retired:older"`.
pub const RETIRED_PREFIX: &str = "retired:";

fn with_ids(keys: impl IntoIterator<Item = Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    keys.into_iter()
        .filter(|k| !k.is_empty())
        .map(|k| (key_id(&k), k))
        .collect()
}

impl LinkKeys {
    /// `keys` newest first; empty keys are dropped. None retired.
    pub fn new(keys: impl IntoIterator<Item = Vec<u8>>) -> LinkKeys {
        LinkKeys::with_retired(keys, [])
    }

    /// `active` newest first (the first signs), and `retired` keys that verify unsubscribe links
    /// only.
    pub fn with_retired(
        active: impl IntoIterator<Item = Vec<u8>>,
        retired: impl IntoIterator<Item = Vec<u8>>,
    ) -> LinkKeys {
        LinkKeys {
            active: with_ids(active),
            retired: with_ids(retired),
        }
    }

    /// A list as the secret holds it: comma-separated keys, newest first; a key written
    /// `retired:<key>` is retired (verifies unsubscribe links only). Blanks are ignored.
    pub fn parse(list: &str) -> LinkKeys {
        let (mut active, mut retired) = (Vec::new(), Vec::new());
        for k in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match k.strip_prefix(RETIRED_PREFIX) {
                Some(r) => retired.push(r.trim().as_bytes().to_vec()),
                None => active.push(k.as_bytes().to_vec()),
            }
        }
        LinkKeys::with_retired(active, retired)
    }

    /// A single key.
    pub fn one(key: &[u8]) -> LinkKeys {
        LinkKeys::new([key.to_vec()])
    }

    /// Whether there is no key to sign with (retired keys sign nothing).
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// How many keys sign or verify every purpose.
    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// The ids of the active keys, newest first (safe to log: an id does not reveal its key).
    pub fn ids(&self) -> Vec<&str> {
        self.active.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// The ids of the retired keys.
    pub fn retired_ids(&self) -> Vec<&str> {
        self.retired.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// The key named `id`, and whether it is retired.
    fn get(&self, id: &str) -> Option<(&[u8], bool)> {
        let active = self.active.iter().map(|k| (k, false));
        let retired = self.retired.iter().map(|k| (k, true));
        active
            .chain(retired)
            .find(|((i, _), _)| i == id)
            .map(|((_, k), retired)| (k.as_slice(), retired))
    }
}

impl std::fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKeys {:?}", self.ids())?;
        if !self.retired.is_empty() {
            write!(f, " retired {:?}", self.retired_ids())?;
        }
        Ok(())
    }
}

/// A key's id: the first 4 bytes of HMAC(key, "winback link key id"), in hex.
fn key_id(key: &[u8]) -> String {
    mac(key, &[b"winback link key id"])[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Signs link claims with the newest key: `<key id>.<base64url(json)>.<base64url(hmac)>`.
///
/// # Panics
/// When `keys` is empty (settings refuse to start without a link key).
pub fn sign_link(keys: &LinkKeys, claims: &LinkClaims) -> String {
    let (id, key) = keys.active.first().expect("at least one link key");
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let m = mac(key, &[b"link.", id.as_bytes(), b".", body.as_bytes()]);
    format!("{id}.{body}.{}", URL_SAFE_NO_PAD.encode(m))
}

/// Verifies a link token for `purpose` at `now` (expiry only for purposes that
/// [expire](Purpose::expires)). A token names its key by id; a key id not listed (a key rotated
/// out) is refused. A token signed by a retired key verifies for [`Purpose::Unsubscribe`] only
/// (any other purpose is refused as [`TokenError::Expired`]). A token from before key ids
/// (`<body>.<hmac>`) verifies against any listed key, so links sent before the upgrade keep
/// working while their key is listed (a retired one: for unsubscribing only).
pub fn verify_link(
    keys: &LinkKeys,
    token: &str,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<LinkClaims, TokenError> {
    if token.len() > 2048 {
        return Err(TokenError::Malformed);
    }
    let (signed, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    let (body, retired) = match signed.split_once('.') {
        Some((id, body)) => {
            let (key, retired) = keys.get(id).ok_or(TokenError::Forged)?;
            let expected = mac(key, &[b"link.", id.as_bytes(), b".", body.as_bytes()]);
            if expected.ct_eq(sig.as_slice()).unwrap_u8() != 1 {
                return Err(TokenError::Forged);
            }
            (body, retired)
        }
        None => {
            let matches = |list: &[(String, Vec<u8>)]| {
                list.iter().fold(0u8, |ok, (_, key)| {
                    let expected = mac(key, &[b"link.", signed.as_bytes()]);
                    ok | expected.ct_eq(sig.as_slice()).unwrap_u8()
                })
            };
            let (active, retired) = (matches(&keys.active), matches(&keys.retired));
            if active | retired != 1 {
                return Err(TokenError::Forged);
            }
            (signed, active != 1)
        }
    };
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| TokenError::Malformed)?;
    let claims: LinkClaims = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
    if claims.purpose != purpose {
        return Err(TokenError::WrongPurpose);
    }
    if retired && purpose != Purpose::Unsubscribe {
        return Err(TokenError::Expired);
    }
    if purpose.expires() && now.timestamp() >= claims.expires {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    #[test]
    fn a_signed_body_verifies_with_any_current_key() {
        let body = br#"{"event_id":"e1"}"#;
        let h = sign_webhook(b"old", now().timestamp(), body);
        let keys = vec![b"new".to_vec(), b"old".to_vec()];
        assert_eq!(verify_webhook(Some(&h), body, &keys, now()), Ok(()));
        assert_eq!(
            verify_webhook(Some(&h), b"tampered", &keys, now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook(
                Some(&h),
                body,
                &keys,
                now() + chrono::Duration::seconds(301)
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_webhook(None, body, &keys, now()),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_webhook(Some("v1=zz"), body, &keys, now()),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn several_v1_values_are_accepted_during_rotation() {
        let body = b"x";
        let t = now().timestamp();
        let a = sign_webhook(b"a", t, body);
        let b = sign_webhook(b"b", t, body);
        let both = format!("{a},{}", b.split(',').nth(1).unwrap());
        assert_eq!(
            verify_webhook(Some(&both), body, &[b"b".to_vec()], now()),
            Ok(())
        );
    }

    fn claims(purpose: Purpose) -> LinkClaims {
        LinkClaims {
            purpose,
            customer_id: "c1".parse().unwrap(),
            campaign: "example".into(),
            enrollment_id: "c1#example#1".into(),
            step: 1,
            expires: now().timestamp() + 60,
        }
    }

    #[test]
    fn link_tokens_are_purpose_bound_and_expire() {
        let t = sign_link(&LinkKeys::one(b"k"), &claims(Purpose::Survey));
        assert_eq!(
            verify_link(&LinkKeys::one(b"k"), &t, Purpose::Survey, now()),
            Ok(claims(Purpose::Survey))
        );
        assert_eq!(
            verify_link(&LinkKeys::one(b"k"), &t, Purpose::Unsubscribe, now()),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            verify_link(&LinkKeys::one(b"other"), &t, Purpose::Survey, now()),
            Err(TokenError::Forged)
        );
        assert_eq!(
            verify_link(
                &LinkKeys::one(b"k"),
                &t,
                Purpose::Survey,
                now() + chrono::Duration::seconds(61)
            ),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_link(&LinkKeys::one(b"k"), "nodot", Purpose::Survey, now()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn rotated_link_keys_verify_old_tokens_while_listed_and_refuse_unknown_ids() {
        let c = claims(Purpose::Survey);
        let old = LinkKeys::one(b"old");
        let token = sign_link(&old, &c);
        let rotated = LinkKeys::new([b"new".to_vec(), b"old".to_vec()]);
        assert_eq!(
            verify_link(&rotated, &token, Purpose::Survey, now()),
            Ok(c.clone())
        );
        let fresh = sign_link(&rotated, &c);
        assert!(fresh.starts_with(rotated.ids()[0]), "the newest key signs");
        assert_eq!(
            verify_link(&old, &fresh, Purpose::Survey, now()),
            Err(TokenError::Forged),
            "a key id not listed is refused"
        );
        let dropped = LinkKeys::one(b"new");
        assert_eq!(
            verify_link(&dropped, &token, Purpose::Survey, now()),
            Err(TokenError::Forged),
            "the old key rotated out"
        );
        // A token naming a listed key but signed with another is forged.
        let (_, rest) = token.split_once('.').unwrap();
        let renamed = format!("{}.{rest}", rotated.ids()[0]);
        assert_eq!(
            verify_link(&rotated, &renamed, Purpose::Survey, now()),
            Err(TokenError::Forged)
        );
    }

    #[test]
    fn a_retired_key_verifies_unsubscribe_links_only_and_signs_nothing() {
        let old = LinkKeys::one(b"old");
        let unsubscribe = sign_link(&old, &claims(Purpose::Unsubscribe));
        let survey = sign_link(&old, &claims(Purpose::Survey));
        let fewer = sign_link(&old, &claims(Purpose::FewerEmails));
        let staff = sign_link(&old, &claims(Purpose::FollowUp));
        let keys = LinkKeys::parse("new, retired:old");
        assert_eq!(keys.ids(), LinkKeys::one(b"new").ids());
        assert_eq!(keys.retired_ids(), old.ids());
        assert_eq!(
            verify_link(&keys, &unsubscribe, Purpose::Unsubscribe, now()),
            Ok(claims(Purpose::Unsubscribe))
        );
        for (token, purpose) in [
            (&survey, Purpose::Survey),
            (&fewer, Purpose::FewerEmails),
            (&staff, Purpose::FollowUp),
        ] {
            assert_eq!(
                verify_link(&keys, token, purpose, now()),
                Err(TokenError::Expired),
                "{purpose:?}"
            );
        }
        // The newest active key signs; a retired one never does, even alone with no active key.
        assert!(sign_link(&keys, &claims(Purpose::Survey)).starts_with(keys.ids()[0]));
        assert!(LinkKeys::parse("retired:old").is_empty());
        // Removed entirely, even the unsubscribe link stops.
        assert_eq!(
            verify_link(
                &LinkKeys::one(b"new"),
                &unsubscribe,
                Purpose::Unsubscribe,
                now()
            ),
            Err(TokenError::Forged)
        );
        // A token from before key ids, signed by the retired key, unsubscribes only.
        let body =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(Purpose::Unsubscribe)).unwrap());
        let m = mac(b"old", &[b"link.", body.as_bytes()]);
        let legacy = format!("{body}.{}", URL_SAFE_NO_PAD.encode(m));
        assert!(verify_link(&keys, &legacy, Purpose::Unsubscribe, now()).is_ok());
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(Purpose::Survey)).unwrap());
        let m = mac(b"old", &[b"link.", body.as_bytes()]);
        let legacy = format!("{body}.{}", URL_SAFE_NO_PAD.encode(m));
        assert_eq!(
            verify_link(&keys, &legacy, Purpose::Survey, now()),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn tokens_without_a_key_id_verify_against_any_listed_key() {
        let c = claims(Purpose::Unsubscribe);
        // The format before key ids: <body>.<hmac over "link." and the body>.
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let m = mac(b"old", &[b"link.", body.as_bytes()]);
        let legacy = format!("{body}.{}", URL_SAFE_NO_PAD.encode(m));
        let rotated = LinkKeys::new([b"new".to_vec(), b"old".to_vec()]);
        assert_eq!(
            verify_link(&rotated, &legacy, Purpose::Unsubscribe, now()),
            Ok(c)
        );
        assert_eq!(
            verify_link(&LinkKeys::one(b"new"), &legacy, Purpose::Unsubscribe, now()),
            Err(TokenError::Forged)
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_an_overflow() {
        let body = b"x";
        let keys = [b"k".to_vec()];
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            let h = sign_webhook(b"k", t, body);
            assert_eq!(
                verify_webhook(Some(&h), body, &keys, now()),
                Err(SignatureError::Stale),
                "t={t}"
            );
        }
    }

    #[test]
    fn unsubscribe_tokens_outlive_their_expiry_and_others_do_not() {
        let mut c = claims(Purpose::Unsubscribe);
        c.expires = now().timestamp() - 86_400 * 365;
        let t = sign_link(&LinkKeys::one(b"k"), &c);
        assert_eq!(
            verify_link(&LinkKeys::one(b"k"), &t, Purpose::Unsubscribe, now()),
            Ok(c.clone())
        );
        assert_eq!(
            verify_link(&LinkKeys::one(b"other"), &t, Purpose::Unsubscribe, now()),
            Err(TokenError::Forged)
        );
        for purpose in [Purpose::Survey, Purpose::FewerEmails] {
            let mut c = claims(purpose);
            c.expires = now().timestamp() - 1;
            let t = sign_link(&LinkKeys::one(b"k"), &c);
            assert_eq!(
                verify_link(&LinkKeys::one(b"k"), &t, purpose, now()),
                Err(TokenError::Expired)
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_verify(s in ".{0,300}") {
            prop_assert!(verify_link(&LinkKeys::one(b"k"), &s, Purpose::Survey, now()).is_err());
        }

        #[test]
        fn arbitrary_headers_never_verify(h in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert!(verify_webhook(Some(&h), &body, &[b"k".to_vec()], now()).is_err());
        }
    }
}
