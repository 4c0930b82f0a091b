//! `winback plan`: a dry run of the scheduler's decision for every customer at a given moment.
//! Reads only; sends and writes nothing.

use shared::ports::{PageAt, ScanSegment};
use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::campaign::config::CampaignConfig;
use shared::domain::celebration::Occasion;
use shared::domain::customer::Profile;
use shared::domain::eligibility;
use shared::domain::engagement::{self, Segment};
use shared::domain::enroll::{self, NextAction};
use shared::domain::hygiene;
use shared::domain::lapse::{Assessment, Basis, LapseState};
use shared::domain::money::Money;
use shared::domain::sequence::{Enrollment, Flow};
use shared::domain::targeting;
use shared::ports::Store;

use crate::error::CliResult;

/// What the scheduler would do with a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Lapsed and eligible: would be enrolled now.
    Enroll,
    /// Lapsed but an eligibility rule keeps them out.
    KeptOut,
    /// Not lapsed yet.
    Wait,
    /// No order: nothing to win back.
    NoOrders,
}

/// One customer's line of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    pub customer_id: String,
    pub orders: u32,
    pub last_order_at: Option<DateTime<Utc>>,
    pub threshold_days: Option<f64>,
    /// How the threshold was found.
    pub basis: String,
    /// `active`, `at_risk`, `lapsed` or `no_orders`.
    pub state: &'static str,
    /// When they lapse (or lapsed).
    pub lapse_at: Option<DateTime<Utc>>,
    pub decision: Decision,
    /// The eligibility rule that decided: `eligible`, or the rule that kept them out.
    pub rule: String,
    pub detail: String,
    pub group: Option<&'static str>,
    pub variant: Option<String>,
    /// The probability that the customer is still active (0–1): the fitted model's, or for a
    /// regular buyer their own rhythm's.
    pub p_active: Option<f64>,
    /// The chance of an order within `horizon_days` that the decision reads (0–1): lapsed below
    /// `p_order_threshold`, at risk below `at_risk_p_order` (a regular buyer's own; for a seasonal
    /// buyer or a few-order customer in a listed category, the model's, shown only: their time of
    /// year or category sets their moments, see `rhythm`).
    pub p_order: Option<f64>,
    /// The window `p_order` is over (the campaign's `horizon_days`; for a regular buyer whose
    /// gaps are longer than a third of it, three of their gaps).
    pub horizon_days: Option<f64>,
    /// What set the lapse moment under a fitted model: `model`, `regular`, `seasonal` or
    /// `category`.
    pub rhythm: Option<&'static str>,
    /// When their next order is expected if they are still active.
    pub expected_next_order_at: Option<DateTime<Utc>>,
    /// Expected spend over the next 12 months, in the campaign currency ("12.50").
    pub predicted_value: Option<Money>,
    /// The hygiene rule that keeps this customer's address out of every send, whether or not
    /// they have lapsed (`role_address`, `disposable_domain`, `invalid_address`).
    pub address_kept_out: Option<&'static str>,
    /// The kind of inactivity (`never_opened`, `opened_not_clicked`, `clicked_not_bought`,
    /// `buys_less_often`) of a customer at risk or lapsed, when one sets them apart.
    pub segment: Option<&'static str>,
    /// The flow an enrolled (or kept out) customer is for: `win-back`, `at-risk`,
    /// `re-engagement`, `celebration`.
    pub flow: Option<&'static str>,
    /// What the targeting decision gives an enrolled, emailed customer (`as_the_rules`,
    /// `email_with_reward`, `email_without_reward`, `no_email`) and why.
    pub targeting: Option<&'static str>,
    pub targeting_why: Option<String>,
    /// The flow's uplift model's estimate for the customer: the chance of ordering within the
    /// attribution window with the reward, minus without any email (when it has learned).
    pub uplift: Option<f64>,
}

/// The plan of every customer, with the addresses kept out before the first send counted by rule
/// (what `plan --json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub customers: Vec<PlanRow>,
    pub addresses_kept_out: BTreeMap<&'static str, usize>,
}

impl Plan {
    pub fn new(customers: Vec<PlanRow>) -> Plan {
        Plan {
            addresses_kept_out: addresses_kept_out(&customers),
            customers,
        }
    }
}

/// How many customers' addresses each hygiene rule keeps out.
pub fn addresses_kept_out(rows: &[PlanRow]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for rule in rows.iter().filter_map(|r| r.address_kept_out) {
        *out.entry(rule).or_default() += 1;
    }
    out
}

/// What the scheduler would decide for one customer at `at` ([`enroll::decide`], the same
/// function the scheduler calls), with what it was decided from, as a plan row.
pub fn plan_one(
    p: &Profile,
    latest: Option<&Enrollment>,
    campaign: &CampaignConfig,
    at: DateTime<Utc>,
) -> PlanRow {
    let program = campaign.program();
    let facts = enroll::Facts {
        profile: p,
        latest: Some(latest),
        assessment: None,
    };
    let evaluation = enroll::decide(&facts, campaign, &program, at);
    let a = &evaluation.assessment;
    let mut row = PlanRow {
        customer_id: p.customer_id.to_string(),
        orders: p.order_count,
        last_order_at: p.last_order_at,
        threshold_days: a.threshold.as_ref().map(|t| t.days),
        basis: basis(a, p, campaign),
        state: "no_orders",
        lapse_at: None,
        decision: Decision::NoOrders,
        rule: "no_orders".into(),
        detail: String::new(),
        group: None,
        variant: None,
        p_active: a.outlook.as_ref().map(|o| o.p_active),
        p_order: a.outlook.as_ref().map(|o| o.p_order),
        horizon_days: a.outlook.as_ref().map(|o| o.horizon_days),
        rhythm: a.outlook.as_ref().map(|o| o.basis.as_str()),
        expected_next_order_at: a.outlook.as_ref().map(|o| o.expected_next_order_at),
        predicted_value: a
            .outlook
            .as_ref()
            .map(|o| Money(o.predicted_value.round() as i64)),
        address_kept_out: p.email.as_deref().and_then(|e| {
            hygiene::assess(e, &campaign.eligibility.hygiene)
                .err()
                .map(|k| k.rule())
        }),
        segment: None,
        flow: None,
        targeting: None,
        targeting_why: None,
        uplift: None,
    };
    // The state, and what the decision is about in words.
    let context = match &a.state {
        LapseState::NoOrders => return row,
        LapseState::Active { lapses_at } => {
            row.state = "active";
            row.lapse_at = Some(*lapses_at);
            format!("lapses {}", lapses_at.format("%Y-%m-%d"))
        }
        LapseState::AtRisk { lapses_at, signals } => {
            row.state = "at_risk";
            row.lapse_at = Some(*lapses_at);
            let s: Vec<String> = signals
                .iter()
                .map(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect();
            format!(
                "lapses {}; signals: {}",
                lapses_at.format("%Y-%m-%d"),
                s.join(", ")
            )
        }
        LapseState::Lapsed { since } => {
            row.state = "lapsed";
            row.lapse_at = Some(*since);
            format!(
                "lapsed since {}; {} order(s), lifetime value {} {}",
                since.format("%Y-%m-%d"),
                p.order_count,
                p.lifetime_value,
                p.currency.as_deref().unwrap_or(&campaign.currency)
            )
        }
    };
    row.flow = evaluation.flow.map(Flow::as_str);
    if evaluation.flow.is_some() {
        row.segment = evaluation.segment.map(engagement::Segment::as_str);
    }
    let note = flow_note(evaluation.flow, evaluation.occasion, evaluation.segment);
    match evaluation.next {
        NextAction::Enroll { enrollment, .. } => {
            row.decision = Decision::Enroll;
            row.rule = "eligible".into();
            row.detail = [note, context]
                .into_iter()
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            row.group = Some(enrollment.group.as_str());
            if let Some(d) = &evaluation.targeting {
                row.targeting = Some(d.treatment.as_str());
                row.targeting_why = Some(targeting_why(&d.why, &campaign.currency));
                if d.why != targeting::Why::RulesMode {
                    row.detail =
                        format!("{}; {}", row.detail, targeting_text(d, &campaign.currency));
                }
            }
            row.uplift = evaluation
                .chances
                .and_then(|c| Some(c.with_reward.or(c.email_only)? - c.no_email));
            row.variant = Some(enrollment.variant);
        }
        NextAction::Wait {
            kept_out: Some(why),
            ..
        } => {
            row.decision = Decision::KeptOut;
            row.rule = why.rule().to_string();
            row.detail = rule_detail(&why);
        }
        NextAction::Wait { kept_out: None, .. } | NextAction::Look(_) => {
            row.decision = Decision::Wait;
            // A lapsed customer waits only when the campaign's flows take none of them.
            row.rule = if row.state == "lapsed" {
                "no_flow".into()
            } else {
                "not_lapsed".into()
            };
            row.detail = context;
        }
    }
    row
}

/// Why the targeting decision chose what it did, in words.
fn targeting_why(why: &targeting::Why, currency: &str) -> String {
    let money =
        |m: Option<f64>| m.map_or("not tried".to_string(), |v| format!("{v:.2} {currency}"));
    match why {
        targeting::Why::RulesMode => "the rules decide ([targeting] mode = \"rules\")".into(),
        targeting::Why::StillLearning {
            treated,
            holdout,
            needed,
        } => format!(
            "the rules decide until the flow's model has learned from {needed} finished enrollments in each group ({treated} emailed, {holdout} held out so far)"
        ),
        targeting::Why::Exploring => {
            "the rules decide for the exploration share, so learning goes on".into()
        }
        targeting::Why::Margin {
            with_reward,
            email_only,
        } => format!(
            "expected incremental margin: with the reward {}, email alone {}",
            money(*with_reward),
            money(*email_only)
        ),
    }
}

fn targeting_text(d: &targeting::Decision, currency: &str) -> String {
    let what = match d.treatment {
        targeting::Treatment::AsTheRules => "emailed as the rules say",
        targeting::Treatment::EmailWithReward => "emailed with the reward",
        targeting::Treatment::EmailWithoutReward => "emailed without a reward",
        targeting::Treatment::NoEmail => "not emailed (counted with the variant)",
    };
    format!("targeting: {what}: {}", targeting_why(&d.why, currency))
}

/// How the lapse moment was found, in words.
fn basis(a: &Assessment, p: &Profile, campaign: &CampaignConfig) -> String {
    match (&a.threshold, &a.outlook) {
        (Some(t), Some(o)) => {
            let chances = format!(
                "P(active) {:.2}, P(order in {:.0} d) {:.2}",
                o.p_active, o.horizon_days, o.p_order
            );
            let moment = match o.basis {
                Basis::Model => format!(
                    "{chances}: lapses below {} after {:.0} d quiet",
                    campaign.lapse.p_order_threshold, t.days
                ),
                Basis::Regular => format!(
                    "regular buyer (median gap {:.0} d), {chances}: lapses below {} after {:.0} d quiet",
                    t.median_gap_days.unwrap_or(0.0),
                    campaign.lapse.p_order_threshold,
                    t.days
                ),
                Basis::Seasonal => format!(
                    "seasonal buyer, judged by their time of year: lapses after {:.0} d quiet, once their season passed ({chances} by the model)",
                    t.days
                ),
                Basis::Category => format!(
                    "few orders, judged by their category's days{}: lapses after {:.0} d quiet ({chances} by the model)",
                    category_note(p, campaign),
                    t.days
                ),
            };
            // The model's expected next order is that of a customer still active: for one who
            // has lapsed it is no promise, and the text says so.
            format!(
                "{moment}; if still active, next order expected {}; 12-month value {} {}",
                o.expected_next_order_at.format("%Y-%m-%d"),
                Money(o.predicted_value.round() as i64),
                campaign.currency
            )
        }
        (None, _) => "no orders".to_string(),
        (Some(t), None) => match t.median_gap_days {
            Some(m) => format!(
                "median gap {m:.1} d × {} over {} gap(s), pulled toward {:.0} d{}",
                campaign.lapse.multiplier,
                t.gaps,
                t.default_days,
                category_note(p, campaign)
            ),
            None => format!(
                "one order: default {:.0} d{}",
                t.default_days,
                category_note(p, campaign)
            ),
        },
    }
}

/// The flow a customer is for, in words, with their kind of inactivity.
fn flow_note(flow: Option<Flow>, occasion: Option<Occasion>, segment: Option<Segment>) -> String {
    let name = match (flow, occasion) {
        (Some(Flow::ReEngagement), _) => "re-engagement flow (re-permission, sunset sooner)".into(),
        (Some(Flow::AtRisk), _) => "at-risk flow".into(),
        (Some(Flow::Celebration), Some(o)) => format!("celebration flow ({})", o.as_str()),
        _ => String::new(),
    };
    let seg = match (flow, segment) {
        (Some(_), Some(s)) => format!("segment {s}"),
        _ => String::new(),
    };
    [name, seg]
        .into_iter()
        .filter(|x| !x.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An eligibility rule's figures (`until 2026-03-01, …`), in words.
fn rule_detail(why: &eligibility::Ineligible) -> String {
    serde_json::to_value(why)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|m| {
            m.into_iter()
                .filter(|(k, _)| k != "rule")
                .map(|(k, v)| {
                    format!(
                        "{k} {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn category_note(p: &Profile, campaign: &CampaignConfig) -> String {
    match p.last_category() {
        Some(c) if campaign.lapse.category_days.contains_key(c) => format!(" (category {c})"),
        _ => String::new(),
    }
}

/// The lapse policy with the customer model fitted on `profiles` at `at` (unless the campaign
/// file pins one, or the fit falls back to the prior, which the policy already has). Profiles are
/// read one at a time and only their summaries kept, so `profiles` may build each as it goes.
pub fn lapse_fitted_on<P: Borrow<Profile>>(
    profiles: impl IntoIterator<Item = P>,
    policy: &shared::campaign::config::LapsePolicy,
    valuation: &shared::domain::money::Valuation<'_>,
    at: DateTime<Utc>,
) -> shared::campaign::config::LapsePolicy {
    use shared::domain::model;
    if policy.fitted.is_some() {
        return policy.clone();
    }
    let mut summaries: Vec<model::Summary> = Vec::new();
    let mut rhythms = shared::domain::rhythm::Pool::default();
    for p in profiles {
        let p = p.borrow();
        summaries.extend(model::fit_summary(p, at, valuation));
        rhythms.add(&p.order_times(), p.last_category());
    }
    let mut fit = model::fit(policy.model_variant(), &summaries);
    fit.categories = rhythms.finish();
    if let Some(w) = &fit.warning {
        eprintln!("customer model: {w}");
    }
    policy.with_stored_fit(model::worth_storing(&fit).then_some(&fit))
}

/// Plans every profile of a store (a full scan: this is an operator's dry run, not the
/// scheduler's steady state), sending each row to `rows` as it is decided: nothing is gathered,
/// so memory does not grow with the store. One scan segment, so that the embedded store's rows
/// come in the order of the customer ids (DynamoDB's in its scan order). Stops early when the
/// receiver is gone.
pub async fn plan_store(
    store: &dyn Store,
    campaign: &CampaignConfig,
    at: DateTime<Utc>,
    rows: &tokio::sync::mpsc::Sender<PlanRow>,
) -> CliResult<()> {
    let mut cursor = None;
    loop {
        let page = store
            .scan_profiles(ScanSegment::new(0, 1), PageAt::new(cursor, 500))
            .await?;
        for p in page.items {
            let latest = store.get_enrollment(&p.customer_id, &campaign.name).await?;
            if rows
                .send(plan_one(&p, latest.as_ref(), campaign, at))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(());
        }
    }
}

/// What the plan's summary counts, gathered one row at a time.
#[derive(Debug, Default)]
struct Tally {
    customers: usize,
    enroll: usize,
    holdout: usize,
    kept_out: usize,
    wait: usize,
    /// Per flow of [`Flow::ALL`]: how many would be enrolled, and of them into the holdout.
    per_flow: [(usize, usize); Flow::ALL.len()],
    /// Those kept out, by rule.
    rules: BTreeMap<String, usize>,
    addresses_kept_out: BTreeMap<&'static str, usize>,
}

impl Tally {
    fn add(&mut self, r: &PlanRow) {
        self.customers += 1;
        let held = r.group == Some("holdout");
        self.holdout += usize::from(held);
        match r.decision {
            Decision::Enroll => {
                self.enroll += 1;
                if let Some(i) = Flow::ALL.iter().position(|f| r.flow == Some(f.as_str())) {
                    self.per_flow[i].0 += 1;
                    self.per_flow[i].1 += usize::from(held);
                }
            }
            Decision::KeptOut => {
                self.kept_out += 1;
                *self.rules.entry(r.rule.clone()).or_default() += 1;
            }
            Decision::Wait => self.wait += 1,
            Decision::NoOrders => {}
        }
        if let Some(rule) = r.address_kept_out {
            *self.addresses_kept_out.entry(rule).or_default() += 1;
        }
    }
}

/// The plan as a text table with a summary.
pub fn to_text(rows: &[PlanRow], at: DateTime<Utc>) -> String {
    let mut out = Vec::new();
    write_text(&mut out, rows, at).expect("writing to memory does not fail");
    String::from_utf8(out).expect("the plan is text")
}

/// Writes the plan as a text table ([`to_text`]), each row as it comes, and the summary after
/// the last: the rows need not all be held at once.
pub fn write_text<R: Borrow<PlanRow>>(
    out: &mut impl Write,
    rows: impl IntoIterator<Item = R>,
    at: DateTime<Utc>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "Plan at {} (dry run: nothing is sent or written)",
        at.format("%Y-%m-%d %H:%M UTC")
    )?;
    writeln!(
        out,
        "{:<16} {:>6} {:<10} {:>9} {:<8} {:<9} {:<22} {:<15} detail / threshold basis",
        "customer", "orders", "last order", "threshold", "state", "decision", "rule", "variant"
    )?;
    let mut tally = Tally::default();
    for r in rows {
        let r = r.borrow();
        tally.add(r);
        let detail = [r.detail.as_str(), r.basis.as_str()]
            .into_iter()
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        writeln!(
            out,
            "{:<16} {:>6} {:<10} {:>9} {:<8} {:<9} {:<22} {:<15} {}",
            r.customer_id,
            r.orders,
            r.last_order_at
                .map_or_else(|| "-".into(), |d| d.format("%Y-%m-%d").to_string()),
            r.threshold_days
                .map_or_else(|| "-".into(), |d| format!("{d:.1} d")),
            r.state,
            match r.decision {
                Decision::Enroll => "enroll",
                Decision::KeptOut => "kept out",
                Decision::Wait => "wait",
                Decision::NoOrders => "-",
            },
            r.rule,
            r.variant.as_deref().unwrap_or("-"),
            detail
        )?;
    }
    writeln!(
        out,
        "\n{} customers: {} would be enrolled ({} into the holdout), {} kept out by a rule, {} not lapsed yet",
        tally.customers, tally.enroll, tally.holdout, tally.kept_out, tally.wait
    )?;
    // Each flow's share of those enrolled, and of its holdout.
    let per_flow: Vec<String> = Flow::ALL
        .into_iter()
        .zip(tally.per_flow)
        .map(|(flow, (enrolled, held))| format!("{} {enrolled} (holdout {held})", flow.as_str()))
        .collect();
    writeln!(out, "  would be enrolled per flow: {}", per_flow.join(", "))?;
    for (rule, n) in &tally.rules {
        writeln!(out, "  kept out by {rule}: {n}")?;
    }
    writeln!(
        out,
        "Addresses kept out before the first send (any state): {}",
        crate::orders::describe_kept_out(&tally.addresses_kept_out)
    )
}

/// Writes the plan as `--json` prints it: [`Plan`] as pretty JSON, without a line end after it,
/// each row serialized as it comes (the addresses kept out, which follow the rows, are counted on
/// the way), so the rows need not all be held at once.
pub fn write_json<R: Borrow<PlanRow>>(
    out: impl Write,
    rows: impl IntoIterator<Item = R>,
) -> std::io::Result<()> {
    let plan = Streamed {
        rows: RefCell::new(Some(rows.into_iter())),
        kept_out: RefCell::new(BTreeMap::new()),
    };
    serde_json::to_writer_pretty(out, &plan).map_err(std::io::Error::from)
}

/// [`Plan`]'s fields, the rows taken from an iterator while they are serialized.
struct Streamed<I> {
    rows: RefCell<Option<I>>,
    kept_out: RefCell<BTreeMap<&'static str, usize>>,
}

/// The `customers` field of a [`Streamed`] plan.
struct StreamedRows<'a, I>(&'a Streamed<I>);

impl<R: Borrow<PlanRow>, I: Iterator<Item = R>> Serialize for Streamed<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut plan = s.serialize_struct("Plan", 2)?;
        plan.serialize_field("customers", &StreamedRows(self))?;
        plan.serialize_field("addresses_kept_out", &*self.kept_out.borrow())?;
        plan.end()
    }
}

impl<R: Borrow<PlanRow>, I: Iterator<Item = R>> Serialize for StreamedRows<'_, I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        let rows = self.0.rows.borrow_mut().take();
        for r in rows.into_iter().flatten() {
            let r = r.borrow();
            if let Some(rule) = r.address_kept_out {
                *self.0.kept_out.borrow_mut().entry(rule).or_default() += 1;
            }
            seq.serialize_element(r)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shared::campaign::testing::example_campaign;
    use shared::domain::customer::{EmailStatus, OrderRecord};
    use shared::domain::money::Money;

    fn customer(id: &str, last_day: u32) -> Profile {
        let mut p = Profile::new(id.parse().unwrap());
        p.email = Some(format!("{id}@example.com"));
        for d in [last_day - 28, last_day - 14, last_day] {
            p.record_order(OrderRecord {
                at: Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap()
                    + chrono::Duration::days(i64::from(d)),
                amount: Money(2500),
                product: None,
                category: Some("coffee".into()),
                currency: None,
                order_id: None,
                refunded: Default::default(),
                refund_ids: Vec::new(),
                lines: Vec::new(),
            });
        }
        p
    }

    #[test]
    fn a_lapsed_mailable_customer_would_be_enrolled_with_a_variant() {
        let c = example_campaign();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let r = plan_one(&customer("c1", 30), None, &c, at);
        assert_eq!(r.decision, Decision::Enroll);
        assert_eq!(r.rule, "eligible");
        assert!(r.variant.is_some() && r.group.is_some());
        assert!(r.basis.starts_with("P(active) 0."), "{}", r.basis);
        let p = r.p_active.expect("the model's P(active)");
        assert!((0.0..0.3).contains(&p), "{p}");
        assert!(r.expected_next_order_at.is_some_and(|t| t > at));
        assert!(r.predicted_value.is_some_and(|v| v.0 > 0));
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["p_active"].is_number() && json["predicted_value"].is_string());
        assert!(json["expected_next_order_at"].is_string());
        // The decision's own chance and its window: lapsed, so below the campaign's threshold.
        let p_order = json["p_order"].as_f64().expect("p_order");
        assert!(p_order < c.lapse.p_order_threshold, "{p_order}");
        assert_eq!(json["horizon_days"].as_f64(), Some(90.0));
        assert_eq!(json["rhythm"], "model");
    }

    #[test]
    fn a_regular_buyer_s_line_carries_their_own_chance() {
        // 24 monthly orders, the last 143 days before the plan: lapsed by their own rhythm.
        let c = example_campaign();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let mut p = Profile::new("monthly".parse().unwrap());
        p.email = Some("monthly@example.com".into());
        for k in 0..24 {
            p.record_order(OrderRecord {
                at: at - chrono::Duration::days(143 + 30 * k),
                amount: Money(2500),
                product: None,
                category: Some("coffee".into()),
                currency: None,
                order_id: None,
                refunded: Default::default(),
                refund_ids: Vec::new(),
                lines: Vec::new(),
            });
        }
        let r = plan_one(&p, None, &c, at);
        assert_eq!((r.state, r.rhythm), ("lapsed", Some("regular")));
        assert!(
            r.basis.starts_with("regular buyer (median gap 30 d)"),
            "{}",
            r.basis
        );
        assert!(r.p_order.is_some_and(|p| p < 0.05), "{:?}", r.p_order);
        assert_eq!(r.horizon_days, Some(90.0));
        assert_eq!(r.decision, Decision::Enroll);
    }

    #[test]
    fn the_threshold_rule_is_still_there_by_setting() {
        let mut c = example_campaign();
        c.lapse.model = shared::campaign::config::LapseModel::Threshold;
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let r = plan_one(&customer("c1", 30), None, &c, at);
        assert!(r.basis.contains("median gap 14.0 d"), "{}", r.basis);
        assert_eq!(r.p_active, None);
    }

    #[test]
    fn an_unsubscribed_customer_is_kept_out_by_that_rule_and_a_recent_one_waits() {
        let c = example_campaign();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let mut p = customer("c2", 30);
        p.email_status = EmailStatus::Unsubscribed;
        let r = plan_one(&p, None, &c, at);
        assert_eq!(
            (r.decision, r.rule.as_str()),
            (Decision::KeptOut, "unsubscribed")
        );
        let recent = plan_one(&customer("c3", 175), None, &c, at);
        assert_eq!(recent.decision, Decision::Wait);
        let text = to_text(&[r, recent], at);
        assert!(text.contains("kept out by unsubscribed: 1"), "{text}");
    }

    #[test]
    fn the_plan_written_row_by_row_is_the_plan_serialized_whole() {
        let c = example_campaign();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let mut info = customer("c7", 30);
        info.email = Some("info@example.com".into());
        let mut unsubscribed = customer("c2", 30);
        unsubscribed.email_status = EmailStatus::Unsubscribed;
        let rows: Vec<PlanRow> = [customer("c1", 30), unsubscribed, customer("c3", 175), info]
            .iter()
            .map(|p| plan_one(p, None, &c, at))
            .collect();
        for rows in [&rows[..], &[]] {
            let mut streamed = Vec::new();
            write_json(&mut streamed, rows.iter().cloned()).unwrap();
            let whole = serde_json::to_string_pretty(&Plan::new(rows.to_vec())).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), whole);
        }
        let text = to_text(&rows, at);
        assert!(
            text.contains("4 customers: 1 would be enrolled (0 into the holdout), 2 kept out by a rule, 1 not lapsed yet"),
            "{text}"
        );
        assert!(
            text.contains("kept out by role_address: 1\n  kept out by unsubscribed: 1"),
            "{text}"
        );
        assert!(text.contains("(any state): role_address 1"), "{text}");
    }

    #[test]
    fn an_at_risk_customer_would_get_the_at_risk_flow_when_the_campaign_has_one() {
        let mut c = example_campaign();
        // The routing does not depend on the model; the threshold rule makes the numbers plain.
        c.lapse.model = shared::campaign::config::LapseModel::Threshold;
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        // Threshold (2 × 28 + 2 × 45) / 4 = 36.5 days; quiet 31 days: at risk.
        let p = customer("c4", 150);
        let r = plan_one(&p, None, &c, at);
        assert_eq!((r.state, r.decision), ("at_risk", Decision::Enroll));
        assert!(r.detail.starts_with("at-risk flow"), "{}", r.detail);
        c.at_risk = None;
        let r = plan_one(&p, None, &c, at);
        assert_eq!(
            (r.decision, r.rule.as_str()),
            (Decision::Wait, "not_lapsed")
        );
    }

    #[test]
    fn plan_shows_the_celebration_and_the_re_engagement_flow_with_the_segment() {
        let c = example_campaign();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        // An active customer whose birthday is today.
        let mut p = customer("c5", 175);
        p.birthday = Some(shared::domain::celebration::Birthday::parse("--03-01").unwrap());
        let r = plan_one(&p, None, &c, at);
        assert_eq!((r.state, r.decision), ("active", Decision::Enroll));
        assert_eq!(r.flow, Some("celebration"));
        assert!(
            r.detail.starts_with("celebration flow (birthday)"),
            "{}",
            r.detail
        );
        let celebrated = r.clone();
        // A lapsed customer whose last enrollment sent three emails, none opened.
        let lapsed = customer("c6", 30);
        let mut e = shared::domain::sequence::Enrollment::start(
            &"c6".parse().unwrap(),
            &c,
            1,
            shared::domain::experiment::Group::Treated,
            "amount-10",
            at - chrono::Duration::days(300),
        );
        for step in 1..=3 {
            e = e.record_sent(step, e.enrolled_at, None, &c).unwrap();
        }
        let e = e
            .close(e.enrolled_at + chrono::Duration::days(30), true)
            .unwrap();
        let r = plan_one(&lapsed, Some(&e), &c, at);
        assert_eq!(
            (r.flow, r.segment),
            (Some("re-engagement"), Some("never_opened"))
        );
        assert!(r.detail.starts_with("re-engagement flow"), "{}", r.detail);
        // c6 is in the example's program holdout: held out of the re-engagement flow too.
        assert_eq!(r.variant.as_deref(), Some("program-holdout"));
        let text = to_text(&[celebrated, r], at);
        assert!(
            text.contains(
                "would be enrolled per flow: win-back 0 (holdout 0), at-risk 0 (holdout 0), \
                 re-engagement 1 (holdout 1), celebration 1 (holdout 0)"
            ),
            "{text}"
        );
    }
}
