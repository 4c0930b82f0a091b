//! Named telemetry. Each thing worth counting or alarming on is one type implementing
//! [`Telemetry`]: its `emit` writes the log line and the EMF record together, so neither can be
//! forgotten at a call site, and a metric's name is written once, in [`metric`].
//!
//! [`METRICS`] lists every metric each function emits (namespace `Winback`);
//! `infra/check_template.py` reads this file and checks the dashboard and the alarms against it.

use chrono::{DateTime, Utc};

use crate::emf::{MetricSink, Record};

macro_rules! metrics {
    ($($service:ident { $($konst:ident = $name:literal,)* })*) => {
        /// Every metric name, by the function that emits it.
        pub mod metric {
            $(
                #[doc = concat!("The ", stringify!($service), "'s metrics.")]
                pub mod $service {
                    $(pub const $konst: &str = $name;)*
                }
            )*
        }

        /// Every metric each function emits, by function (`scheduler`, `sender`, `webhook`, `report`).
        pub const METRICS: &[(&str, &[&str])] = &[$((stringify!($service), &[$($name),*])),*];
    };
}

// infra/check_template.py parses this invocation: keep one `NAME = "Metric",` a line.
metrics! {
    scheduler {
        CUSTOMERS_EVALUATED = "CustomersEvaluated",
        HOLDOUT_ASSIGNED = "HoldoutAssigned",
        CUSTOMERS_ENROLLED = "CustomersEnrolled",
        CUSTOMERS_SUNSET = "CustomersSunset",
        PUBLISH_FAILURES = "PublishFailures",
        MODEL_CUSTOMERS = "ModelCustomers",
        MODEL_REPEAT_CUSTOMERS = "ModelRepeatCustomers",
        MODEL_FELL_BACK_TO_PRIOR = "ModelFellBackToPrior",
        MODEL_MEAN_LOG_LIKELIHOOD = "ModelMeanLogLikelihood",
    }
    sender {
        EMAILS_SENT = "EmailsSent",
        EMAILS_SKIPPED = "EmailsSkipped",
        EMAILS_DEFERRED = "EmailsDeferred",
        SEND_THROTTLED = "SendThrottled",
        SEND_FAILURES = "SendFailures",
        SEND_REJECTED = "SendRejected",
        SENDING_PAUSED = "SendingPaused",
        COUNT_FAILURES = "CountFailures",
        CHECKOUT_FAILED = "CheckoutFailed",
        SECRET_REFRESH_FAILURES = "SecretRefreshFailures",
    }
    webhook {
        ENROLLED = "Enrolled",
        REACTIVATED = "Reactivated",
        REVENUE_RECOVERED = "RevenueRecovered",
        REWARDS_REDEEMED = "RewardsRedeemed",
        SURVEY_ANSWERS = "SurveyAnswers",
        DELIVERED = "Delivered",
        OPENED = "Opened",
        CLICKED = "Clicked",
        BOUNCED = "Bounced",
        COMPLAINED = "Complained",
        UNSUBSCRIBED = "Unsubscribed",
        FEWER_EMAILS = "FewerEmails",
        PUBLISH_FAILURES = "PublishFailures",
        FOLLOW_UPS_OPENED = "FollowUpsOpened",
        FOLLOW_UPS_CLOSED = "FollowUpsClosed",
        FOLLOW_UP_NOTIFY_FAILURES = "FollowUpNotifyFailures",
        SECRET_REFRESH_FAILURES = "SecretRefreshFailures",
    }
    report {
        ENROLLED_TO_DATE = "EnrolledToDate",
        HELD_OUT_TO_DATE = "HeldOutToDate",
        REACTIVATION_RATE = "ReactivationRate",
        REACTIVATION_RATE_LOW = "ReactivationRateLow",
        REACTIVATION_RATE_HIGH = "ReactivationRateHigh",
        HOLDOUT_RATE = "HoldoutReactivationRate",
        HOLDOUT_RATE_LOW = "HoldoutReactivationRateLow",
        HOLDOUT_RATE_HIGH = "HoldoutReactivationRateHigh",
        LIFT = "LiftPoints",
        LIFT_LOW = "LiftPointsLow",
        LIFT_HIGH = "LiftPointsHigh",
        BROUGHT_BACK = "BroughtBack",
        BROUGHT_BACK_LOW = "BroughtBackLow",
        BROUGHT_BACK_HIGH = "BroughtBackHigh",
        INCREMENTAL_REVENUE = "IncrementalRevenue",
        INCREMENTAL_REVENUE_LOW = "IncrementalRevenueLow",
        INCREMENTAL_REVENUE_HIGH = "IncrementalRevenueHigh",
        INCREMENTAL_PROFIT = "IncrementalProfit",
        INCREMENTAL_PROFIT_LOW = "IncrementalProfitLow",
        INCREMENTAL_PROFIT_HIGH = "IncrementalProfitHigh",
        PROFIT_28D = "IncrementalProfit28d",
        PROFIT_28D_LOW = "IncrementalProfit28dLow",
        PROFIT_28D_HIGH = "IncrementalProfit28dHigh",
        STILL_ACTIVE = "StillActive90d",
        STILL_ACTIVE_LOW = "StillActive90dLow",
        STILL_ACTIVE_HIGH = "StillActive90dHigh",
        HOLDOUT_STILL_ACTIVE = "HoldoutStillActive90d",
        HOLDOUT_STILL_ACTIVE_LOW = "HoldoutStillActive90dLow",
        HOLDOUT_STILL_ACTIVE_HIGH = "HoldoutStillActive90dHigh",
    }
}

/// Something that happened, worth a log line and, when it is counted, a metric.
pub trait Telemetry {
    /// Writes the log line: its level, its `event` name and its fields (never an address or a
    /// name).
    fn log(&self);

    /// The EMF record of what is counted (`None`: a log line only).
    fn record(&self) -> Option<Record> {
        None
    }

    /// The log line and the record, together.
    fn emit(&self, metrics: &dyn MetricSink, now: DateTime<Utc>) {
        self.log();
        if let Some(record) = self.record() {
            metrics.record(record, now.timestamp_millis());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emf::{MemoryMetrics, Unit};

    #[test]
    fn the_list_names_each_metric_once_per_function() {
        for (service, names) in METRICS {
            let mut seen = std::collections::BTreeSet::new();
            for n in *names {
                assert!(seen.insert(n), "{service} lists {n} twice");
                assert!(n.chars().all(|c| c.is_ascii_alphanumeric()), "{n}");
            }
        }
        assert_eq!(metric::sender::EMAILS_SENT, "EmailsSent");
        let services: Vec<&str> = METRICS.iter().map(|(s, _)| *s).collect();
        assert_eq!(services, ["scheduler", "sender", "webhook", "report"]);
    }

    struct Throttled;

    impl Telemetry for Throttled {
        fn log(&self) {
            tracing::warn!(event = "send_throttled");
        }
        fn record(&self) -> Option<Record> {
            Some(Record::new(&[("Service", "sender")]).metric(
                metric::sender::SEND_THROTTLED,
                1.0,
                Unit::Count,
            ))
        }
    }

    #[test]
    fn emit_records_the_metric_with_the_log_line() {
        let m = MemoryMetrics::default();
        Throttled.emit(&m, Utc::now());
        assert_eq!(m.sum("SendThrottled", &[("Service", "sender")]), 1.0);
    }
}
