//! Who may be enrolled, and why not.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::customer::{EmailStatus, Profile};
use super::follow_up;
use super::hygiene::{self, HygienePolicy, KeptOut};
use super::lapse::Outlook;
use super::money::{Money, Valuation};
use super::sequence::{Enrollment, ExitReason, Flow, Status};
use super::survey::{pending_resolution, Reason};

/// Why a lapsed customer is not enrolled. `retry_at` says when it may change by itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Ineligible {
    NoEmail,
    Erased,
    TooFewOrders {
        have: u32,
        need: u32,
    },
    LifetimeValueTooLow {
        have: String,
        need: String,
    },
    PredictedValueTooLow {
        have: String,
        need: String,
    },
    Unsubscribed,
    Suppressed,
    /// Sunset after a goodbye without reaction, until `until` (or an order, which lifts it).
    Sunset {
        until: DateTime<Utc>,
    },
    AlreadyEnrolled,
    ContactedRecently {
        until: DateTime<Utc>,
    },
    CoolingDown {
        until: DateTime<Utc>,
    },
    PausedReason {
        reason: Reason,
    },
    /// The address is kept out by hygiene (invalid, a role address, a disposable domain).
    Address {
        kept_out: KeptOut,
    },
    /// A person must follow up first (a detractor, a bad experience); held until they close it
    /// or `until`.
    FollowUpOpen {
        until: DateTime<Utc>,
    },
}

impl Ineligible {
    /// When to look at the customer again, if the reason can lapse by itself.
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Ineligible::ContactedRecently { until }
            | Ineligible::CoolingDown { until }
            | Ineligible::Sunset { until }
            | Ineligible::FollowUpOpen { until } => Some(*until),
            _ => None,
        }
    }

    /// The rule's name, for plans and logs.
    pub fn rule(&self) -> &'static str {
        match self {
            Ineligible::NoEmail => "no_email",
            Ineligible::Erased => "erased",
            Ineligible::TooFewOrders { .. } => "too_few_orders",
            Ineligible::LifetimeValueTooLow { .. } => "lifetime_value_too_low",
            Ineligible::PredictedValueTooLow { .. } => "predicted_value_too_low",
            Ineligible::Unsubscribed => "unsubscribed",
            Ineligible::Suppressed => "suppressed",
            Ineligible::Sunset { .. } => "sunset",
            Ineligible::AlreadyEnrolled => "already_enrolled",
            Ineligible::ContactedRecently { .. } => "contacted_recently",
            Ineligible::CoolingDown { .. } => "cooling_down",
            Ineligible::PausedReason { .. } => "paused_reason",
            Ineligible::Address { kept_out } => kept_out.rule(),
            Ineligible::FollowUpOpen { .. } => "follow_up_open",
        }
    }
}

/// The frequency cap that applies to this customer, in days.
pub fn cap_days(profile: &Profile, policy: &EligibilityPolicy) -> u32 {
    if profile.email_status == EmailStatus::FewerEmails {
        policy.fewer_emails_cap_days.max(policy.frequency_cap_days)
    } else {
        policy.frequency_cap_days
    }
}

/// When a sunset address may be enrolled again: `sunset_days` after the sunset. A sunset is a
/// decision for a while, not for ever; an order lifts it earlier (the webhook clears `sunset_at`).
pub fn sunset_until(profile: &Profile, policy: &EligibilityPolicy) -> Option<DateTime<Utc>> {
    profile
        .sunset_at
        .map(|at| at + Duration::days(i64::from(policy.sunset_days)))
}

/// Whether a lapsed customer may be enrolled now, given their latest enrollment in this campaign.
pub fn check(
    profile: &Profile,
    latest: Option<&Enrollment>,
    policy: &EligibilityPolicy,
    now: DateTime<Utc>,
) -> Result<(), Ineligible> {
    check_flow(profile, latest, policy, Flow::WinBack, now)
}

/// Whether a customer may be enrolled in `flow` now, with the value the customer model predicts
/// for them ([`check_flow`], then [`check_value`]): what the scheduler and `winback plan` ask.
pub fn check_enrollment(
    profile: &Profile,
    latest: Option<&Enrollment>,
    policy: &EligibilityPolicy,
    flow: Flow,
    outlook: Option<&Outlook>,
    valuation: &Valuation,
    now: DateTime<Utc>,
) -> Result<(), Ineligible> {
    check_flow(profile, latest, policy, flow, now)?;
    check_value(profile, outlook, policy, valuation)
}

/// Value targeting, in the campaign currency: a customer whose lifetime value is below
/// `min_lifetime_value`, or whose predicted 12-month value is below `min_predicted_value`, is kept
/// out. Amounts in other currencies count at the configured exchange rates; when one has no rate
/// (or there is no outlook: the threshold rule, no orders) there is nothing to compare and the
/// rule does not apply: money in two currencies is never compared as one.
pub fn check_value(
    profile: &Profile,
    outlook: Option<&Outlook>,
    policy: &EligibilityPolicy,
    valuation: &Valuation,
) -> Result<(), Ineligible> {
    if let Some(have) = profile.lifetime_value_in(valuation) {
        if have < policy.min_lifetime_value {
            return Err(Ineligible::LifetimeValueTooLow {
                have: have.to_string(),
                need: policy.min_lifetime_value.to_string(),
            });
        }
    }
    let home = profile.currency.as_deref().unwrap_or(valuation.currency);
    let predicted = outlook
        .filter(|_| policy.min_predicted_value.0 > 0)
        .and_then(|o| valuation.convert(Money(o.predicted_value.round() as i64), home));
    if let Some(have) = predicted {
        if have < policy.min_predicted_value {
            return Err(Ineligible::PredictedValueTooLow {
                have: have.to_string(),
                need: policy.min_predicted_value.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether a customer may be enrolled in `flow` now. The same rules for both flows, except that
/// an at-risk enrollment that ended does not hold back the win-back one once they lapse (only
/// the frequency cap does): the flows follow each other.
pub fn check_flow(
    profile: &Profile,
    latest: Option<&Enrollment>,
    policy: &EligibilityPolicy,
    flow: Flow,
    now: DateTime<Utc>,
) -> Result<(), Ineligible> {
    if profile.erased {
        return Err(Ineligible::Erased);
    }
    match profile.email_status {
        EmailStatus::Unsubscribed => return Err(Ineligible::Unsubscribed),
        EmailStatus::Suppressed => return Err(Ineligible::Suppressed),
        _ => {}
    }
    if let Some(until) = sunset_until(profile, policy).filter(|u| now < *u) {
        return Err(Ineligible::Sunset { until });
    }
    if let Some(until) = follow_up::holds_until(profile, policy.follow_up_pause_days, now) {
        return Err(Ineligible::FollowUpOpen { until });
    }
    let Some(email) = &profile.email else {
        return Err(Ineligible::NoEmail);
    };
    if let Err(kept_out) = hygiene::assess(email, &policy.hygiene) {
        return Err(Ineligible::Address { kept_out });
    }
    if profile.order_count < policy.min_orders {
        return Err(Ineligible::TooFewOrders {
            have: profile.order_count,
            need: policy.min_orders,
        });
    }
    if let Some(reason) = policy
        .paused_reasons
        .iter()
        .copied()
        .find(|r| profile.tags.contains(&r.tag()) && !profile.resolved_reasons.contains(r))
    {
        return Err(Ineligible::PausedReason { reason });
    }
    if let Some(e) = latest {
        if !e.status.is_final() {
            return Err(Ineligible::AlreadyEnrolled);
        }
        if let Some(last) = e.last_sent_at() {
            let until = last + Duration::days(i64::from(cap_days(profile, policy)));
            if now < until {
                return Err(Ineligible::ContactedRecently { until });
            }
        }
        // Paused over a reason the shop has since fixed: no cooldown before telling them.
        let fixed_pause = matches!(
            e.status,
            Status::Exited {
                reason: ExitReason::Paused,
                ..
            }
        ) && pending_resolution(profile).is_some();
        let after_at_risk =
            e.flow == Flow::AtRisk && matches!(flow, Flow::WinBack | Flow::ReEngagement);
        // A birthday or anniversary is not held back by the cooldown of another flow, and does
        // not hold one back: only the frequency cap spaces them.
        let celebration = flow == Flow::Celebration || e.flow == Flow::Celebration;
        if let Some(ended) = e
            .ended_at()
            .filter(|_| !fixed_pause && !after_at_risk && !celebration)
        {
            let until = ended + Duration::days(i64::from(policy.cooldown_days));
            if now < until {
                return Err(Ineligible::CoolingDown { until });
            }
        }
    }
    Ok(())
}

/// Who may be enrolled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EligibilityPolicy {
    pub min_orders: u32,
    /// Minimum lifetime value, in the campaign currency ("25.00"); orders in other currencies
    /// count at `[exchange_rates]`, and a customer with orders in a currency without a rate is
    /// not compared.
    pub min_lifetime_value: Money,
    /// Minimum value the customer model predicts for the next 12 months, in the campaign currency
    /// ("0" = no minimum): focus the rewards on the lapsed customers worth winning back. A value
    /// in another currency is converted at `[exchange_rates]`, or not compared without a rate;
    /// applies only under a fitted model.
    #[serde(default)]
    pub min_predicted_value: Money,
    /// No email within this many days of the previous one.
    pub frequency_cap_days: u32,
    /// The cap for customers who asked for fewer emails.
    pub fewer_emails_cap_days: u32,
    /// Days after a finished enrollment before a customer may be enrolled again.
    pub cooldown_days: u32,
    /// Days a sunset address (a goodbye without reaction) stays out of this campaign; an order
    /// lifts it earlier.
    #[serde(default = "default_sunset_days")]
    pub sunset_days: u32,
    /// Survey reasons that pause the campaign for a customer until the marketer marks them resolved.
    #[serde(default)]
    pub paused_reasons: Vec<Reason>,
    /// The template (`templates/<locale>/<name>.*`) of the email that tells a customer paused
    /// over a reason that it is fixed (`winback resolve`); it replaces step 1 of their next
    /// enrollment. Without it, step 1's own template is sent (it sees `resolved` too).
    #[serde(default)]
    pub resolved_template: Option<String>,
    /// Which addresses are kept out before the first send (role addresses, disposable domains):
    /// `[eligibility.hygiene]`. See [`crate::domain::hygiene`].
    #[serde(default)]
    pub hygiene: HygienePolicy,
    /// Days a customer's emails pause after a follow-up opens (a detractor, a bad experience)
    /// unless a person closes it sooner.
    #[serde(default = "default_follow_up_pause_days")]
    pub follow_up_pause_days: u32,
}

fn default_follow_up_pause_days() -> u32 {
    14
}

fn default_sunset_days() -> u32 {
    180
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::testing::example_campaign;
    use crate::domain::customer::OrderRecord;
    use crate::domain::experiment::Group;
    use crate::domain::money::Money;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
    }

    fn good_customer() -> Profile {
        let mut p = Profile::new("c1");
        p.email = Some("a@example.com".into());
        for m in 1..=3 {
            p.record_order(OrderRecord {
                at: Utc.with_ymd_and_hms(2026, m, 1, 0, 0, 0).unwrap(),
                amount: Money(4000),
                product: None,
                category: None,
                currency: None,
            });
        }
        p
    }

    #[test]
    fn a_good_lapsed_customer_is_eligible() {
        let c = example_campaign();
        assert_eq!(check(&good_customer(), None, &c.eligibility, now()), Ok(()));
    }

    #[test]
    fn role_disposable_and_invalid_addresses_are_kept_out_unless_the_campaign_allows_them() {
        let mut c = example_campaign();
        for (address, rule) in [
            ("sales@shop.example", "role_address"),
            ("ann@yopmail.com", "disposable_domain"),
            ("ann@localhost", "invalid_address"),
        ] {
            let mut p = good_customer();
            p.email = Some(address.into());
            let why = check(&p, None, &c.eligibility, now()).unwrap_err();
            assert_eq!(why.rule(), rule, "{address}");
        }
        c.eligibility.hygiene.allow = vec!["shop.example".into()];
        let mut p = good_customer();
        p.email = Some("sales@shop.example".into());
        assert_eq!(check(&p, None, &c.eligibility, now()), Ok(()));
    }

    #[test]
    fn each_rule_keeps_the_right_customers_out() {
        let c = example_campaign();
        let pol = &c.eligibility;
        let mut p = good_customer();
        p.email_status = EmailStatus::Unsubscribed;
        assert_eq!(check(&p, None, pol, now()), Err(Ineligible::Unsubscribed));
        let mut p = good_customer();
        p.email_status = EmailStatus::Suppressed;
        assert_eq!(check(&p, None, pol, now()), Err(Ineligible::Suppressed));
        let mut p = good_customer();
        p.sunset_at = Some(now());
        let until = now() + Duration::days(i64::from(pol.sunset_days));
        assert_eq!(
            check(&p, None, pol, now()),
            Err(Ineligible::Sunset { until })
        );
        assert_eq!(
            check(&p, None, pol, until - Duration::seconds(1))
                .unwrap_err()
                .retry_at(),
            Some(until)
        );
        // A sunset is for a while: once it has run its time the customer may come back in.
        assert_eq!(check(&p, None, pol, until), Ok(()));
        let mut p = good_customer();
        p.email = None;
        assert_eq!(check(&p, None, pol, now()), Err(Ineligible::NoEmail));
        let mut p = good_customer();
        p.tags.insert(Reason::Quality.tag());
        assert_eq!(
            check(&p, None, pol, now()),
            Err(Ineligible::PausedReason {
                reason: Reason::Quality
            })
        );
        p.resolved_reasons.insert(Reason::Quality);
        assert_eq!(check(&p, None, pol, now()), Ok(()));
        let mut p = good_customer();
        let opened = now() - Duration::days(2);
        follow_up::open(
            &mut p,
            "example",
            crate::domain::survey::FollowUp::Detractor,
            Some(2),
            None,
            opened,
        );
        let until = opened + Duration::days(i64::from(pol.follow_up_pause_days));
        assert_eq!(
            check(&p, None, pol, now()),
            Err(Ineligible::FollowUpOpen { until })
        );
        assert_eq!(
            check(&p, None, pol, until),
            Ok(()),
            "the pause lapses by itself"
        );
        follow_up::close(&mut p, now());
        assert_eq!(check(&p, None, pol, now()), Ok(()), "a person closed it");
    }

    #[test]
    fn an_ended_at_risk_flow_holds_back_another_but_not_the_win_back() {
        let c = example_campaign();
        let p = good_customer();
        let mut e = Enrollment::start("c1", &c, 1, Group::Treated, "a", now())
            .record_sent(1, now(), None, &c)
            .unwrap()
            .win_back(now())
            .unwrap();
        e.flow = Flow::AtRisk;
        let later = now() + Duration::days(30);
        assert_eq!(
            check_flow(&p, Some(&e), &c.eligibility, Flow::WinBack, later),
            Ok(())
        );
        assert!(matches!(
            check_flow(&p, Some(&e), &c.eligibility, Flow::AtRisk, later),
            Err(Ineligible::CoolingDown { .. })
        ));
        // The frequency cap still applies.
        assert!(matches!(
            check_flow(
                &p,
                Some(&e),
                &c.eligibility,
                Flow::WinBack,
                now() + Duration::days(1)
            ),
            Err(Ineligible::ContactedRecently { .. })
        ));
    }

    #[test]
    fn a_customer_paused_over_a_fixed_reason_skips_the_cooldown_once() {
        let c = example_campaign();
        let mut p = good_customer();
        p.tags.insert(Reason::Quality.tag());
        let e = Enrollment::start("c1", &c, 1, Group::Treated, "a", now())
            .record_sent(1, now(), None, &c)
            .unwrap()
            .exit(ExitReason::Paused, now())
            .unwrap();
        let later = now() + Duration::days(10);
        assert!(matches!(
            check(&p, Some(&e), &c.eligibility, later),
            Err(Ineligible::PausedReason { .. })
        ));
        crate::domain::survey::resolve(&mut p, Reason::Quality, "fixed", later);
        assert_eq!(check(&p, Some(&e), &c.eligibility, later), Ok(()));
        // Once told, the usual cooldown applies again.
        p.told_resolved.insert(Reason::Quality);
        assert!(matches!(
            check(&p, Some(&e), &c.eligibility, later),
            Err(Ineligible::CoolingDown { .. })
        ));
    }

    #[test]
    fn enrolled_recently_contacted_and_cooling_down_customers_wait() {
        let c = example_campaign();
        let p = good_customer();
        let e = Enrollment::start("c1", &c, 1, Group::Treated, "a", now());
        assert_eq!(
            check(&p, Some(&e), &c.eligibility, now()),
            Err(Ineligible::AlreadyEnrolled)
        );
        let e = e
            .record_sent(1, now(), None, &c)
            .unwrap()
            .win_back(now())
            .unwrap();
        let r = check(&p, Some(&e), &c.eligibility, now() + Duration::days(1));
        assert!(
            matches!(r, Err(Ineligible::ContactedRecently { .. })),
            "{r:?}"
        );
        let r = check(&p, Some(&e), &c.eligibility, now() + Duration::days(60));
        assert!(matches!(r, Err(Ineligible::CoolingDown { .. })), "{r:?}");
        let later = now() + Duration::days(i64::from(c.eligibility.cooldown_days) + 1);
        assert_eq!(check(&p, Some(&e), &c.eligibility, later), Ok(()));
    }

    #[test]
    fn value_targeting_keeps_out_the_low_predicted_value_in_the_campaign_currency_only() {
        let mut c = example_campaign();
        c.eligibility.min_predicted_value = Money(5000);
        let p = good_customer();
        let outlook = |value: f64| Outlook {
            p_active: 0.2,
            p_order: 0.1,
            expected_next_order_at: now(),
            predicted_value: value,
            expected_orders_12m: 1.0,
        };
        let low = outlook(1234.0);
        let high = outlook(9000.0);
        let ask_with = |c: &crate::campaign::CampaignConfig, p: &Profile, o: Option<&Outlook>| {
            check_enrollment(
                p,
                None,
                &c.eligibility,
                Flow::WinBack,
                o,
                &c.valuation(),
                now(),
            )
        };
        let ask = |p: &Profile, o: Option<&Outlook>| ask_with(&c, p, o);
        assert_eq!(
            ask(&p, Some(&low)),
            Err(Ineligible::PredictedValueTooLow {
                have: "12.34".into(),
                need: "50.00".into()
            })
        );
        assert_eq!(ask(&p, Some(&high)), Ok(()));
        // No outlook (the threshold rule): nothing to compare.
        assert_eq!(ask(&p, None), Ok(()));
        // Orders in another currency are never compared with the campaign's without a rate...
        let mut sek = p.clone();
        sek.currency = Some("SEK".into());
        assert_eq!(ask(&sek, Some(&low)), Ok(()));
        // ...and at the configured rate with one: 9000.00 SEK at 0.087 is 7.83 EUR.
        let mut rated = c.clone();
        rated.exchange_rates.insert("SEK".into(), 0.087);
        assert_eq!(
            ask_with(&rated, &sek, Some(&high)),
            Err(Ineligible::PredictedValueTooLow {
                have: "7.83".into(),
                need: "50.00".into()
            })
        );
        // The other rules come first.
        let mut gone = p.clone();
        gone.email_status = EmailStatus::Unsubscribed;
        assert_eq!(ask(&gone, Some(&low)), Err(Ineligible::Unsubscribed));
        // No minimum: everyone passes.
        let mut none = c.clone();
        none.eligibility.min_predicted_value = Money(0);
        assert_eq!(ask_with(&none, &p, Some(&low)), Ok(()));
    }

    #[test]
    fn the_lifetime_value_minimum_counts_other_currencies_only_at_a_configured_rate() {
        let mut c = example_campaign();
        c.eligibility.min_lifetime_value = Money(10000);
        let mut p = Profile::new("c1");
        p.email = Some("ann@example.com".into());
        let order = |day: u32, amount: i64, currency: &str| OrderRecord {
            at: Utc.with_ymd_and_hms(2025, 6, day, 10, 0, 0).unwrap(),
            amount: Money(amount),
            product: None,
            category: None,
            currency: Some(currency.into()),
        };
        p.record_order(order(1, 6000, "EUR"));
        p.record_order(order(2, 50000, "SEK"));
        let ask = |c: &crate::campaign::CampaignConfig, p: &Profile| {
            check_enrollment(
                p,
                None,
                &c.eligibility,
                Flow::WinBack,
                None,
                &c.valuation(),
                now(),
            )
        };
        // 60 EUR and 500 SEK are never added up: no rate, no comparison.
        assert_eq!(ask(&c, &p), Ok(()));
        // 500 SEK at 0.087 is 43.50 EUR: 103.50 in all.
        let mut rated = c.clone();
        rated.exchange_rates.insert("SEK".into(), 0.087);
        assert_eq!(ask(&rated, &p), Ok(()));
        rated.exchange_rates.insert("SEK".into(), 0.05);
        assert_eq!(
            ask(&rated, &p),
            Err(Ineligible::LifetimeValueTooLow {
                have: "85.00".into(),
                need: "100.00".into()
            })
        );
        // In the campaign currency alone it is compared as before.
        let mut eur = Profile::new("c2");
        eur.email = Some("bo@example.com".into());
        eur.record_order(order(1, 6000, "EUR"));
        assert!(matches!(
            ask(&c, &eur),
            Err(Ineligible::LifetimeValueTooLow { .. })
        ));
    }
}
