//! One daily run: the figures as of the scheduled day, published as metrics; on Mondays, the
//! report emailed to the recipients SES does not suppress. "Now" is the scheduled event's time,
//! never the clock, so a test chooses the weekday.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc, Weekday};
use serde::Serialize;
use shared::campaign::CampaignConfig;
use shared::emf::MetricSink;
use shared::ports::{Mailer, MetricsStore};

use crate::program::Program;
use crate::{email, publish, ReportError};

/// What a run uses.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn MetricsStore>,
    pub campaign: Arc<CampaignConfig>,
    pub metrics: Arc<dyn MetricSink>,
    pub mailer: Arc<dyn Mailer>,
    /// The campaign's sender: the report's From.
    pub sender: String,
    /// Who gets the weekly email (`REPORT_RECIPIENTS`); none turns it off.
    pub recipients: Vec<String>,
    /// The dashboard's address, linked from the email.
    pub dashboard_url: Option<String>,
}

/// The weekday the report is emailed on.
pub const REPORT_DAY: Weekday = Weekday::Mon;

/// Whether a run at `now` (UTC) emails the report.
pub fn emails_on(now: DateTime<Utc>) -> bool {
    now.weekday() == REPORT_DAY
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub as_of: chrono::NaiveDate,
    /// EMF records published.
    pub records: usize,
    /// Recipients the email went to (none on other days, or with no recipient).
    pub emailed: usize,
    /// Recipients left out because SES's suppression list holds them.
    pub suppressed: usize,
}

/// Runs the day's work for the scheduled time `now`.
pub async fn run(deps: &Deps, now: DateTime<Utc>) -> Result<Outcome, ReportError> {
    let as_of = now.date_naive();
    let program = Program::read(
        deps.store.as_ref(),
        &deps.campaign,
        "stored counters in DynamoDB",
        as_of,
    )
    .await?;
    let records = publish::records(&deps.campaign.name, &program);
    let published = records.len();
    for r in records {
        deps.metrics.record(r, now.timestamp_millis());
    }
    let mut outcome = Outcome {
        as_of,
        records: published,
        emailed: 0,
        suppressed: 0,
    };
    if !emails_on(now) || deps.recipients.is_empty() {
        return Ok(outcome);
    }
    let mut to = Vec::new();
    for r in &deps.recipients {
        // As for every email the campaign sends: a lookup that fails does not hold the send
        // back, SES drops mail to a listed address itself.
        let listed = match deps.mailer.is_suppressed(r).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(event = "suppression_list_unavailable", error = %e);
                false
            }
        };
        if listed {
            outcome.suppressed += 1;
        } else {
            to.push(r.clone());
        }
    }
    if to.is_empty() {
        tracing::warn!(
            event = "report_recipients_suppressed",
            suppressed = outcome.suppressed
        );
        return Ok(outcome);
    }
    let message = email::build(
        &program,
        &deps.sender,
        &to,
        deps.dashboard_url.as_deref(),
        now,
    )?;
    let id = deps
        .mailer
        .send_raw(&deps.sender, &to, &message.mime)
        .await?;
    outcome.emailed = to.len();
    tracing::info!(event = "report_emailed", message_id = %id, recipients = to.len(), suppressed = outcome.suppressed, as_of = %as_of);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_report_is_emailed_on_the_run_of_a_monday_whatever_day_the_test_runs() {
        let at = |d| Utc.with_ymd_and_hms(2026, 5, d, 6, 0, 0).unwrap();
        assert!(emails_on(at(4)), "Monday 4 May 2026");
        for d in [3, 5, 6, 7, 8, 9, 10] {
            assert!(!emails_on(at(d)), "{d} May 2026 is not a Monday");
        }
        assert!(emails_on(at(11)));
    }
}
