//! What the scheduler logs and counts: each event one type, its log line and its metrics
//! written together ([`Telemetry`]), its metric names from [`metric::scheduler`].

use chrono::{DateTime, Utc};
use shared::domain::model;
use shared::domain::sequence::{Enrollment, Flow};
use shared::emf::{MetricSink, Record, Unit};
use shared::events::BusEvent;
use shared::telemetry::{metric::scheduler as metric, Telemetry};

use crate::summary::{FlowSummary, Summary};

/// A customer entered a flow (counted in the run's figures, [`FlowFigures`]).
pub(crate) struct CustomerEnrolled<'a>(pub &'a Enrollment);

impl Telemetry for CustomerEnrolled<'_> {
    fn log(&self) {
        let e = self.0;
        tracing::info!(event = "customer_enrolled",
            campaign = %e.campaign, variant = %e.variant, group = e.group.as_str());
    }
}

/// A customer's sequence ended without a reaction: no more email to them for a while.
pub(crate) struct CustomerSunset<'a>(pub &'a Enrollment);

impl Telemetry for CustomerSunset<'_> {
    fn log(&self) {
        tracing::info!(event = "customer_sunset", campaign = %self.0.campaign);
    }
}

/// Events the bus refused after retries (alarmed: their subscribers never see them).
pub(crate) struct PublishFailed<'a>(pub &'a [(BusEvent, String)]);

impl Telemetry for PublishFailed<'_> {
    fn log(&self) {
        for (event, why) in self.0 {
            tracing::error!(event = "publish_failed", detail_type = event.detail_type(), error = %why);
        }
    }

    fn record(&self) -> Option<Record> {
        Some(
            Record::new(&[("Service", "scheduler")])
                .count(metric::PUBLISH_FAILURES, self.0.len() as u64),
        )
    }
}

/// The customer model refitted at the end of a rebuild; `stored` false when it fell back to the
/// prior and the stored model stays.
pub(crate) struct ModelFitted<'a> {
    pub campaign: &'a str,
    pub fit: &'a model::Fit,
    pub stored: bool,
}

impl Telemetry for ModelFitted<'_> {
    fn log(&self) {
        let (fit, campaign) = (self.fit, self.campaign);
        tracing::info!(
            event = "customer_model_fit",
            campaign,
            customers = fit.customers,
            repeat_customers = fit.repeat_customers,
            mean_log_likelihood = fit.mean_log_likelihood,
            figures = %fit.figures(),
            stored = self.stored,
            warning = fit.warning.as_deref().unwrap_or(""),
        );
        if !self.stored {
            tracing::warn!(
                event = "customer_model_kept",
                campaign,
                "the refit fell back to the prior; the stored model stays"
            );
        }
    }

    fn record(&self) -> Option<Record> {
        let fit = self.fit;
        Some(
            Record::new(&[("Campaign", self.campaign)])
                .count(metric::MODEL_CUSTOMERS, fit.customers as u64)
                .count(metric::MODEL_REPEAT_CUSTOMERS, fit.repeat_customers as u64)
                .metric(
                    metric::MODEL_MEAN_LOG_LIKELIHOOD,
                    fit.mean_log_likelihood,
                    Unit::None,
                )
                .count(metric::MODEL_FELL_BACK_TO_PRIOR, u64::from(!self.stored)),
        )
    }
}

/// How many customers a pass evaluated.
pub(crate) struct CustomersEvaluated<'a> {
    pub campaign: &'a str,
    pub evaluated: u64,
}

impl Telemetry for CustomersEvaluated<'_> {
    fn log(&self) {
        tracing::debug!(
            event = "customers_evaluated",
            campaign = self.campaign,
            evaluated = self.evaluated
        );
    }

    fn record(&self) -> Option<Record> {
        Some(
            Record::new(&[("Campaign", self.campaign)])
                .count(metric::CUSTOMERS_EVALUATED, self.evaluated),
        )
    }
}

/// A flow's holdout and sunsets in a pass, under the name its counters are kept under (the
/// campaign's own for the win-back flow), also by `Flow`.
pub(crate) struct FlowFigures<'a> {
    pub campaign: &'a str,
    pub flow: Flow,
    pub figures: &'a FlowSummary,
}

impl Telemetry for FlowFigures<'_> {
    fn log(&self) {
        tracing::debug!(
            event = "flow_figures",
            flow = self.flow.as_str(),
            holdout = self.figures.holdout(),
            sunset = self.figures.sunset
        );
    }

    fn record(&self) -> Option<Record> {
        Some(
            Record::of_flow(self.campaign, self.flow, &[])
                .count(metric::HOLDOUT_ASSIGNED, self.figures.holdout())
                .count(metric::CUSTOMERS_SUNSET, self.figures.sunset),
        )
    }
}

/// A flow's enrollments in one variant in a pass.
pub(crate) struct VariantEnrolled<'a> {
    pub campaign: &'a str,
    pub flow: Flow,
    pub variant: &'a str,
    pub enrolled: u64,
}

impl Telemetry for VariantEnrolled<'_> {
    fn log(&self) {
        tracing::debug!(
            event = "variant_enrolled",
            flow = self.flow.as_str(),
            variant = self.variant,
            enrolled = self.enrolled
        );
    }

    fn record(&self) -> Option<Record> {
        Some(
            Record::of_flow(self.campaign, self.flow, &[("Variant", self.variant)])
                .count(metric::CUSTOMERS_ENROLLED, self.enrolled),
        )
    }
}

/// Emits a pass's figures: customers evaluated, and each flow's holdout, sunsets and
/// enrollments per variant.
pub(crate) fn run_figures(
    campaign: &str,
    s: &Summary,
    metrics: &dyn MetricSink,
    now: DateTime<Utc>,
) {
    CustomersEvaluated {
        campaign,
        evaluated: s.evaluated,
    }
    .emit(metrics, now);
    for (&flow, figures) in &s.flows {
        FlowFigures {
            campaign,
            flow,
            figures,
        }
        .emit(metrics, now);
        for (variant, &enrolled) in &figures.enrolled_by_variant {
            VariantEnrolled {
                campaign,
                flow,
                variant,
                enrolled,
            }
            .emit(metrics, now);
        }
    }
}
