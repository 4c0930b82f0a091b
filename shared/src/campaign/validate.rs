//! The rules a campaign file must follow beyond its shape.

use std::collections::BTreeSet;

use super::config::{CampaignConfig, StepConfig};
use super::error::CampaignError;
use crate::domain::experiment::HOLDOUT;
use crate::domain::reward::RewardSpec;
use crate::domain::sequence::{flow_days, ActivityKind, Flow};

pub(crate) const CONFIG_FILE: &str = "campaign.toml";

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> CampaignError {
    CampaignError::Invalid {
        file: CONFIG_FILE.to_string(),
        key: key.into(),
        problem: problem.into(),
    }
}

fn is_slug(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || extra.contains(&c))
}

/// `en`, `pt-BR`, `zh-Hant-TW`: a 2–3 letter lowercase language, then optional subtags.
pub(crate) fn is_locale(s: &str) -> bool {
    let mut parts = s.split('-');
    let language = parts.next().unwrap_or_default();
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn check_spec(key: &str, spec: &RewardSpec) -> Result<(), CampaignError> {
    spec.validate()
        .map_err(|e| invalid(key, format!("is not a usable reward: {e}")))
}

/// Checks every rule of the campaign file; the first broken one is returned.
pub(crate) fn validate(c: &CampaignConfig) -> Result<(), CampaignError> {
    if !is_slug(&c.name, &[]) {
        return Err(invalid(
            "name",
            format!(
                "must use only lowercase letters, digits and `-` (it goes into keys and links), got {:?}",
                c.name
            ),
        ));
    }
    if c.shop_name.trim().is_empty() {
        return Err(invalid("shop_name", "must not be empty: emails show it"));
    }
    match url::Url::parse(&c.shop_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        Ok(u) => {
            return Err(invalid(
                "shop_url",
                format!("must be an http or https URL, got scheme `{}`", u.scheme()),
            ))
        }
        Err(e) => {
            return Err(invalid(
                "shop_url",
                format!("is not a URL ({e}): write it like \"https://shop.example.com\""),
            ))
        }
    }
    if crate::domain::money::Currency::parse(&c.currency).is_err() {
        return Err(invalid(
            "currency",
            format!(
                "must be a 3-letter ISO 4217 code in capitals like \"EUR\", got {:?}",
                c.currency
            ),
        ));
    }
    for (code, rate) in &c.exchange_rates {
        if code.len() != 3 || !code.chars().all(|ch| ch.is_ascii_uppercase()) {
            return Err(invalid(
                format!("exchange_rates.{code}"),
                "must be a 3-letter ISO 4217 code in capitals like \"SEK\"".to_string(),
            ));
        }
        if !(rate.is_finite() && *rate > 0.0) {
            return Err(invalid(
                format!("exchange_rates.{code}"),
                format!(
                    "must be a positive number (what one {code} is worth in {}), got {rate}",
                    c.currency
                ),
            ));
        }
    }
    validate_locales(c)?;
    if c.default_time_zone
        .parse::<crate::domain::zone::Zone>()
        .is_err()
    {
        return Err(invalid(
            "default_time_zone",
            format!(
                "{:?} is not a time zone: use an IANA name like \"Europe/Stockholm\" or \"UTC\"",
                c.default_time_zone
            ),
        ));
    }
    validate_lapse(c)?;
    validate_sending_and_steps(c)?;
    validate_flow_priority(c)?;
    validate_targeting(c)?;
    validate_extra_templates(c)?;
    validate_rewards(c)?;
    validate_checkout(c)?;
    validate_experiment(c)
}

/// `[checkout]`: a generic or Stripe link needs `{code}`; every link, with a sample code in it, must be an
/// http(s) URL.
fn validate_checkout(c: &CampaignConfig) -> Result<(), CampaignError> {
    use crate::campaign::config::CheckoutPlatform;
    let Some(checkout) = &c.checkout else {
        return Ok(());
    };
    if matches!(
        checkout.platform,
        CheckoutPlatform::Generic | CheckoutPlatform::Stripe
    ) && !checkout
        .url
        .as_deref()
        .is_some_and(|u| u.contains("{code}"))
    {
        return Err(invalid(
            "checkout.url",
            "must be the checkout link with {code} where the code goes, e.g. \"https://shop.example.com/cart?promo={code}\" (generic) or a Stripe Payment Link \"https://buy.stripe.com/<link>?prefilled_promo_code={code}\" (stripe)",
        ));
    }
    let sample =
        crate::domain::reward::checkout_url(Some(checkout), &c.shop_url, "WB-7K3M-Q9XD-2HFP");
    match url::Url::parse(&sample) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(invalid(
            "checkout.url",
            format!("must make an http or https link, got {sample:?}"),
        )),
    }
}

fn validate_locales(c: &CampaignConfig) -> Result<(), CampaignError> {
    if c.locales.is_empty() {
        return Err(invalid(
            "locales",
            "must list at least one locale with templates",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, l) in c.locales.iter().enumerate() {
        if !is_locale(l) {
            return Err(invalid(
                format!("locales[{i}]"),
                format!("{l:?} is not a locale: write a language code like \"sv\" or \"pt-BR\""),
            ));
        }
        if !seen.insert(l) {
            return Err(invalid(
                format!("locales[{i}]"),
                format!("lists {l:?} twice"),
            ));
        }
    }
    if !c.locales.contains(&c.default_locale) {
        return Err(invalid(
            "default_locale",
            format!(
                "{:?} must be one of `locales` ({})",
                c.default_locale,
                c.locales.join(", ")
            ),
        ));
    }
    Ok(())
}

fn validate_lapse(c: &CampaignConfig) -> Result<(), CampaignError> {
    let l = &c.lapse;
    let finite = [
        ("multiplier", l.multiplier),
        ("default_days", l.default_days),
        ("prior_weight", l.prior_weight),
        ("min_days", l.min_days),
        ("max_days", l.max_days),
        ("at_risk_fraction", l.at_risk_fraction),
    ];
    for (key, v) in finite {
        if !v.is_finite() {
            return Err(invalid(format!("lapse.{key}"), "must be a finite number"));
        }
    }
    if l.multiplier <= 0.0 {
        return Err(invalid(
            "lapse.multiplier",
            format!("must be > 0, got {}", l.multiplier),
        ));
    }
    if l.prior_weight < 0.0 {
        return Err(invalid(
            "lapse.prior_weight",
            format!("must be ≥ 0, got {}", l.prior_weight),
        ));
    }
    if l.min_days <= 0.0 {
        return Err(invalid(
            "lapse.min_days",
            format!("must be > 0, got {}", l.min_days),
        ));
    }
    if !(l.min_days <= l.default_days && l.default_days <= l.max_days) {
        return Err(invalid(
            "lapse.default_days",
            format!(
                "must be between lapse.min_days and lapse.max_days ({} ≤ default ≤ {}), got {}",
                l.min_days, l.max_days, l.default_days
            ),
        ));
    }
    if !(l.at_risk_fraction > 0.0 && l.at_risk_fraction <= 1.0) {
        return Err(invalid(
            "lapse.at_risk_fraction",
            format!(
                "must be more than 0 and at most 1, got {}",
                l.at_risk_fraction
            ),
        ));
    }
    if !(l.p_order_threshold > 0.0
        && l.p_order_threshold < l.at_risk_p_order
        && l.at_risk_p_order < 1.0)
    {
        return Err(invalid(
            "lapse.p_order_threshold",
            format!(
                "must satisfy 0 < p_order_threshold < at_risk_p_order < 1, got {} and {}",
                l.p_order_threshold, l.at_risk_p_order
            ),
        ));
    }
    if !(l.horizon_days >= 1.0 && l.horizon_days <= 730.0) {
        return Err(invalid(
            "lapse.horizon_days",
            format!("must be from 1 to 730 days, got {}", l.horizon_days),
        ));
    }
    if let Some(f) = &l.fitted {
        let all = [
            Some(f.r),
            Some(f.alpha),
            Some(f.a),
            Some(f.b),
            f.spend_p,
            f.spend_q,
            f.spend_gamma,
        ];
        if !all.iter().flatten().all(|v| v.is_finite() && *v > 0.0) {
            return Err(invalid(
                "lapse.fitted",
                "every parameter must be a finite number > 0 (copy the block `winback backtest` prints)",
            ));
        }
    }
    for (category, days) in &l.category_days {
        if !(days.is_finite() && l.min_days <= *days && *days <= l.max_days) {
            return Err(invalid(
                format!("lapse.category_days.{category}"),
                format!(
                    "must be between lapse.min_days and lapse.max_days ({} to {}), got {days}",
                    l.min_days, l.max_days
                ),
            ));
        }
    }
    Ok(())
}

/// `[flows] priority`: flow names, each once.
fn validate_flow_priority(c: &CampaignConfig) -> Result<(), CampaignError> {
    let mut seen = BTreeSet::new();
    for name in &c.flows.priority {
        if crate::domain::sequence::Flow::named(name).is_none() {
            return Err(invalid(
                "flows.priority",
                format!("names `{name}`, which is no flow: use win-back, at-risk, re-engagement or celebration"),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(invalid(
                "flows.priority",
                format!("names `{name}` twice: list each flow once"),
            ));
        }
    }
    Ok(())
}

fn validate_targeting(c: &CampaignConfig) -> Result<(), CampaignError> {
    let t = &c.targeting;
    for (key, value) in [
        ("targeting.margin", t.margin),
        ("targeting.exploration", t.exploration),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return Err(invalid(
                key,
                format!("must be a share between 0 and 1 (0.3 = 30%), got {value}"),
            ));
        }
    }
    if !(t.email_cost >= 0.0 && t.email_cost.is_finite()) {
        return Err(invalid(
            "targeting.email_cost",
            format!("must be an amount of 0 or more, got {}", t.email_cost),
        ));
    }
    Ok(())
}

fn validate_sending_and_steps(c: &CampaignConfig) -> Result<(), CampaignError> {
    let s = &c.sending;
    for (key, hour) in [
        ("quiet_hours_start", s.quiet_hours_start),
        ("quiet_hours_end", s.quiet_hours_end),
    ] {
        if hour > 23 {
            return Err(invalid(
                format!("sending.{key}"),
                format!("must be an hour from 0 to 23, got {hour}"),
            ));
        }
    }
    if s.link_validity_days == 0 {
        return Err(invalid(
            "sending.link_validity_days",
            "must be at least 1: links in emails would be dead on arrival",
        ));
    }
    if s.max_steps == 0 {
        return Err(invalid("sending.max_steps", "must be at least 1"));
    }
    validate_steps("steps", &c.steps, s.max_steps)?;
    if let Some(celebration) = &c.celebration {
        validate_steps("celebration.steps", &celebration.steps, s.max_steps)?;
    }
    if let Some(flow) = &c.re_engagement {
        validate_steps("re_engagement.steps", &flow.steps, s.max_steps)?;
        if flow.sunset_after_days >= s.sunset_after_days {
            return Err(invalid(
                "re_engagement.sunset_after_days",
                format!(
                    "is {}, but customers who do not read the emails are sunset sooner than the win-back flow's sending.sunset_after_days ({}): lower it",
                    flow.sunset_after_days, s.sunset_after_days
                ),
            ));
        }
    }
    if let Some(at_risk) = &c.at_risk {
        validate_steps("at_risk.steps", &at_risk.steps, s.max_steps)?;
        let last = at_risk.steps.len();
        if let Some(i) = at_risk.steps.iter().position(|st| st.reward) {
            if i + 1 != last {
                return Err(invalid(
                    format!("at_risk.steps[{}].reward", i + 1),
                    "only the last at-risk step may carry a reward: a discount is the last resort, after content and answering the objection",
                ));
            }
        }
    }
    for (i, kind) in s.still_with_us.iter().enumerate() {
        if !matches!(
            kind,
            ActivityKind::Login | ActivityKind::SubscriptionRenewed
        ) {
            return Err(invalid(
                format!("sending.still_with_us[{}]", i + 1),
                "may list only \"login\" and \"subscription_renewed\": an order always stops the sequence, a cancellation never does",
            ));
        }
    }
    // The window must cover the whole sequence and the sunset wait, for every variant's timing:
    // an order while the campaign still waits for one must count as a win.
    let factors = std::iter::once(("", 1.0)).chain(
        c.experiment
            .variants
            .iter()
            .map(|v| (v.name.as_str(), v.delay_factor)),
    );
    let flows = [
        Flow::WinBack,
        Flow::AtRisk,
        Flow::Celebration,
        Flow::ReEngagement,
    ];
    for ((variant, factor), flow) in factors.flat_map(|f| flows.map(|flow| (f, flow))) {
        if c.steps_of(flow).is_empty() {
            continue;
        }
        let days = flow_days(c, flow, factor);
        if days > f64::from(s.attribution_days) {
            let mut whose = if variant.is_empty() {
                String::new()
            } else {
                format!(" for variant {variant:?} (delay_factor {factor})")
            };
            match flow {
                Flow::AtRisk => whose.push_str(" in the at-risk flow"),
                Flow::Celebration => whose.push_str(" in the celebration flow"),
                Flow::ReEngagement => whose.push_str(" in the re-engagement flow"),
                Flow::WinBack => {}
            }
            return Err(invalid(
                "sending.attribution_days",
                format!(
                    "is {} days, but the steps plus the sunset wait take {days} days{whose}: an order before the sunset would not count as a win; raise attribution_days to at least {} or shorten the steps or sunset_after_days",
                    s.attribution_days,
                    days.ceil()
                ),
            ));
        }
    }
    Ok(())
}

/// `eligibility.resolved_template` and `eligibility.fewer_emails_template`: template names.
fn validate_extra_templates(c: &CampaignConfig) -> Result<(), CampaignError> {
    for (key, template) in [
        (
            "eligibility.resolved_template",
            &c.eligibility.resolved_template,
        ),
        (
            "eligibility.fewer_emails_template",
            &c.eligibility.fewer_emails_template,
        ),
    ] {
        match template {
            Some(t) if !is_slug(t, &['_']) || t.starts_with('_') => {
                return Err(invalid(
                    key,
                    format!(
                        "must be a template name of lowercase letters, digits, `-` or `_` not starting with `_`, got {t:?}"
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The rules every sequence follows: at least one step, at most `max_steps`, template names,
/// delays ≥ 0. `key` is where it sits in the file (`steps`, `at_risk.steps`).
fn validate_steps(key: &str, steps: &[StepConfig], max_steps: u8) -> Result<(), CampaignError> {
    if steps.is_empty() {
        return Err(invalid(
            key,
            format!(
                "must have at least one [[{key}]] entry: the campaign sends nothing without one"
            ),
        ));
    }
    if steps.len() > usize::from(max_steps) {
        return Err(invalid(
            key,
            format!(
                "has {} steps but sending.max_steps is {max_steps}: more than three emails tends to land in spam; remove steps or raise max_steps deliberately",
                steps.len(),
            ),
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        if !is_slug(&step.template, &['_']) || step.template.starts_with('_') {
            return Err(invalid(
                format!("{key}[{n}].template"),
                format!(
                    "must be a template name of lowercase letters, digits, `-` or `_` not starting with `_`, got {:?}",
                    step.template
                ),
            ));
        }
        if !(step.delay_days.is_finite() && step.delay_days >= 0.0) {
            return Err(invalid(
                format!("{key}[{n}].delay_days"),
                format!(
                    "must be ≥ 0 (step {n}, `{}`), got {}",
                    step.template, step.delay_days
                ),
            ));
        }
    }
    Ok(())
}

fn validate_rewards(c: &CampaignConfig) -> Result<(), CampaignError> {
    check_spec("rewards.default", &c.rewards.default)?;
    for (reason, spec) in &c.rewards.by_reason {
        check_spec(&format!("rewards.by_reason.{reason}"), spec)?;
    }
    Ok(())
}

fn validate_experiment(c: &CampaignConfig) -> Result<(), CampaignError> {
    let e = &c.experiment;
    if !(e.holdout_percent.is_finite() && (0.0..=50.0).contains(&e.holdout_percent)) {
        return Err(invalid(
            "experiment.holdout_percent",
            format!("must be from 0 to 50, got {}", e.holdout_percent),
        ));
    }
    if e.variants.is_empty() {
        return Err(invalid(
            "experiment.variants",
            "must have at least one [[experiment.variants]] entry, or everyone is held out",
        ));
    }
    if !(e.program_holdout.is_finite() && (0.0..0.5).contains(&e.program_holdout)) {
        return Err(invalid(
            "experiment.program_holdout",
            format!(
                "must be a share from 0 to under 0.5 (0.05 holds 5% of customers out of every flow), got {}",
                e.program_holdout
            ),
        ));
    }
    if let Some(p) = &e.promote {
        if !e.variants.iter().any(|v| &v.name == p) {
            let names: Vec<&str> = e.variants.iter().map(|v| v.name.as_str()).collect();
            return Err(invalid(
                "experiment.promote",
                format!("names no variant: {p:?} is not one of {}", names.join(", ")),
            ));
        }
    }
    let mut names = BTreeSet::new();
    for (i, v) in e.variants.iter().enumerate() {
        let key = |field: &str| format!("experiment.variants[{}].{field}", i + 1);
        if !is_slug(&v.name, &['_']) {
            return Err(invalid(
                key("name"),
                format!(
                    "must use only lowercase letters, digits, `-` or `_`, got {:?}",
                    v.name
                ),
            ));
        }
        if v.name == HOLDOUT {
            return Err(invalid(
                key("name"),
                "must not be `holdout`: that name is the group that gets no email",
            ));
        }
        if !names.insert(v.name.as_str()) {
            return Err(invalid(
                key("name"),
                format!(
                    "{:?} is used by another variant: names must be unique",
                    v.name
                ),
            ));
        }
        if v.weight == 0 {
            return Err(invalid(key("weight"), "must be more than 0"));
        }
        if v.no_reward && v.reward.is_some() {
            return Err(invalid(
                key("no_reward"),
                "a variant without a reward cannot also set `reward`: remove one of them",
            ));
        }
        if !(v.delay_factor.is_finite() && v.delay_factor > 0.0) {
            return Err(invalid(
                key("delay_factor"),
                format!("must be more than 0, got {}", v.delay_factor),
            ));
        }
        if let Some(spec) = &v.reward {
            check_spec(&key("reward"), spec)?;
        }
    }
    Ok(())
}
