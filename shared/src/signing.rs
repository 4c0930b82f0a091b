//! Signatures: the shop's webhook signature (`Winback-Signature`) and the signed, expiring,
//! purpose-bound tokens in email links.

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
    #[error(
        "missing Winback-Signature header: sign the request as the README's HTTP contract says"
    )]
    Missing,
    #[error("malformed Winback-Signature header: expected t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    #[error("signature timestamp is more than 300 s from now: sign each request when sending it")]
    Stale,
    #[error(
        "signature does not match: check the signing key and that the raw body is signed unchanged"
    )]
    Mismatch,
}

/// `t=<t>,v1=<hex>` for `payload` (the raw body, or the path and query for bodiless requests).
pub fn sign_webhook(key: &[u8], t: i64, payload: &[u8]) -> String {
    let ts = t.to_string();
    let m = mac(key, &[ts.as_bytes(), b".", payload]);
    format!("t={t},v1={}", hex::encode(m))
}

/// Verifies a `Winback-Signature` header against any of `keys` (newest first; several during
/// rotation), any of the header's `v1` values, within the tolerance of `now`. Constant-time.
pub fn verify_webhook(
    header: Option<&str>,
    payload: &[u8],
    keys: &[Vec<u8>],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<i64> = None;
    let mut sigs: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse().map_err(|_| SignatureError::Malformed)?),
            "v1" => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.timestamp().abs_diff(t) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let ts = t.to_string();
    let mut ok = 0u8;
    for key in keys {
        let expected = mac(key, &[ts.as_bytes(), b".", payload]);
        for s in &sigs {
            ok |= expected.ct_eq(s.as_slice()).unwrap_u8();
        }
    }
    if ok == 1 {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
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
    pub customer_id: String,
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

/// Signs link claims: `<base64url(json)>.<base64url(hmac)>`.
pub fn sign_link(key: &[u8], claims: &LinkClaims) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let m = mac(key, &[b"link.", body.as_bytes()]);
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(m))
}

/// Verifies a link token for `purpose` at `now` (expiry only for purposes that
/// [expire](Purpose::expires)).
pub fn verify_link(
    key: &[u8],
    token: &str,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<LinkClaims, TokenError> {
    if token.len() > 2048 {
        return Err(TokenError::Malformed);
    }
    let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    let expected = mac(key, &[b"link.", body.as_bytes()]);
    if expected.ct_eq(sig.as_slice()).unwrap_u8() != 1 {
        return Err(TokenError::Forged);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| TokenError::Malformed)?;
    let claims: LinkClaims = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
    if claims.purpose != purpose {
        return Err(TokenError::WrongPurpose);
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
            customer_id: "c1".into(),
            campaign: "example".into(),
            enrollment_id: "c1#example#1".into(),
            step: 1,
            expires: now().timestamp() + 60,
        }
    }

    #[test]
    fn link_tokens_are_purpose_bound_and_expire() {
        let t = sign_link(b"k", &claims(Purpose::Survey));
        assert_eq!(
            verify_link(b"k", &t, Purpose::Survey, now()),
            Ok(claims(Purpose::Survey))
        );
        assert_eq!(
            verify_link(b"k", &t, Purpose::Unsubscribe, now()),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            verify_link(b"other", &t, Purpose::Survey, now()),
            Err(TokenError::Forged)
        );
        assert_eq!(
            verify_link(
                b"k",
                &t,
                Purpose::Survey,
                now() + chrono::Duration::seconds(61)
            ),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_link(b"k", "nodot", Purpose::Survey, now()),
            Err(TokenError::Malformed)
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
        let t = sign_link(b"k", &c);
        assert_eq!(
            verify_link(b"k", &t, Purpose::Unsubscribe, now()),
            Ok(c.clone())
        );
        assert_eq!(
            verify_link(b"other", &t, Purpose::Unsubscribe, now()),
            Err(TokenError::Forged)
        );
        for purpose in [Purpose::Survey, Purpose::FewerEmails] {
            let mut c = claims(purpose);
            c.expires = now().timestamp() - 1;
            let t = sign_link(b"k", &c);
            assert_eq!(
                verify_link(b"k", &t, purpose, now()),
                Err(TokenError::Expired)
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_verify(s in ".{0,300}") {
            prop_assert!(verify_link(b"k", &s, Purpose::Survey, now()).is_err());
        }

        #[test]
        fn arbitrary_headers_never_verify(h in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert!(verify_webhook(Some(&h), &body, &[b"k".to_vec()], now()).is_err());
        }
    }
}
