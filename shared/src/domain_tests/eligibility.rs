//! Tests of `domain::eligibility` that need the shipped example campaign (which the domain crate
//! cannot build: the campaign file is parsed here, in `shared`).

use crate::campaign::testing::example_campaign;
use crate::domain::customer::OrderRecord;
use crate::domain::customer::{EmailStatus, Profile};
use crate::domain::eligibility::*;
use crate::domain::experiment::Group;
use crate::domain::follow_up;
use crate::domain::lapse::Outlook;
use crate::domain::money::Money;
use crate::domain::sequence::{Enrollment, ExitReason, Flow};
use crate::domain::survey::Reason;
use chrono::TimeZone;
use chrono::{DateTime, Duration, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

fn good_customer() -> Profile {
    let mut p = Profile::new("c1".parse().unwrap());
    p.email = Some("a@example.com".into());
    for m in 1..=3 {
        p.record_order(super::order_at(
            Utc.with_ymd_and_hms(2026, m, 1, 0, 0, 0).unwrap(),
            4000,
        ));
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
    let mut e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, Group::Treated, "a", now())
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
    let e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, Group::Treated, "a", now())
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
    let e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, Group::Treated, "a", now());
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
        horizon_days: 90.0,
        basis: Default::default(),
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
    let mut p = Profile::new("c1".parse().unwrap());
    p.email = Some("ann@example.com".into());
    let order = |day: u32, amount: i64, currency: &str| OrderRecord {
        at: Utc.with_ymd_and_hms(2025, 6, day, 10, 0, 0).unwrap(),
        amount: Money(amount),
        product: None,
        category: None,
        currency: Some(currency.into()),
        order_id: None,
        refunded: Default::default(),
        refund_ids: Vec::new(),
        lines: Vec::new(),
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
    let mut eur = Profile::new("c2".parse().unwrap());
    eur.email = Some("bo@example.com".into());
    eur.record_order(order(1, 6000, "EUR"));
    assert!(matches!(
        ask(&c, &eur),
        Err(Ineligible::LifetimeValueTooLow { .. })
    ));
}
