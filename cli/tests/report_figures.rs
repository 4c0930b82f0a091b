//! One simulated campaign, three views of it: what `winback report` prints, the metrics the
//! report Lambda publishes for the dashboard, and the weekly email it sends through SES (moto).
//! Every figure agrees to the cent and the tenth of a point.

use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use report::publish::metric;
use report::run::{self, Deps};
use shared::campaign::Campaign;
use shared::emf::{MemoryMetrics, Record};
use shared::ports::{Email, MailError, Mailer};
use winback_tests::{unique, LocalStack};

fn winback(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(args)
        .env_remove("TABLE_NAME")
        .output()
        .expect("the binary runs");
    assert!(
        o.status.success(),
        "winback {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn value(r: &Record, name: &str) -> f64 {
    r.metrics
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("{name} in {r:?}"))
        .1
}

/// Money as the report prints it, from a metric in major units.
fn eur(major: f64) -> String {
    format!("{:.2} EUR", major)
}

fn estimate(r: &Record, name: &str) -> String {
    format!(
        "{} (95% CI {} to {})",
        eur(value(r, name)),
        eur(value(r, &format!("{name}Low"))),
        eur(value(r, &format!("{name}High")))
    )
}

/// The HTML part of a MIME message with its inline images (`cid:`) put in as `data:` URLs, as a
/// mail client shows it.
fn html_with_images(mime: &[u8]) -> String {
    use mail_parser::MimeHeaders as _;
    let message = mail_parser::MessageParser::default()
        .parse(mime)
        .expect("the email parses as MIME");
    let mut html = message.body_html(0).expect("an HTML part").into_owned();
    for part in &message.parts {
        if let Some(cid) = part.content_id() {
            let data = base64::engine::general_purpose::STANDARD.encode(part.contents());
            html = html.replace(
                &format!("cid:{cid}"),
                &format!("data:image/png;base64,{data}"),
            );
        }
    }
    html
}

/// The HTML part of a MIME message.
fn html_part(mime: &[u8]) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(mime)
        .expect("the email parses as MIME");
    message.body_html(0).expect("an HTML part").into_owned()
}

#[tokio::test]
async fn the_report_the_dashboard_s_metrics_and_the_weekly_email_show_the_same_figures() {
    let stack = LocalStack::from_env().await;
    let dir = std::env::temp_dir().join(unique("report-figures"));
    std::fs::create_dir_all(&dir).unwrap();
    let store_file = dir.join("store.json");
    let store_path = store_file.to_str().unwrap();
    // 2026-01-05 and 119 days: the run ends on Monday 2026-05-04, the day the figures are of.
    winback(&[
        "simulate",
        "--customers",
        "1500",
        "--days",
        "119",
        "--quiet",
        "--out",
        dir.join("sim").to_str().unwrap(),
        "--save-store",
        store_path,
    ]);
    let text = winback(&[
        "report",
        "--store",
        store_path,
        "--as-of",
        "2026-05-04",
        "--out",
        dir.join("report").to_str().unwrap(),
    ]);

    let sender = format!("{}@shop.example", unique("report"));
    stack.verify_sender(&sender).await;
    let (mailer, wire) = stack.mailer();
    let metrics = Arc::new(MemoryMetrics::default());
    let store = winback_cli::snapshot::Snapshot::load(&store_file)
        .unwrap()
        .restore()
        .await
        .unwrap();
    let deps = Deps {
        store: Arc::new(store),
        campaign: Arc::new(Campaign::open("example").unwrap().config().clone()),
        metrics: metrics.clone(),
        mailer,
        sender: sender.clone(),
        recipients: vec!["marketing@shop.example".into()],
        dashboard_url: Some("https://console.example/dashboards/winback".into()),
    };
    let monday = Utc.with_ymd_and_hms(2026, 5, 4, 6, 0, 0).unwrap();
    let outcome = run::run(&deps, monday).await.unwrap();
    assert_eq!(outcome.emailed, 1);
    let sent = wire
        .send_requests()
        .into_iter()
        .find(|r| r["FromEmailAddress"] == sender.as_str())
        .expect("the report went to SES");
    let mime = base64::engine::general_purpose::STANDARD
        .decode(sent["Content"]["Raw"]["Data"].as_str().unwrap())
        .unwrap();
    let html = html_part(&mime);
    // To look at it (a mail client, SpamAssassin): WINBACK_REPORT_EML=<file> keeps the message.
    if let Ok(path) = std::env::var("WINBACK_REPORT_EML") {
        std::fs::write(path, &mime).unwrap();
    }
    // It lands in an inbox: SpamAssassin's local rules score it below 2 (5 is spam).
    let verdict = winback_tests::spam::score(&mime);
    println!(
        "SpamAssassin (-L -t) scores the weekly email {:.1}:\n{}",
        verdict.score, verdict.report
    );
    assert!(
        verdict.score < 2.0,
        "SpamAssassin scores the weekly email {}:\n{}",
        verdict.score,
        verdict.report
    );

    // Read on a phone (390 px wide) and on a desktop (1280 px) in headless Chromium: every chart
    // shows and nothing is wider than the screen. WINBACK_REPORT_SCREENSHOTS=<dir> keeps the
    // pictures (docs/images/weekly-report-phone.png and -desktop.png are these).
    let page = dir.join("weekly-report.html");
    std::fs::write(&page, html_with_images(&mime)).unwrap();
    let mut browser = winback_tests::browser::Browser::launch();
    for (name, width) in [("phone", 390), ("desktop", 1280)] {
        let tab = browser.new_tab().unwrap();
        let url = format!("file://{}", page.display());
        let shot = browser.screenshot(&tab, &url, width).unwrap();
        assert!(
            shot.page_width <= u64::from(width),
            "on a {name} the email is {} px wide, wider than the screen's {width}",
            shot.page_width
        );
        let charts = browser
            .evaluate(
                &tab,
                "Array.from(document.images).map(i => [i.naturalWidth, i.getBoundingClientRect().right])",
            )
            .unwrap();
        let charts = charts.as_array().expect("the images").clone();
        assert_eq!(charts.len(), 6, "{name}: {charts:?}");
        for c in &charts {
            assert!(
                c[0].as_u64() > Some(0),
                "{name}: a chart did not load: {charts:?}"
            );
            assert!(
                c[1].as_f64() <= Some(f64::from(width)),
                "{name}: a chart runs off the screen: {charts:?}"
            );
        }
        if let Ok(out) = std::env::var("WINBACK_REPORT_SCREENSHOTS") {
            let file = std::path::Path::new(&out).join(format!("weekly-report-{name}.png"));
            std::fs::write(&file, &shot.png).unwrap();
            println!("{name}: {} x {} px, {}", width, shot.height, file.display());
        }
        browser.close(tab).unwrap();
    }
    drop(browser);

    let records = metrics.records();
    let record = |flow: &str, variant: &str| {
        records
            .iter()
            .find(|r| r.has("Flow", flow) && r.has("Variant", variant))
            .unwrap_or_else(|| panic!("a record of {flow} {variant}"))
            .clone()
    };
    let both = |what: &str, expected: &str| {
        assert!(
            text.contains(expected),
            "report text lacks {what} {expected:?}:\n{text}"
        );
        assert!(html.contains(expected), "email lacks {what} {expected:?}");
    };
    let all = record("win-back", "all");
    both(
        "the rate",
        &format!("{:.1}%", value(&all, metric::REACTIVATION_RATE)),
    );
    let (lift, lo, hi) = (
        value(&all, metric::LIFT),
        value(&all, "LiftPointsLow"),
        value(&all, "LiftPointsHigh"),
    );
    assert!(
        text.contains(&format!("{lift:+.1} pts [{lo:+.1}, {hi:+.1}]")),
        "{text}"
    );
    assert!(
        html.contains(&format!(
            "{lift:+.1} points</b> (95% CI {lo:+.1} to {hi:+.1})"
        )),
        "{html}"
    );
    both(
        "incremental revenue",
        &estimate(&all, metric::INCREMENTAL_REVENUE),
    );
    both(
        "incremental profit",
        &estimate(&all, metric::INCREMENTAL_PROFIT),
    );
    both("28-day profit", &estimate(&all, metric::PROFIT_28D));
    let still = format!("{:.1}% (", value(&all, metric::STILL_ACTIVE));
    both("still active", &still);
    for variant in ["amount-10", "percent-15"] {
        let v = record("win-back", variant);
        let (l, lo, hi) = (
            value(&v, metric::LIFT),
            value(&v, "LiftPointsLow"),
            value(&v, "LiftPointsHigh"),
        );
        assert!(
            text.contains(&format!("{l:+.1} pts [{lo:+.1}, {hi:+.1}]")),
            "{variant}: {text}"
        );
        assert!(
            html.contains(&format!("{l:+.1} ({lo:+.1} to {hi:+.1})")),
            "{variant}: {html}"
        );
    }
    let at_risk = record("at-risk", "all");
    both(
        "the at-risk flow's profit",
        &estimate(&at_risk, metric::INCREMENTAL_PROFIT),
    );

    // The whole program against the program holdout: the same in all three.
    let program = record("program", "all");
    assert!(value(&program, "HeldOutToDate") > 0.0, "{program:?}");
    let (pl, plo, phi) = (
        value(&program, metric::LIFT),
        value(&program, "LiftPointsLow"),
        value(&program, "LiftPointsHigh"),
    );
    assert!(
        text.contains(&format!(
            "lift {pl:+.1} points (95% CI {plo:+.1} to {phi:+.1})"
        )),
        "{text}"
    );
    assert!(
        html.contains(&format!("{pl:+.1} ({plo:+.1} to {phi:+.1})")),
        "{html}"
    );
    let back = [
        value(&program, metric::BROUGHT_BACK),
        value(&program, "BroughtBackLow"),
        value(&program, "BroughtBackHigh"),
    ];
    let in_text = format!(
        "about {} customers brought back (95% CI {} to {})",
        back[0], back[1], back[2]
    );
    assert!(text.contains(&in_text), "{in_text}: {text}");
    let back = format!("{} (95% CI {} to {})", back[0], back[1], back[2]);
    assert!(html.contains(&back), "{back}: {html}");
    both(
        "the program's incremental revenue",
        &estimate(&program, metric::INCREMENTAL_REVENUE),
    );
    both(
        "the program's incremental profit",
        &estimate(&program, metric::INCREMENTAL_PROFIT),
    );
    both(
        "the program's 28-day profit",
        &estimate(&program, metric::PROFIT_28D),
    );
    match program
        .metrics
        .iter()
        .find(|(n, _, _)| n == "PulledForward")
    {
        Some(_) => both(
            "orders merely pulled forward",
            &format!(
                "about {} customers (95% CI {} to {})",
                value(&program, "PulledForward"),
                value(&program, "PulledForwardLow"),
                value(&program, "PulledForwardHigh")
            ),
        ),
        None => both("orders merely pulled forward", "not measured yet"),
    }

    // The email is the page `winback report` writes, with its charts attached instead of embedded.
    assert!(html.contains("cid:win-back-reactivation@winback.report"));
    // The link, as HTML escapes it.
    let link = "https://console.example/dashboards/winback".replace('/', "&#x2f;");
    assert!(html.contains(&format!("<a href=\"{link}\">")), "{html}");
    // Counts only: no customer's address or name.
    let snapshot = std::fs::read_to_string(&store_file).unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(&snapshot).unwrap();
    let mime_text = String::from_utf8_lossy(&mime);
    // The text, or the HTML with its charts beside it (shown in the page, not as attachments).
    let parts: Vec<&str> = mime_text
        .lines()
        .filter_map(|l| l.strip_prefix("Content-Type: "))
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .filter(|t| !t.starts_with("image/"))
        .collect();
    assert_eq!(
        parts,
        [
            "multipart/alternative",
            "text/plain",
            "multipart/related",
            "text/html"
        ],
        "{mime_text:.2000}"
    );
    let message_id = mime_text
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .expect("a Message-ID");
    assert!(
        message_id.trim_end().ends_with("@shop.example>"),
        "{message_id}"
    );
    for p in snapshot["profiles"].as_array().expect("profiles") {
        for field in ["email", "first_name"] {
            if let Some(v) = p[field].as_str().filter(|v| v.len() > 3) {
                assert!(
                    !html.contains(v) && !mime_text.contains(v),
                    "the email names a customer ({field})"
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// SES on moto, with an account-level suppression list holding `listed` (moto keeps none).
struct Listed {
    ses: Arc<shared::adapters::ses::SesMailer>,
    listed: String,
}

#[async_trait::async_trait]
impl Mailer for Listed {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        self.ses.send(email).await
    }

    async fn is_suppressed(&self, address: &str) -> Result<bool, MailError> {
        Ok(address == self.listed)
    }

    async fn send_raw(&self, from: &str, to: &[String], mime: &[u8]) -> Result<String, MailError> {
        self.ses.send_raw(from, to, mime).await
    }
}

#[tokio::test]
async fn the_report_is_emailed_on_mondays_only_and_never_to_a_suppressed_recipient() {
    let stack = LocalStack::from_env().await;
    let sender = format!("{}@shop.example", unique("weekly"));
    stack.verify_sender(&sender).await;
    let (ses, wire) = stack.mailer();
    let suppressed = format!("{}@shop.example", unique("bounced"));
    let deps = Deps {
        store: Arc::new(shared::adapters::embedded::MemoryStore::default()),
        campaign: Arc::new(Campaign::open("example").unwrap().config().clone()),
        metrics: Arc::new(MemoryMetrics::default()),
        mailer: Arc::new(Listed {
            ses,
            listed: suppressed.clone(),
        }),
        sender: sender.clone(),
        recipients: vec![suppressed.clone(), "cmo@shop.example".into()],
        dashboard_url: None,
    };
    let sunday = Utc.with_ymd_and_hms(2026, 5, 3, 6, 0, 0).unwrap();
    let out = run::run(&deps, sunday).await.unwrap();
    assert_eq!(
        (out.emailed, out.suppressed),
        (0, 0),
        "no email on a Sunday"
    );
    assert!(out.records > 0, "the metrics are published every day");
    let monday = Utc.with_ymd_and_hms(2026, 5, 4, 6, 0, 0).unwrap();
    let out = run::run(&deps, monday).await.unwrap();
    assert_eq!((out.emailed, out.suppressed), (1, 1));
    let sent: Vec<_> = wire
        .send_requests()
        .into_iter()
        .filter(|r| r["FromEmailAddress"] == sender.as_str())
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["Destination"]["ToAddresses"],
        serde_json::json!(["cmo@shop.example"])
    );
}
