//! The weekly report email: the page `winback report` writes, with its charts as inline PNG
//! attachments (`cid:`), the text report beside it, as one MIME message built by `mail-builder`:
//! `multipart/alternative` of the text and a `multipart/related` of the HTML and its charts (so a
//! mail client shows the charts in the page, not as attachments after it), dated and with a
//! Message-ID of the sender's domain. It names no customer: the report holds counts only.

use chrono::{DateTime, Utc};
use mail_builder::headers::address::Address;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;

use crate::page::{self, Embed, Frame};
use crate::program::Program;
use crate::ReportError;

/// A message ready for SES's raw send.
#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    /// The HTML as sent (charts referred to by `cid:`).
    pub html: String,
    pub text: String,
    /// The whole MIME message.
    pub mime: Vec<u8>,
}

/// The subject line: the campaign and the day the figures are of.
pub fn subject(program: &Program) -> String {
    format!(
        "Win-back report for {}, week to {}",
        program.win_back.campaign,
        program.win_back.figures.as_of.format("%-d %B %Y")
    )
}

/// The plain-text part: the whole program's figures, every flow's text report, and the
/// dashboard's link.
pub fn text(program: &Program, dashboard_url: Option<&str>) -> String {
    let mut s = program.win_back.program_text(&program.figures);
    s.push('\n');
    for (_, r) in program.all() {
        s.push_str(&r.to_text());
        s.push('\n');
    }
    if let Some(url) = dashboard_url {
        s.push_str(&format!("The dashboard: {url}\n"));
    }
    s
}

/// Builds the message from `from` to `to`, dated `now`.
pub fn build(
    program: &Program,
    from: &str,
    to: &[String],
    dashboard_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Message, ReportError> {
    let frame = Frame {
        dashboard_url: dashboard_url.map(str::to_string),
        program: Some(program.figures.clone()),
    };
    let page = page::render(
        &program.win_back,
        &program.sections(),
        &[],
        &frame,
        Embed::Attached,
    )?;
    let subject = subject(program);
    let text = text(program, dashboard_url);
    let mut related = vec![MimePart::new("text/html", page.html.clone())];
    for image in page.images {
        related.push(
            MimePart::new("image/png", image.png)
                .inline()
                .cid(image.cid),
        );
    }
    let body = MimePart::new(
        "multipart/alternative",
        vec![
            MimePart::new("text/plain", text.clone()),
            MimePart::new("multipart/related", related),
        ],
    );
    let domain = from.rsplit_once('@').map_or("winback.report", |(_, d)| d);
    let builder = MessageBuilder::new()
        .from(Address::new_address(
            Some("Win-back report"),
            from.to_string(),
        ))
        .to(Address::new_list(
            to.iter()
                .map(|a| Address::new_address(None::<&str>, a.clone()))
                .collect(),
        ))
        .subject(subject.clone())
        .date(now.timestamp())
        .message_id(format!(
            "report.{}.{}@{domain}",
            program.win_back.campaign,
            now.timestamp()
        ))
        .body(body);
    let mime = builder
        .write_to_vec()
        .map_err(|e| ReportError::Mime(e.to_string()))?;
    Ok(Message {
        subject,
        html: page.html,
        text,
        mime,
    })
}
