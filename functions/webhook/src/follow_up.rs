//! A person in the loop: opening a follow-up when a survey answer needs one (and telling the
//! team), the customer's record behind a signed link (`GET /v1/follow-ups/{id}?t=`), and closing
//! it (`POST` there, or `winback follow-up close ID`), which lets their emails go again.

use chrono::{DateTime, Duration, Utc};
use minijinja::{context, Environment};
use shared::domain::customer::Profile;
use shared::domain::follow_up::{self, Closed, Notice};
use shared::domain::metrics::{counter, CohortKey};
use shared::domain::survey::{Answer, FollowUp};
use shared::emf::{Record, Unit};
use shared::ports::{Store, StoreError};
use shared::signing::{sign_link, verify_link, LinkClaims, Purpose};

use crate::http::{html_response, percent_decode};
use crate::{report, Deps, HttpRequest, HttpResponse, SAVE_ATTEMPTS};

/// Opens a follow-up on the customer for `why` (if none is open) and, when it is new, counts it
/// and tells the team. Returns whether a new one was opened.
#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %customer_id))]
pub(crate) async fn open(
    deps: &Deps,
    req: &HttpRequest,
    key: &CohortKey,
    customer_id: &str,
    why: FollowUp,
    answer: Answer,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (nps, reason) = match answer {
        Answer::Nps(s) => (Some(s), None),
        Answer::Reason(r) => (None, Some(r)),
    };
    let mut attempt = 0;
    let profile = loop {
        attempt += 1;
        let Some(mut p) = deps.store.get_profile(customer_id).await? else {
            return Ok(false);
        };
        let before = p.clone();
        let opened = follow_up::open(&mut p, &key.campaign, why, nps, reason, now);
        if p == before {
            return Ok(false);
        }
        match deps.store.save_profile(&p).await {
            Ok(_) if opened => break p,
            Ok(_) => return Ok(false),
            Err(e) if e.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    };
    report::count(deps, key, now, &[(counter::FOLLOW_UPS, 1)]).await?;
    tracing::info!(event = "follow_up_opened", campaign = %key.campaign);
    notify(deps, &base_url(deps, req), &profile, now).await;
    Ok(true)
}

/// The webhook's public URL: `PUBLIC_BASE_URL`, else the https host the request came in on
/// (the Function URL), so the link in the team's email is absolute.
fn base_url(deps: &Deps, req: &HttpRequest) -> String {
    let base = deps.public_base_url.trim_end_matches('/');
    match req.header("host") {
        Some(host) if base.is_empty() => format!("https://{host}"),
        _ => base.to_string(),
    }
}

/// The signed link to a customer's record under `base`, valid for the campaign's link validity.
pub fn record_url(
    deps: &Deps,
    base: &str,
    customer_id: &str,
    campaign: &str,
    now: DateTime<Utc>,
) -> String {
    let validity = i64::from(deps.campaign.config().sending.link_validity_days);
    let token = sign_link(
        &deps.keys.link,
        &LinkClaims {
            purpose: Purpose::FollowUp,
            customer_id: customer_id.to_string(),
            campaign: campaign.to_string(),
            enrollment_id: String::new(),
            step: 0,
            expires: (now + Duration::days(validity)).timestamp(),
        },
    );
    let id: String = url::form_urlencoded::byte_serialize(customer_id.as_bytes()).collect();
    format!("{base}/v1/follow-ups/{id}?t={token}")
}

/// Tells the team (the SNS topic). A failure is logged and counted, never fails the answer.
async fn notify(deps: &Deps, base: &str, p: &Profile, now: DateTime<Utc>) {
    let Some(case) = p.follow_up.as_ref() else {
        return;
    };
    let Some(notifier) = deps.notifier.as_ref() else {
        tracing::warn!(
            event = "follow_up_not_notified",
            why = "FOLLOW_UP_TOPIC_ARN is not set"
        );
        return;
    };
    let url = record_url(deps, base, &p.customer_id, &case.campaign, now);
    let config = deps.campaign.config();
    let notice = Notice {
        customer_id: &p.customer_id,
        case,
        last_order_at: p.last_order_at,
        last_order_amount: p.orders.last().map(|o| o.amount),
        lifetime_value: p.lifetime_value,
        currency: p.currency.as_deref().unwrap_or(&config.currency),
        order_count: p.order_count,
        pause_days: config.eligibility.follow_up_pause_days,
        record_url: &url,
    };
    if let Err(e) = notifier.notify(&notice.subject(), &notice.body()).await {
        tracing::error!(event = "follow_up_notify_failed", reason = %e);
        deps.metrics.record(
            Record::new(&[("Service", "webhook")]).metric(
                "FollowUpNotifyFailures",
                1.0,
                Unit::Count,
            ),
            now.timestamp_millis(),
        );
    }
}

/// Closes the customer's follow-up at `now`; their enrollments held for it become due now (the
/// sender applies the usual hours and cap). `flows` are the campaigns (flow counter names) whose
/// enrollments to release. Counted as `follow_ups_closed` in the follow-up's flow.
#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %customer_id))]
pub async fn close(
    store: &dyn Store,
    customer_id: &str,
    flows: &[String],
    now: DateTime<Utc>,
) -> Result<(Closed, Option<CohortKey>), StoreError> {
    let mut attempt = 0;
    let (closed, campaign) = loop {
        attempt += 1;
        let Some(mut p) = store.get_profile(customer_id).await? else {
            return Ok((Closed::NoneOpen, None));
        };
        let closed = follow_up::close(&mut p, now);
        if closed != Closed::Now {
            return Ok((closed, None));
        }
        match store.save_profile(&p).await {
            Ok(_) => break (closed, p.follow_up.map(|c| c.campaign)),
            Err(e) if e.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    };
    let mut key = None;
    for flow in flows {
        let Some(e) = store.get_enrollment(customer_id, flow).await? else {
            continue;
        };
        if campaign.as_deref() == Some(flow.as_str()) {
            key = Some(e.cohort());
        }
        if e.status.is_final() || e.due_at.is_none_or(|d| d <= now) {
            continue;
        }
        if let Ok(released) = e.defer(now) {
            match store.save_enrollment(&released).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if let (Some(k), Some(_)) = (&key, &campaign) {
        store
            .add_counts(
                k,
                Some(now.date_naive()),
                &[(counter::FOLLOW_UPS_CLOSED, 1)],
            )
            .await?;
    }
    tracing::info!(event = "follow_up_closed");
    Ok((closed, key))
}

/// The flows (counter names) this deployment runs: the win-back flow and its at-risk flow.
pub fn flows(deps: &Deps) -> Vec<String> {
    use shared::domain::sequence::{cohort_campaign, Flow};
    let name = &deps.campaign.config().name;
    vec![
        cohort_campaign(name, Flow::WinBack),
        cohort_campaign(name, Flow::AtRisk),
        cohort_campaign(name, Flow::Celebration),
        cohort_campaign(name, Flow::ReEngagement),
    ]
}

fn verified(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Result<String, HttpResponse> {
    let refuse =
        |status: u16, why: String| html_response(status, page("Link refused", &why, None, None));
    let id = percent_decode(segment)
        .ok_or_else(|| refuse(400, "the customer id in the link is damaged".into()))?;
    let token = req.query_param("t").ok_or_else(|| {
        refuse(
            400,
            "the link has no token (t=): copy the whole link".into(),
        )
    })?;
    let claims = verify_link(&deps.keys.link, &token, Purpose::FollowUp, now)
        .map_err(|e| refuse(400, e.to_string()))?;
    if claims.customer_id != id {
        return Err(refuse(400, "this link is for another customer".into()));
    }
    Ok(id)
}

/// `GET /v1/follow-ups/{id}?t=`: the customer's record, for the person following up.
pub(crate) async fn record_page(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    let id = match verified(deps, req, segment, now) {
        Ok(id) => id,
        Err(resp) => return Ok(resp),
    };
    let Some(p) = deps.store.get_profile(&id).await?.filter(|p| !p.erased) else {
        return Ok(html_response(
            404,
            page(
                "No such customer",
                "This customer is not stored, or their data was erased.",
                None,
                None,
            ),
        ));
    };
    let action = req.query_param("t").map(|t| {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("t", &t)
            .finish();
        q
    });
    let open = p.follow_up.as_ref().is_some_and(|c| c.is_open());
    Ok(html_response(
        200,
        page(
            "Customer record",
            "",
            Some(&record(&p, deps)),
            open.then_some(action).flatten().as_deref(),
        ),
    ))
}

/// `POST /v1/follow-ups/{id}?t=`: closes the follow-up.
pub(crate) async fn post_close(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    let id = match verified(deps, req, segment, now) {
        Ok(id) => id,
        Err(resp) => return Ok(resp),
    };
    let (closed, key) = close(deps.store.as_ref(), &id, &flows(deps), now).await?;
    if let Some(k) = key {
        for r in report::records(
            &deps.campaign.config().name,
            &k,
            &[(counter::FOLLOW_UPS_CLOSED, 1)],
        ) {
            deps.metrics.record(r, now.timestamp_millis());
        }
    }
    let text = match closed {
        Closed::Now => "Follow-up closed: thank you. Their emails may go again.",
        Closed::Already => "This follow-up was closed already.",
        Closed::NoneOpen => "There is no follow-up on this customer.",
    };
    Ok(html_response(200, page("Follow-up", text, None, None)))
}

fn record(p: &Profile, deps: &Deps) -> Vec<(&'static str, String)> {
    let currency = p
        .currency
        .clone()
        .unwrap_or_else(|| deps.campaign.config().currency.clone());
    let case = p.follow_up.as_ref();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    vec![
        ("Customer id", p.customer_id.clone()),
        ("Email", opt(p.email.clone())),
        ("First name", opt(p.first_name.clone())),
        ("Locale", opt(p.locale.clone())),
        ("Time zone", opt(p.time_zone.clone())),
        ("Email status", format!("{:?}", p.email_status)),
        ("Orders", p.order_count.to_string()),
        ("Lifetime value", format!("{} {currency}", p.lifetime_value)),
        (
            "First order",
            opt(p.first_order_at.map(|t| t.format("%Y-%m-%d").to_string())),
        ),
        (
            "Last order",
            opt(p.last_order_at.map(|t| t.format("%Y-%m-%d").to_string())),
        ),
        (
            "Last product",
            opt(p.last_product().or(p.last_category()).map(str::to_string)),
        ),
        (
            "Survey reason",
            opt(p.survey_reason.map(|r| r.as_str().to_string())),
        ),
        ("NPS", opt(p.nps.map(|s| s.to_string()))),
        ("Follow-up flow", opt(case.map(|c| c.campaign.clone()))),
        (
            "Follow-up why",
            opt(case.map(|c| follow_up::why_text(c.why).to_string())),
        ),
        (
            "Follow-up opened",
            opt(case.map(|c| c.opened_at.format("%Y-%m-%d %H:%M UTC").to_string())),
        ),
        (
            "Follow-up closed",
            opt(case
                .and_then(|c| c.closed_at)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())),
        ),
    ]
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}th{text-align:left;padding-right:1rem}button{font-size:1rem;padding:.5rem 1rem}</style>
</head><body><h1>{{ title }}</h1>
{% if text %}<p>{{ text }}</p>{% endif %}
{% if rows %}<table>{% for r in rows %}<tr><th>{{ r[0] }}</th><td>{{ r[1] }}</td></tr>{% endfor %}</table>{% endif %}
{% if action %}<form method="post" action="?{{ action }}"><p><button type="submit">Close the follow-up</button></p></form>{% endif %}
</body></html>"#;

fn page(
    title: &str,
    text: &str,
    rows: Option<&[(&'static str, String)]>,
    action: Option<&str>,
) -> String {
    let mut env = Environment::new();
    env.add_template("follow_up.html", PAGE)
        .expect("the follow-up page parses");
    env.get_template("follow_up.html")
        .and_then(|t| t.render(context! { title, text, rows, action }))
        .expect("the follow-up page renders with plain strings")
}
