//! An email's content: the step rendered for the customer's locale with its links signed.

use chrono::{DateTime, Duration, Utc};
use shared::campaign::{self as locale, EmailContext, NpsLink, RewardView, SurveyLink};
use shared::domain::customer::Profile;
use shared::domain::reward::{self, Reward};
use shared::domain::schedule;
use shared::domain::send;
use shared::domain::sequence::Enrollment;
use shared::domain::survey::Reason;
use shared::ports::Email;
use shared::signing::{sign_link, LinkClaims, Purpose};

use crate::deps::Deps;
use crate::error::SendError;

fn link(deps: &Deps, e: &Enrollment, purpose: Purpose, step: u8, now: DateTime<Utc>) -> String {
    let validity = i64::from(deps.campaign.config().sending.link_validity_days);
    sign_link(
        &deps.link_keys,
        &LinkClaims {
            purpose,
            customer_id: e.customer_id.clone(),
            campaign: e.campaign.clone(),
            enrollment_id: e.id.clone(),
            step,
            expires: (now + Duration::days(validity)).timestamp(),
        },
    )
}

/// Renders and addresses the email for a step.
pub fn compose(
    deps: &Deps,
    e: &Enrollment,
    profile: &Profile,
    step: u8,
    reward: Option<&Reward>,
    now: DateTime<Utc>,
) -> Result<Email, SendError> {
    let config = deps.campaign.config();
    let base = deps.public_base_url.trim_end_matches('/');
    let steps = e.steps(config);
    let step_config = &steps[usize::from(step) - 1];
    let locale_code = deps
        .campaign
        .locale_for(profile.locale.as_deref())
        .to_string();
    let tz = schedule::zone(profile.time_zone.as_deref(), &config.default_time_zone);
    let survey_token =
        (step_config.survey || step_config.nps).then(|| link(deps, e, Purpose::Survey, step, now));
    let unsubscribe_token = link(deps, e, Purpose::Unsubscribe, step, now);
    let unsubscribe_url = format!("{base}/v1/unsubscribe?t={unsubscribe_token}");
    let survey = match (&survey_token, step_config.survey) {
        (Some(t), true) => Reason::ALL
            .iter()
            .map(|r| SurveyLink {
                reason: r.as_str().to_string(),
                url: format!("{base}/v1/survey?t={t}&a={}", r.as_str()),
            })
            .collect(),
        _ => Vec::new(),
    };
    let nps = match (&survey_token, step_config.nps) {
        (Some(t), true) => (0..=10u8)
            .map(|score| NpsLink {
                score,
                url: format!("{base}/v1/survey?t={t}&a={score}"),
            })
            .collect(),
        _ => Vec::new(),
    };
    // Which template, and whether it offers "fewer emails": the domain's choice.
    let letter = send::email_for(e, profile, step, &step_config.template, &config.eligibility);
    let today = tz.date(now);
    let since = profile.first_order_at.map(|f| tz.date(f)).unwrap_or(today);
    let months = locale::months_between(since, today);
    let ctx = EmailContext {
        first_name: profile.first_name.clone(),
        last_product: profile.last_product().map(str::to_string),
        last_category: profile.last_category().map(str::to_string),
        favourite_product: profile.favourite_product().map(str::to_string),
        customer_since: locale::format_date(since, &locale_code),
        years_as_customer: months / 12,
        months_as_customer: months,
        order_count: profile.order_count,
        reward: reward.map(|r| {
            let url =
                reward::checkout_url(config.checkout.as_ref(), &config.shop_url, r.code.as_str());
            RewardView::new(r, &locale_code, &tz, now, url)
        }),
        survey,
        nps,
        fewer_emails_url: format!("{unsubscribe_url}&offer=fewer"),
        offer_fewer_emails: letter.offer_fewer_emails,
        unsubscribe_url: unsubscribe_url.clone(),
        shop_url: config.shop_url.clone(),
        shop_name: config.shop_name.clone(),
        step,
        total_steps: steps.len() as u8,
        variant_copy: config
            .experiment
            .variants
            .iter()
            .find(|v| v.name == e.variant)
            .and_then(|v| v.copy.clone()),
        occasion: e.occasion.map(|o| o.as_str().to_string()),
        segment: e.segment.map(|s| s.as_str().to_string()),
        reason: e
            .survey_reason
            .or(profile.survey_reason)
            .map(|r| r.as_str().to_string()),
        resolved: e.resolved.clone(),
    };
    let rendered = deps
        .campaign
        .render_template(letter.template, &locale_code, &ctx)
        .map_err(|source| SendError::Render { step, source })?;
    Ok(Email {
        to: profile.email.clone().unwrap_or_default(),
        from: deps.sender_address.clone(),
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        headers: vec![
            ("List-Unsubscribe".into(), format!("<{unsubscribe_url}>")),
            (
                "List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            ),
        ],
        tags: vec![
            ("campaign".into(), e.campaign.clone()),
            ("step".into(), step.to_string()),
            ("variant".into(), e.variant.clone()),
            ("group".into(), e.group.as_str().to_string()),
            ("customer_id".into(), e.customer_id.to_string()),
            ("enrollment_id".into(), e.id.clone()),
            ("flow".into(), e.flow.as_str().to_string()),
        ],
    })
}
