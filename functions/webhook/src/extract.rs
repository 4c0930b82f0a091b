//! Request extractors: what a handler takes from a request once it is verified (a signed body,
//! a signed JSON body, a signed path, a link's claims), or the response that refuses it.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use shared::settings::Keys;
use shared::signing::{
    verify_link, verify_request, LinkClaims, LinkKeys, Purpose, Scheme, SignedRequest, TokenError,
};

use crate::http::{json_error, HttpRequest, HttpResponse};

/// The header a shop signs its requests in.
const SIGNATURE: &str = "winback-signature";

/// Checks the request's `Winback-Signature` (`v2` over its method, path, query and body; `v1`
/// over its body, or path and query, while `keys.signature_v1` allows it), or gives the 401 that
/// refuses it. A `v1` request is logged, so the operator sees when every sender has moved on.
fn verified(req: &HttpRequest, keys: &Keys, now: DateTime<Utc>) -> Result<(), HttpResponse> {
    let path_and_query = req.path_and_query();
    let request = SignedRequest {
        method: &req.method,
        path_and_query: &path_and_query,
        body: &req.body,
    };
    let header = req.header(SIGNATURE);
    match verify_request(header, &request, &keys.webhook, keys.signature_v1, now) {
        Ok(Scheme::V2) => Ok(()),
        Ok(Scheme::V1) => {
            tracing::info!(event = "signature_v1_used", path = %req.path);
            Ok(())
        }
        Err(e) => Err(json_error(401, &e.to_string(), None)),
    }
}

/// The raw body of a shop request signed with one of the webhook `keys` (`Winback-Signature`
/// `v2`, or `v1` over `"<t>.<raw body>"` while allowed), or the 401 that refuses it.
pub(crate) fn signed_body<'r>(
    req: &'r HttpRequest,
    keys: &Keys,
    now: DateTime<Utc>,
) -> Result<&'r [u8], HttpResponse> {
    verified(req, keys, now).map(|()| req.body.as_slice())
}

/// The signed JSON body of a shop request, read as a `T`: 401 when it is not signed with one of
/// the webhook `keys`, 400 naming where it is wrong when it is not a `T`.
pub(crate) fn signed_json<T: DeserializeOwned>(
    req: &HttpRequest,
    keys: &Keys,
    now: DateTime<Utc>,
) -> Result<T, HttpResponse> {
    let body = signed_body(req, keys, now)?;
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            json_error(400, &format!("the body is not JSON: {inner}"), Some("body"))
        } else if path == "." {
            json_error(
                400,
                &format!("the body is not of the expected shape: {inner}"),
                Some("body"),
            )
        } else {
            json_error(400, &format!("{path}: {inner}"), Some(&path))
        }
    })
}

/// Checks a bodiless shop request (a look-up, an erasure), or gives the 401 that refuses it.
pub(crate) fn signed_path(
    req: &HttpRequest,
    keys: &Keys,
    now: DateTime<Utc>,
) -> Result<(), HttpResponse> {
    verified(req, keys, now)
}

/// The claims of the link token in the request's `t`, valid for one of `purposes` (the last
/// purpose's refusal when it is valid for none).
pub(crate) fn link_claims(
    req: &HttpRequest,
    keys: &LinkKeys,
    purposes: &[Purpose],
    now: DateTime<Utc>,
) -> Result<LinkClaims, TokenError> {
    let token = req.query_param("t").ok_or(TokenError::Malformed)?;
    let mut last = TokenError::WrongPurpose;
    for p in purposes {
        match verify_link(keys, &token, *p, now) {
            Ok(c) => return Ok(c),
            Err(TokenError::WrongPurpose) => last = TokenError::WrongPurpose,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde::Deserialize;
    use shared::signing::{sign_link, sign_webhook};

    const KEY: &[u8] = b"k";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 0).unwrap()
    }

    fn post(body: &str, key: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/v1/x".into(),
            headers: vec![(
                "Winback-Signature".into(),
                sign_webhook(key, now().timestamp(), body.as_bytes()),
            )],
            body: body.as_bytes().to_vec(),
            ..HttpRequest::default()
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Note {
        note: String,
        #[serde(default)]
        count: u32,
    }

    #[test]
    fn a_signed_json_body_is_read_and_a_bad_one_refused_naming_where() {
        let keys = Keys::one(KEY, b"link");
        let ok: Note = signed_json(&post(r#"{"note": "hi"}"#, KEY), &keys, now()).unwrap();
        assert_eq!(
            ok,
            Note {
                note: "hi".into(),
                count: 0
            }
        );

        let unsigned = signed_json::<Note>(&post(r#"{"note": "hi"}"#, b"other"), &keys, now());
        assert_eq!(unsigned.unwrap_err().status, 401);

        let garbled = signed_json::<Note>(&post("{not json", KEY), &keys, now()).unwrap_err();
        assert_eq!(garbled.status, 400);
        assert_eq!(garbled.json()["field"], "body");
        assert!(garbled.json()["error"]
            .as_str()
            .unwrap()
            .contains("not JSON"));

        let wrong = signed_json::<Note>(
            &post(r#"{"note": "hi", "count": "two"}"#, KEY),
            &keys,
            now(),
        )
        .unwrap_err();
        assert_eq!(wrong.status, 400);
        assert_eq!(wrong.json()["field"], "count");

        let missing = signed_json::<Note>(&post("{}", KEY), &keys, now()).unwrap_err();
        assert_eq!(missing.status, 400);
        assert_eq!(missing.json()["field"], "body");
    }

    #[test]
    fn a_signed_path_covers_the_query() {
        let keys = Keys::one(KEY, b"link");
        let mut req = HttpRequest {
            method: "GET".into(),
            path: "/v1/rewards/WB-1".into(),
            query: "a=1".into(),
            ..HttpRequest::default()
        };
        let signature = sign_webhook(KEY, now().timestamp(), b"/v1/rewards/WB-1?a=1");
        req.headers.push(("winback-signature".into(), signature));
        assert!(signed_path(&req, &keys, now()).is_ok());
        req.query = "a=2".into();
        assert_eq!(signed_path(&req, &keys, now()).unwrap_err().status, 401);
    }

    fn v2(method: &str, path: &str, query: &str, body: &str, key: &[u8]) -> HttpRequest {
        let path_and_query = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let signed = SignedRequest {
            method,
            path_and_query: &path_and_query,
            body: body.as_bytes(),
        };
        HttpRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: vec![(
                "Winback-Signature".into(),
                shared::signing::sign_request(key, now().timestamp(), &signed),
            )],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_v2_signature_binds_the_method_path_and_query_to_the_body() {
        let keys = Keys::one(KEY, b"link");
        let body = r#"{"note": "new supplier"}"#;
        let req = v2("POST", "/v1/resolutions/too_expensive", "", body, KEY);
        assert!(signed_body(&req, &keys, now()).is_ok());
        // The same signature and body at another reason's path, with another method, or with a
        // query added: refused.
        let mut moved = req.clone();
        moved.path = "/v1/resolutions/quality".into();
        assert_eq!(signed_body(&moved, &keys, now()).unwrap_err().status, 401);
        let mut other_method = req.clone();
        other_method.method = "DELETE".into();
        assert_eq!(
            signed_body(&other_method, &keys, now()).unwrap_err().status,
            401
        );
        let mut queried = req.clone();
        queried.query = "x=1".into();
        assert_eq!(signed_body(&queried, &keys, now()).unwrap_err().status, 401);
        // A bodiless request's query is covered too.
        let get = v2("GET", "/v1/rewards/WB-1", "a=1", "", KEY);
        assert!(signed_path(&get, &keys, now()).is_ok());
        let mut requeried = get.clone();
        requeried.query = "a=2".into();
        assert_eq!(
            signed_path(&requeried, &keys, now()).unwrap_err().status,
            401
        );
    }

    #[test]
    fn v1_is_taken_during_the_transition_and_refused_once_it_ends() {
        let mut keys = Keys::one(KEY, b"link");
        let body = r#"{"note": "hi"}"#;
        let mut req = post(body, KEY);
        req.path = "/v1/resolutions/quality".into();
        assert!(signed_body(&req, &keys, now()).is_ok(), "v1 still taken");
        keys.signature_v1 = false;
        let refused = signed_body(&req, &keys, now()).unwrap_err();
        assert_eq!(refused.status, 401);
        assert!(refused.json()["error"].as_str().unwrap().contains("v2"));
        // v2 goes on working.
        let v2_req = v2("POST", "/v1/resolutions/quality", "", body, KEY);
        assert!(signed_body(&v2_req, &keys, now()).is_ok());
    }

    #[test]
    fn link_claims_are_those_of_the_first_purpose_the_token_is_for() {
        let keys = LinkKeys::new([b"link".to_vec()]);
        let claims = LinkClaims {
            purpose: Purpose::FewerEmails,
            customer_id: "c-1".parse().unwrap(),
            campaign: "example".into(),
            enrollment_id: "e-1".into(),
            step: 1,
            expires: (now() + chrono::Duration::days(1)).timestamp(),
        };
        let token = sign_link(&keys, &claims);
        let req = HttpRequest {
            query: format!("t={token}"),
            ..HttpRequest::default()
        };
        let got = link_claims(
            &req,
            &keys,
            &[Purpose::Unsubscribe, Purpose::FewerEmails],
            now(),
        );
        assert_eq!(got.unwrap().customer_id, "c-1");
        assert_eq!(
            link_claims(&req, &keys, &[Purpose::Survey], now()),
            Err(TokenError::WrongPurpose)
        );
        let later = now() + chrono::Duration::days(2);
        assert!(link_claims(&req, &keys, &[Purpose::FewerEmails], later).is_err());
        let bare = HttpRequest::default();
        assert_eq!(
            link_claims(&bare, &keys, &[Purpose::Survey], now()),
            Err(TokenError::Malformed)
        );
    }
}
