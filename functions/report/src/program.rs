//! The reports of every flow a campaign runs, and the whole program's figures, read from the
//! stored counters as of a day.

use chrono::NaiveDate;
use shared::campaign::CampaignConfig;
use shared::domain::figures::{self, Headline, ProgramFigures};
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
    /// Every flow's enrollments against the program holdout.
    pub figures: ProgramFigures,
}

/// The whole program's figures from the counter rows of every flow (`rows_of(cohort)` gives a
/// flow's rows), as of the end of `as_of`.
pub fn program_figures(
    config: &CampaignConfig,
    as_of: NaiveDate,
    rows_of: impl Fn(&str) -> Vec<CounterRow>,
) -> ProgramFigures {
    let rows: Vec<CounterRow> = Flow::ALL
        .into_iter()
        .flat_map(|flow| rows_of(&cohort_campaign(&config.name, flow)))
        .collect();
    figures::of_program(
        &rows,
        as_of,
        crate::model::economics(config),
        config.sending.attribution_days,
    )
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
        let figures = program_figures(config, as_of, &rows_of);
        Program {
            win_back,
            flows,
            figures,
        }
    }

    /// The headline: the whole program's figures once its holdout is large enough, until then
    /// the win-back flow's.
    pub fn headline(&self) -> Headline {
        figures::headline(&self.win_back.figures, Some(&self.figures))
    }

    /// The reports from the counters in `store`.
    pub async fn read(
        store: &dyn MetricsStore,
        config: &CampaignConfig,
        source: &str,
        as_of: NaiveDate,
    ) -> Result<Program, StoreError> {
        let mut rows = std::collections::BTreeMap::new();
        // Every flow's counters, a flow the campaign no longer runs included: its enrollments
        // are part of the program's.
        for flow in Flow::ALL {
            let name = cohort_campaign(&config.name, flow);
            rows.insert(name.clone(), store.counter_rows(&name).await?);
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
