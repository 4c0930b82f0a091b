//! `POST /v1/activity`: the shop's orders, logins and subscription changes.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use shared::campaign::config::LapsePolicy;
use shared::domain::customer::{EmailStatus, OrderRecord, Profile};
use shared::domain::engagement::PageKind;
use shared::domain::experiment::Group;
use shared::domain::hygiene::Address;
use shared::domain::metrics::{counter, CohortKey};
use shared::domain::money::Money;
use shared::domain::reward::{RedeemError, Reward, RewardCode};
use shared::domain::sequence::{
    activity_effect, cohort_campaign, ActivityEffect, Enrollment, ExitReason, Flow, Status,
};
use shared::events::BusEvent;
use shared::fitted::lapse_policy;
use shared::ports::{Claimed, StoreError};

use crate::http::{json_error, json_response};
use crate::{report, Deps, HttpRequest, HttpResponse, SAVE_ATTEMPTS};

/// How far in the future `occurred_at` may lie (clock skew between shop and AWS).
const FUTURE_TOLERANCE_HOURS: i64 = 24;
/// Orders this long after winning back count a customer as still active.
const STILL_ACTIVE_DAYS: i64 = 90;

/// The kinds of activity (the domain's).
pub(crate) use shared::domain::sequence::ActivityKind as Kind;

/// Personal fields the shop may send along.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProfileFields {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// The platform says the customer does not (or no longer) want marketing email: an opt-out
    /// is applied, never an opt-in (only the customer's own links resubscribe nobody either).
    pub marketing_opt_out: bool,
    /// `profile.birthday`: `YYYY-MM-DD` or `--MM-DD`.
    pub birthday: Option<shared::domain::celebration::Birthday>,
    /// `profile.renewal_due_at`: when the subscription next renews (an RFC 3339 time or a date).
    pub renewal_due_at: Option<DateTime<Utc>>,
}

/// A validated activity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Activity {
    pub event_id: String,
    pub customer_id: String,
    pub kind: Kind,
    pub occurred_at: DateTime<Utc>,
    pub amount: Option<(Money, String)>,
    pub reward_code: Option<String>,
    /// The shop's reference of the order (what it reserved the code with); the event id when
    /// the shop sends none.
    pub order_ref: Option<String>,
    pub product: Option<String>,
    pub category: Option<String>,
    /// Which page a `page_view` was.
    pub page_kind: Option<PageKind>,
    pub profile: ProfileFields,
}

/// A field that is missing or wrong, and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

fn text<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    field: &str,
    max: usize,
    required: bool,
) -> Result<Option<&'a str>, Invalid> {
    match obj.get(name) {
        None | Some(Value::Null) if required => Err(invalid(field, format!("{field} is missing"))),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                Err(invalid(field, format!("{field} is empty")))
            } else if t.chars().count() > max {
                Err(invalid(
                    field,
                    format!("{field} is longer than {max} characters"),
                ))
            } else if t.chars().any(char::is_control) {
                Err(invalid(
                    field,
                    format!("{field} contains control characters"),
                ))
            } else {
                Ok(Some(t))
            }
        }
        Some(_) => Err(invalid(field, format!("{field} must be a string"))),
    }
}

/// Parses and checks a body completely, before anything is written.
pub(crate) fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Activity, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid("body", format!("the body is not JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("body", "the body must be a JSON object"))?;
    let event_id = text(obj, "event_id", "event_id", 200, true)?.unwrap_or_default();
    let customer_id = text(obj, "customer_id", "customer_id", 200, true)?.unwrap_or_default();
    let kind_text = text(obj, "type", "type", 40, true)?.unwrap_or_default();
    let kind = Kind::parse(kind_text).ok_or_else(|| {
        invalid(
            "type",
            "type must be order, login, subscription_renewed, subscription_cancelled or page_view",
        )
    })?;
    let page_kind = text(obj, "page_kind", "page_kind", 40, kind == Kind::PageView)?
        .map(|k| {
            PageKind::parse(k).ok_or_else(|| {
                invalid(
                    "page_kind",
                    format!("page_kind must be {}", PageKind::NAMES),
                )
            })
        })
        .transpose()?;
    if page_kind.is_some() && kind != Kind::PageView {
        return Err(invalid(
            "page_kind",
            "page_kind belongs to type page_view only: leave it out",
        ));
    }
    let occurred_text = text(obj, "occurred_at", "occurred_at", 64, true)?.unwrap_or_default();
    let occurred_at = DateTime::parse_from_rfc3339(occurred_text)
        .map_err(|_| {
            invalid(
                "occurred_at",
                "occurred_at must be an RFC 3339 time like 2026-11-22T10:15:00Z",
            )
        })?
        .with_timezone(&Utc);
    if occurred_at > now + Duration::hours(FUTURE_TOLERANCE_HOURS) {
        return Err(invalid(
            "occurred_at",
            "occurred_at lies in the future: send the time the activity happened",
        ));
    }

    let amount = match obj.get("amount") {
        None | Some(Value::Null) => None,
        Some(Value::Object(a)) => {
            let value = a
                .get("value")
                .ok_or_else(|| invalid("amount.value", "amount.value is missing"))?;
            let money: Money = serde_json::from_value(value.clone()).map_err(|_| {
                invalid(
                    "amount.value",
                    "amount.value must be a decimal string like \"12.50\"",
                )
            })?;
            if money.0 < 0 {
                return Err(invalid("amount.value", "amount.value must not be negative"));
            }
            let currency = text(a, "currency", "amount.currency", 3, true)?.unwrap_or_default();
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(invalid(
                    "amount.currency",
                    "amount.currency must be an ISO 4217 code like EUR",
                ));
            }
            Some((money, currency.to_string()))
        }
        Some(_) => {
            return Err(invalid(
                "amount",
                "amount must be an object {\"value\": \"12.50\", \"currency\": \"EUR\"}",
            ))
        }
    };
    if kind == Kind::Order && amount.is_none() {
        return Err(invalid(
            "amount",
            "amount is missing: an order needs {\"value\", \"currency\"}",
        ));
    }
    let reward_code = text(obj, "reward_code", "reward_code", 64, false)?.map(str::to_string);
    let order_ref = text(obj, "order_ref", "order_ref", 200, false)?.map(str::to_string);
    let product = text(obj, "product", "product", 200, false)?.map(str::to_string);
    let category = text(obj, "category", "category", 100, false)?.map(str::to_string);

    let profile = match obj.get("profile") {
        None | Some(Value::Null) => ProfileFields::default(),
        Some(Value::Object(p)) => {
            let email = text(p, "email", "profile.email", 254, false)?
                .map(|e| {
                    Address::parse(e)
                        .map_err(|why| invalid("profile.email", format!("profile.email: {why}")))
                })
                .transpose()?;
            let locale = text(p, "locale", "profile.locale", 35, false)?;
            if let Some(l) = locale {
                if !l
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(invalid(
                        "profile.locale",
                        "profile.locale must be a language tag like sv-SE",
                    ));
                }
            }
            let time_zone = text(p, "time_zone", "profile.time_zone", 64, false)?;
            if let Some(tz) = time_zone {
                if tz.parse::<shared::domain::zone::Zone>().is_err() {
                    return Err(invalid(
                        "profile.time_zone",
                        "profile.time_zone must be an IANA zone like Europe/Berlin",
                    ));
                }
            }
            let birthday = text(p, "birthday", "profile.birthday", 10, false)?
                .map(shared::domain::celebration::Birthday::parse)
                .transpose()
                .map_err(|e| invalid("profile.birthday", format!("profile.{e}")))?;
            let renewal_due_at = text(p, "renewal_due_at", "profile.renewal_due_at", 64, false)?
                .map(|t| {
                    shared::domain::engagement::parse_renewal(t).ok_or_else(|| {
                        invalid(
                            "profile.renewal_due_at",
                            "profile.renewal_due_at must be an RFC 3339 time like 2026-11-22T10:15:00Z or a date like 2026-11-22",
                        )
                    })
                })
                .transpose()?;
            ProfileFields {
                birthday,
                renewal_due_at,
                email: email.map(|a| a.as_str().to_string()),
                first_name: text(p, "first_name", "profile.first_name", 100, false)?
                    .map(str::to_string),
                locale: locale.map(str::to_string),
                time_zone: time_zone.map(str::to_string),
                marketing_opt_out: false,
            }
        }
        Some(_) => return Err(invalid("profile", "profile must be an object")),
    };

    Ok(Activity {
        event_id: event_id.to_string(),
        customer_id: customer_id.to_string(),
        kind,
        occurred_at,
        amount,
        reward_code,
        order_ref,
        product,
        category,
        page_kind,
        profile,
    })
}

/// What the activity did to the customer's latest enrollment.
#[derive(Debug, Clone)]
enum Attribution {
    None,
    /// Won back by this activity.
    Reactivated(Enrollment),
    /// Stopped the sequence without a win (an order after the window, a "still with us" login).
    Stopped(Enrollment, ExitReason),
    /// An order after an earlier win-back.
    LaterOrder {
        enrollment: Enrollment,
        won_at: DateTime<Utc>,
    },
}

/// What happened to the reward code of an order.
#[derive(Debug, Clone)]
enum Redemption {
    None,
    Redeemed {
        reward: Box<Reward>,
        cost: Money,
    },
    Refused {
        code: String,
        status: &'static str,
        error: String,
    },
}

fn cohort(e: &Enrollment) -> CohortKey {
    e.cohort()
}

async fn attribute(
    deps: &Deps,
    a: &Activity,
) -> Result<(Attribution, Option<Enrollment>), StoreError> {
    let config = deps.campaign.config();
    // The enrollment's revenue is in the campaign currency: an order in another currency is
    // counted in its own counter (see `process`), never added to it.
    let minor = a
        .amount
        .as_ref()
        .filter(|(_, c)| c.eq_ignore_ascii_case(&config.currency))
        .map_or(0, |(m, _)| m.0);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(e) = deps
            .store
            .get_enrollment(&a.customer_id, &config.name)
            .await?
        else {
            return Ok((Attribution::None, None));
        };
        let effect = activity_effect(
            &e,
            a.kind,
            a.occurred_at,
            config.sending.attribution_days,
            &config.sending.still_with_us,
        );
        let (next, outcome) = match (effect, &e.status) {
            (ActivityEffect::WinBack, _) => {
                let Ok(mut won) = e.win_back(a.occurred_at) else {
                    return Ok((Attribution::None, Some(e)));
                };
                won.revenue_minor += minor;
                (Some(won.clone()), Attribution::Reactivated(won))
            }
            (ActivityEffect::Stop(why), _) => {
                let Ok(stopped) = e.exit(why, a.occurred_at) else {
                    return Ok((Attribution::None, Some(e)));
                };
                (Some(stopped.clone()), Attribution::Stopped(stopped, why))
            }
            // A retry of this same event after a failure further on: the win-back is already saved.
            (_, Status::WonBack { at }) if *at == a.occurred_at && a.kind == Kind::Order => {
                (None, Attribution::Reactivated(e.clone()))
            }
            (_, Status::WonBack { at }) if a.kind == Kind::Order && a.occurred_at > *at => {
                let mut later = e.clone();
                later.revenue_minor += minor;
                (
                    Some(later.clone()),
                    Attribution::LaterOrder {
                        enrollment: later,
                        won_at: *at,
                    },
                )
            }
            _ => (None, Attribution::None),
        };
        let Some(next) = next else {
            return Ok((outcome, Some(e)));
        };
        match deps.store.save_enrollment(&next).await {
            Ok(v) => {
                let mut saved = next;
                saved.version = v;
                let outcome = match outcome {
                    Attribution::Reactivated(_) => Attribution::Reactivated(saved.clone()),
                    Attribution::LaterOrder { won_at, .. } => Attribution::LaterOrder {
                        enrollment: saved.clone(),
                        won_at,
                    },
                    Attribution::Stopped(_, why) => Attribution::Stopped(saved.clone(), why),
                    Attribution::None => Attribution::None,
                };
                return Ok((outcome, Some(saved)));
            }
            Err(err) if err.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(err) => return Err(err),
        }
    }
}

async fn redeem(deps: &Deps, a: &Activity) -> Result<Redemption, StoreError> {
    let (Some(raw), Some((amount, _))) = (&a.reward_code, &a.amount) else {
        return Ok(Redemption::None);
    };
    let refused = |code: &str, status: &'static str, error: String| Redemption::Refused {
        code: code.to_string(),
        status,
        error,
    };
    let Ok(code) = RewardCode::parse(raw) else {
        return Ok(refused(raw, "unknown", "this is not a reward code".into()));
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(reward) = deps.store.get_reward(&code).await? else {
            return Ok(refused(
                code.as_str(),
                "unknown",
                "no reward has this code".into(),
            ));
        };
        // A retry of this same event after a failure further on: the redemption is already saved.
        if reward.customer_id == a.customer_id
            && reward.redeemed_at == Some(a.occurred_at)
            && reward.uses_left == 0
        {
            let cost = reward.cost_for(*amount);
            return Ok(Redemption::Redeemed {
                reward: Box::new(reward),
                cost,
            });
        }
        let order_ref = a.order_ref.as_deref().unwrap_or(&a.event_id);
        let used = match reward.redeem(&a.customer_id, order_ref, a.occurred_at) {
            Ok(r) => r,
            Err(e) => {
                let status = match e {
                    RedeemError::AlreadyRedeemed => "redeemed",
                    RedeemError::Expired => "expired",
                    RedeemError::OtherCustomer => "other_customer",
                    RedeemError::Voided => "voided",
                    RedeemError::ReservedByAnotherOrder => "reserved",
                };
                return Ok(refused(code.as_str(), status, e.to_string()));
            }
        };
        match deps.store.save_reward(&used).await {
            Ok(v) => {
                let cost = used.cost_for(*amount);
                let mut saved = used;
                saved.version = v;
                return Ok(Redemption::Redeemed {
                    reward: Box::new(saved),
                    cost,
                });
            }
            Err(err) if err.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(err) => return Err(err),
        }
    }
}

/// The next look by the scheduler of a customer no enrollment drives: when they lapse (or turn at
/// risk, or have an occasion to celebrate), or now if they have lapsed.
fn next_due(
    profile: &Profile,
    lapse: &LapsePolicy,
    config: &shared::campaign::CampaignConfig,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let tz =
        shared::domain::schedule::zone(profile.time_zone.as_deref(), &config.default_time_zone);
    shared::domain::celebration::next_look(profile, lapse, config, &tz, now)
}

fn apply(profile: &mut Profile, a: &Activity, still_with_us: &[Kind]) {
    // An erased customer's tombstone records nothing: no orders, dates or tags come back.
    if profile.erased {
        return;
    }
    {
        // Details the shop sent replace the stored ones.
        let f = &a.profile;
        for (slot, value) in [
            (&mut profile.email, &f.email),
            (&mut profile.first_name, &f.first_name),
            (&mut profile.locale, &f.locale),
            (&mut profile.time_zone, &f.time_zone),
        ] {
            if value.is_some() {
                slot.clone_from(value);
            }
        }
        if f.birthday.is_some() {
            profile.birthday = f.birthday;
        }
        if f.renewal_due_at.is_some() {
            profile.renewal_due_at = f.renewal_due_at;
        }
    }
    match a.kind {
        Kind::Order => {
            if let Some((amount, currency)) = &a.amount {
                profile.record_order_in(
                    OrderRecord {
                        at: a.occurred_at,
                        amount: *amount,
                        product: a.product.clone(),
                        category: a.category.clone(),
                        currency: None,
                    },
                    currency,
                );
            }
        }
        Kind::Profile | Kind::RenewalUpcoming => {}
        // A visit to the terms or cancellation page is an early signal (another page, nothing).
        Kind::PageView => {
            if a.page_kind.is_some_and(PageKind::is_signal) {
                profile.signal_page_viewed_at = Some(
                    profile
                        .signal_page_viewed_at
                        .map_or(a.occurred_at, |l| l.max(a.occurred_at)),
                );
            }
        }
        Kind::Login | Kind::SubscriptionRenewed | Kind::SubscriptionCancelled => {
            profile.last_activity_at = Some(
                profile
                    .last_activity_at
                    .map_or(a.occurred_at, |l| l.max(a.occurred_at)),
            );
            // A sign of life the campaign counts: the lapse clock restarts from it.
            if still_with_us.contains(&a.kind) {
                profile.still_with_us_at = Some(
                    profile
                        .still_with_us_at
                        .map_or(a.occurred_at, |l| l.max(a.occurred_at)),
                );
            }
        }
    }
    match a.kind {
        Kind::SubscriptionCancelled => {
            profile.tags.insert("subscription:cancelled".into());
        }
        Kind::SubscriptionRenewed => {
            profile.tags.remove("subscription:cancelled");
        }
        Kind::RenewalUpcoming => {
            profile.tags.insert("subscription:renewal_upcoming".into());
        }
        _ => {}
    }
    if a.kind == Kind::Order {
        profile.tags.remove("subscription:renewal_upcoming");
    }
    if a.profile.marketing_opt_out
        && matches!(
            profile.email_status,
            EmailStatus::Subscribed | EmailStatus::FewerEmails
        )
    {
        profile.email_status = EmailStatus::Unsubscribed;
    }
}

async fn update_profile(
    deps: &Deps,
    a: &Activity,
    enrollment: Option<&Enrollment>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let config = deps.campaign.config();
    // The stored customer model, read only when this activity sets a due time (not for an
    // erased customer or one an enrollment drives), once whatever the retries.
    let mut lapse: Option<LapsePolicy> = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let stored = deps.store.get_profile(&a.customer_id).await?;
        let mut p = stored
            .clone()
            .unwrap_or_else(|| Profile::new(&a.customer_id));
        apply(&mut p, a, &config.sending.still_with_us);
        if p.erased {
            p.due_at = None;
        } else if enrollment.is_none_or(|e| e.status.is_final()) {
            let policy = match lapse.take() {
                Some(policy) => policy,
                None => lapse_policy(deps.store.as_ref(), &config.name, &config.lapse).await,
            };
            p.due_at = next_due(&p, &policy, config, now);
            lapse = Some(policy);
        }
        if stored.as_ref() == Some(&p) {
            return Ok(());
        }
        match deps.store.save_profile(&p).await {
            Ok(_) => return Ok(()),
            Err(err) if err.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Does the work of a claimed event; returns the response body.
async fn process(deps: &Deps, a: &Activity, now: DateTime<Utc>) -> Result<Value, StoreError> {
    let (attribution, enrollment) = attribute(deps, a).await?;
    let redemption = redeem(deps, a).await?;
    update_profile(deps, a, enrollment.as_ref(), now).await?;

    let minor = a.amount.as_ref().map_or(0, |(m, _)| m.0);
    let currency = a.amount.as_ref().map_or_else(
        || deps.campaign.config().currency.clone(),
        |(_, c)| c.clone(),
    );
    let mut events = Vec::new();
    match &attribution {
        Attribution::Reactivated(e) => {
            let campaign_currency = &deps.campaign.config().currency;
            let mut deltas: Vec<(String, i64)> = vec![
                (counter::REACTIVATED.into(), 1),
                (
                    counter::in_currency(counter::REVENUE, &currency, campaign_currency),
                    minor,
                ),
            ];
            if let Some(step) = e.sent.last().map(|s| s.step) {
                deltas.push((counter::reactivated_after_step(step), 1));
            }
            if let Some(reason) = e.survey_reason {
                deltas.push((counter::reactivated_reason(reason), 1));
            }
            let refs: Vec<(&str, i64)> = deltas.iter().map(|(n, d)| (n.as_str(), *d)).collect();
            report::count(deps, &cohort(e), now, &refs).await?;
            let revenue = Money(minor).to_string();
            tracing::info!(
                event = "customer_reactivated",
                customer_id = %a.customer_id,
                revenue = %revenue,
                currency = %currency,
                campaign = %e.campaign,
                variant = %e.variant,
                group = e.group.as_str(),
                activity = ?a.kind,
            );
            events.push(BusEvent::CustomerReactivated {
                campaign: e.campaign.clone(),
                customer_id: a.customer_id.clone(),
                enrollment_id: e.id.clone(),
                variant: e.variant.clone(),
                revenue,
                currency: currency.clone(),
                reward_code: match &redemption {
                    Redemption::Redeemed { reward, .. } => Some(reward.code.to_string()),
                    _ => None,
                },
                at: a.occurred_at,
            });
        }
        Attribution::LaterOrder {
            enrollment: e,
            won_at,
        } => {
            let revenue_after = counter::in_currency(
                counter::REVENUE_AFTER,
                &currency,
                &deps.campaign.config().currency,
            );
            let mut deltas = vec![(revenue_after.as_str(), minor)];
            if a.occurred_at - *won_at >= Duration::days(STILL_ACTIVE_DAYS) {
                let key = still_active_key(&e.id);
                if deps
                    .store
                    .claim_key(&key, now + Duration::days(3650))
                    .await?
                    == Claimed::New
                {
                    deltas.push((counter::STILL_ACTIVE_90D, 1));
                }
            }
            report::count(deps, &cohort(e), now, &deltas).await?;
        }
        Attribution::Stopped(e, why) => {
            tracing::info!(event = "sequence_stopped", customer_id = %a.customer_id, campaign = %e.campaign, why = ?why, activity = ?a.kind);
        }
        Attribution::None => {}
    }
    let reward_json = match &redemption {
        Redemption::None => None,
        Redemption::Redeemed { reward, cost } => {
            // The reward's own enrollment says which flow's counters it belongs to.
            let flow = enrollment
                .as_ref()
                .filter(|e| e.id == reward.enrollment_id)
                .map_or(Flow::WinBack, |e| e.flow);
            let key = CohortKey {
                campaign: cohort_campaign(&reward.campaign, flow),
                variant: reward.variant.clone(),
                group: Group::Treated,
            };
            report::count(
                deps,
                &key,
                now,
                &[
                    (counter::REDEEMED, 1),
                    (
                        counter::in_currency(
                            counter::REWARD_COST,
                            &reward.currency,
                            &deps.campaign.config().currency,
                        )
                        .as_str(),
                        cost.0,
                    ),
                ],
            )
            .await?;
            tracing::info!(event = "reward_redeemed", customer_id = %a.customer_id, campaign = %reward.campaign, variant = %reward.variant, kind = reward.spec.kind.as_str());
            Some(json!({ "code": reward.code.as_str(), "status": "redeemed" }))
        }
        Redemption::Refused {
            code,
            status,
            error,
        } => {
            tracing::info!(event = "reward_refused", customer_id = %a.customer_id, code_status = *status);
            Some(
                json!({ "code": code, "status": "refused", "code_status": status, "error": error }),
            )
        }
    };
    crate::publish(deps, events, &a.customer_id, now).await;
    tracing::info!(event = "activity_recorded", customer_id = %a.customer_id, activity = ?a.kind, event_id = %a.event_id);
    let mut body = json!({
        "status": "recorded",
        "event_id": a.event_id,
        "customer_id": a.customer_id,
        "reactivated": matches!(attribution, Attribution::Reactivated(_)),
    });
    if let Some(r) = reward_json {
        body["reward"] = r;
    }
    Ok(body)
}

/// `POST /v1/activity`.
pub(crate) async fn post(
    deps: &Deps,
    req: &HttpRequest,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    if let Some(refused) = crate::refuse_unsigned_body(deps, req, now) {
        return Ok(refused);
    }
    let activity = match parse(&req.body, now) {
        Ok(a) => a,
        Err(e) => return Ok(json_error(400, &e.message, Some(&e.field))),
    };
    record(deps, &activity, now).await
}

/// Records a validated activity once per `event_id`: the shop's contract and the platforms'
/// webhooks alike.
pub(crate) async fn record(
    deps: &Deps,
    activity: &Activity,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    let key = format!("activity#{}", activity.event_id);
    match deps.store.claim_key(&key, now + crate::LEASE).await? {
        Claimed::Seen(Some(result)) => {
            let mut body: Value =
                serde_json::from_str(&result).unwrap_or_else(|_| json!({ "status": "recorded" }));
            body["duplicate"] = json!(true);
            body["customer_id"] = json!(activity.customer_id);
            if let (Some(r), Some(code)) = (body.get_mut("reward"), &activity.reward_code) {
                let code = RewardCode::parse(code).map_or_else(|_| code.clone(), |c| c.to_string());
                r["code"] = json!(code);
            }
            return Ok(json_response(200, &body));
        }
        Claimed::Seen(None) => {
            return Ok(json_error(
                409,
                &format!(
                    "event {} is being processed: retry in a moment",
                    activity.event_id
                ),
                Some("event_id"),
            ));
        }
        Claimed::New => {}
    }
    // A panic while processing gives the event back before it goes on (answered 503), so the
    // shop's retry is processed at once rather than after the lease.
    match crate::releasing_on_panic(deps, Some(&key), process(deps, activity, now)).await {
        Ok(body) => {
            // Kept 30 days by event id: without the customer id (the replay carries it), so
            // nothing in it points to a customer once they are erased.
            // Nor the reward code (the replay carries that too).
            let mut kept = body.clone();
            if let Some(o) = kept.as_object_mut() {
                o.remove("customer_id");
            }
            if let Some(r) = kept.get_mut("reward").and_then(Value::as_object_mut) {
                r.remove("code");
            }
            if let Err(e) = deps
                .store
                .record_result(&key, &kept.to_string(), now + crate::DEDUP)
                .await
            {
                tracing::warn!(event = "result_not_recorded", error = %e, event_id = %activity.event_id);
            }
            Ok(json_response(200, &body))
        }
        Err(e) => {
            if let Err(release) = deps.store.release_key(&key).await {
                tracing::error!(event = "release_failed", error = %release, event_id = %activity.event_id);
            }
            Err(e)
        }
    }
}

/// The record that an enrollment's customer was counted still active 90 days after being won
/// back (counted once).
pub(crate) fn still_active_key(enrollment_id: &str) -> String {
    format!("still-active-90d#{enrollment_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 0).unwrap()
    }

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn order() -> Value {
        json!({"event_id": "e1", "customer_id": "c1", "type": "order", "occurred_at": "2026-11-22T10:00:00Z",
               "amount": {"value": "42.50", "currency": "EUR"}})
    }

    #[test]
    fn a_complete_order_parses() {
        let a = parse(&body(order()), now()).unwrap();
        assert_eq!(a.kind, Kind::Order);
        assert_eq!(a.amount, Some((Money(4250), "EUR".into())));
    }

    #[test]
    fn each_missing_or_wrong_field_is_named() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "event_id",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("event_id");
                }),
            ),
            ("customer_id", Box::new(|v| v["customer_id"] = json!(""))),
            ("type", Box::new(|v| v["type"] = json!("refund"))),
            (
                "occurred_at",
                Box::new(|v| v["occurred_at"] = json!("yesterday")),
            ),
            (
                "occurred_at",
                Box::new(|v| v["occurred_at"] = json!("2027-01-01T00:00:00Z")),
            ),
            (
                "amount",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("amount");
                }),
            ),
            (
                "amount.value",
                Box::new(|v| v["amount"]["value"] = json!("12.345")),
            ),
            (
                "amount.value",
                Box::new(|v| v["amount"]["value"] = json!("-1")),
            ),
            (
                "amount.currency",
                Box::new(|v| v["amount"]["currency"] = json!("eur")),
            ),
            (
                "profile.email",
                Box::new(|v| v["profile"] = json!({"email": "not an address"})),
            ),
            // What the orders CSV refuses too (one parser: shared::domain::hygiene::Address).
            (
                "profile.email",
                Box::new(|v| v["profile"] = json!({"email": "a@b"})),
            ),
            (
                "profile.email",
                Box::new(|v| v["profile"] = json!({"email": "Ann <ann@example.com>"})),
            ),
            (
                "profile.email",
                Box::new(|v| v["profile"] = json!({"email": "a@[127.0.0.1]"})),
            ),
            (
                "profile.time_zone",
                Box::new(|v| v["profile"] = json!({"time_zone": "Mars/Olympus"})),
            ),
            (
                "profile.birthday",
                Box::new(|v| v["profile"] = json!({"birthday": "1990-02-30"})),
            ),
            ("profile", Box::new(|v| v["profile"] = json!("x"))),
            ("reward_code", Box::new(|v| v["reward_code"] = json!(7))),
        ];
        for (field, change) in cases {
            let mut v = order();
            change(&mut v);
            assert_eq!(parse(&body(v), now()).unwrap_err().field, field);
        }
        assert_eq!(parse(b"{not json", now()).unwrap_err().field, "body");
        assert_eq!(parse(b"[1]", now()).unwrap_err().field, "body");
    }

    #[test]
    fn logins_need_no_amount() {
        let v = json!({"event_id": "e2", "customer_id": "c1", "type": "login", "occurred_at": "2026-11-22T10:00:00Z"});
        assert_eq!(parse(&body(v), now()).unwrap().kind, Kind::Login);
    }
}
