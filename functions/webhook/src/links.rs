//! The pages behind the links in emails: survey answers, the unsubscribe / fewer-emails choice.

use chrono::{DateTime, Utc};
use shared::domain::activity::{self, AnswerFacts};
use shared::domain::customer::{EmailStatus, Profile};
use shared::domain::metrics::counter;
use shared::domain::sequence::{Enrollment, ExitReason};
use shared::domain::survey::{Answer, Reason};
use shared::events::BusEvent;
use shared::ports::{
    update_enrollment, update_profile, Change, EnrollmentStore, ProfileStore, StoreResult,
    WebhookStore,
};
use shared::signing::{LinkClaims, Purpose};

use crate::deps::Deps;
use crate::extract;
use crate::http::{accepted_languages, html_response, Handled, HttpRequest, HttpResponse};
use crate::pages::{self, Lang, PageError};
use crate::{follow_up, report};

/// The language of a request's `Accept-Language` (for pages shown before the customer is known).
fn browser_lang(req: &HttpRequest) -> Lang {
    let langs = accepted_languages(req.header("accept-language"));
    Lang::pick(langs.iter().map(String::as_str))
}

fn customer_lang(profile: Option<&Profile>, req: &HttpRequest) -> Lang {
    profile
        .and_then(|p| p.locale.as_deref())
        .and_then(Lang::of)
        .unwrap_or_else(|| browser_lang(req))
}

fn error_page(req: &HttpRequest, e: PageError) -> HttpResponse {
    html_response(400, pages::error(browser_lang(req), e))
}

/// The claims of the request's `t`, valid for one of `purposes`, or the page that says why not.
fn claims(
    deps: &Deps,
    req: &HttpRequest,
    purposes: &[Purpose],
    now: DateTime<Utc>,
) -> Result<LinkClaims, HttpResponse> {
    extract::link_claims(req, &deps.keys.link, purposes, now)
        .map_err(|e| error_page(req, PageError::Token(e)))
}

/// Where a page's form posts: `path` on the public URL (relative without one), with `query`.
fn form_action(deps: &Deps, path: &str, query: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        q.append_pair(k, v);
    }
    let query = q.finish();
    let base = deps.public_base_url.trim_end_matches('/');
    if base.is_empty() {
        format!("{path}?{query}")
    } else {
        format!("{base}/v1/{path}?{query}")
    }
}

/// A survey request's claims and answer, or the error page that says what is wrong.
fn survey_claims(
    deps: &Deps,
    req: &HttpRequest,
    now: DateTime<Utc>,
) -> Result<(LinkClaims, Answer), HttpResponse> {
    let c = claims(deps, req, &[Purpose::Survey], now)?;
    let answer = req
        .query_param("a")
        .as_deref()
        .and_then(Answer::parse)
        .ok_or_else(|| error_page(req, PageError::BadAnswer))?;
    Ok((c, answer))
}

/// `GET /v1/survey?t=<token>&a=<reason|score>`: the link in the email. Shows the answer with a
/// button that posts it, and records nothing: a mail filter or link scanner that fetches every
/// link in an email, or opens each in a browser that runs scripts, answers nothing (the page has
/// no script); the customer's press of the button does.
pub(crate) async fn survey_page(deps: &Deps, req: &HttpRequest, now: DateTime<Utc>) -> Handled {
    let (c, answer) = survey_claims(deps, req, now)?;
    let raw = req.query_param("a").unwrap_or_default();
    let profile = deps.store.get_profile(&c.customer_id).await?;
    let lang = customer_lang(profile.as_ref(), req);
    let token = req.query_param("t").unwrap_or_default();
    let action = form_action(deps, "survey", &[("t", &token), ("a", &raw)]);
    let shown = match answer {
        Answer::Reason(r) => {
            pages::Shown::Reason(Reason::ALL.iter().position(|x| *x == r).unwrap_or_default())
        }
        Answer::Nps(score) => pages::Shown::Score(score),
    };
    Ok(html_response(
        200,
        pages::confirm_answer(lang, &action, shown),
    ))
}

/// `POST /v1/survey?t=<token>&a=<reason|score>`: the answer page's form. Records the answer.
pub(crate) async fn survey(deps: &Deps, req: &HttpRequest, now: DateTime<Utc>) -> Handled {
    let (c, answer) = survey_claims(deps, req, now)?;
    let store = deps.store.as_ref();
    let profile = store.get_profile(&c.customer_id).await?;
    let lang = customer_lang(profile.as_ref(), req);
    if profile.as_ref().is_none_or(|p| p.erased) {
        return Ok(html_response(200, pages::thanks(lang)));
    }
    let paused = match answer {
        Answer::Reason(r) => deps
            .campaign
            .config()
            .eligibility
            .paused_reasons
            .contains(&r),
        Answer::Nps(_) => false,
    };
    let enrollment = answer_enrollment(store, &c, answer, paused, now).await?;
    let profile_changed = answer_profile(store, &c.customer_id, answer).await?;
    let answered = activity::answered(
        &AnswerFacts {
            customer_id: &c.customer_id,
            campaign: &c.campaign,
            answer,
            enrollment: enrollment.as_ref().map(|(before, after)| (before, after)),
            profile_changed,
        },
        now,
    );

    let recorded = answered.event.is_some();
    let mut events = Vec::from_iter(answered.event);
    if let Some(count) = &answered.count {
        report::count(deps, &count.cohort, now, &count.deltas).await?;
    }
    if let (Some(why), Some(count)) = (answered.follow_up, &answered.count) {
        // A person is told, and the customer's emails wait for them (domain::follow_up).
        if follow_up::open(deps, &count.cohort, &c.customer_id, why, answer, now).await? {
            events.push(BusEvent::FollowUpNeeded {
                campaign: c.campaign.clone(),
                customer_id: c.customer_id.clone(),
                why,
                at: now,
            });
        }
    }
    if let Some((before, _)) = &enrollment {
        if paused && !before.status.is_final() {
            tracing::info!(event = "enrollment_paused", customer_id = %c.customer_id, campaign = %c.campaign);
        }
    }
    if recorded {
        let (reason, nps) = match answer {
            Answer::Reason(r) => (Some(r), None),
            Answer::Nps(s) => (None, Some(s)),
        };
        tracing::info!(
            event = "survey_answered",
            customer_id = %c.customer_id,
            campaign = %c.campaign,
            reason = reason.map(Reason::as_str),
            nps = nps,
            counted = enrollment.is_some(),
        );
    }
    deps.publish(events, &c.customer_id, now).await;
    Ok(html_response(200, pages::thanks(lang)))
}

/// Saves the answer on the enrollment the email belonged to, if it is still the latest and the
/// answer changes it: the enrollment before and after.
async fn answer_enrollment(
    store: &dyn EnrollmentStore,
    c: &LinkClaims,
    answer: Answer,
    paused: bool,
    now: DateTime<Utc>,
) -> StoreResult<Option<(Enrollment, Enrollment)>> {
    update_enrollment(store, &c.customer_id, &c.campaign, |stored| {
        let Some(before) = stored.filter(|e| e.id == c.enrollment_id) else {
            return Change::Keep(None);
        };
        match before.answered(answer, paused, now) {
            Some(after) => Change::Save(after.clone(), Some((before, after))),
            None => Change::Keep(None),
        }
    })
    .await
}

/// Saves the answer on the profile; whether it changed it.
async fn answer_profile(
    store: &dyn ProfileStore,
    customer_id: &str,
    answer: Answer,
) -> StoreResult<bool> {
    update_profile(store, customer_id, |stored| {
        let Some(before) = stored else {
            return Change::Keep(false);
        };
        let mut p = before.clone();
        p.apply_answer(answer);
        if p == before {
            Change::Keep(false)
        } else {
            Change::Save(p, true)
        }
    })
    .await
}

/// `GET /v1/unsubscribe?t=` and `GET /v1/preferences?t=`: the choice page. Changes nothing, so
/// link scanners that follow it do no harm.
pub(crate) async fn choice_page(deps: &Deps, req: &HttpRequest, now: DateTime<Utc>) -> Handled {
    let c = claims(
        deps,
        req,
        &[Purpose::Unsubscribe, Purpose::FewerEmails],
        now,
    )?;
    let profile = deps.store.get_profile(&c.customer_id).await?;
    let lang = customer_lang(profile.as_ref(), req);
    let token = req.query_param("t").unwrap_or_default();
    let action = form_action(deps, "preferences", &[("t", &token)]);
    Ok(html_response(200, pages::choice(lang, &action)))
}

/// Why a form body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FormError {
    #[error("send the form as application/x-www-form-urlencoded or multipart/form-data, not {0}")]
    ContentType(String),
    #[error("the multipart/form-data body does not parse: {0}")]
    Multipart(String),
}

/// The fields of a form body. RFC 8058 (section 3.2) lets a one-click receiver send its POST as
/// `multipart/form-data` (preferred) or `application/x-www-form-urlencoded`; a body without a
/// content type is read as the latter. Any other type is refused.
pub(crate) async fn form_fields(req: &HttpRequest) -> Result<Vec<(String, String)>, FormError> {
    let content_type = req.header("content-type").unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "" | "application/x-www-form-urlencoded" => Ok(url::form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()),
        "multipart/form-data" => multipart_fields(content_type, &req.body).await,
        other => Err(FormError::ContentType(other.to_string())),
    }
}

async fn multipart_fields(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, FormError> {
    let bad = |e: multer::Error| FormError::Multipart(e.to_string());
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let body = bytes::Bytes::copy_from_slice(body);
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        // A file part is no answer to a choice; read past it.
        let is_file = field.file_name().is_some();
        // The fields a choice reads are ASCII; read them as UTF-8 rather than by a declared
        // charset, which would link every legacy encoding's tables into the function.
        let raw = field.bytes().await.map_err(bad)?;
        if !is_file {
            fields.push((name, String::from_utf8_lossy(&raw).into_owned()));
        }
    }
    Ok(fields)
}

/// What a form or one-click body asks for.
fn form_choice(fields: &[(String, String)]) -> Option<EmailStatus> {
    let mut choice = None;
    for (k, v) in fields {
        match (k.as_str(), v.trim()) {
            ("List-Unsubscribe", "One-Click") | ("choice", "unsubscribe") => {
                return Some(EmailStatus::Unsubscribed)
            }
            ("choice", "fewer") => choice = Some(EmailStatus::FewerEmails),
            _ => {}
        }
    }
    choice
}

/// The choice a form POST makes, or the page that says why it makes none.
async fn posted_choice(req: &HttpRequest) -> Result<EmailStatus, HttpResponse> {
    match form_fields(req).await {
        Ok(fields) => form_choice(&fields).ok_or_else(|| error_page(req, PageError::BadChoice)),
        Err(e) => {
            tracing::info!(event = "form_refused", error = %e);
            Err(error_page(req, PageError::BadChoice))
        }
    }
}

/// `POST /v1/unsubscribe?t=` with `List-Unsubscribe=One-Click` (RFC 8058) or `choice=unsubscribe`.
pub(crate) async fn post_unsubscribe(
    deps: &Deps,
    req: &HttpRequest,
    now: DateTime<Utc>,
) -> Handled {
    let c = claims(deps, req, &[Purpose::Unsubscribe], now)?;
    if posted_choice(req).await? != EmailStatus::Unsubscribed {
        return Ok(error_page(req, PageError::BadChoice));
    }
    set_status(deps, req, &c, EmailStatus::Unsubscribed, now).await
}

/// `POST /v1/preferences?t=` with `choice=fewer` or `choice=unsubscribe`.
pub(crate) async fn post_preferences(
    deps: &Deps,
    req: &HttpRequest,
    now: DateTime<Utc>,
) -> Handled {
    let c = claims(
        deps,
        req,
        &[Purpose::FewerEmails, Purpose::Unsubscribe],
        now,
    )?;
    let status = posted_choice(req).await?;
    set_status(deps, req, &c, status, now).await
}

/// How often, and how long each time, an unsubscribe waits for a send in flight to settle: at
/// most 11 s in all, longer than one SES call may take (the SDK's 10 s operation limit). The
/// sender claims a step only right before it calls SES (after rendering and its rate limiter),
/// so a live claim is a send in flight; a sender that takes longer has crashed, and its
/// take-over finds the enrollment ended.
const SETTLE_WAITS: u32 = 550;
const SETTLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Whether a sender holds a live claim on a step it has not marked sent yet.
fn sending_now(e: &Enrollment, now: DateTime<Utc>) -> bool {
    e.claim
        .as_ref()
        .is_some_and(|c| c.lease_until > now && e.sent.iter().all(|s| s.step != c.step))
}

#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %c.customer_id))]
async fn set_status(
    deps: &Deps,
    req: &HttpRequest,
    c: &LinkClaims,
    to: EmailStatus,
    now: DateTime<Utc>,
) -> Handled {
    let store = deps.store.as_ref();
    let (changed, lang) = update_profile(store, &c.customer_id, |stored| {
        let Some(mut p) = stored else {
            return Change::Keep((false, browser_lang(req)));
        };
        let lang = customer_lang(Some(&p), req);
        if p.erased || !p.email_status.moves_to(to) {
            return Change::Keep((false, lang));
        }
        p.email_status = to;
        Change::Save(p, (true, lang))
    })
    .await?;
    let enrollment = end_enrollments(store, c, to, now).await?;
    if changed {
        let (name, event) = if to == EmailStatus::Unsubscribed {
            (counter::UNSUBSCRIBED, "unsubscribed")
        } else {
            (counter::FEWER_EMAILS, "fewer_emails")
        };
        if let Some(e) = &enrollment {
            report::count(deps, &e.cohort(), now, &[(name, 1)]).await?;
        }
        tracing::info!(event = event, campaign = %c.campaign);
    }
    let page = if to == EmailStatus::Unsubscribed {
        pages::unsubscribed(lang)
    } else {
        pages::fewer(lang)
    };
    Ok(html_response(200, page))
}

/// Ends the customer's enrollment in every campaign the store holds one in, whichever flow's email
/// the link came from, on an unsubscribe (each once a send in flight has settled, all waited for
/// together); answers the enrollment of the link's campaign as it stands.
async fn end_enrollments(
    store: &dyn WebhookStore,
    c: &LinkClaims,
    to: EmailStatus,
    now: DateTime<Utc>,
) -> StoreResult<Option<Enrollment>> {
    let mut others: Vec<String> = Vec::new();
    if to == EmailStatus::Unsubscribed {
        for e in store.enrollments_of(&c.customer_id).await? {
            if e.campaign != c.campaign && !others.contains(&e.campaign) {
                others.push(e.campaign);
            }
        }
    }
    let own = end_enrollment(store, &c.customer_id, &c.campaign, to, now);
    let rest = futures::future::try_join_all(
        others
            .iter()
            .map(|campaign| end_enrollment(store, &c.customer_id, campaign, to, now)),
    );
    let (own, _) = futures::future::try_join(own, rest).await?;
    Ok(own)
}

/// Ends the customer's enrollment in `campaign` on an unsubscribe (once a send in flight has
/// settled); answers the enrollment as it stands.
async fn end_enrollment(
    store: &dyn EnrollmentStore,
    customer_id: &str,
    campaign: &str,
    to: EmailStatus,
    now: DateTime<Utc>,
) -> StoreResult<Option<Enrollment>> {
    let mut waited = 0;
    loop {
        let settle = waited < SETTLE_WAITS;
        let ended = update_enrollment(store, customer_id, campaign, |stored| {
            let Some(e) = stored else {
                return Change::Keep(Some(None));
            };
            if to != EmailStatus::Unsubscribed || e.status.is_final() {
                return Change::Keep(Some(Some(e)));
            }
            if settle && sending_now(&e, now) {
                return Change::Keep(None);
            }
            match e.exit(ExitReason::Unsubscribed, now) {
                Ok(exited) => Change::Save(exited.clone(), Some(Some(exited))),
                Err(_) => Change::Keep(Some(Some(e))),
            }
        })
        .await?;
        match ended {
            Some(enrollment) => return Ok(enrollment),
            // A sender holds a claim and may be handing the email to SES right now: answer only
            // once it has marked or released the step, so no email follows the acknowledgement.
            None => {
                waited += 1;
                tokio::time::sleep(SETTLE_PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(content_type: &str, body: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/v1/unsubscribe".into(),
            query: String::new(),
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    async fn choice(content_type: &str, body: &str) -> Result<Option<EmailStatus>, FormError> {
        form_fields(&form(content_type, body))
            .await
            .map(|f| form_choice(&f))
    }

    #[tokio::test]
    async fn one_click_and_form_bodies_say_what_to_do() {
        let urlencoded = "application/x-www-form-urlencoded";
        for (body, expected) in [
            (
                "List-Unsubscribe=One-Click",
                Some(EmailStatus::Unsubscribed),
            ),
            ("choice=unsubscribe", Some(EmailStatus::Unsubscribed)),
            ("choice=fewer", Some(EmailStatus::FewerEmails)),
            ("choice=more", None),
            ("", None),
        ] {
            assert_eq!(choice(urlencoded, body).await, Ok(expected), "{body}");
        }
        // No content type: read as a urlencoded form, as receivers without one send it.
        assert_eq!(
            choice("", "List-Unsubscribe=One-Click").await,
            Ok(Some(EmailStatus::Unsubscribed))
        );
    }

    #[tokio::test]
    async fn multipart_one_click_bodies_are_read_as_rfc_7578_writes_them() {
        // A quoted boundary with characters RFC 2046 allows, a preamble, extra fields around the
        // one-click field, a file part, and the parameter order of another writer.
        let body = "this preamble is ignored\r\n\
                    --=_Part 0'(+)_,-./:?\r\n\
                    Content-Disposition: form-data; name=\"source\"\r\n\r\n\
                    mailbox\r\n\
                    --=_Part 0'(+)_,-./:?\r\n\
                    Content-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\
                    Content-Type: text/plain; charset=utf-8\r\n\r\n\
                    One-Click\r\n\
                    --=_Part 0'(+)_,-./:?\r\n\
                    Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\n\
                    List-Unsubscribe=One-Click\r\n\
                    --=_Part 0'(+)_,-./:?--\r\n\
                    an epilogue";
        let content_type = "Multipart/Form-Data; charset=utf-8; boundary=\"=_Part 0'(+)_,-./:?\"";
        assert_eq!(
            choice(content_type, body).await,
            Ok(Some(EmailStatus::Unsubscribed))
        );
        let fields = form_fields(&form(content_type, body)).await.unwrap();
        assert_eq!(
            fields,
            vec![
                ("source".to_string(), "mailbox".to_string()),
                ("List-Unsubscribe".to_string(), "One-Click".to_string())
            ],
            "the file part is no field"
        );
        // The one-click value only in a file part is no one-click.
        let only_file = "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"; \
                         filename=\"x\"\r\n\r\nOne-Click\r\n--b--\r\n";
        assert_eq!(
            choice("multipart/form-data; boundary=b", only_file).await,
            Ok(None)
        );
    }

    #[tokio::test]
    async fn other_bodies_are_refused_with_the_reason() {
        let one_click = "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n";
        // The boundary in the header is not the body's.
        assert!(matches!(
            choice("multipart/form-data; boundary=other", one_click).await,
            Err(FormError::Multipart(_))
        ));
        // No boundary at all.
        assert!(matches!(
            choice("multipart/form-data", one_click).await,
            Err(FormError::Multipart(_))
        ));
        // Cut short before the closing boundary.
        assert!(matches!(
            choice("multipart/form-data; boundary=b", &one_click[..40]).await,
            Err(FormError::Multipart(_))
        ));
        for content_type in [
            "application/json",
            "text/plain",
            "multipart/mixed; boundary=b",
        ] {
            assert!(
                matches!(
                    choice(content_type, "List-Unsubscribe=One-Click").await,
                    Err(FormError::ContentType(_))
                ),
                "{content_type}"
            );
        }
    }
}
