//! The reports of every flow a campaign runs, read from the stored counters as of a day.

use chrono::NaiveDate;
use shared::campaign::CampaignConfig;
use shared::domain::metrics::CounterRow;
use shared::domain::sequence::{cohort_campaign, Flow};
use shared::ports::{MetricsStore, StoreError};

use crate::page::FlowSection;
use crate::Report;

/// The win-back flow's report and each other flow's that has steps.
#[derive(Debug, Clone)]
pub struct Program {
    pub win_back: Report,
    /// The other flows: the flow, its section's title, its report.
    pub flows: Vec<(Flow, String, Report)>,
}

impl Program {
    /// The reports from counter rows already read (`rows_of(cohort)` gives a flow's rows).
    pub fn from_rows(
        config: &CampaignConfig,
        source: &str,
        as_of: NaiveDate,
        rows_of: impl Fn(&str) -> Vec<CounterRow>,
    ) -> Program {
        let win_back =
            Report::of_flow(config, Flow::WinBack, source, &rows_of(&config.name), as_of);
        let flows = [Flow::AtRisk, Flow::Celebration, Flow::ReEngagement]
            .into_iter()
            .filter(|f| !config.steps_of(*f).is_empty())
            .map(|flow| {
                let name = cohort_campaign(&config.name, flow);
                let report = Report::of_flow(config, flow, source, &rows_of(&name), as_of);
                let title = format!("Flow {} (counters of campaign {name})", flow.as_str());
                (flow, title, report)
            })
            .collect();
        Program { win_back, flows }
    }

    /// The reports from the counters in `store`.
    pub async fn read(
        store: &dyn MetricsStore,
        config: &CampaignConfig,
        source: &str,
        as_of: NaiveDate,
    ) -> Result<Program, StoreError> {
        let mut rows = std::collections::BTreeMap::new();
        for flow in Flow::ALL {
            if flow == Flow::WinBack || !config.steps_of(flow).is_empty() {
                let name = cohort_campaign(&config.name, flow);
                rows.insert(name.clone(), store.counter_rows(&name).await?);
            }
        }
        Ok(Program::from_rows(config, source, as_of, |name| {
            rows.get(name).cloned().unwrap_or_default()
        }))
    }

    /// Every flow with its report, the win-back flow first.
    pub fn all(&self) -> impl Iterator<Item = (Flow, &Report)> {
        std::iter::once((Flow::WinBack, &self.win_back))
            .chain(self.flows.iter().map(|(f, _, r)| (*f, r)))
    }

    /// The other flows' sections of the page.
    pub fn sections(&self) -> Vec<FlowSection<'_>> {
        self.flows
            .iter()
            .map(|(_, title, report)| FlowSection {
                title: title.clone(),
                report,
            })
            .collect()
    }
}
