//! `CAMPAIGNS`: which of the campaign's flows a deployment runs.
//!
//! A campaign file defines up to four flows over one table, one due index, one enrollment slot
//! per customer, one frequency cap and one suppression list: `win-back` (`[[steps]]`, always
//! there), `at-risk` (`[at_risk]`), `re-engagement` (`[re_engagement]`) and `celebration`
//! (`[celebration]`). `CAMPAIGNS=win-back,celebration` runs those and leaves the others off, as if
//! the file did not define them; unset or empty, every flow the file defines runs (what a
//! deployment with only `CAMPAIGN` did before).

use std::collections::BTreeSet;

use super::config::CampaignConfig;
use crate::domain::sequence::{cohort_campaign, Flow};

/// The environment variable that lists the flows.
pub const CAMPAIGNS_ENV: &str = "CAMPAIGNS";

/// A `CAMPAIGNS` list that cannot be run, with the entry that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowListError {
    #[error("CAMPAIGNS names `{0}`, which is no flow: use win-back, at-risk, re-engagement or celebration, separated by commas")]
    Unknown(String),
    #[error("CAMPAIGNS names `{name}`, but campaign `{campaign}` has no such flow: add [{section}] to its campaign.toml or leave `{name}` out")]
    Missing {
        name: String,
        campaign: String,
        section: &'static str,
    },
    #[error("CAMPAIGNS names `{0}` twice: list each flow once")]
    Duplicate(String),
    #[error("CAMPAIGNS leaves out win-back: every deployment runs the win-back flow (the campaign's [[steps]]); list it")]
    NoWinBack,
}

/// The flows a comma-separated list names, checked against the campaign: each a known flow, once,
/// defined by the campaign, win-back among them. Whitespace around names is ignored.
pub fn parse(list: &str, config: &CampaignConfig) -> Result<Vec<Flow>, FlowListError> {
    let mut seen = BTreeSet::new();
    let mut flows = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let flow = Flow::named(raw).ok_or_else(|| FlowListError::Unknown(raw.to_string()))?;
        let name = flow.as_str();
        if !seen.insert(name) {
            return Err(FlowListError::Duplicate(name.to_string()));
        }
        if config.steps_of(flow).is_empty() {
            return Err(FlowListError::Missing {
                name: name.to_string(),
                campaign: config.name.clone(),
                section: match flow {
                    Flow::AtRisk => "at_risk",
                    Flow::ReEngagement => "re_engagement",
                    Flow::Celebration => "celebration",
                    Flow::WinBack => "steps",
                },
            });
        }
        flows.push(flow);
    }
    if !flows.contains(&Flow::WinBack) {
        return Err(FlowListError::NoWinBack);
    }
    Ok(flows)
}

/// The campaign with only the listed flows (an empty list keeps every flow it defines).
pub fn select(mut config: CampaignConfig, list: &str) -> Result<CampaignConfig, FlowListError> {
    if list.trim().is_empty() {
        return Ok(config);
    }
    let flows = parse(list, &config)?;
    if !flows.contains(&Flow::AtRisk) {
        config.at_risk = None;
    }
    if !flows.contains(&Flow::ReEngagement) {
        config.re_engagement = None;
    }
    if !flows.contains(&Flow::Celebration) {
        config.celebration = None;
    }
    Ok(config)
}

/// The flow whose counters campaign `campaign` keeps under `cohort` (the inverse of
/// [`cohort_campaign`]); `None` for a name that is none of its flows.
pub fn of_cohort(campaign: &str, cohort: &str) -> Option<Flow> {
    Flow::ALL
        .into_iter()
        .find(|f| cohort_campaign(campaign, *f) == cohort)
}

/// The flows a campaign runs, by name, in the order of [`Flow::ALL`].
pub fn running(config: &CampaignConfig) -> Vec<&'static str> {
    Flow::ALL
        .into_iter()
        .filter(|f| !config.steps_of(*f).is_empty())
        .map(Flow::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::testing::example_campaign;

    #[test]
    fn an_empty_list_runs_every_flow_the_campaign_defines() {
        let c = select(example_campaign(), " ").unwrap();
        assert_eq!(
            running(&c),
            vec!["win-back", "at-risk", "re-engagement", "celebration"]
        );
    }

    #[test]
    fn a_list_leaves_the_flows_it_does_not_name_off() {
        let c = select(example_campaign(), "win-back, celebration").unwrap();
        assert_eq!(running(&c), vec!["win-back", "celebration"]);
        assert!(c.at_risk.is_none() && c.re_engagement.is_none());
    }

    #[test]
    fn each_flow_is_found_again_from_the_name_of_its_counters() {
        for f in Flow::ALL {
            assert_eq!(Flow::named(f.as_str()), Some(f));
            assert_eq!(of_cohort("shop", &cohort_campaign("shop", f)), Some(f));
        }
        assert_eq!(of_cohort("shop", "other-at-risk"), None);
    }

    #[test]
    fn a_flow_has_one_spelling_in_the_list_the_counters_and_what_is_stored() {
        for f in Flow::ALL {
            let stored = serde_json::to_value(f).unwrap();
            assert_eq!(stored, f.as_str());
            if f != Flow::WinBack {
                assert_eq!(cohort_campaign("shop", f), format!("shop-{}", f.as_str()));
            }
        }
        // What earlier versions wrote is still read.
        let old: Flow = serde_json::from_str("\"re_engagement\"").unwrap();
        assert_eq!(old, Flow::ReEngagement);
        assert_eq!(Flow::read("at_risk"), Some(Flow::AtRisk));
        assert_eq!(Flow::named("at_risk"), None);
    }

    #[test]
    fn bad_lists_are_refused_naming_the_entry() {
        let c = example_campaign();
        let e = parse("win-back,birthday", &c).unwrap_err().to_string();
        assert!(e.contains("`birthday`, which is no flow"), "{e}");
        let e = parse("win-back,at-risk,win-back", &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`win-back` twice"), "{e}");
        let e = parse("at-risk", &c).unwrap_err().to_string();
        assert!(e.contains("leaves out win-back"), "{e}");
        let mut without = example_campaign();
        without.celebration = None;
        let e = parse("win-back,celebration", &without)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`celebration`, but campaign `example` has no such flow")
                && e.contains("[celebration]"),
            "{e}"
        );
    }
}
