//! The recipient-behaviour model: a TOML file (`cli/behaviour.toml` is the documented default).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use shared::domain::money::Money;
use shared::domain::reward::RewardKind;
use shared::domain::survey::Reason;

use crate::error::{CliError, CliResult};

/// The shipped default model.
pub const DEFAULT: &str = include_str!("../../behaviour.toml");

/// The whole model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    pub history_days: u32,
    pub scheduler_every_hours: u32,
    pub segments: Vec<Segment>,
    pub locales: Vec<LocaleShare>,
    pub churn: Churn,
    pub reasons: BTreeMap<Reason, ReasonModel>,
    pub email: EmailModel,
    pub reward_appeal: RewardAppeal,
    /// The local hour of day customers usually order and read email at (none without it).
    #[serde(default)]
    pub habit: Habit,
    /// How customers respond to being emailed, of the four classic kinds (all persuadable
    /// without it).
    #[serde(default)]
    pub response: Response,
}

/// The four classic responses to a treatment (uplift modelling's customer types); only the
/// simulation knows a customer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Comes back because of an email: the `[email]` reactions.
    Persuadable,
    /// Comes back (or keeps buying) email or not, and uses a reward they hold.
    SureThing,
    /// Does not come back, email or not.
    LostCause,
    /// Would come back by themselves; an email they open drives them away.
    DoNotDisturb,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Persuadable,
        Kind::SureThing,
        Kind::LostCause,
        Kind::DoNotDisturb,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Persuadable => "persuadable",
            Kind::SureThing => "sure thing",
            Kind::LostCause => "lost cause",
            Kind::DoNotDisturb => "do-not-disturb",
        }
    }
}

/// Shares of the four kinds (normalised).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindShares {
    pub persuadable: f64,
    pub sure_thing: f64,
    pub lost_cause: f64,
    pub do_not_disturb: f64,
}

impl KindShares {
    /// The weights in [`Kind::ALL`]'s order.
    pub fn weights(&self) -> [f64; 4] {
        [
            self.persuadable,
            self.sure_thing,
            self.lost_cause,
            self.do_not_disturb,
        ]
    }
}

/// `[response]`: the kinds' shares (a segment's own `response` overrides them) and what makes
/// a sure thing and a do-not-disturb customer what they are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub persuadable: f64,
    pub sure_thing: f64,
    pub lost_cause: f64,
    pub do_not_disturb: f64,
    /// Mean days until a sure thing who has stopped comes back by themselves.
    pub sure_thing_return_days: f64,
    /// Chance that a do-not-disturb customer who opens an email unsubscribes (they stop buying
    /// either way).
    pub do_not_disturb_unsubscribe: f64,
}

impl Response {
    /// The campaign-wide shares.
    pub fn shares(&self) -> KindShares {
        KindShares {
            persuadable: self.persuadable,
            sure_thing: self.sure_thing,
            lost_cause: self.lost_cause,
            do_not_disturb: self.do_not_disturb,
        }
    }
}

impl Default for Response {
    /// Everyone persuadable: the `[email]` reactions alone.
    fn default() -> Response {
        Response {
            persuadable: 1.0,
            sure_thing: 0.0,
            lost_cause: 0.0,
            do_not_disturb: 0.0,
            sure_thing_return_days: 30.0,
            do_not_disturb_unsubscribe: 0.0,
        }
    }
}

/// Habitual local hours: many customers order, and read their email, around the same hour of
/// the day, so an email that arrives then is opened more often.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Habit {
    /// Share of customers with a habitual hour.
    pub share: f64,
    /// The local hours (0–23) habits fall on, one picked per customer.
    pub hours: Vec<u32>,
    /// Share of a habitual customer's orders placed within their hour (the rest at any time).
    pub orders_at_hour: f64,
    /// The open chance of an email that arrives within the customer's habitual hour, relative
    /// to `email.open`.
    pub open_at_hour: f64,
    /// ... and of one that arrives at another hour.
    pub open_off_hour: f64,
}

impl Default for Habit {
    /// No habits: every order at any hour, every email opened alike.
    fn default() -> Habit {
        Habit {
            share: 0.0,
            hours: Vec::new(),
            orders_at_hour: 0.0,
            open_at_hour: 1.0,
            open_off_hour: 1.0,
        }
    }
}

/// A buying rhythm.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub name: String,
    pub share: f64,
    /// Usual days between orders; 0 = one order only.
    pub gap_days: f64,
    pub gap_jitter: f64,
    pub amount: Money,
    pub category: String,
    pub products: Vec<String>,
    /// This segment's shares of the four response kinds (`[response]`'s without it).
    #[serde(default)]
    pub response: Option<KindShares>,
    /// The day of the year (1–366) a yearly segment's orders centre on: its first order falls
    /// within `gap_jitter` of it (a Christmas buyer orders in December). Without it the first
    /// order falls anywhere in the first gap.
    #[serde(default)]
    pub season_day: Option<u32>,
}

/// Customers of a locale and where they live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocaleShare {
    pub locale: String,
    pub share: f64,
    pub time_zones: Vec<String>,
}

/// Stopping and coming back by themselves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    pub share: f64,
    pub natural_return_per_year: f64,
    pub lapse_again_after_return: f64,
    pub active_customer_speed_up: f64,
}

/// How a reason for leaving shapes reactions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonModel {
    pub share: f64,
    #[serde(rename = "return")]
    pub return_factor: f64,
    pub reward_pull: f64,
    pub unsubscribe: f64,
    pub nps: u8,
}

/// Reactions to one email.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailModel {
    pub open: f64,
    pub open_if_active: f64,
    pub click_given_open: f64,
    pub survey_given_open: f64,
    pub survey_truthful: f64,
    pub nps_given_open: f64,
    pub fewer_emails_given_open: f64,
    pub return_given_open: f64,
    pub return_without_open: f64,
    pub use_code: f64,
    pub bounce: f64,
    pub complaint: f64,
    pub open_within_hours: f64,
    pub order_within_days_mean: f64,
}

/// Appeal of each reward kind relative to money off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardAppeal {
    pub amount_off: f64,
    pub percent_off: f64,
    pub free_shipping: f64,
    pub free_product: f64,
    pub consultation: f64,
    pub multi_order: f64,
    pub none: f64,
}

impl RewardAppeal {
    /// The appeal of a reward kind, or of no reward.
    pub fn of(&self, kind: Option<RewardKind>) -> f64 {
        match kind {
            None => self.none,
            Some(RewardKind::AmountOff) => self.amount_off,
            Some(RewardKind::PercentOff) => self.percent_off,
            Some(RewardKind::FreeShipping) => self.free_shipping,
            Some(RewardKind::FreeProduct) => self.free_product,
            Some(RewardKind::Consultation) => self.consultation,
            Some(RewardKind::MultiOrder) => self.multi_order,
        }
    }
}

impl Behaviour {
    /// The shipped default.
    pub fn default_model() -> Behaviour {
        Behaviour::parse(DEFAULT, "cli/behaviour.toml (built in)")
            .expect("the shipped model is valid")
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> CliResult<Behaviour> {
        let text = std::fs::read_to_string(path).map_err(CliError::io("read", path))?;
        Behaviour::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a model; `name` names it in messages.
    pub fn parse(text: &str, name: &str) -> CliResult<Behaviour> {
        let bad = |reason: String| CliError::Behaviour {
            path: name.to_string(),
            reason,
        };
        let b: Behaviour = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        b.validate().map_err(bad)?;
        Ok(b)
    }

    /// The chance that a customer who left for `reason` comes back after opening an email with
    /// a reward of `kind`.
    pub fn return_chance(&self, reason: Reason, kind: Option<RewardKind>) -> f64 {
        let r = &self.reasons[&reason];
        let appeal = self.reward_appeal.of(kind);
        let pull = r.reward_pull.clamp(0.0, 1.0);
        (self.email.return_given_open * r.return_factor * (1.0 - pull + pull * appeal))
            .clamp(0.0, 1.0)
    }

    fn validate(&self) -> Result<(), String> {
        let prob = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "{name} = {v} is not a probability: use a number from 0 to 1"
                ))
            }
        };
        let e = &self.email;
        for (n, v) in [
            ("email.open", e.open),
            ("email.open_if_active", e.open_if_active),
            ("email.click_given_open", e.click_given_open),
            ("email.survey_given_open", e.survey_given_open),
            ("email.survey_truthful", e.survey_truthful),
            ("email.nps_given_open", e.nps_given_open),
            ("email.fewer_emails_given_open", e.fewer_emails_given_open),
            ("email.return_given_open", e.return_given_open),
            ("email.return_without_open", e.return_without_open),
            ("email.use_code", e.use_code),
            ("email.bounce", e.bounce),
            ("email.complaint", e.complaint),
            ("churn.share", self.churn.share),
            ("habit.share", self.habit.share),
            ("habit.orders_at_hour", self.habit.orders_at_hour),
            (
                "churn.lapse_again_after_return",
                self.churn.lapse_again_after_return,
            ),
            (
                "churn.active_customer_speed_up",
                self.churn.active_customer_speed_up,
            ),
        ] {
            prob(n, v)?;
        }
        if self.habit.share > 0.0 && self.habit.hours.is_empty() {
            return Err(
                "habit.hours is empty: list the local hours habits fall on, e.g. [8, 12, 19]"
                    .into(),
            );
        }
        if let Some(h) = self.habit.hours.iter().find(|h| **h > 23) {
            return Err(format!("habit.hours holds {h}: an hour is 0 to 23"));
        }
        if self.habit.open_at_hour < 0.0 || self.habit.open_off_hour < 0.0 {
            return Err("habit.open_at_hour and habit.open_off_hour must be 0 or more".into());
        }
        if self.churn.natural_return_per_year < 0.0 {
            return Err("churn.natural_return_per_year must be 0 or more".into());
        }
        if !(1..=24).contains(&self.scheduler_every_hours) {
            return Err("scheduler_every_hours must be between 1 and 24".into());
        }
        if e.open_within_hours <= 0.0 || e.order_within_days_mean <= 0.0 {
            return Err(
                "email.open_within_hours and email.order_within_days_mean must be more than 0"
                    .into(),
            );
        }
        prob(
            "response.do_not_disturb_unsubscribe",
            self.response.do_not_disturb_unsubscribe,
        )?;
        if self.response.sure_thing_return_days <= 0.0 {
            return Err("response.sure_thing_return_days must be more than 0".into());
        }
        let shares_ok = |w: [f64; 4]| w.iter().all(|v| *v >= 0.0) && w.iter().sum::<f64>() > 0.0;
        if !shares_ok(self.response.shares().weights()) {
            return Err(
                "[response]: the four shares must be 0 or more, at least one above 0".into(),
            );
        }
        for s in &self.segments {
            if s.response.is_some_and(|r| !shares_ok(r.weights())) {
                return Err(format!(
                    "segment '{}': response shares must be 0 or more, at least one above 0",
                    s.name
                ));
            }
        }
        if self.segments.is_empty() || self.segments.iter().all(|s| s.share <= 0.0) {
            return Err("give at least one [[segments]] with a share above 0".into());
        }
        for s in &self.segments {
            if s.share < 0.0 || s.gap_days < 0.0 || s.gap_jitter < 0.0 {
                return Err(format!(
                    "segment '{}': share, gap_days and gap_jitter must be 0 or more",
                    s.name
                ));
            }
            if s.season_day.is_some_and(|d| !(1..=366).contains(&d)) {
                return Err(format!(
                    "segment '{}': season_day is a day of the year, 1 to 366",
                    s.name
                ));
            }
            if s.products.is_empty() {
                return Err(format!("segment '{}': list at least one product", s.name));
            }
            if s.amount.0 <= 0 {
                return Err(format!("segment '{}': amount must be more than 0", s.name));
            }
        }
        if self.locales.is_empty() || self.locales.iter().all(|l| l.share <= 0.0) {
            return Err("give at least one [[locales]] with a share above 0".into());
        }
        for l in &self.locales {
            if l.time_zones.is_empty() {
                return Err(format!(
                    "locale '{}': list at least one time zone",
                    l.locale
                ));
            }
            for tz in &l.time_zones {
                if tz.parse::<shared::domain::zone::Zone>().is_err() {
                    return Err(format!(
                        "locale '{}': '{tz}' is not an IANA time zone",
                        l.locale
                    ));
                }
            }
        }
        for r in Reason::ALL {
            let Some(m) = self.reasons.get(&r) else {
                return Err(format!(
                    "[reasons.{r}] is missing: every reason needs its model"
                ));
            };
            prob(&format!("reasons.{r}.unsubscribe"), m.unsubscribe)?;
            prob(&format!("reasons.{r}.reward_pull"), m.reward_pull)?;
            if m.share < 0.0 || m.return_factor < 0.0 || m.nps > 10 {
                return Err(format!(
                    "reasons.{r}: share and return must be 0 or more, nps 0 to 10"
                ));
            }
        }
        if self.reasons.values().all(|m| m.share <= 0.0) {
            return Err("at least one reason needs a share above 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_model_is_valid_and_money_off_pulls_twice_as_hard_as_percent_off() {
        let b = Behaviour::default_model();
        let amount = b.return_chance(Reason::TooExpensive, Some(RewardKind::AmountOff));
        let percent = b.return_chance(Reason::TooExpensive, Some(RewardKind::PercentOff));
        assert!((amount / percent - 2.0).abs() < 1e-9, "{amount} {percent}");
    }

    #[test]
    fn forgetful_customers_care_less_about_the_reward_than_price_sensitive_ones() {
        let b = Behaviour::default_model();
        let spread = |r| {
            b.return_chance(r, Some(RewardKind::AmountOff))
                / b.return_chance(r, Some(RewardKind::PercentOff))
        };
        assert!(spread(Reason::Forgot) < spread(Reason::TooExpensive));
        assert!(
            b.return_chance(Reason::BadExperience, Some(RewardKind::AmountOff))
                < b.return_chance(Reason::TooExpensive, Some(RewardKind::AmountOff))
        );
    }

    #[test]
    fn a_probability_out_of_range_names_the_key() {
        let text = DEFAULT.replace("\nopen = 0.12\n", "\nopen = 1.5\n");
        let e = Behaviour::parse(&text, "b.toml").unwrap_err().to_string();
        assert!(e.contains("email.open") && e.contains("b.toml"), "{e}");
    }

    #[test]
    fn an_hour_out_of_range_is_refused_with_its_key() {
        let text = DEFAULT.replace("hours = [8, 12, 17, 19]", "hours = [8, 25]");
        let e = Behaviour::parse(&text, "b.toml").unwrap_err().to_string();
        assert!(e.contains("habit.hours holds 25"), "{e}");
    }

    #[test]
    fn a_model_without_habits_still_loads() {
        let start = DEFAULT.find("[habit]").unwrap();
        let b = Behaviour::parse(&DEFAULT[..start], "b.toml").unwrap();
        assert_eq!(b.habit.share, 0.0);
    }

    #[test]
    fn every_kind_has_a_share_and_a_model_without_response_kinds_is_all_persuadable() {
        let b = Behaviour::default_model();
        assert!(b.response.shares().weights().iter().all(|w| *w > 0.0));
        assert!(b.segments.iter().all(|s| s.response.is_some()));
        let start = DEFAULT.find("\n[response]\n").unwrap();
        let end = DEFAULT.find("\n[churn]\n").unwrap();
        let plain: String = format!("{}{}", &DEFAULT[..start], &DEFAULT[end..])
            .lines()
            .filter(|l| !l.starts_with("response = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let b = Behaviour::parse(&plain, "b.toml").unwrap();
        assert_eq!(b.response.shares().weights(), [1.0, 0.0, 0.0, 0.0]);
        let bad = DEFAULT.replace("lost_cause = 0.25\ndo_not", "lost_cause = -1\ndo_not");
        let e = Behaviour::parse(&bad, "b.toml").unwrap_err().to_string();
        assert!(e.contains("[response]"), "{e}");
    }

    #[test]
    fn a_missing_reason_is_refused() {
        let start = DEFAULT.find("[reasons.quality]").unwrap();
        let end = DEFAULT.find("[reasons.other]").unwrap();
        let text = format!("{}{}", &DEFAULT[..start], &DEFAULT[end..]);
        let e = Behaviour::parse(&text, "b.toml").unwrap_err().to_string();
        assert!(e.contains("[reasons.quality] is missing"), "{e}");
    }
}
