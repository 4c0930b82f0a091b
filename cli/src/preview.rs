//! `winback preview`: every step × locale × reward kind of a campaign rendered to files, with an
//! index page, so a marketer can review the emails before anything is sent.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use shared::campaign::{Campaign, EmailContext, NpsLink, RewardView, SurveyLink};
use shared::domain::edge::CustomerId;
use shared::domain::money::Money;
use shared::domain::reward::{Reward, RewardCode, RewardKind, RewardSpec};
use shared::domain::sequence::Flow;
use shared::domain::survey::{Reason, Resolved};

use crate::error::{CliError, CliResult};

/// What a preview wrote.
#[derive(Debug, Clone)]
pub struct PreviewSummary {
    pub emails: usize,
    pub index: PathBuf,
}

/// A reward of each kind, as a campaign could configure it.
pub fn sample_spec(kind: RewardKind) -> RewardSpec {
    let (value, product, orders) = match kind {
        RewardKind::AmountOff => (Some(Money(1000)), None, None),
        RewardKind::PercentOff => (Some(Money(1500)), None, None),
        RewardKind::MultiOrder => (Some(Money(500)), None, Some(5)),
        RewardKind::FreeProduct => (None, Some("Espresso blend 250 g".to_string()), None),
        RewardKind::FreeShipping | RewardKind::Consultation => (None, None, None),
    };
    RewardSpec {
        amounts: Default::default(),
        kind,
        value,
        product,
        orders,
        validity_days: 14,
    }
}

fn context(
    campaign: &Campaign,
    flow: Flow,
    step: u8,
    locale: &str,
    reward: Option<&Reward>,
    now: DateTime<Utc>,
) -> EmailContext {
    let config = campaign.config();
    let steps = config.steps_of(flow);
    let step_config = &steps[usize::from(step) - 1];
    let base = "https://webhook.example/v1";
    let tz = config
        .default_time_zone
        .parse()
        .unwrap_or(shared::domain::zone::Zone::UTC);
    EmailContext {
        first_name: Some("Alex".into()),
        last_product: Some("Ethiopia Yirgacheffe beans".into()),
        last_category: Some("coffee".into()),
        favourite_product: Some("Ethiopia Yirgacheffe beans".into()),
        customer_since: shared::campaign::format_date(
            chrono::NaiveDate::from_ymd_opt(2023, 4, 2).expect("date"),
            locale,
        ),
        years_as_customer: 2,
        months_as_customer: 34,
        order_count: 7,
        reward: reward.map(|r| {
            let url = shared::domain::reward::checkout_url(
                config.checkout.as_ref(),
                &config.shop_url,
                r.code.as_str(),
            );
            RewardView::new(r, locale, &tz, now, url)
        }),
        survey: if step_config.survey {
            Reason::ALL
                .iter()
                .map(|r| SurveyLink {
                    reason: r.as_str().into(),
                    url: format!("{base}/survey?t=preview&a={}", r.as_str()),
                })
                .collect()
        } else {
            Vec::new()
        },
        nps: if step_config.nps {
            (0..=10)
                .map(|score| NpsLink {
                    score,
                    url: format!("{base}/survey?t=preview&a={score}"),
                })
                .collect()
        } else {
            Vec::new()
        },
        unsubscribe_url: format!("{base}/unsubscribe?t=preview"),
        fewer_emails_url: format!("{base}/unsubscribe?t=preview&offer=fewer"),
        offer_fewer_emails: true,
        shop_url: config.shop_url.clone(),
        shop_name: config.shop_name.clone(),
        step,
        total_steps: steps.len() as u8,
        variant_copy: None,
        occasion: (flow == Flow::Celebration).then(|| "birthday".to_string()),
        segment: (flow == Flow::ReEngagement).then(|| "never_opened".to_string()),
        reason: None,
        resolved: None,
    }
}

/// One table of the index page (templates/preview_index.html): a section a step and one for
/// the resolved-reason email and one for the fewer-emails email, a row a reward kind or answer,
/// a cell a locale.
#[derive(Serialize)]
struct Section {
    /// The resolved-reason email's table rather than a step's.
    resolved: bool,
    /// The fewer-emails email's table rather than a step's.
    fewer: bool,
    /// The flow's name before "Step" ("" for the win-back flow).
    flow: &'static str,
    n: u8,
    template: String,
    /// As Rust prints the number (`3`, `0.5`).
    delay_days: String,
    reward: bool,
    survey: bool,
    nps: bool,
    rows: Vec<Row>,
}

#[derive(Serialize)]
struct Row {
    name: String,
    cells: Vec<Cell>,
}

/// One rendered email: its files' stem and its subject.
#[derive(Serialize)]
struct Cell {
    stem: String,
    subject: String,
}

/// A reward of `spec` as step `step` would issue it, with a fixed sample code.
fn sample_reward(
    spec: RewardSpec,
    config: &shared::campaign::CampaignConfig,
    step: u8,
    now: DateTime<Utc>,
) -> Reward {
    Reward::issue(
        RewardCode::from_entropy([7, 1, 3, 9, 4, 2, 8, 6]),
        spec,
        &CustomerId::parse("preview").expect("a valid customer id"),
        &config.name,
        "preview#1",
        "preview",
        step,
        &config.currency,
        now,
    )
}

/// Renders one email to `<stem>.html` and `<stem>.txt` in `out`; its cell of the index.
fn emit(
    campaign: &Campaign,
    out: &Path,
    step: u8,
    template: &str,
    locale: &str,
    row: &str,
    ctx: &EmailContext,
) -> CliResult<Cell> {
    let config = campaign.config();
    let rendered = campaign
        .render_template(template, locale, ctx)
        .map_err(|source| CliError::Render {
            campaign: config.name.clone(),
            step,
            template: template.to_string(),
            locale: locale.to_string(),
            reward: row.to_string(),
            source: Box::new(source),
        })?;
    let stem = format!("step{step}-{template}.{locale}.{row}");
    let html_path = out.join(format!("{stem}.html"));
    let text_path = out.join(format!("{stem}.txt"));
    std::fs::write(&html_path, &rendered.html).map_err(CliError::io("write", &html_path))?;
    std::fs::write(
        &text_path,
        format!("Subject: {}\n\n{}", rendered.subject, rendered.text),
    )
    .map_err(CliError::io("write", &text_path))?;
    Ok(Cell {
        stem,
        subject: rendered.subject,
    })
}

/// Loads `campaign` (a shipped name or a directory) and writes the preview into `out`.
pub fn run(campaign_name: &str, out: &Path) -> CliResult<PreviewSummary> {
    let campaign = Campaign::open(campaign_name).map_err(|source| CliError::Campaign {
        name: campaign_name.to_string(),
        source: Box::new(source),
    })?;
    let config = campaign.config().clone();
    std::fs::create_dir_all(out).map_err(CliError::io("create", out))?;
    let now = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("date");
    let mut sections = Vec::new();
    let mut emails = 0;
    let flows = [
        Flow::WinBack,
        Flow::AtRisk,
        Flow::Celebration,
        Flow::ReEngagement,
    ];
    let all_steps = flows.iter().flat_map(|f| {
        let steps = config.steps_of(*f);
        steps
            .iter()
            .enumerate()
            .map(move |(i, st)| (*f, i, st, steps))
    });
    for (flow, i, step, steps) in all_steps {
        let n = (i + 1) as u8;
        let kinds: Vec<Option<RewardKind>> = if step.reward {
            RewardKind::ALL.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        let mut section = Section {
            resolved: false,
            fewer: false,
            flow: match flow {
                Flow::AtRisk => "At-risk flow, ",
                Flow::Celebration => "Birthday and anniversary flow, ",
                Flow::ReEngagement => "Re-engagement flow, ",
                Flow::WinBack => "",
            },
            n,
            template: step.template.clone(),
            delay_days: step.delay_days.to_string(),
            reward: step.reward,
            survey: step.survey,
            nps: step.nps,
            rows: Vec::new(),
        };
        let asked_before = steps[..i].iter().any(|s| s.survey);
        // Each reward kind, then (after a step with the survey) each answer with its reward.
        let mut rows: Vec<(String, Option<RewardSpec>, Option<Reason>)> = kinds
            .into_iter()
            .map(|k| {
                (
                    k.map_or("none", RewardKind::as_str).to_string(),
                    k.map(sample_spec),
                    None,
                )
            })
            .collect();
        if asked_before {
            let variant = config
                .experiment
                .variants
                .first()
                .map(|v| v.name.clone())
                .unwrap_or_default();
            rows.extend(Reason::ALL.into_iter().map(|r| {
                (
                    format!("reason-{r}"),
                    step.reward.then(|| {
                        shared::domain::reward::choose(
                            &config.rewards,
                            config.experiment.variant_reward(&variant),
                            Some(r),
                        )
                    }),
                    Some(r),
                )
            }));
        }
        for (row, spec, reason) in rows {
            let mut cells = Vec::new();
            for locale in &config.locales {
                let reward = spec
                    .clone()
                    .map(|spec| sample_reward(spec, &config, n, now));
                let mut ctx = context(&campaign, flow, n, locale, reward.as_ref(), now);
                ctx.reason = reason.map(|r| r.as_str().to_string());
                cells.push(emit(&campaign, out, n, &step.template, locale, &row, &ctx)?);
                emails += 1;
            }
            section.rows.push(Row { name: row, cells });
        }
        sections.push(section);
    }
    if let Some(template) = &config.eligibility.resolved_template {
        // The email that tells a paused customer their reason is fixed (it replaces step 1).
        let mut cells = Vec::new();
        for locale in &config.locales {
            let reward = config.steps[0]
                .reward
                .then(|| sample_reward(config.rewards.default.clone(), &config, 1, now));
            let mut ctx = context(&campaign, Flow::WinBack, 1, locale, reward.as_ref(), now);
            ctx.survey = Vec::new();
            ctx.reason = Some(Reason::Quality.as_str().to_string());
            ctx.resolved = Some(Resolved {
                reason: Reason::Quality,
                note: "Our new roaster is in, and every batch is tasted before it ships.".into(),
            });
            cells.push(emit(
                &campaign,
                out,
                1,
                template,
                locale,
                "resolved-quality",
                &ctx,
            )?);
            emails += 1;
        }
        sections.push(Section {
            resolved: true,
            fewer: false,
            flow: "",
            n: 1,
            template: template.clone(),
            delay_days: String::new(),
            reward: false,
            survey: false,
            nps: false,
            rows: vec![Row {
                name: "reason-quality".into(),
                cells,
            }],
        });
    }
    if let Some(template) = &config.eligibility.fewer_emails_template {
        // The one win-back email a customer who chose "fewer emails" gets, instead of the last
        // step's: with the last step's reward, and without one (none could be priced).
        let last = config.steps.len() as u8;
        let rewarded = config.steps.last().is_some_and(|s| s.reward);
        let mut rows = Vec::new();
        for with_reward in [true, false].into_iter().filter(|r| rewarded || !r) {
            let row = if with_reward { "amount_off" } else { "none" };
            let mut cells = Vec::new();
            for locale in &config.locales {
                let reward = with_reward
                    .then(|| sample_reward(config.rewards.default.clone(), &config, last, now));
                let mut ctx = context(&campaign, Flow::WinBack, last, locale, reward.as_ref(), now);
                ctx.offer_fewer_emails = false;
                cells.push(emit(&campaign, out, last, template, locale, row, &ctx)?);
                emails += 1;
            }
            rows.push(Row {
                name: row.into(),
                cells,
            });
        }
        sections.push(Section {
            resolved: false,
            fewer: true,
            flow: "",
            n: last,
            template: template.clone(),
            delay_days: String::new(),
            reward: rewarded,
            survey: false,
            nps: false,
            rows,
        });
    }
    let page = crate::pages::render(
        "preview_index.html",
        minijinja::context! {
            name => &config.name,
            shop => &config.shop_name,
            locales => &config.locales,
            emails,
            sections,
        },
    );
    let index_path = out.join("index.html");
    std::fs::write(&index_path, page).map_err(CliError::io("write", &index_path))?;
    Ok(PreviewSummary {
        emails,
        index: index_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_reward_is_a_valid_spec() {
        for k in RewardKind::ALL {
            assert_eq!(sample_spec(k).validate(), Ok(()), "{k:?}");
        }
    }
}
