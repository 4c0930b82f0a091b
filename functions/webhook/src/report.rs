//! Counting: atomic counters in the metrics store, and after each change one EMF record per
//! dimension set (counts as the change, rates as they stand after it).
//!
//! Metrics (namespace `Winback`): by Campaign, Variant, Group: `Reactivated`, `RevenueRecovered`
//! (major units), `RewardsRedeemed`, `Enrolled` and `ReactivationRate` (percent); by Campaign,
//! Variant: `LiftPoints` (treated minus holdout reactivation rate, percentage points); by Campaign,
//! Reason: `SurveyAnswers`; by Campaign: `Delivered`, `Opened`, `Clicked`, `Bounced`,
//! `Complained`, `Unsubscribed`, `FewerEmails`, `BounceRate` and `ComplaintRate` (percent of sent).

use chrono::{DateTime, Utc};
use shared::domain::experiment::Group;
use shared::domain::metrics::{counter, lift, CohortKey, CounterRow, Counts, Rate};
use shared::emf::{Record, Unit};
use shared::ports::StoreError;

use crate::Deps;

/// Adds `deltas` to the cohort's total and today's row, then reports the change as EMF.
pub(crate) async fn count(
    deps: &Deps,
    key: &CohortKey,
    now: DateTime<Utc>,
    deltas: &[(&str, i64)],
) -> Result<(), StoreError> {
    let deltas: Vec<(&str, i64)> = deltas.iter().copied().filter(|(_, d)| *d != 0).collect();
    if deltas.is_empty() {
        return Ok(());
    }
    deps.store
        .add_counts(key, Some(now.date_naive()), &deltas)
        .await?;
    let rows = match deps.store.counter_rows(&key.campaign).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(event = "metrics_unreadable", error = %e, "counted, but rates are not reported");
            Vec::new()
        }
    };
    for record in records(key, &deltas, &rows) {
        deps.metrics.record(record, now.timestamp_millis());
    }
    Ok(())
}

/// Running totals per cohort (the rows without a day).
fn totals(rows: &[CounterRow]) -> impl Iterator<Item = &CounterRow> {
    rows.iter().filter(|r| r.day.is_none())
}

fn percent(successes: i64, trials: i64) -> f64 {
    if trials > 0 {
        successes as f64 * 100.0 / trials as f64
    } else {
        0.0
    }
}

/// The EMF records for a change of `deltas` in cohort `key`, given every counter row after it.
pub(crate) fn records(key: &CohortKey, deltas: &[(&str, i64)], rows: &[CounterRow]) -> Vec<Record> {
    let campaign = key.campaign.as_str();
    let group = key.group.as_str();
    let mut out = Vec::new();

    let cohort_metric = |name: &str| match name {
        counter::REACTIVATED => Some(("Reactivated", 1.0)),
        counter::REVENUE => Some(("RevenueRecovered", 0.01)),
        counter::REDEEMED => Some(("RewardsRedeemed", 1.0)),
        counter::ENROLLED => Some(("Enrolled", 1.0)),
        _ => None,
    };
    let cohort_changes: Vec<(&str, f64)> = deltas
        .iter()
        .filter_map(|(n, d)| cohort_metric(n).map(|(m, scale)| (m, *d as f64 * scale)))
        .collect();
    if !cohort_changes.is_empty() {
        let mine = totals(rows)
            .filter(|r| &r.key == key)
            .fold(Counts::default(), |mut c, r| {
                c.merge(&r.counts);
                c
            });
        let mut rec = Record::new(&[
            ("Campaign", campaign),
            ("Variant", key.variant.as_str()),
            ("Group", group),
        ]);
        for (m, v) in &cohort_changes {
            let unit = if *m == "RevenueRecovered" {
                Unit::None
            } else {
                Unit::Count
            };
            rec = rec.metric(m, *v, unit);
        }
        rec = rec.metric(
            "ReactivationRate",
            mine.reactivation_rate().value * 100.0,
            Unit::Percent,
        );
        out.push(rec);

        if deltas
            .iter()
            .any(|(n, _)| *n == counter::REACTIVATED || *n == counter::ENROLLED)
        {
            out.extend(lift_records(key, rows));
        }
    }

    for (name, delta) in deltas {
        let reason = name
            .strip_prefix("reason_")
            .or_else(|| name.starts_with("nps_").then_some(*name));
        if let Some(reason) = reason {
            out.push(
                Record::new(&[("Campaign", campaign), ("Reason", reason)]).metric(
                    "SurveyAnswers",
                    *delta as f64,
                    Unit::Count,
                ),
            );
        }
    }

    let campaign_metric = |name: &str| match name {
        counter::DELIVERED => Some("Delivered"),
        counter::OPENED => Some("Opened"),
        counter::CLICKED => Some("Clicked"),
        counter::BOUNCED => Some("Bounced"),
        counter::COMPLAINED => Some("Complained"),
        counter::UNSUBSCRIBED => Some("Unsubscribed"),
        counter::FEWER_EMAILS => Some("FewerEmails"),
        _ => None,
    };
    let campaign_changes: Vec<(&str, f64)> = deltas
        .iter()
        .filter_map(|(n, d)| campaign_metric(n).map(|m| (m, *d as f64)))
        .collect();
    if !campaign_changes.is_empty() {
        let all = totals(rows).fold(Counts::default(), |mut c, r| {
            c.merge(&r.counts);
            c
        });
        let mut rec = Record::new(&[("Campaign", campaign)]);
        for (m, v) in &campaign_changes {
            rec = rec.metric(m, *v, Unit::Count);
        }
        if deltas
            .iter()
            .any(|(n, _)| *n == counter::BOUNCED || *n == counter::COMPLAINED)
        {
            // Sent is counted by the sender; before it has counted, what SES reported stands in.
            let sent = all
                .get(counter::SENT)
                .max(all.get(counter::DELIVERED) + all.get(counter::BOUNCED));
            rec = rec
                .metric(
                    "BounceRate",
                    percent(all.get(counter::BOUNCED), sent),
                    Unit::Percent,
                )
                .metric(
                    "ComplaintRate",
                    percent(all.get(counter::COMPLAINED), sent),
                    Unit::Percent,
                );
        }
        out.push(rec);
    }
    out
}

/// `LiftPoints` of the treated variants a change in `key` moves: its own variant, or every
/// treated variant when the holdout changed.
fn lift_records(key: &CohortKey, rows: &[CounterRow]) -> Vec<Record> {
    let mut holdout = Counts::default();
    let mut treated: std::collections::BTreeMap<&str, Counts> = Default::default();
    for r in totals(rows) {
        match r.key.group {
            Group::Holdout => holdout.merge(&r.counts),
            Group::Treated => treated
                .entry(r.key.variant.as_str())
                .or_default()
                .merge(&r.counts),
        }
    }
    let holdout_rate: Rate = holdout.reactivation_rate();
    treated
        .iter()
        .filter(|(v, _)| key.group == Group::Holdout || **v == key.variant)
        .map(|(variant, counts)| {
            let l = lift(counts.reactivation_rate(), holdout_rate);
            Record::new(&[("Campaign", key.campaign.as_str()), ("Variant", variant)]).metric(
                "LiftPoints",
                l.value * 100.0,
                Unit::None,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(variant: &str, group: Group) -> CohortKey {
        CohortKey {
            campaign: "example".into(),
            variant: variant.into(),
            group,
        }
    }

    fn row(k: CohortKey, counts: &[(&str, i64)]) -> CounterRow {
        let mut c = Counts::default();
        for (n, v) in counts {
            c.add(n, *v);
        }
        CounterRow {
            key: k,
            day: None,
            counts: c,
        }
    }

    fn metric(r: &Record, name: &str) -> Option<f64> {
        r.metrics
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| *v)
    }

    #[test]
    fn a_reactivation_reports_the_cohort_rate_and_the_lift_over_the_holdout() {
        let rows = vec![
            row(
                key("a", Group::Treated),
                &[("enrolled", 100), ("reactivated", 26)],
            ),
            row(
                key("holdout", Group::Holdout),
                &[("enrolled", 100), ("reactivated", 10)],
            ),
        ];
        let recs = records(
            &key("a", Group::Treated),
            &[(counter::REACTIVATED, 1), (counter::REVENUE, 4250)],
            &rows,
        );
        assert_eq!(metric(&recs[0], "Reactivated"), Some(1.0));
        assert_eq!(metric(&recs[0], "RevenueRecovered"), Some(42.5));
        assert!((metric(&recs[0], "ReactivationRate").unwrap() - 26.0).abs() < 1e-9);
        assert_eq!(recs[1].dimensions.len(), 2);
        assert!((metric(&recs[1], "LiftPoints").unwrap() - 16.0).abs() < 1e-9);
    }

    #[test]
    fn bounces_report_rates_over_what_was_sent() {
        let rows = vec![row(
            key("a", Group::Treated),
            &[("sent", 200), ("bounced", 4), ("complained", 1)],
        )];
        let recs = records(&key("a", Group::Treated), &[(counter::BOUNCED, 1)], &rows);
        assert_eq!(recs.len(), 1);
        assert_eq!(
            recs[0].dimensions,
            vec![("Campaign".to_string(), "example".to_string())]
        );
        assert_eq!(metric(&recs[0], "Bounced"), Some(1.0));
        assert!((metric(&recs[0], "BounceRate").unwrap() - 2.0).abs() < 1e-9);
        assert!((metric(&recs[0], "ComplaintRate").unwrap() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn survey_answers_are_reported_by_reason() {
        let recs = records(
            &key("a", Group::Treated),
            &[
                ("reason_quality", 1),
                ("reason_forgot", -1),
                ("nps_detractor", 1),
            ],
            &[],
        );
        let reasons: Vec<_> = recs
            .iter()
            .map(|r| {
                (
                    r.dimensions[1].1.clone(),
                    metric(r, "SurveyAnswers").unwrap(),
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
