//! The webhook's named telemetry: one type per thing that happens and is worth a log line and,
//! when it is counted, a metric ([`shared::telemetry::metric::webhook`]). The counters' own
//! records are [`crate::report::Counted`].

use shared::domain::activity::{Activity, Redemption};
use shared::domain::money::Money;
use shared::domain::sequence::Attribution;
use shared::emf::{Record, Unit};
use shared::events::BusEvent;
use shared::ports::{NotifyError, StoreError};
use shared::telemetry::{metric, Telemetry};

/// The service dimension of the webhook's own metrics.
const SERVICE: [(&str, &str); 1] = [("Service", "webhook")];

fn service_count(name: &str, n: usize) -> Record {
    Record::new(&SERVICE).metric(name, n as f64, Unit::Count)
}

/// Events the bus still refused after retries (`PublishFailures`, watched by an alarm).
pub(crate) struct PublishFailed<'a> {
    pub failed: &'a [(BusEvent, String)],
    pub customer_id: &'a str,
}

impl Telemetry for PublishFailed<'_> {
    fn log(&self) {
        for (e, why) in self.failed {
            tracing::error!(event = "publish_failed", detail_type = e.detail_type(), reason = %why, customer_id = %self.customer_id);
        }
    }

    fn record(&self) -> Option<Record> {
        Some(service_count(
            metric::webhook::PUBLISH_FAILURES,
            self.failed.len(),
        ))
    }
}

/// The team could not be told about a follow-up (`FollowUpNotifyFailures`).
pub(crate) struct FollowUpNotifyFailed<'a>(pub &'a NotifyError);

impl Telemetry for FollowUpNotifyFailed<'_> {
    fn log(&self) {
        tracing::error!(event = "follow_up_notify_failed", reason = %self.0);
    }

    fn record(&self) -> Option<Record> {
        Some(service_count(metric::webhook::FOLLOW_UP_NOTIFY_FAILURES, 1))
    }
}

/// A claimed event key given back because its work panicked (`failed`: the release failed too,
/// and the lease frees the key).
pub(crate) struct ClaimReleasedAfterPanic<'a> {
    pub key: &'a str,
    pub failed: Option<&'a StoreError>,
}

impl Telemetry for ClaimReleasedAfterPanic<'_> {
    fn log(&self) {
        tracing::error!(event = "claim_released_after_panic", key = %self.key);
        if let Some(e) = self.failed {
            tracing::error!(event = "release_failed", error = %e, key = %self.key);
        }
    }
}

/// An activity recorded: what it did to the enrollment and to the order's reward code.
pub(crate) struct ActivityRecorded<'a> {
    pub activity: &'a Activity,
    pub attribution: &'a Attribution,
    pub redemption: &'a Redemption,
    /// The campaign's currency (an activity without an amount is counted in it).
    pub currency: &'a str,
}

impl Telemetry for ActivityRecorded<'_> {
    fn log(&self) {
        let a = self.activity;
        match self.attribution {
            Attribution::Reactivated(e) => {
                let (revenue, currency) = a
                    .amount
                    .as_ref()
                    .map_or((Money(0), self.currency), |(m, c)| (*m, c.as_str()));
                tracing::info!(
                    event = "customer_reactivated",
                    revenue = %revenue,
                    currency = %currency,
                    campaign = %e.campaign,
                    variant = %e.variant,
                    group = e.group.as_str(),
                    activity = ?a.kind,
                );
            }
            Attribution::Stopped(e, why) => {
                tracing::info!(event = "sequence_stopped", campaign = %e.campaign, why = ?why, activity = ?a.kind);
            }
            Attribution::Refunded { enrollment, taken } => {
                tracing::info!(
                    event = if taken.win_taken_back { "win_taken_back" } else { "revenue_refunded" },
                    refunded = %Money(taken.minor),
                    currency = %taken.currency,
                    campaign = %enrollment.campaign,
                    variant = %enrollment.variant,
                    group = enrollment.group.as_str(),
                );
            }
            Attribution::LaterOrder { .. } | Attribution::None => {}
        }
        match self.redemption {
            Redemption::Redeemed { reward, .. } => {
                tracing::info!(event = "reward_redeemed", campaign = %reward.campaign, variant = %reward.variant, kind = reward.spec.kind.as_str());
            }
            Redemption::Refused { status, .. } => {
                tracing::info!(event = "reward_refused", code_status = *status);
            }
            Redemption::None => {}
        }
        tracing::info!(event = "activity_recorded", activity = ?a.kind, event_id = %a.event_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use shared::emf::MemoryMetrics;

    #[test]
    fn failures_are_counted_under_the_names_the_alarms_read() {
        let m = MemoryMetrics::default();
        let failed = vec![(
            BusEvent::CustomerSuppressed {
                customer_id: "c-1".parse().unwrap(),
                why: "complaint".into(),
                at: Utc::now(),
            },
            "throttled".to_string(),
        )];
        PublishFailed {
            failed: &failed,
            customer_id: "c-1",
        }
        .emit(&m, Utc::now());
        FollowUpNotifyFailed(&NotifyError::Backend("down".into())).emit(&m, Utc::now());
        assert_eq!(m.sum(metric::webhook::PUBLISH_FAILURES, &SERVICE), 1.0);
        assert_eq!(
            m.sum(metric::webhook::FOLLOW_UP_NOTIFY_FAILURES, &SERVICE),
            1.0
        );
    }
}
