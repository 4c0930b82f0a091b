//! What templates see (the [`EmailContext`]) and what rendering gives back.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::locale::{describe_reward, format_date};
use crate::domain::reward::{Reward, RewardKind, RewardSpec};
use crate::domain::survey::{Reason, Resolved};
use crate::domain::zone::Zone;

/// Everything an email template may use. Every field is always present; optional ones are
/// `none` in the template, so `{% if first_name %}` is how a template offers a fallback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmailContext {
    pub first_name: Option<String>,
    /// The product of the customer's most recent order that names one.
    pub last_product: Option<String>,
    /// The category of the customer's most recent order that names one.
    pub last_category: Option<String>,
    /// What the customer bought most (the most units over their recent orders' lines).
    pub favourite_product: Option<String>,
    /// The first order's date, written for the customer's locale (see [`format_date`]).
    pub customer_since: String,
    pub years_as_customer: u32,
    /// Whole months since the first order (not the remainder after the years).
    pub months_as_customer: u32,
    pub order_count: u32,
    /// The reward this email carries, if the step has one.
    pub reward: Option<RewardView>,
    /// One link per survey reason; empty when the step does not ask why they left.
    pub survey: Vec<SurveyLink>,
    /// One link per NPS score 0–10; empty when the step does not ask.
    pub nps: Vec<NpsLink>,
    pub unsubscribe_url: String,
    pub fewer_emails_url: String,
    /// Whether the email offers "fewer emails": not to a customer who already chose it (see
    /// `domain::send::email_for`); the shipped layout then offers "unsubscribe" only.
    pub offer_fewer_emails: bool,
    pub shop_url: String,
    pub shop_name: String,
    /// 1-based number of this step.
    pub step: u8,
    pub total_steps: u8,
    /// The experiment variant's copy tweak, if it has one.
    pub variant_copy: Option<String>,
    /// In the celebration flow: `birthday` or `anniversary` (of the first order).
    pub occasion: Option<String>,
    /// The customer's kind of inactivity when enrolled (`never_opened`, `opened_not_clicked`,
    /// `clicked_not_bought`, `buys_less_often`), when one sets them apart: the copy speaks to it.
    pub segment: Option<String>,
    /// The customer's answer to "why did you stop?" (`too_expensive`, `bad_experience`,
    /// `hard_to_understand`, `forgot`, `quality`, `other`), once they have given one: the steps
    /// after the answer speak to it.
    pub reason: Option<String>,
    /// A paused reason the shop has fixed (`reason`, `note`), in the email that says so.
    pub resolved: Option<Resolved>,
}

/// A reward as an email shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RewardView {
    pub code: String,
    /// `amount_off`, `percent_off`, `free_shipping`, `free_product`, `consultation`, `multi_order`.
    pub kind: String,
    /// What it gives, localized (see [`describe_reward`]).
    pub description: String,
    /// The last day it can be used, localized, in the customer's time zone.
    pub expires_on: String,
    /// Whole days from today to that day, in the customer's time zone.
    pub days_left: u32,
    /// The reward button's link: the checkout with the code applied (`[checkout]`), else the
    /// shop's URL.
    pub url: String,
}

impl RewardView {
    /// The view of an issued reward for a customer in `locale` and `time_zone`, as of `now`, its
    /// button going to `url` ([`crate::domain::reward::checkout_url`]).
    pub fn new(
        reward: &Reward,
        locale: &str,
        time_zone: &Zone,
        now: DateTime<Utc>,
        url: String,
    ) -> RewardView {
        let today = time_zone.date(now);
        let last_day = time_zone.date(reward.expires_at);
        RewardView {
            code: reward.code.to_string(),
            kind: reward.spec.kind.as_str().to_string(),
            description: describe_reward(&reward.spec, &reward.currency, locale),
            expires_on: format_date(last_day, locale),
            days_left: u32::try_from((last_day - today).num_days()).unwrap_or(0),
            url,
        }
    }
}

/// A one-click answer to "why did you stop?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveyLink {
    /// The reason's name (`too_expensive`, …); templates turn it into a localized label.
    pub reason: String,
    pub url: String,
}

/// A one-click NPS answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NpsLink {
    pub score: u8,
    pub url: String,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// One line, trimmed.
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// A context in which every optional field is filled and every list has items: rendering each
/// template with it at load time finds unknown variables in every branch that uses data.
pub(crate) fn full_sample(locale: &str, reward_kind: RewardKind) -> EmailContext {
    let spec = sample_spec(reward_kind);
    let expires = NaiveDate::from_ymd_opt(2026, 3, 14).expect("valid date");
    EmailContext {
        first_name: Some("Alex".into()),
        last_product: Some("Ethiopia Yirgacheffe 500 g".into()),
        last_category: Some("coffee".into()),
        favourite_product: Some("Ethiopia Yirgacheffe 500 g".into()),
        customer_since: format_date(
            NaiveDate::from_ymd_opt(2023, 5, 2).expect("valid date"),
            locale,
        ),
        years_as_customer: 2,
        months_as_customer: 34,
        order_count: 7,
        reward: Some(RewardView {
            code: "WB-7K3M-Q9XD-2HFP".into(),
            kind: spec.kind.as_str().into(),
            description: describe_reward(&spec, "EUR", locale),
            expires_on: format_date(expires, locale),
            days_left: 14,
            url: "https://shop.example.com/discount/WB-7K3M-Q9XD-2HFP".into(),
        }),
        survey: Reason::ALL
            .into_iter()
            .map(|r| SurveyLink {
                reason: r.as_str().into(),
                url: format!("https://links.example.com/s/{}?t=sample", r.as_str()),
            })
            .collect(),
        nps: (0..=10)
            .map(|score| NpsLink {
                score,
                url: format!("https://links.example.com/n/{score}?t=sample"),
            })
            .collect(),
        unsubscribe_url: "https://links.example.com/u?t=sample".into(),
        fewer_emails_url: "https://links.example.com/f?t=sample".into(),
        offer_fewer_emails: true,
        shop_url: "https://shop.example.com".into(),
        shop_name: "Sample Shop".into(),
        step: 1,
        total_steps: 3,
        variant_copy: Some("Sample copy".into()),
        occasion: Some("birthday".into()),
        segment: Some("clicked_not_bought".into()),
        reason: Some(Reason::TooExpensive.as_str().into()),
        resolved: Some(Resolved {
            reason: Reason::Quality,
            note: "Our new roaster is in".into(),
        }),
    }
}

/// A context with every optional field empty: the fallbacks must render too.
pub(crate) fn empty_sample(locale: &str) -> EmailContext {
    EmailContext {
        first_name: None,
        last_product: None,
        last_category: None,
        favourite_product: None,
        reward: None,
        survey: Vec::new(),
        nps: Vec::new(),
        variant_copy: None,
        occasion: None,
        segment: None,
        reason: None,
        resolved: None,
        years_as_customer: 0,
        months_as_customer: 0,
        order_count: 1,
        offer_fewer_emails: false,
        ..full_sample(locale, RewardKind::AmountOff)
    }
}

/// A valid spec of each kind, for samples and tests.
pub(crate) fn sample_spec(kind: RewardKind) -> RewardSpec {
    use crate::domain::money::Money;
    RewardSpec {
        amounts: Default::default(),
        kind,
        value: match kind {
            RewardKind::PercentOff => Some(Money(1500)),
            RewardKind::MultiOrder => Some(Money(500)),
            RewardKind::AmountOff => Some(Money(1000)),
            _ => None,
        },
        product: (kind == RewardKind::FreeProduct).then(|| "tote bag".to_string()),
        orders: (kind == RewardKind::MultiOrder).then_some(5),
        validity_days: 14,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reward::RewardCode;
    use chrono::TimeZone;

    #[test]
    fn a_reward_view_counts_days_and_dates_in_the_customers_time_zone() {
        let issued = Utc.with_ymd_and_hms(2026, 3, 1, 23, 30, 0).unwrap();
        let reward = Reward::issue(
            RewardCode::from_entropy([3; 8]),
            sample_spec(RewardKind::AmountOff),
            &"c1".parse().unwrap(),
            "example",
            "e1",
            "amount-10",
            1,
            "SEK",
            issued,
        );
        let stockholm: Zone = "Europe/Stockholm".parse().unwrap();
        let view = RewardView::new(&reward, "sv", &stockholm, issued, "u".into());
        assert_eq!(view.code, reward.code.to_string());
        assert_eq!(view.kind, "amount_off");
        assert_eq!(view.expires_on, "16 mars 2026");
        assert_eq!(view.days_left, 14);
        assert_eq!(
            view.description,
            "10\u{a0}kr rabatt på din nästa beställning"
        );
        let later = RewardView::new(
            &reward,
            "en",
            &Zone::UTC,
            issued + chrono::Duration::days(20),
            "u".into(),
        );
        assert_eq!(later.expires_on, "15 March 2026");
        assert_eq!(later.days_left, 0);
    }
}
