//! Counting: atomic counters in the metrics store, and after each change one EMF record per
//! dimension set with the change itself. Counts only: rates and lift are derived where they are
//! read (the dashboard's Logs Insights table, metric math in the alarms, `winback report`), so an
//! event costs the same whether the campaign is a day or a year old.
//!
//! Metrics (namespace `Winback`; `Campaign` is the name the cohort's counters are kept under: the
//! campaign's own for the win-back flow, `<campaign>-at-risk` and so on for the others): by
//! Campaign, Variant, Group: `Reactivated`, `RevenueRecovered` (major units), `RewardsRedeemed`,
//! `Enrolled`; by Campaign, Reason: `SurveyAnswers`; by Campaign: `Delivered`, `Opened`,
//! `Clicked`, `Bounced`, `Complained`, `Unsubscribed`, `FewerEmails`, `FollowUpsOpened`,
//! `FollowUpsClosed`. All but `SurveyAnswers` also by Campaign, Flow (`win-back`, `at-risk`,
//! `re-engagement`, `celebration`), for the dashboard's rows per flow.

use chrono::{DateTime, NaiveDate, Utc};
use shared::campaign::flows;
use shared::domain::metrics::{counter, CohortKey};
use shared::emf::{MetricSink, Record, Unit};
use shared::ports::StoreError;
use shared::telemetry::{metric::webhook as metric, Telemetry};

use crate::deps::Deps;

/// Adds `deltas` to the cohort's row of the day, then reports the change as EMF. Reads nothing.
pub(crate) async fn count(
    deps: &Deps,
    key: &CohortKey,
    now: DateTime<Utc>,
    deltas: &[(impl AsRef<str>, i64)],
) -> Result<(), StoreError> {
    count_on(deps, key, now.date_naive(), now, deltas).await
}

/// Adds `deltas` to the cohort's row of day `day` (the enrollment's, for the counters kept by
/// enrollment cohort), then reports the change as EMF at `now`. Reads nothing.
pub(crate) async fn count_on(
    deps: &Deps,
    key: &CohortKey,
    day: NaiveDate,
    now: DateTime<Utc>,
    deltas: &[(impl AsRef<str>, i64)],
) -> Result<(), StoreError> {
    let deltas: Vec<(&str, i64)> = deltas
        .iter()
        .map(|(n, d)| (n.as_ref(), *d))
        .filter(|(_, d)| *d != 0)
        .collect();
    if deltas.is_empty() {
        return Ok(());
    }
    deps.store.add_counts(key, Some(day), &deltas).await?;
    Counted {
        running: &deps.campaign.config().name,
        key,
        deltas: &deltas,
    }
    .emit(deps.metrics.as_ref(), now);
    Ok(())
}

/// Counters of cohort `key` changed by `deltas` in campaign `running`: the EMF records of
/// [`records`].
pub(crate) struct Counted<'a> {
    pub running: &'a str,
    pub key: &'a CohortKey,
    pub deltas: &'a [(&'a str, i64)],
}

impl Telemetry for Counted<'_> {
    fn log(&self) {
        tracing::debug!(event = "counted", campaign = %self.key.campaign, variant = %self.key.variant, deltas = ?self.deltas);
    }

    /// One record per dimension set, so `emit` writes each of [`records`].
    fn emit(&self, metrics: &dyn MetricSink, now: DateTime<Utc>) {
        self.log();
        for record in records(self.running, self.key, self.deltas) {
            metrics.record(record, now.timestamp_millis());
        }
    }
}

/// The EMF records for a change of `deltas` in cohort `key` of campaign `running` (a cohort of
/// another campaign, from before a rename, has no `Flow`).
pub(crate) fn records(running: &str, key: &CohortKey, deltas: &[(&str, i64)]) -> Vec<Record> {
    let campaign = key.campaign.as_str();
    let flow = flows::of_cohort(running, campaign).map(shared::domain::sequence::Flow::as_str);
    let by_flow = |r: Record| match flow {
        Some(f) => r.for_flow(f),
        None => r,
    };
    let mut out = Vec::new();

    let cohort_metric = |name: &str| match name {
        counter::REACTIVATED => Some((metric::REACTIVATED, 1.0, Unit::Count)),
        counter::REVENUE => Some((metric::REVENUE_RECOVERED, 0.01, Unit::None)),
        counter::REDEEMED => Some((metric::REWARDS_REDEEMED, 1.0, Unit::Count)),
        counter::ENROLLED => Some((metric::ENROLLED, 1.0, Unit::Count)),
        _ => None,
    };
    let mut cohort = Record::new(&[
        ("Campaign", campaign),
        ("Variant", key.variant.as_str()),
        ("Group", key.group.as_str()),
    ]);
    let mut any = false;
    for (name, delta) in deltas {
        if let Some((metric, scale, unit)) = cohort_metric(name) {
            cohort = cohort.metric(metric, *delta as f64 * scale, unit);
            any = true;
        }
    }
    if any {
        out.push(by_flow(cohort));
    }

    for (name, delta) in deltas {
        let reason = name
            .strip_prefix("reason_")
            .or_else(|| name.starts_with("nps_").then_some(*name));
        if let Some(reason) = reason {
            out.push(
                Record::new(&[("Campaign", campaign), ("Reason", reason)]).metric(
                    metric::SURVEY_ANSWERS,
                    *delta as f64,
                    Unit::Count,
                ),
            );
        }
    }

    let campaign_metric = |name: &str| match name {
        counter::DELIVERED => Some(metric::DELIVERED),
        counter::OPENED => Some(metric::OPENED),
        counter::CLICKED => Some(metric::CLICKED),
        counter::BOUNCED => Some(metric::BOUNCED),
        counter::COMPLAINED => Some(metric::COMPLAINED),
        counter::UNSUBSCRIBED => Some(metric::UNSUBSCRIBED),
        counter::FEWER_EMAILS => Some(metric::FEWER_EMAILS),
        counter::FOLLOW_UPS => Some(metric::FOLLOW_UPS_OPENED),
        counter::FOLLOW_UPS_CLOSED => Some(metric::FOLLOW_UPS_CLOSED),
        _ => None,
    };
    let mut per_campaign = Record::new(&[("Campaign", campaign)]);
    let mut any = false;
    for (name, delta) in deltas {
        if let Some(metric) = campaign_metric(name) {
            per_campaign = per_campaign.metric(metric, *delta as f64, Unit::Count);
            any = true;
        }
    }
    if any {
        out.push(by_flow(per_campaign));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::experiment::Group;

    fn key(variant: &str, group: Group) -> CohortKey {
        CohortKey {
            campaign: "example".into(),
            variant: variant.into(),
            group,
        }
    }

    fn metric(r: &Record, name: &str) -> Option<f64> {
        r.metrics
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| *v)
    }

    #[test]
    fn a_reactivation_reports_its_counts_by_cohort() {
        let recs = records(
            "example",
            &key("a", Group::Treated),
            &[(counter::REACTIVATED, 1), (counter::REVENUE, 4250)],
        );
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].dimensions.len(), 3);
        assert_eq!(metric(&recs[0], metric::REACTIVATED), Some(1.0));
        assert_eq!(metric(&recs[0], metric::REVENUE_RECOVERED), Some(42.5));
        assert_eq!(recs[0].metrics.len(), 2, "counts only, no rates");
        assert_eq!(recs[0].flow.as_deref(), Some("win-back"));
    }

    #[test]
    fn another_flows_counts_carry_its_flow_and_its_counters_name() {
        let mut k = key("a", Group::Holdout);
        k.campaign = "example-re-engagement".into();
        let recs = records(
            "example",
            &k,
            &[(counter::REACTIVATED, 1), (counter::OPENED, 1)],
        );
        assert_eq!(recs.len(), 2);
        for r in &recs {
            assert_eq!(r.flow.as_deref(), Some("re-engagement"));
            assert!(r.has("Campaign", "example-re-engagement"));
        }
        let json = recs[1].to_json(0);
        assert_eq!(
            json["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1],
            serde_json::json!(["Campaign", "Flow"])
        );
        // A cohort of a campaign this stack does not run: no flow to name.
        let recs = records("other", &k, &[(counter::OPENED, 1)]);
        assert_eq!(recs[0].flow, None);
    }

    #[test]
    fn bounces_report_their_count_by_campaign() {
        let recs = records(
            "example",
            &key("a", Group::Treated),
            &[(counter::BOUNCED, 1)],
        );
        assert_eq!(recs.len(), 1);
        assert_eq!(
            recs[0].dimensions,
            vec![("Campaign".to_string(), "example".to_string())]
        );
        assert_eq!(metric(&recs[0], metric::BOUNCED), Some(1.0));
        assert_eq!(recs[0].metrics.len(), 1, "counts only, no rates");
    }

    #[test]
    fn survey_answers_are_reported_by_reason() {
        let recs = records(
            "example",
            &key("a", Group::Treated),
            &[
                ("reason_quality", 1),
                ("reason_forgot", -1),
                ("nps_detractor", 1),
            ],
        );
        let reasons: Vec<_> = recs
            .iter()
            .map(|r| {
                (
                    r.dimensions[1].1.clone(),
                    metric(r, metric::SURVEY_ANSWERS).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("quality".to_string(), 1.0),
                ("forgot".to_string(), -1.0),
                ("nps_detractor".to_string(), 1.0)
            ]
        );
    }
}
