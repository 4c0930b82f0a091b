//! What the shop's activity (an order, a login, a renewal, a page view), a survey answer and an
//! erasure do to a customer: pure decisions over what the webhook has read, which it then writes
//! (the shape of [`super::send::decide`]). The time is passed in.
//!
//! An activity changes three things, each saved on its own with a versioned write: the latest
//! enrollment ([`attribute`]), the reward of an order's code ([`redeem`]) and the profile
//! ([`profile`]). What follows from those (the counters and the events) is [`decide`]d last.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::celebration::Birthday;
use super::customer::{EmailStatus, OrderLine, OrderRecord, Profile, ORDER_LINES};
use super::due::{self, Watch};
use super::edge::{CustomerId, Locale};
use super::engagement::PageKind;
use super::events::BusEvent;
use super::experiment::Group;
use super::hygiene::EmailAddress;
use super::lapse::LapsePolicy;
use super::metrics::{counter, CohortKey};
use super::money::{Currency, Money};
use super::refund::{self, Refunded};
use super::reward::{RedeemError, Reward, RewardCode};
use super::sequence::{self, Attribution, CountedOrder, Enrollment, Flow};
use super::survey::{Answer, FollowUp, Reason};
use super::zone::Zone;

/// The kinds of activity.
pub use super::sequence::ActivityKind as Kind;

/// An order this long after the win-back counts the customer as still active (once).
pub const STILL_ACTIVE_AFTER: Duration = Duration::days(90);

/// The tag of a customer whose subscription is cancelled.
pub const TAG_CANCELLED: &str = "subscription:cancelled";
/// The tag of a customer whose subscription renews soon.
pub const TAG_RENEWAL_UPCOMING: &str = "subscription:renewal_upcoming";

/// Personal fields the shop may send along.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileFields {
    pub email: Option<EmailAddress>,
    pub first_name: Option<String>,
    pub locale: Option<Locale>,
    pub time_zone: Option<Zone>,
    /// The platform says the customer does not (or no longer) want marketing email: an opt-out
    /// is applied, never an opt-in (only the customer's own links resubscribe nobody either).
    pub marketing_opt_out: bool,
    /// `profile.birthday`: `YYYY-MM-DD` or `--MM-DD`.
    pub birthday: Option<Birthday>,
    /// `profile.renewal_due_at`: when the subscription next renews (an RFC 3339 time or a date).
    pub renewal_due_at: Option<DateTime<Utc>>,
}

/// Where an order id comes from, so equal ids of two systems never meet: the platform whose
/// webhook (or import) named it, or [`SHOP`] for the shop's own (the activity contract and the
/// orders CSV).
pub mod source {
    pub const SHOP: &str = "shop";
    pub const SHOPIFY: &str = "shopify";
    pub const WOOCOMMERCE: &str = "woocommerce";
    pub const STRIPE: &str = "stripe";
}

/// A validated activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub event_id: String,
    /// Where `order_id` comes from ([`source`]).
    pub source: &'static str,
    pub customer_id: CustomerId,
    pub kind: Kind,
    pub occurred_at: DateTime<Utc>,
    pub amount: Option<(Money, Currency)>,
    pub reward_code: Option<String>,
    /// The shop's reference of the order (what it reserved the code with); the event id when
    /// the shop sends none.
    pub order_ref: Option<String>,
    /// The shop's id of the order, the one its refunds and cancellations name (see
    /// [`Activity::order_key`]); for a refund, the order refunded.
    pub order_id: Option<String>,
    /// What a refund takes back of order `order_id`.
    pub refunded: Option<Refunded>,
    pub product: Option<String>,
    pub category: Option<String>,
    /// An order's lines (the whole basket), when the shop sends them.
    pub lines: Vec<OrderLine>,
    /// Which page a `page_view` was.
    pub page_kind: Option<PageKind>,
    pub profile: ProfileFields,
}

impl Activity {
    /// `kind` activity with no amount, code, order reference, product or page: set those that
    /// apply (`Activity { amount, ..Activity::new(…) }`).
    pub fn new(
        event_id: String,
        customer_id: CustomerId,
        kind: Kind,
        occurred_at: DateTime<Utc>,
        profile: ProfileFields,
    ) -> Activity {
        Activity {
            event_id,
            source: source::SHOP,
            customer_id,
            kind,
            occurred_at,
            amount: None,
            reward_code: None,
            order_ref: None,
            order_id: None,
            refunded: None,
            product: None,
            category: None,
            lines: Vec::new(),
            page_kind: None,
            profile,
        }
    }

    /// The key an order is remembered by, for its refunds: `order_id`, else `order_ref`, else
    /// the event id.
    pub fn order_key(&self) -> &str {
        self.order_id
            .as_deref()
            .or(self.order_ref.as_deref())
            .unwrap_or(&self.event_id)
    }
}

/// What the campaign says about activity.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// The campaign's currency: revenue in another is counted in its own counters.
    pub currency: &'a str,
    /// How long after an email an order counts as won back.
    pub attribution_days: u32,
    /// The activity that counts as a sign of life (`sending.still_with_us`).
    pub still_with_us: &'a [Kind],
    /// What a profile's next look watches for.
    pub watch: Watch<'a>,
}

/// What activity `a` does to the customer's latest enrollment `e`: the enrollment to save
/// (`None`: nothing to write) and the attribution ([`sequence::attribute`]). The enrollment's
/// revenue is in the campaign currency: an order in another currency adds nothing to it.
pub fn attribute(
    e: &Enrollment,
    a: &Activity,
    policy: &Policy<'_>,
) -> (Option<Enrollment>, Attribution) {
    if let (Kind::Refund, Some(refunded)) = (a.kind, &a.refunded) {
        return refund::enrollment(
            e,
            a.order_key(),
            refunded,
            a.occurred_at,
            policy.attribution_days,
            policy.currency,
        )
        .map_or((None, Attribution::None), |(saved, taken)| {
            (Some(saved), taken)
        });
    }
    let minor = a
        .amount
        .as_ref()
        .filter(|(_, c)| c.eq_ignore_ascii_case(policy.currency))
        .map_or(0, |(m, _)| m.0);
    let order = match (a.kind, &a.amount) {
        (Kind::Order, Some((amount, currency))) => Some(CountedOrder {
            order_id: a.order_key().to_string(),
            at: a.occurred_at,
            minor: amount.0,
            currency: currency.to_string(),
            refunded_minor: 0,
            refund_ids: Vec::new(),
        }),
        _ => None,
    };
    sequence::attribute(
        e,
        a.kind,
        a.occurred_at,
        minor,
        order,
        policy.attribution_days,
        policy.still_with_us,
    )
}

/// What happened to the reward code of an order.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    None,
    Redeemed {
        reward: Box<Reward>,
        cost: Money,
    },
    /// Not redeemable: `status` says why in the activity response (`redeemed`, `expired`,
    /// `other_customer`, `voided`, `reserved`, `unknown`).
    Refused {
        code: String,
        status: &'static str,
        error: String,
    },
}

impl Redemption {
    fn refused(code: &str, status: &'static str, error: impl Into<String>) -> Redemption {
        Redemption::Refused {
            code: code.to_string(),
            status,
            error: error.into(),
        }
    }
}

/// The reward code an order redeems: `Ok(None)` when there is none (or no order total), `Err`
/// with the refusal when it is no reward code at all.
pub fn reward_code(a: &Activity) -> Result<Option<RewardCode>, Redemption> {
    let (Some(raw), Some(_)) = (&a.reward_code, &a.amount) else {
        return Ok(None);
    };
    RewardCode::parse(raw)
        .map(Some)
        .map_err(|_| Redemption::refused(raw, "unknown", "this is not a reward code"))
}

/// What order `a` does to the reward `stored` under `code` (`None`: no reward has it): the
/// reward to save (`None`: nothing to write) and the redemption. A retry of the same order
/// finds its redemption saved and answers it again.
pub fn redeem(
    stored: Option<&Reward>,
    code: &RewardCode,
    a: &Activity,
) -> (Option<Reward>, Redemption) {
    let Some(reward) = stored else {
        return (
            None,
            Redemption::refused(code.as_str(), "unknown", "no reward has this code"),
        );
    };
    let amount = a.amount.as_ref().map_or(Money(0), |(m, _)| *m);
    if reward.customer_id == a.customer_id.as_str()
        && reward.redeemed_at == Some(a.occurred_at)
        && reward.uses_left == 0
    {
        let cost = reward.cost_for(amount);
        let reward = Box::new(reward.clone());
        return (None, Redemption::Redeemed { reward, cost });
    }
    let order_ref = a.order_ref.as_deref().unwrap_or(&a.event_id);
    match reward.redeem(&a.customer_id, order_ref, a.occurred_at) {
        Ok(used) => {
            let cost = used.cost_for(amount);
            let reward = Box::new(used.clone());
            (Some(used), Redemption::Redeemed { reward, cost })
        }
        Err(e) => {
            let status = match e {
                RedeemError::AlreadyRedeemed => "redeemed",
                RedeemError::Expired => "expired",
                RedeemError::OtherCustomer => "other_customer",
                RedeemError::Voided => "voided",
                RedeemError::ReservedByAnotherOrder => "reserved",
            };
            (
                None,
                Redemption::refused(code.as_str(), status, e.to_string()),
            )
        }
    }
}

/// What an activity does to the stored profile.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileChange {
    /// The profile's next due time needs the campaign's stored customer model: read it and ask
    /// again.
    NeedsFittedLapse,
    /// Nothing changes.
    Keep,
    /// Save this profile.
    Save(Box<Profile>),
}

/// What activity `a` does to the customer's profile `stored` (`None`: none yet, one is made),
/// given their latest enrollment: the details and the order are recorded, and a customer no
/// live enrollment drives gets their next due time (which needs `lapse`, the campaign's lapse
/// policy with its fitted model). An erased customer's tombstone records nothing and is never
/// due.
pub fn profile(
    stored: Option<&Profile>,
    a: &Activity,
    enrollment: Option<&Enrollment>,
    lapse: Option<&LapsePolicy>,
    policy: &Policy<'_>,
    now: DateTime<Utc>,
) -> ProfileChange {
    let mut p = stored
        .cloned()
        .unwrap_or_else(|| Profile::new(a.customer_id.clone()));
    apply(&mut p, a, policy.still_with_us);
    if p.erased {
        p.due_at = None;
    } else if enrollment.is_none_or(|e| e.status.is_final()) {
        let Some(lapse) = lapse else {
            return ProfileChange::NeedsFittedLapse;
        };
        p.due_at = due::next_due(&p, lapse, policy.watch, now);
    }
    if stored == Some(&p) {
        ProfileChange::Keep
    } else {
        ProfileChange::Save(Box::new(p))
    }
}

/// The later of a stored time and `at`.
fn latest(stored: Option<DateTime<Utc>>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(stored.map_or(at, |l| l.max(at)))
}

fn apply(profile: &mut Profile, a: &Activity, still_with_us: &[Kind]) {
    // An erased customer's tombstone records nothing: no orders, dates or tags come back.
    if profile.erased {
        return;
    }
    apply_fields(profile, &a.profile, a.occurred_at);
    match a.kind {
        Kind::Order => {
            if let Some((amount, currency)) = &a.amount {
                let first = a.lines.first();
                profile.record_order_in(
                    OrderRecord {
                        at: a.occurred_at,
                        amount: *amount,
                        product: a.product.clone().or(first.map(|l| l.product.clone())),
                        category: a
                            .category
                            .clone()
                            .or(first.and_then(|l| l.category.clone())),
                        currency: None,
                        order_id: Some(a.order_key().to_string()),
                        refunded: Money::ZERO,
                        refund_ids: Vec::new(),
                        lines: a.lines.iter().take(ORDER_LINES).cloned().collect(),
                    },
                    currency,
                );
            }
            profile.tags.remove(TAG_RENEWAL_UPCOMING);
        }
        // The order's value comes off; a cancelled one is as if never placed.
        Kind::Refund => {
            if let Some(refunded) = &a.refunded {
                refund::profile(profile, a.order_key(), refunded);
            }
        }
        Kind::Profile => {}
        Kind::RenewalUpcoming => {
            profile.tags.insert(TAG_RENEWAL_UPCOMING.into());
        }
        // A visit to the terms or cancellation page is an early signal (another page, nothing).
        Kind::PageView => {
            if a.page_kind.is_some_and(PageKind::is_signal) {
                profile.signal_page_viewed_at =
                    latest(profile.signal_page_viewed_at, a.occurred_at);
            }
        }
        Kind::Login | Kind::SubscriptionRenewed | Kind::SubscriptionCancelled => {
            profile.last_activity_at = latest(profile.last_activity_at, a.occurred_at);
            // A sign of life the campaign counts: the lapse clock restarts from it.
            if still_with_us.contains(&a.kind) {
                profile.still_with_us_at = latest(profile.still_with_us_at, a.occurred_at);
            }
            match a.kind {
                Kind::SubscriptionCancelled => {
                    profile.tags.insert(TAG_CANCELLED.into());
                }
                Kind::SubscriptionRenewed => {
                    profile.tags.remove(TAG_CANCELLED);
                }
                _ => {}
            }
        }
    }
    if a.profile.marketing_opt_out && profile.email_status.moves_to(EmailStatus::Unsubscribed) {
        profile.email_status = EmailStatus::Unsubscribed;
    }
}

/// Details the shop sent as of `at` replace the stored ones, unless the stored ones are newer:
/// webhooks arrive out of order (a retry, a slow queue), and an update of the 20th arriving after
/// one of the 22nd must not bring the old address back.
fn apply_fields(profile: &mut Profile, f: &ProfileFields, at: DateTime<Utc>) {
    let carries_details = f.email.is_some()
        || f.first_name.is_some()
        || f.locale.is_some()
        || f.time_zone.is_some()
        || f.birthday.is_some()
        || f.renewal_due_at.is_some();
    if !carries_details || profile.details_at.is_some_and(|newer| newer > at) {
        return;
    }
    profile.details_at = Some(at);
    for (slot, value) in [
        (&mut profile.email, f.email.as_ref().map(|e| e.to_string())),
        (&mut profile.first_name, f.first_name.clone()),
        (
            &mut profile.locale,
            f.locale.as_ref().map(|l| l.to_string()),
        ),
        (
            &mut profile.time_zone,
            f.time_zone.as_ref().map(|z| z.to_string()),
        ),
    ] {
        if value.is_some() {
            *slot = value;
        }
    }
    if f.birthday.is_some() {
        profile.birthday = f.birthday;
    }
    if f.renewal_due_at.is_some() {
        profile.renewal_due_at = f.renewal_due_at;
    }
}

/// What the counters and events of an activity are decided from: what was saved.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub activity: &'a Activity,
    /// What the activity did to the latest enrollment ([`attribute`]).
    pub attribution: &'a Attribution,
    /// What it did to the order's reward code ([`redeem`]).
    pub redemption: &'a Redemption,
    /// The customer's latest enrollment, as saved.
    pub enrollment: Option<&'a Enrollment>,
    /// Whether this is the first order counted still active after [`STILL_ACTIVE_AFTER`] in the
    /// enrollment (`None`: not looked up yet; the record is kept once claimed).
    pub first_still_active: Option<bool>,
    /// Whether this is the first order counted late (after the attribution window, within the
    /// pulled-forward horizon) for the enrollment (`None`: not looked up yet; the record is kept
    /// once claimed).
    pub first_late_order: Option<bool>,
}

/// A read (and claim) the decision needs before it can say more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Claim the record that enrollment `enrollment_id`'s customer was counted still active.
    StillActive { enrollment_id: String },
    /// Claim the record that enrollment `enrollment_id`'s customer was counted as ordering late.
    LateOrder { enrollment_id: String },
}

/// Counter changes in one cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub cohort: CohortKey,
    pub deltas: Vec<(String, i64)>,
}

/// What follows from an activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Counter changes, in order.
    pub counts: Vec<Count>,
    /// Counter changes kept on the day the enrollment began, not today: what a cohort of
    /// enrollments did over a horizon ([`counter::ORDERED_LATE`]).
    pub by_enrollment_day: Vec<(NaiveDate, Count)>,
    /// The events to publish.
    pub events: Vec<BusEvent>,
    /// The activity won the customer back.
    pub reactivated: bool,
}

/// What the decision says.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Look this up, then decide again.
    Look(Lookup),
    /// Count and publish this.
    Record(Outcome),
}

/// Decides which counters and events follow from what an activity changed. Revenue is counted
/// in the order's currency (the campaign's counters, or the currency's own).
pub fn decide(facts: &Facts<'_>, policy: &Policy<'_>) -> Decision {
    let a = facts.activity;
    let minor = a.amount.as_ref().map_or(0, |(m, _)| m.0);
    let currency = a
        .amount
        .as_ref()
        .map_or(policy.currency, |(_, c)| c.as_str());
    let mut out = Outcome {
        counts: Vec::new(),
        by_enrollment_day: Vec::new(),
        events: Vec::new(),
        reactivated: false,
    };
    match facts.attribution {
        Attribution::Reactivated(e) => {
            let mut deltas = vec![
                (counter::REACTIVATED.to_string(), 1),
                (
                    counter::in_currency(counter::REVENUE, currency, policy.currency),
                    minor,
                ),
            ];
            if let Some(step) = e.sent.last().map(|s| s.step) {
                deltas.push((counter::reactivated_after_step(step), 1));
            }
            if let Some(reason) = e.survey_reason {
                deltas.push((counter::reactivated_reason(reason), 1));
            }
            out.counts.push(Count {
                cohort: e.cohort(),
                deltas,
            });
            out.events.push(BusEvent::CustomerReactivated {
                campaign: e.campaign.clone(),
                customer_id: a.customer_id.clone(),
                enrollment_id: e.id.clone(),
                variant: e.variant.clone(),
                revenue: Money(minor).to_string(),
                currency: currency.to_string(),
                reward_code: match facts.redemption {
                    Redemption::Redeemed { reward, .. } => Some(reward.code.to_string()),
                    _ => None,
                },
                at: a.occurred_at,
            });
            out.reactivated = true;
        }
        Attribution::LaterOrder { enrollment, won_at } => {
            let revenue_after =
                counter::in_currency(counter::REVENUE_AFTER, currency, policy.currency);
            let mut deltas = vec![(revenue_after, minor)];
            if a.occurred_at - *won_at >= STILL_ACTIVE_AFTER {
                match facts.first_still_active {
                    None => {
                        return Decision::Look(Lookup::StillActive {
                            enrollment_id: enrollment.id.clone(),
                        })
                    }
                    Some(true) => deltas.push((counter::STILL_ACTIVE_90D.to_string(), 1)),
                    Some(false) => {}
                }
            }
            out.counts.push(Count {
                cohort: enrollment.cohort(),
                deltas,
            });
        }
        Attribution::Refunded { enrollment, taken } => {
            let base = if taken.from_win {
                counter::REVENUE
            } else {
                counter::REVENUE_AFTER
            };
            let mut deltas = vec![
                (
                    counter::in_currency(base, &taken.currency, policy.currency),
                    -taken.minor,
                ),
                (
                    counter::in_currency(counter::REFUNDED, &taken.currency, policy.currency),
                    taken.minor,
                ),
            ];
            if taken.win_taken_back {
                deltas.push((counter::REACTIVATED.to_string(), -1));
                deltas.push((counter::WINS_REFUNDED.to_string(), 1));
                if let Some(step) = enrollment.sent.last().map(|s| s.step) {
                    deltas.push((counter::reactivated_after_step(step), -1));
                }
                if let Some(reason) = enrollment.survey_reason {
                    deltas.push((counter::reactivated_reason(reason), -1));
                }
                out.events.push(BusEvent::WinTakenBack {
                    campaign: enrollment.campaign.clone(),
                    customer_id: a.customer_id.clone(),
                    enrollment_id: enrollment.id.clone(),
                    variant: enrollment.variant.clone(),
                    at: a.occurred_at,
                });
            }
            out.counts.push(Count {
                cohort: enrollment.cohort(),
                deltas,
            });
        }
        Attribution::Stopped(..) | Attribution::None => {}
    }
    // An order after the attribution window of an enrollment it did not win, within the
    // pulled-forward horizon: the first is counted on the enrollment's day, so the program's
    // figures can tell orders merely pulled forward ([`crate::figures::PulledForward`]).
    if let Some(e) = facts.enrollment.filter(|e| {
        a.kind == Kind::Order && ordered_late(e, a.occurred_at, policy.attribution_days)
    }) {
        match facts.first_late_order {
            None => {
                return Decision::Look(Lookup::LateOrder {
                    enrollment_id: e.id.clone(),
                })
            }
            Some(true) => out.by_enrollment_day.push((
                e.enrolled_at.date_naive(),
                Count {
                    cohort: e.cohort(),
                    deltas: vec![(counter::ORDERED_LATE.to_string(), 1)],
                },
            )),
            Some(false) => {}
        }
    }
    if let Redemption::Redeemed { reward, cost } = facts.redemption {
        // The reward's own enrollment says which flow's counters it belongs to.
        let flow = facts
            .enrollment
            .filter(|e| e.id == reward.enrollment_id)
            .map_or(Flow::WinBack, |e| e.flow);
        out.counts.push(Count {
            cohort: CohortKey::of(&reward.campaign, flow, &reward.variant, Group::Treated),
            deltas: vec![
                (counter::REDEEMED.to_string(), 1),
                (
                    counter::in_currency(counter::REWARD_COST, &reward.currency, policy.currency),
                    cost.0,
                ),
            ],
        });
    }
    Decision::Record(out)
}

/// Whether an order at `at` is a late one for enrollment `e`: `e` was not won back, and the
/// order came after its attribution window, within [`crate::figures::PULLED_FORWARD_DAYS`] more.
fn ordered_late(e: &Enrollment, at: DateTime<Utc>, attribution_days: u32) -> bool {
    let window = Duration::days(i64::from(attribution_days));
    let horizon = window + Duration::days(crate::figures::PULLED_FORWARD_DAYS as i64);
    let since = at - e.enrolled_at;
    !matches!(e.status, sequence::Status::WonBack { .. }) && since > window && since <= horizon
}

/// What a survey answer changed, as saved.
#[derive(Debug, Clone, Copy)]
pub struct AnswerFacts<'a> {
    pub customer_id: &'a CustomerId,
    pub campaign: &'a str,
    pub answer: Answer,
    /// The enrollment the email belonged to before and after the answer, when it was still the
    /// latest and the answer changed it.
    pub enrollment: Option<(&'a Enrollment, &'a Enrollment)>,
    /// The answer changed the profile.
    pub profile_changed: bool,
}

/// What follows from a survey answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    /// The counters of the enrollment's cohort.
    pub count: Option<Count>,
    /// A person should follow the customer up, for this.
    pub follow_up: Option<FollowUp>,
    /// `SurveyAnswered`, when the answer changed anything.
    pub event: Option<BusEvent>,
}

/// Decides which counters, follow-up and event follow from a survey answer at `now`.
pub fn answered(facts: &AnswerFacts<'_>, now: DateTime<Utc>) -> Answered {
    let (reason, nps): (Option<Reason>, Option<u8>) = match facts.answer {
        Answer::Reason(r) => (Some(r), None),
        Answer::Nps(s) => (None, Some(s)),
    };
    let count = facts.enrollment.map(|(before, after)| Count {
        cohort: after.cohort(),
        deltas: before.answer_deltas(facts.answer),
    });
    let follow_up = facts
        .enrollment
        .and_then(|(before, _)| facts.answer.new_follow_up(before.survey_reason, before.nps));
    let event =
        (facts.enrollment.is_some() || facts.profile_changed).then(|| BusEvent::SurveyAnswered {
            campaign: facts.campaign.to_string(),
            customer_id: facts.customer_id.clone(),
            reason,
            nps,
            at: now,
        });
    Answered {
        count,
        follow_up,
        event,
    }
}

/// What erasure does to a stored profile: the tombstone to save (`None`: it is one already).
pub fn erase(stored: &Profile) -> Option<Profile> {
    if stored.is_tombstone() {
        return None;
    }
    let mut p = stored.clone();
    p.erase_personal_data();
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reward::{RewardKind, RewardSpec};
    use crate::sequence::{ExitReason, Status};
    use chrono::TimeZone;
    use serde_json::json;
    use std::collections::BTreeMap;

    const CUSTOMER: &str = "c-1";

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, day, 9, 0, 0).unwrap()
    }

    fn policy() -> Policy<'static> {
        Policy {
            currency: "EUR",
            attribution_days: 14,
            still_with_us: &[Kind::SubscriptionRenewed],
            watch: Watch::LAPSE_ONLY,
        }
    }

    fn lapse() -> LapsePolicy {
        serde_json::from_value(json!({
            "multiplier": 2.0, "default_days": 60.0, "prior_weight": 1.0,
            "min_days": 14.0, "max_days": 365.0, "model": "threshold",
        }))
        .unwrap()
    }

    /// Enrolled on May 1st (round 1, variant `a`), step 1 sent, in `status`.
    fn enrollment(status: Value) -> Enrollment {
        serde_json::from_value(json!({
            "customer_id": CUSTOMER, "campaign": "example", "id": "c-1#example#1", "version": 3,
            "round": 1, "group": "treated", "variant": "a", "enrolled_at": at(1),
            "status": status, "sent": [{"step": 1, "at": at(1)}],
        }))
        .unwrap()
    }

    use serde_json::Value;

    fn activity(kind: Kind, when: DateTime<Utc>, amount: Option<(&str, &str)>) -> Activity {
        Activity {
            event_id: "ev-1".into(),
            source: source::SHOP,
            customer_id: CustomerId::parse(CUSTOMER).unwrap(),
            kind,
            occurred_at: when,
            amount: amount.map(|(m, c)| (Money::parse(m).unwrap(), Currency::parse(c).unwrap())),
            reward_code: None,
            order_ref: None,
            order_id: None,
            refunded: None,
            product: None,
            category: None,
            lines: Vec::new(),
            page_kind: None,
            profile: ProfileFields::default(),
        }
    }

    fn reward() -> Reward {
        let spec = RewardSpec {
            amounts: Default::default(),
            kind: RewardKind::AmountOff,
            value: Some(Money(1000)),
            product: None,
            orders: None,
            validity_days: 30,
        };
        let code = RewardCode::from_entropy([7; 8]);
        Reward::issue(
            code,
            spec,
            &CUSTOMER.parse().unwrap(),
            "example",
            "c-1#example#1",
            "a",
            1,
            "EUR",
            at(1),
        )
    }

    fn record(d: Decision) -> Outcome {
        match d {
            Decision::Record(o) => o,
            Decision::Look(l) => panic!("asked for {l:?}"),
        }
    }

    #[test]
    fn a_cancelled_win_is_taken_back_from_the_counters_and_the_profile_and_its_code_stays_used() {
        let e = enrollment(json!({"state": "active", "next_step": 2}));
        let mut order = activity(Kind::Order, at(5), Some(("42.50", "EUR")));
        order.order_id = Some("5001".into());
        let (won, _) = attribute(&e, &order, &policy());
        let won = won.unwrap();
        assert_eq!(
            won.orders.len(),
            1,
            "the win's order is remembered for its refunds"
        );
        let ProfileChange::Save(p) =
            profile(None, &order, Some(&won), Some(&lapse()), &policy(), at(5))
        else {
            panic!("the order is recorded")
        };

        let mut cancel = activity(Kind::Refund, at(7), None);
        cancel.event_id = "ev-2".into();
        cancel.order_id = Some("5001".into());
        cancel.refunded = Some(Refunded::Whole);
        let (saved, attribution) = attribute(&won, &cancel, &policy());
        let saved = saved.expect("the enrollment changes");
        assert!(matches!(
            saved.status,
            Status::Exited {
                reason: ExitReason::Refunded,
                ..
            }
        ));
        let facts = Facts {
            activity: &cancel,
            attribution: &attribution,
            redemption: &Redemption::None,
            enrollment: Some(&saved),
            first_still_active: None,
            first_late_order: None,
        };
        let out = record(decide(&facts, &policy()));
        let deltas: BTreeMap<_, _> = out.counts[0].deltas.iter().cloned().collect();
        assert_eq!(deltas[counter::REACTIVATED], -1);
        assert_eq!(deltas[counter::REVENUE], -4250);
        assert_eq!(deltas[counter::WINS_REFUNDED], 1);
        assert_eq!(deltas[&counter::reactivated_after_step(1)], -1);
        assert!(matches!(out.events[..], [BusEvent::WinTakenBack { .. }]));
        assert!(!out.reactivated);

        let change = profile(
            Some(&p),
            &cancel,
            Some(&saved),
            Some(&lapse()),
            &policy(),
            at(7),
        );
        let ProfileChange::Save(after) = change else {
            panic!("the order comes off: {change:?}")
        };
        assert_eq!(after.order_count, 0);
        assert_eq!(after.lifetime_value, Money::ZERO);
        assert_eq!(after.last_order_at, None);

        let (again, _) = attribute(&saved, &cancel, &policy());
        assert!(again.is_none(), "a replayed cancellation changes nothing");
    }

    #[test]
    fn a_partial_refund_of_a_later_order_takes_only_its_amount_off_the_later_revenue() {
        let won = enrollment(json!({"state": "won_back", "at": at(5)}));
        let mut later = activity(Kind::Order, at(9), Some(("20.00", "EUR")));
        later.order_ref = Some("chk-9".into());
        let (saved, _) = attribute(&won, &later, &policy());
        let saved = saved.unwrap();
        let mut part = activity(Kind::Refund, at(10), None);
        part.order_ref = Some("chk-9".into());
        part.refunded = Some(Refunded::This(Money(500)));
        let (after, attribution) = attribute(&saved, &part, &policy());
        let after = after.unwrap();
        assert!(matches!(after.status, Status::WonBack { .. }));
        let facts = Facts {
            activity: &part,
            attribution: &attribution,
            redemption: &Redemption::None,
            enrollment: Some(&after),
            first_still_active: None,
            first_late_order: None,
        };
        let out = record(decide(&facts, &policy()));
        assert_eq!(
            out.counts[0].deltas,
            vec![
                (counter::REVENUE_AFTER.to_string(), -500),
                (counter::REFUNDED.to_string(), 500)
            ]
        );
        assert!(out.events.is_empty());
    }

    #[test]
    fn an_order_in_the_window_wins_back_and_counts_revenue_and_the_redeemed_code() {
        let e = enrollment(json!({"state": "active", "next_step": 2}));
        let mut a = activity(Kind::Order, at(5), Some(("42.50", "EUR")));
        let (saved, attribution) = attribute(&e, &a, &policy());
        let saved = saved.expect("the win is saved");
        assert_eq!(saved.status, Status::WonBack { at: at(5) });
        assert_eq!(saved.revenue_minor, 4250);

        let stored = reward();
        a.reward_code = Some(stored.code.to_string());
        let code = reward_code(&a).unwrap().unwrap();
        let (used, redemption) = redeem(Some(&stored), &code, &a);
        assert_eq!(used.as_ref().map(|r| r.uses_left), Some(0));
        assert!(matches!(
            redemption,
            Redemption::Redeemed {
                cost: Money(1000),
                ..
            }
        ));

        let facts = Facts {
            activity: &a,
            attribution: &attribution,
            redemption: &redemption,
            enrollment: Some(&saved),
            first_still_active: None,
            first_late_order: None,
        };
        let out = record(decide(&facts, &policy()));
        assert!(out.reactivated);
        assert_eq!(out.counts.len(), 2, "the win, then the redemption");
        let win = &out.counts[0].deltas;
        assert!(win.contains(&(counter::REACTIVATED.to_string(), 1)));
        assert!(win.contains(&(counter::REVENUE.to_string(), 4250)));
        assert!(win.contains(&(counter::reactivated_after_step(1), 1)));
        assert_eq!(out.counts[1].cohort, saved.cohort());
        assert!(out.counts[1]
            .deltas
            .contains(&(counter::REDEEMED.to_string(), 1)));
        match &out.events[..] {
            [BusEvent::CustomerReactivated {
                revenue,
                currency,
                reward_code,
                ..
            }] => {
                assert_eq!(revenue, "42.50");
                assert_eq!(currency, "EUR");
                assert_eq!(reward_code.as_deref(), Some(code.as_str()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_order_in_another_currency_wins_back_but_keeps_its_revenue_apart() {
        let e = enrollment(json!({"state": "active", "next_step": 2}));
        let a = activity(Kind::Order, at(5), Some(("10.00", "SEK")));
        let (saved, attribution) = attribute(&e, &a, &policy());
        assert_eq!(saved.unwrap().revenue_minor, 0);
        let facts = Facts {
            activity: &a,
            attribution: &attribution,
            redemption: &Redemption::None,
            enrollment: None,
            first_still_active: None,
            first_late_order: None,
        };
        let out = record(decide(&facts, &policy()));
        let revenue = counter::in_currency(counter::REVENUE, "SEK", "EUR");
        assert_ne!(revenue, counter::REVENUE);
        assert!(out.counts[0].deltas.contains(&(revenue, 1000)));
    }

    #[test]
    fn a_later_order_after_90_days_is_counted_still_active_once() {
        let won = enrollment(json!({"state": "won_back", "at": at(2)}));
        let a = activity(
            Kind::Order,
            at(2) + STILL_ACTIVE_AFTER,
            Some(("5.00", "EUR")),
        );
        let (saved, attribution) = attribute(&won, &a, &policy());
        assert_eq!(saved.unwrap().revenue_minor, 500);
        let mut facts = Facts {
            activity: &a,
            attribution: &attribution,
            redemption: &Redemption::None,
            enrollment: None,
            first_still_active: None,
            first_late_order: None,
        };
        assert_eq!(
            decide(&facts, &policy()),
            Decision::Look(Lookup::StillActive {
                enrollment_id: won.id.clone()
            })
        );
        facts.first_still_active = Some(true);
        let first = record(decide(&facts, &policy()));
        assert!(!first.reactivated);
        assert!(first.events.is_empty());
        assert!(first.counts[0]
            .deltas
            .contains(&(counter::STILL_ACTIVE_90D.to_string(), 1)));
        facts.first_still_active = Some(false);
        let again = record(decide(&facts, &policy()));
        assert_eq!(
            again.counts[0].deltas,
            vec![(counter::REVENUE_AFTER.to_string(), 500)]
        );
    }

    #[test]
    fn the_first_order_after_the_window_within_the_horizon_is_counted_late_on_the_enrollment_day() {
        // Held out on May 1st, window closed without an order; orders on day 30 and day 60.
        let closed = enrollment(json!({"state": "closed", "at": at(15)}));
        let a = activity(Kind::Order, at(31), Some(("5.00", "EUR")));
        let (saved, attribution) = attribute(&closed, &a, &policy());
        assert_eq!(saved, None);
        let mut facts = Facts {
            activity: &a,
            attribution: &attribution,
            redemption: &Redemption::None,
            enrollment: Some(&closed),
            first_still_active: None,
            first_late_order: None,
        };
        assert_eq!(
            decide(&facts, &policy()),
            Decision::Look(Lookup::LateOrder {
                enrollment_id: closed.id.clone()
            })
        );
        facts.first_late_order = Some(true);
        let first = record(decide(&facts, &policy()));
        assert_eq!(
            first.by_enrollment_day,
            vec![(
                at(1).date_naive(),
                Count {
                    cohort: closed.cohort(),
                    deltas: vec![(counter::ORDERED_LATE.to_string(), 1)],
                }
            )]
        );
        facts.first_late_order = Some(false);
        assert!(record(decide(&facts, &policy()))
            .by_enrollment_day
            .is_empty());
        // Not late: an order of a won enrollment, a refund, one past the horizon (14 + 90 days).
        let won = enrollment(json!({"state": "won_back", "at": at(2)}));
        let refund = activity(Kind::Refund, at(31), None);
        let beyond = activity(Kind::Order, at(1) + Duration::days(105), None);
        for (e, a) in [(&won, &a), (&closed, &refund), (&closed, &beyond)] {
            let facts = Facts {
                activity: a,
                attribution: &Attribution::None,
                redemption: &Redemption::None,
                enrollment: Some(e),
                first_still_active: Some(false),
                first_late_order: None,
            };
            assert!(record(decide(&facts, &policy()))
                .by_enrollment_day
                .is_empty());
        }
        // One the day the horizon ends still counts.
        let last = activity(Kind::Order, at(1) + Duration::days(104), None);
        facts.activity = &last;
        facts.first_late_order = None;
        assert!(matches!(
            decide(&facts, &policy()),
            Decision::Look(Lookup::LateOrder { .. })
        ));
    }

    #[test]
    fn a_still_with_us_renewal_stops_the_sequence_and_restarts_the_lapse_clock() {
        let e = enrollment(json!({"state": "active", "next_step": 2}));
        let a = activity(Kind::SubscriptionRenewed, at(6), None);
        let (saved, attribution) = attribute(&e, &a, &policy());
        assert!(matches!(
            attribution,
            Attribution::Stopped(_, ExitReason::StillWithUs)
        ));
        let mut p = Profile::new(CUSTOMER.parse().unwrap());
        p.tags.insert(TAG_CANCELLED.into());
        let ProfileChange::Save(after) = profile(
            Some(&p),
            &a,
            saved.as_ref(),
            Some(&lapse()),
            &policy(),
            at(6),
        ) else {
            panic!("the renewal is recorded");
        };
        assert_eq!(after.still_with_us_at, Some(at(6)));
        assert_eq!(after.last_activity_at, Some(at(6)));
        assert!(!after.tags.contains(TAG_CANCELLED));
        let facts = Facts {
            activity: &a,
            attribution: &attribution,
            redemption: &Redemption::None,
            enrollment: saved.as_ref(),
            first_still_active: None,
            first_late_order: None,
        };
        let out = record(decide(&facts, &policy()));
        assert!(out.counts.is_empty() && out.events.is_empty() && !out.reactivated);
    }

    #[test]
    fn the_profile_reads_the_customer_model_only_when_no_live_enrollment_drives_it() {
        let a = activity(Kind::Order, at(5), Some(("20.00", "EUR")));
        let live = enrollment(json!({"state": "active", "next_step": 2}));
        let ProfileChange::Save(p) = profile(None, &a, Some(&live), None, &policy(), at(5)) else {
            panic!("a new profile is saved");
        };
        assert_eq!(p.order_count, 1);
        assert_eq!(p.due_at, None, "the enrollment drives this customer");
        assert_eq!(
            profile(None, &a, None, None, &policy(), at(5)),
            ProfileChange::NeedsFittedLapse
        );
        let ProfileChange::Save(p) = profile(None, &a, None, Some(&lapse()), &policy(), at(5))
        else {
            panic!("a new profile is saved");
        };
        assert!(p.due_at.is_some_and(|d| d > at(5)));
        // The same order again changes nothing.
        assert_eq!(
            profile(Some(&p), &a, None, Some(&lapse()), &policy(), at(5)),
            ProfileChange::Keep
        );
    }

    #[test]
    fn an_erased_customer_records_nothing_and_is_never_due() {
        let mut tombstone = Profile::new(CUSTOMER.parse().unwrap());
        tombstone.erase_personal_data();
        assert_eq!(erase(&tombstone), None, "erasing again writes nothing");
        let mut a = activity(Kind::RenewalUpcoming, at(5), None);
        a.profile.first_name = Some("Ada".into());
        assert_eq!(
            profile(Some(&tombstone), &a, None, None, &policy(), at(5)),
            ProfileChange::Keep
        );
        let mut p = Profile::new(CUSTOMER.parse().unwrap());
        p.first_name = Some("Ada".into());
        p.due_at = Some(at(9));
        let erased = erase(&p).unwrap();
        assert!(erased.is_tombstone());
        assert_eq!(erased.due_at, None);
        // A tombstone that somehow kept a due time loses it at the next activity.
        let mut stale = erased.clone();
        stale.due_at = Some(at(9));
        let ProfileChange::Save(after) = profile(Some(&stale), &a, None, None, &policy(), at(5))
        else {
            panic!("the due time goes");
        };
        assert_eq!(after.due_at, None);
        assert!(after.is_tombstone());
    }

    #[test]
    fn subscription_signals_tag_the_profile_until_an_order_or_renewal() {
        let mut p = Profile::new(CUSTOMER.parse().unwrap());
        let step = |p: &Profile, kind| match profile(
            Some(p),
            &activity(kind, at(5), None),
            None,
            Some(&lapse()),
            &policy(),
            at(5),
        ) {
            ProfileChange::Save(p) => *p,
            _ => p.clone(),
        };
        p = step(&p, Kind::RenewalUpcoming);
        assert!(p.tags.contains(TAG_RENEWAL_UPCOMING));
        p = step(&p, Kind::SubscriptionCancelled);
        assert!(p.tags.contains(TAG_CANCELLED));
        assert_eq!(
            p.still_with_us_at, None,
            "a cancellation is no sign of life"
        );
        let order = activity(Kind::Order, at(6), Some(("1.00", "EUR")));
        if let ProfileChange::Save(after) =
            profile(Some(&p), &order, None, Some(&lapse()), &policy(), at(6))
        {
            p = *after;
        }
        assert!(!p.tags.contains(TAG_RENEWAL_UPCOMING));
        assert!(p.tags.contains(TAG_CANCELLED));
        p = step(&p, Kind::SubscriptionRenewed);
        assert!(!p.tags.contains(TAG_CANCELLED));
    }

    #[test]
    fn a_retried_order_finds_its_redemption_saved_and_other_codes_are_refused() {
        let mut a = activity(Kind::Order, at(5), Some(("30.00", "EUR")));
        assert_eq!(reward_code(&a), Ok(None), "no code");
        a.reward_code = Some("nonsense".into());
        assert!(matches!(
            reward_code(&a),
            Err(Redemption::Refused {
                status: "unknown",
                ..
            })
        ));
        let stored = reward();
        let code = stored.code.clone();
        let (_, unknown) = redeem(None, &code, &a);
        assert!(matches!(
            unknown,
            Redemption::Refused {
                status: "unknown",
                ..
            }
        ));
        let (used, _) = redeem(Some(&stored), &code, &a);
        let used = used.unwrap();
        let (write, again) = redeem(Some(&used), &code, &a);
        assert_eq!(write, None, "the retry writes nothing");
        assert!(matches!(again, Redemption::Redeemed { .. }));
        let mut other = a.clone();
        other.occurred_at = at(6);
        let (write, refused) = redeem(Some(&used), &code, &other);
        assert_eq!(write, None);
        assert!(matches!(
            refused,
            Redemption::Refused {
                status: "redeemed",
                ..
            }
        ));
    }

    #[test]
    fn an_answer_is_counted_on_its_enrollment_and_published_when_it_changed_anything() {
        let before = enrollment(json!({"state": "active", "next_step": 2}));
        let answer = Answer::Reason(Reason::Quality);
        let after = before.answered(answer, false, at(3)).unwrap();
        let facts = AnswerFacts {
            customer_id: &CUSTOMER.parse().unwrap(),
            campaign: "example",
            answer,
            enrollment: Some((&before, &after)),
            profile_changed: true,
        };
        let out = answered(&facts, at(3));
        let count = out.count.expect("counted in the enrollment's cohort");
        assert_eq!(count.cohort, after.cohort());
        assert_eq!(count.deltas, before.answer_deltas(answer));
        assert_eq!(out.follow_up, answer.new_follow_up(None, None));
        assert!(matches!(
            out.event,
            Some(BusEvent::SurveyAnswered {
                reason: Some(Reason::Quality),
                nps: None,
                ..
            })
        ));
        let nothing = answered(
            &AnswerFacts {
                enrollment: None,
                profile_changed: false,
                ..facts
            },
            at(3),
        );
        assert_eq!(
            nothing,
            Answered {
                count: None,
                follow_up: None,
                event: None
            }
        );
    }
}
