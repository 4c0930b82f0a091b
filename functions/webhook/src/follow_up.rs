//! A person in the loop: opening a follow-up when a survey answer needs one (and telling the
//! team), the customer's record behind a signed link (`GET /v1/follow-ups/{id}?t=`), and closing
//! it (`POST` there, or `winback follow-up close ID`), which lets their emails go again.

use chrono::{DateTime, Duration, Utc};
use shared::domain::customer::Profile;
use shared::domain::edge::CustomerId;
use shared::domain::follow_up::{self, Closed, Notice};
use shared::domain::metrics::{counter, CohortKey};
use shared::domain::survey::{Answer, FollowUp};
use shared::ports::{
    update_profile, Change, EnrollmentStore, MetricsStore, ProfileStore, StoreError, StoreResult,
};
use shared::signing::{sign_link, LinkClaims, Purpose};
use shared::telemetry::Telemetry;

use crate::deps::Deps;
use crate::extract::link_claims;
use crate::http::{html_response, percent_decode, Handled, HttpRequest, HttpResponse};
use crate::pages;
use crate::report::{self, Counted};
use crate::telemetry::FollowUpNotifyFailed;

/// Opens a follow-up on the customer for `why` (if none is open) and, when it is new, counts it
/// and tells the team. Returns whether a new one was opened.
#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %customer_id))]
pub(crate) async fn open(
    deps: &Deps,
    req: &HttpRequest,
    key: &CohortKey,
    customer_id: &CustomerId,
    why: FollowUp,
    answer: Answer,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (nps, reason) = match answer {
        Answer::Nps(s) => (Some(s), None),
        Answer::Reason(r) => (None, Some(r)),
    };
    let opened = update_profile(deps.store.as_ref(), customer_id, |stored| {
        let Some(before) = stored else {
            return Change::Keep(None);
        };
        let mut p = before.clone();
        let opened = follow_up::open(&mut p, &key.campaign, why, nps, reason, now);
        match (p == before, opened) {
            (true, _) => Change::Keep(None),
            (false, true) => Change::Save(p.clone(), Some(p)),
            (false, false) => Change::Save(p, None),
        }
    })
    .await?;
    let Some(profile) = opened else {
        return Ok(false);
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
    customer_id: &CustomerId,
    campaign: &str,
    now: DateTime<Utc>,
) -> String {
    let validity = i64::from(deps.campaign.config().sending.link_validity_days);
    let token = sign_link(
        &deps.keys.link,
        &LinkClaims {
            purpose: Purpose::FollowUp,
            customer_id: customer_id.clone(),
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
        FollowUpNotifyFailed(&e).emit(deps.metrics.as_ref(), now);
    }
}

/// Closes the customer's follow-up at `now`; their enrollments held for it become due now (the
/// sender applies the usual hours and cap). `flows` are the campaigns (flow counter names) whose
/// enrollments to release. Counted as `follow_ups_closed` in the follow-up's flow.
#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %customer_id))]
pub async fn close(
    store: &(impl ProfileStore + EnrollmentStore + MetricsStore + ?Sized),
    customer_id: &str,
    flows: &[String],
    now: DateTime<Utc>,
) -> StoreResult<(Closed, Option<CohortKey>)> {
    let (closed, campaign) = update_profile(store, customer_id, |stored| {
        let Some(mut p) = stored else {
            return Change::Keep((Closed::NoneOpen, None));
        };
        match follow_up::close(&mut p, now) {
            Closed::Now => {
                let campaign = p.follow_up.as_ref().map(|c| c.campaign.clone());
                Change::Save(p, (Closed::Now, campaign))
            }
            closed => Change::Keep((closed, None)),
        }
    })
    .await?;
    if closed != Closed::Now {
        return Ok((closed, None));
    }
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

/// The customer id of a record link whose token is valid for it, or the page that refuses it.
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
    if req.query_param("t").is_none() {
        return Err(refuse(
            400,
            "the link has no token (t=): copy the whole link".into(),
        ));
    }
    let claims = link_claims(req, &deps.keys.link, &[Purpose::FollowUp], now)
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
) -> Handled {
    let id = verified(deps, req, segment, now)?;
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
) -> Handled {
    let id = verified(deps, req, segment, now)?;
    let (closed, key) = close(deps.store.as_ref(), &id, &flows(deps), now).await?;
    if let Some(k) = key {
        Counted {
            running: &deps.campaign.config().name,
            key: &k,
            deltas: &[(counter::FOLLOW_UPS_CLOSED, 1)],
        }
        .emit(deps.metrics.as_ref(), now);
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
        ("Customer id", p.customer_id.to_string()),
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

fn page(
    title: &str,
    text: &str,
    rows: Option<&[(&'static str, String)]>,
    action: Option<&str>,
) -> String {
    pages::follow_up(title, text, rows, action)
}
