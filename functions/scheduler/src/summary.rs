//! What a run did, in all and per flow, and its figures as metrics.

use serde::Serialize;
use shared::domain::experiment;
use shared::domain::model;
use shared::domain::sequence::Flow;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub evaluated: u64,
    pub enrolled: u64,
    pub steps_published: u64,
    pub publish_failures: u64,
    pub items_read: u64,
    /// False when the run stopped early and left a checkpoint.
    pub complete: bool,
    /// A checkpoint from an earlier run was resumed first.
    pub resumed: bool,
    /// The resumed run used up the time, so this invocation's own due pass was left to the next
    /// scheduled run (whose due pass reads everything this one would have).
    pub left_to_next_run: bool,
    /// Per flow: enrollments per variant, the holdout and the sunsets (the run's totals are
    /// [`Summary::holdout`] and [`Summary::sunset`]).
    pub flows: std::collections::BTreeMap<Flow, FlowSummary>,
    /// A rebuild that finished refitted the campaign's customer model on the customers it read
    /// and stored it (false when the fit fell back to the prior and the stored one was kept).
    pub model_refit: bool,
    /// That refit's figures (also when it fell back to the prior and was not stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_fit: Option<model::Fit>,
    /// The flows whose uplift model that rebuild learned and stored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targeting_learned: Vec<String>,
}

/// What a run did in one flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowSummary {
    /// Enrollments per variant (the holdout included as `holdout`).
    pub enrolled_by_variant: std::collections::BTreeMap<String, u64>,
    /// Treated enrollments by what the targeting decision gave them (`as_the_rules`,
    /// `email_with_reward`, `email_without_reward`, `no_email`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub targeting: std::collections::BTreeMap<String, u64>,
    pub sunset: u64,
}

impl FlowSummary {
    /// Customers held out of the flow: its enrollments in the holdout's variant.
    pub fn holdout(&self) -> u64 {
        self.enrolled_by_variant
            .get(experiment::HOLDOUT)
            .copied()
            .unwrap_or(0)
    }
}

impl Summary {
    pub(crate) fn flow(&mut self, flow: Flow) -> &mut FlowSummary {
        self.flows.entry(flow).or_default()
    }

    /// Customers held out, in every flow.
    pub fn holdout(&self) -> u64 {
        self.flows.values().map(FlowSummary::holdout).sum()
    }

    /// Customers sunset, in every flow.
    pub fn sunset(&self) -> u64 {
        self.flows.values().map(|f| f.sunset).sum()
    }
}

pub(crate) fn merge(a: &mut Summary, b: &Summary) {
    a.evaluated += b.evaluated;
    a.enrolled += b.enrolled;
    a.steps_published += b.steps_published;
    a.publish_failures += b.publish_failures;
    a.items_read += b.items_read;
    for (flow, f) in &b.flows {
        let into = a.flows.entry(*flow).or_default();
        into.sunset += f.sunset;
        for (variant, n) in &f.enrolled_by_variant {
            *into.enrolled_by_variant.entry(variant.clone()).or_insert(0) += n;
        }
        for (treatment, n) in &f.targeting {
            *into.targeting.entry(treatment.clone()).or_insert(0) += n;
        }
    }
}
