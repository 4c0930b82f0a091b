//! A person in the loop: opening a follow-up when a survey answer needs one (and telling the
//! team), the customer's record behind a signed link (`GET /v1/follow-ups/{id}?t=`), and closing
//! it (`POST` there, or `winback follow-up close ID`), which lets their emails go again.

use chrono::{DateTime, Duration, Utc};
use shared::domain::customer::{FollowUpCase, Profile};
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
    notify(deps, &profile, now).await;
    Ok(true)
}

/// How long the team's link to a case works: a day from the case's opening.
pub const STAFF_LINK_VALIDITY: Duration = Duration::hours(24);

/// The claims field that carries the case a staff link is for: its opening time (a follow-up
/// token names no enrollment), so a link to an earlier case opens and closes nothing of a newer.
fn case_mark(opened_at: DateTime<Utc>) -> String {
    format!("case-{}", opened_at.timestamp())
}

/// The signed link to the record behind `case` of `customer_id`, on the configured
/// `PUBLIC_BASE_URL` (never a request's `Host`), signed with the staff keys and valid for
/// [`STAFF_LINK_VALIDITY`] from the case's opening. `None` without a base URL or staff keys.
pub fn record_url(deps: &Deps, customer_id: &CustomerId, case: &FollowUpCase) -> Option<String> {
    let base = deps.public_base_url.trim_end_matches('/');
    if base.is_empty() || deps.keys.staff.is_empty() {
        return None;
    }
    let token = sign_link(
        &deps.keys.staff,
        &LinkClaims {
            purpose: Purpose::FollowUp,
            customer_id: customer_id.clone(),
            campaign: case.campaign.clone(),
            enrollment_id: case_mark(case.opened_at),
            step: 0,
            expires: (case.opened_at + STAFF_LINK_VALIDITY).timestamp(),
        },
    );
    let id: String = url::form_urlencoded::byte_serialize(customer_id.as_bytes()).collect();
    Some(format!("{base}/v1/follow-ups/{id}?t={token}"))
}

/// Tells the team (the SNS topic). A failure is logged and counted, never fails the answer.
async fn notify(deps: &Deps, p: &Profile, now: DateTime<Utc>) {
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
    let url = record_url(deps, &p.customer_id, case).unwrap_or_else(|| {
        tracing::warn!(
            event = "follow_up_link_unavailable",
            why = "PUBLIC_BASE_URL or the staff keys (STAFF_SECRET_ARN) are not set"
        );
        "(no link: set PublicBaseUrl and the staff keys; close it with `winback follow-up close`)"
            .to_string()
    });
    let config = deps.campaign.config();
    let notice = Notice {
        customer_id: &p.customer_id,
        case,
        last_order_at: p.last_order_at,
        last_order_amount: p.orders.last().map(|o| o.net()),
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

/// The customer id of a record link whose staff token is valid for it, and the case the token
/// is for (its mark), or the page that refuses it.
fn verified(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Result<(String, String), HttpResponse> {
    let id = percent_decode(segment)
        .ok_or_else(|| refuse(400, "the customer id in the link is damaged"))?;
    if req.query_param("t").is_none() {
        return Err(refuse(
            400,
            "the link has no token (t=): copy the whole link",
        ));
    }
    let claims = link_claims(req, &deps.keys.staff, &[Purpose::FollowUp], now)
        .map_err(|e| refuse(400, &e.to_string()))?;
    if claims.customer_id != id {
        return Err(refuse(400, "this link is for another customer"));
    }
    Ok((id, claims.enrollment_id))
}

fn refuse(status: u16, why: &str) -> HttpResponse {
    html_response(status, page("Link refused", why, None, None))
}

/// Whether the link's case `mark` is the customer's current case: a link to an earlier case
/// opens and closes nothing.
fn same_case(p: &Profile, mark: &str) -> bool {
    p.follow_up
        .as_ref()
        .is_some_and(|c| case_mark(c.opened_at) == mark)
}

/// Logs a view of a case's record: which case, when, and which link (a digest of its token:
/// the notice it came in); no personal data.
fn log_view(req: &HttpRequest, customer_id: &str, mark: &str, now: DateTime<Utc>) {
    use sha2::Digest;
    let token = req.query_param("t").unwrap_or_default();
    let link = hex::encode(&sha2::Sha256::digest(token.as_bytes())[..6]);
    tracing::info!(
        event = "follow_up_viewed",
        customer_id = customer_id,
        case = mark,
        link = %link,
        at = %now,
    );
}

/// `GET /v1/follow-ups/{id}?t=`: the customer's record, for the person following up.
pub(crate) async fn record_page(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Handled {
    let (id, mark) = verified(deps, req, segment, now)?;
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
    if !same_case(&p, &mark) {
        return Ok(refuse(
            400,
            "this link is for an earlier follow-up of this customer",
        ));
    }
    log_view(req, &id, &mark, now);
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
    let (id, mark) = verified(deps, req, segment, now)?;
    let current = deps.store.get_profile(&id).await?;
    if current.as_ref().is_some_and(|p| !same_case(p, &mark)) {
        return Ok(refuse(
            400,
            "this link is for an earlier follow-up of this customer",
        ));
    }
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
