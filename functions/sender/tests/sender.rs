use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Duration, TimeZone, Utc};
use sender::{handle_batch, process_step, Deps, Outcome, RateLimiter, SendError};
use shared::adapters::checkout::MemoryCheckout;
use shared::adapters::embedded::{MemoryMailer, MemoryStore};
use shared::campaign::Campaign;
use shared::domain::customer::{EmailStatus, OrderRecord, Profile};
use shared::domain::experiment::Group;
use shared::domain::money::Money;
use shared::domain::reward::{CodeStatus, RewardCode};
use shared::domain::sequence::{Enrollment, Status};
use shared::domain::survey::Reason;
use shared::emf::MemoryMetrics;
use shared::events::StepDue;
use shared::ports::{Email, EnrollmentStore, MailError, Mailer, ProfileStore, RewardStore};
use shared::signing::{verify_link, Purpose};
use test_support::logs::LogLines;

/// 10:00 UTC = 11:00 in Stockholm: outside quiet hours.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

const LINK_KEY: &[u8] = b"link-key";

struct World {
    store: Arc<MemoryStore>,
    mailer: Arc<MemoryMailer>,
    metrics: Arc<MemoryMetrics>,
}

fn deps_with(w: &World, mailer: Arc<dyn Mailer>) -> Deps {
    Deps {
        store: w.store.clone(),
        mailer,
        campaign: Arc::new(Campaign::embedded("example").unwrap()),
        metrics: w.metrics.clone(),
        link_keys: shared::signing::LinkKeys::one(LINK_KEY),
        public_base_url: "https://hooks.example.com/".into(),
        sender_address: "shop@example.com".into(),
        limiter: Arc::new(RateLimiter::new(None)),
        lease: Duration::minutes(5),
        checkout: None,
    }
}

fn world() -> (World, Deps) {
    let w = World {
        store: Arc::new(MemoryStore::new()),
        mailer: Arc::new(MemoryMailer::new()),
        metrics: Arc::new(MemoryMetrics::default()),
    };
    let d = deps_with(&w, w.mailer.clone());
    (w, d)
}

async fn enrolled(w: &World, id: &str, locale: &str) -> StepDue {
    enrolled_in(w, id, locale, "amount-10").await
}

/// The shipped campaign with its `campaign.toml` edited (`from` → `to`).
fn campaign_with(from: &str, to: &str) -> Campaign {
    let files: Vec<(&str, String)> = shared::campaign::embedded::EXAMPLE
        .iter()
        .map(|(path, text)| {
            let text = if *path == "campaign.toml" {
                assert!(text.contains(from), "campaign.toml has {from}");
                text.replacen(from, to, 1)
            } else {
                text.to_string()
            };
            (*path, text)
        })
        .collect();
    Campaign::from_files(files.iter().map(|(p, t)| (*p, t.as_str()))).unwrap()
}

async fn enrolled_in(w: &World, id: &str, locale: &str, variant: &str) -> StepDue {
    let mut p = Profile::new(id.parse().unwrap());
    p.email = Some(format!("{id}@example.com"));
    p.first_name = Some("Alex".into());
    p.locale = Some(locale.into());
    p.time_zone = Some("Europe/Stockholm".into());
    p.record_order(OrderRecord {
        at: now() - Duration::days(400),
        amount: Money(3000),
        product: Some("Ethiopia Yirgacheffe".into()),
        category: Some("coffee".into()),
        currency: None,
        order_id: None,
        refunded: Default::default(),
        refund_ids: Vec::new(),
        lines: Vec::new(),
    });
    w.store.save_profile(&p).await.unwrap();
    let c = shared::campaign::testing::example_campaign();
    let mut e = Enrollment::start(
        &id.parse().unwrap(),
        &c,
        1,
        Group::Treated,
        variant,
        now() - Duration::hours(1),
    );
    e.published_step = 1;
    w.store.save_enrollment(&e).await.unwrap();
    StepDue {
        campaign: "example".into(),
        customer_id: id.parse().unwrap(),
        enrollment_id: e.id.clone(),
        step: 1,
        due_at: now() - Duration::hours(1),
    }
}

/// The latest enrollment of customer `c1`.
async fn enrollment(w: &World) -> Enrollment {
    w.store
        .get_enrollment("c1", "example")
        .await
        .unwrap()
        .expect("c1 is enrolled")
}

fn link_in(text: &str, path: &str) -> String {
    let start = text
        .find(path)
        .unwrap_or_else(|| panic!("no {path} link in:\n{text}"));
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

fn token_of(url: &str) -> String {
    url.split("t=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_due_step_sends_one_personal_email_with_reward_survey_and_unsubscribe() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "sv").await;
    let out = process_step(&d, &due, now()).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }), "{out:?}");
    let sent = w.mailer.drain();
    assert_eq!(sent.len(), 1);
    let email: &Email = &sent[0].1;
    assert_eq!(email.to, "c1@example.com");
    assert!(email.text.contains("Alex"));
    assert!(email.text.contains("Ethiopia Yirgacheffe") || email.text.contains("coffee"));
    let e = enrollment(&w).await;
    let code = e.reward_code.clone().expect("a reward code");
    assert!(email.text.contains(&code), "code in the email");
    let reward = reward_of(&w, &code).await;
    assert_eq!(reward.expires_at, now() + Duration::days(14));
    assert_eq!(reward.customer_id, "c1");
    let header = |n: &str| {
        email
            .headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let lu = header("List-Unsubscribe").unwrap();
    assert!(
        lu.starts_with("<https://hooks.example.com/v1/unsubscribe?t="),
        "{lu}"
    );
    let unsub = link_in(&email.text, "https://hooks.example.com/v1/unsubscribe");
    assert_eq!(
        verify_link(
            &shared::signing::LinkKeys::one(LINK_KEY),
            &token_of(&unsub),
            Purpose::Unsubscribe,
            now()
        )
        .unwrap()
        .customer_id,
        "c1"
    );
    let survey = link_in(&email.text, "https://hooks.example.com/v1/survey");
    let claims = verify_link(
        &shared::signing::LinkKeys::one(LINK_KEY),
        &token_of(&survey),
        Purpose::Survey,
        now(),
    )
    .unwrap();
    assert_eq!(claims.enrollment_id, e.id);
    for tag in ["campaign", "step", "variant", "customer_id"] {
        assert!(email.tags.iter().any(|(k, _)| k == tag), "tag {tag}");
    }
    assert_eq!(e.status, Status::Active { next_step: 2 });
    assert_eq!(e.due_at, Some(now() + Duration::days(5)));
    assert!(e.claim.is_none());
    assert_eq!(
        w.metrics
            .sum("EmailsSent", &[("Campaign", "example"), ("Step", "1")]),
        1.0
    );
    assert_eq!(w.metrics.sum("EmailsSent", &[("Flow", "win-back")]), 1.0);
    assert_eq!(w.metrics.sum("EmailsSent", &[("Flow", "at-risk")]), 0.0);
}

#[tokio::test]
async fn the_same_message_delivered_twice_sends_one_email() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    process_step(&d, &due, now()).await.unwrap();
    let again = process_step(&d, &due, now() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(again, Outcome::AlreadySent);
    assert_eq!(w.mailer.count(), 1);
}

#[tokio::test]
async fn two_senders_on_the_same_step_at_once_send_one_email() {
    let (w, d) = world();
    let mut dues = Vec::new();
    for i in 0..30 {
        dues.push(enrolled(&w, &format!("c{i}"), "en").await);
    }
    let d2 = d.clone();
    let (a, b) = tokio::join!(
        async {
            for due in &dues {
                let _ = process_step(&d, due, now()).await;
            }
        },
        async {
            for due in dues.iter().rev() {
                let _ = process_step(&d2, due, now()).await;
            }
        }
    );
    let _ = (a, b);
    let sent = w.mailer.drain();
    let mut to: Vec<String> = sent.iter().map(|(_, e)| e.to.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 30);
    assert_eq!(sent.len(), 30, "exactly one email per step");
}

#[tokio::test]
async fn a_crashed_claim_is_taken_over_after_its_lease_and_keeps_its_code() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    // A sender claimed the step and died before sending.
    let mut e = enrollment(&w).await;
    e.claim = Some(shared::domain::sequence::Claim {
        step: 1,
        token: "dead".into(),
        lease_until: now() + Duration::minutes(5),
        reward_code: None,
    });
    w.store.save_enrollment(&e).await.unwrap();
    let busy = process_step(&d, &due, now()).await.unwrap_err();
    assert!(matches!(busy, SendError::Busy { .. }), "{busy}");
    assert_eq!(w.mailer.count(), 0);
    let out = process_step(&d, &due, now() + Duration::minutes(6))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Sent { .. }));
    assert_eq!(w.mailer.count(), 1);
}

#[tokio::test]
async fn a_pending_code_that_belongs_to_another_enrollment_is_never_sent() {
    let (w, d) = world();
    let other = enrolled(&w, "c2", "en").await;
    process_step(&d, &other, now()).await.unwrap();
    let theirs = w
        .store
        .get_enrollment("c2", "example")
        .await
        .unwrap()
        .and_then(|e| e.reward_code)
        .expect("c2 got a code");
    // c1's released claim names c2's code (as after a code collision).
    let due = enrolled(&w, "c1", "en").await;
    let mut e = enrollment(&w).await;
    e.claim = Some(shared::domain::sequence::Claim {
        step: 1,
        token: "released".into(),
        lease_until: now() - Duration::minutes(1),
        reward_code: Some(theirs.clone()),
    });
    w.store.save_enrollment(&e).await.unwrap();
    let out = process_step(&d, &due, now()).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }));
    let mine = enrollment(&w).await.reward_code.expect("c1 got a code");
    assert_ne!(mine, theirs);
    let emails = w.mailer.drain();
    let to_c1 = &emails
        .iter()
        .find(|(_, m)| m.to == "c1@example.com")
        .unwrap()
        .1;
    assert!(to_c1.text.contains(&mine) && !to_c1.text.contains(&theirs));
}

#[tokio::test]
async fn the_next_step_reuses_a_valid_unredeemed_code() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    process_step(&d, &due, now()).await.unwrap();
    let first = enrollment(&w).await;
    let later = now() + Duration::days(5);
    let step2 = StepDue {
        step: 2,
        due_at: later,
        ..due
    };
    let out = process_step(&d, &step2, later).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }), "{out:?}");
    let second = enrollment(&w).await;
    assert_eq!(first.reward_code, second.reward_code);
    assert_eq!(w.store.all_rewards().len(), 1);
    let emails = w.mailer.drain();
    assert!(emails[1]
        .1
        .text
        .contains(first.reward_code.as_deref().unwrap()));
}

/// What the step after an answer says for each reason (English copy), and the reward it carries.
fn reason_marker(r: Reason) -> &'static str {
    match r {
        Reason::TooExpensive => "we had become too expensive",
        Reason::BadExperience => "We're sorry",
        Reason::HardToUnderstand => "book a free consultation",
        Reason::Forgot => "here is a reminder",
        Reason::Quality => "working on it",
        Reason::Other => "Thank you for answering",
    }
}

#[tokio::test]
async fn the_answer_shapes_the_next_step_its_copy_and_its_reward_for_every_reason() {
    let c = shared::campaign::testing::example_campaign();
    for reason in Reason::ALL {
        let (w, d) = world();
        let due = enrolled(&w, "c1", "en").await;
        process_step(&d, &due, now()).await.unwrap();
        let first = enrollment(&w).await;
        let first_code = RewardCode::parse(first.reward_code.as_deref().unwrap()).unwrap();
        // The customer answers (the webhook records it on the enrollment and the profile).
        let mut answered = first.clone();
        answered.survey_reason = Some(reason);
        w.store.save_enrollment(&answered).await.unwrap();
        let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
        p.survey_reason = Some(reason);
        w.store.save_profile(&p).await.unwrap();

        let later = now() + Duration::days(5);
        let step2 = StepDue {
            step: 2,
            due_at: later,
            ..due
        };
        let out = process_step(&d, &step2, later).await.unwrap();
        assert!(matches!(out, Outcome::Sent { .. }), "{reason}: {out:?}");
        let emails = w.mailer.drain();
        let text = &emails[1].1.text;
        assert!(!emails[0].1.text.contains(reason_marker(reason)));
        assert!(text.contains(reason_marker(reason)), "{reason}:\n{text}");

        let wanted = c
            .rewards
            .by_reason
            .get(&reason)
            .unwrap_or(&c.rewards.default);
        let second = enrollment(&w).await;
        let code = RewardCode::parse(second.reward_code.as_deref().unwrap()).unwrap();
        let reward = w.store.get_reward(&code).await.unwrap().unwrap();
        assert_eq!(&reward.spec, wanted, "{reason}");
        assert!(
            text.contains(code.as_str()),
            "{reason}: the new code is in the email"
        );
        let old = w.store.get_reward(&first_code).await.unwrap().unwrap();
        if *wanted == c.rewards.default {
            assert_eq!(code, first_code, "{reason}: the same reward keeps its code");
            assert_eq!(old.status(later), CodeStatus::Valid);
        } else {
            assert_ne!(code, first_code, "{reason}: a new reward gets a new code");
            assert_eq!(old.status(later), CodeStatus::Voided, "{reason}");
            assert!(!text.contains(first_code.as_str()));
            assert_eq!(w.store.all_rewards().len(), 2);
        }
    }
}

#[tokio::test]
async fn fewer_emails_gets_only_the_last_step_at_its_usual_time() {
    let (w, d) = world();
    let mut due = enrolled(&w, "c1", "en").await;
    let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
    p.email_status = EmailStatus::FewerEmails;
    w.store.save_profile(&p).await.unwrap();
    let c = shared::campaign::testing::example_campaign();
    let mut t = now();
    for step in 1..=3u8 {
        due.step = step;
        let before = enrollment(&w).await;
        let out = process_step(&d, &due, t).await.unwrap();
        if step < 3 {
            assert_eq!(
                out,
                Outcome::Skipped {
                    why: "fewer_emails"
                },
                "step {step}"
            );
            let after = enrollment(&w).await;
            assert_eq!(after.due_step(), Some(step + 1));
            assert_eq!(after.due_at, Some(t + before.gap_after(step, &c)));
        } else {
            assert!(matches!(out, Outcome::Sent { .. }), "step {step}: {out:?}");
        }
        t += Duration::days(8);
    }
    let emails = w.mailer.drain();
    assert_eq!(emails.len(), 1, "one email instead of three");
    let e = enrollment(&w).await;
    assert_eq!(e.status, Status::AwaitingSunset);
    assert_eq!(e.sent.iter().map(|s| s.step).collect::<Vec<_>>(), vec![3]);
}

/// `body` without its links (their signed tokens are random letters that may spell anything).
fn without_links(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find("http") {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
            .map_or(rest.len(), |e| at + e);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Steps 1 to 3 of c1's enrollment processed in turn, a week apart: the one email sent.
async fn the_one_email(w: &World, d: &Deps, mut due: StepDue) -> Email {
    let mut t = now();
    for step in 1..=3u8 {
        due.step = step;
        process_step(d, &due, t).await.unwrap();
        t += Duration::days(8);
    }
    let mut emails = w.mailer.drain();
    assert_eq!(emails.len(), 1, "one email instead of three");
    emails.pop().unwrap().1
}

#[tokio::test]
async fn a_customer_on_fewer_emails_gets_an_email_written_for_them() {
    // The goodbye says "last email", that "your code still works" and offers fewer emails
    // again: none of that may reach a customer who chose fewer emails, in any locale.
    for (locale, thanks, last_email, still_works) in [
        ("en", "Thank you for staying", "last email", "still works"),
        (
            "sv",
            "Tack för att du stannar",
            "sista mejlet",
            "fortfarande",
        ),
        ("da", "Tak, fordi du bliver", "sidste e-mail", "stadig"),
        (
            "pl",
            "Dziękujemy, że zostajesz",
            "ostatnia wiadomość",
            "Jeśli zmienisz zdanie",
        ),
        (
            "pt",
            "Obrigado por continuar",
            "último e-mail",
            "continua válido",
        ),
    ] {
        let (w, d) = world();
        let due = enrolled(&w, "c1", locale).await;
        let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
        p.email_status = EmailStatus::FewerEmails;
        w.store.save_profile(&p).await.unwrap();
        let email = the_one_email(&w, &d, due).await;
        // The code it names is the one issued to them for this email, and no other.
        let code = enrollment(&w)
            .await
            .reward_code
            .expect("the last step's reward");
        let reward = reward_of(&w, &code).await;
        assert_eq!((reward.customer_id.as_str(), reward.step), ("c1", 3));
        assert_eq!(w.store.all_rewards().len(), 1, "no other code exists");
        for body in [&email.html, &email.text] {
            let words = without_links(body);
            assert!(words.contains(thanks), "{locale}: {body}");
            assert!(words.contains(&code), "{locale}: {body}");
            assert_eq!(words.matches("WB-").count(), words.matches(&code).count());
            for said in [last_email, still_works] {
                assert!(!words.contains(said), "{locale}: {said:?} in {body}");
            }
            assert!(!body.contains("offer=fewer"), "{locale}: {body}");
            assert!(body.contains("/v1/unsubscribe?t="), "{locale}: {body}");
        }
        assert!(!email.subject.is_empty());
    }
}

#[tokio::test]
async fn a_customer_on_fewer_emails_without_a_reward_is_told_of_no_code() {
    let (w, d) = world();
    let due = paying_in(&w, "NOK").await;
    let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
    p.email_status = EmailStatus::FewerEmails;
    w.store.save_profile(&p).await.unwrap();
    let email = the_one_email(&w, &d, due).await;
    assert_eq!(enrollment(&w).await.reward_code, None);
    assert!(w.store.all_rewards().is_empty());
    for body in [&email.html, &email.text] {
        let words = without_links(body);
        assert!(words.contains("Tack för att du stannar"), "{body}");
        for said in ["WB-", "kod", "sista mejlet"] {
            assert!(!words.contains(said), "{said:?} in {body}");
        }
        assert!(!body.contains("offer=fewer"), "{body}");
    }
}

#[tokio::test]
async fn a_reward_variant_issues_its_own_reward() {
    let (w, d) = world();
    let due = enrolled_in(&w, "c1", "en", "percent-15").await;
    process_step(&d, &due, now()).await.unwrap();
    let e = enrollment(&w).await;
    let code = RewardCode::parse(e.reward_code.as_deref().unwrap()).unwrap();
    let reward = w.store.get_reward(&code).await.unwrap().unwrap();
    let c = shared::campaign::testing::example_campaign();
    assert_eq!(Some(reward.spec), c.experiment.variants[1].reward.clone());
    assert!(w.mailer.drain()[0].1.text.contains("15"));
}

#[tokio::test]
async fn a_copy_variant_puts_its_copy_in_the_email() {
    let (w, mut d) = world();
    d.campaign = Arc::new(campaign_with(
        "name = \"percent-15\"",
        "name = \"percent-15\"\ncopy = \"Last chance:\"",
    ));
    let due = enrolled_in(&w, "c1", "en", "percent-15").await;
    process_step(&d, &due, now()).await.unwrap();
    let other = enrolled_in(&w, "c2", "en", "amount-10").await;
    process_step(&d, &other, now()).await.unwrap();
    let emails = w.mailer.drain();
    assert!(
        emails[0].1.subject.starts_with("Last chance:"),
        "{}",
        emails[0].1.subject
    );
    assert!(!emails[1].1.subject.contains("Last chance:"));
}

#[tokio::test]
async fn a_timing_variant_spaces_its_steps_by_its_delay_factor() {
    let (w, mut d) = world();
    let campaign = campaign_with(
        "name = \"percent-15\"",
        "name = \"percent-15\"\ndelay_factor = 1.25",
    );
    let c = campaign.config().clone();
    d.campaign = Arc::new(campaign);
    let due = enrolled_in(&w, "c1", "en", "percent-15").await;
    process_step(&d, &due, now()).await.unwrap();
    let e = enrollment(&w).await;
    let stretched = Duration::seconds((c.steps[1].delay_days * 1.25 * 86_400.0) as i64);
    assert_eq!(e.due_at, Some(now() + stretched));
    let other = enrolled_in(&w, "c2", "en", "amount-10").await;
    process_step(&d, &other, now()).await.unwrap();
    let o = w
        .store
        .get_enrollment("c2", "example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        o.due_at,
        Some(now() + Duration::days(c.steps[1].delay_days as i64))
    );
}

/// A customer in the at-risk flow, with `amounts` ordered every 14 days, the last 26 days ago
/// (not yet two of their gaps: a regular buyer quiet for more has lapsed), due for its step `step`.
async fn at_risk(w: &World, id: &str, amounts: &[i64], step: u8) -> StepDue {
    let c = shared::campaign::testing::example_campaign();
    let mut p = Profile::new(id.parse().unwrap());
    p.email = Some(format!("{id}@example.com"));
    p.locale = Some("en".into());
    p.time_zone = Some("Europe/Stockholm".into());
    let n = amounts.len() as i64;
    for (i, a) in amounts.iter().enumerate() {
        p.record_order(OrderRecord {
            // At scattered hours: no usual hour to wait for.
            at: now() - Duration::days(26 + 14 * (n - 1 - i as i64))
                + Duration::hours(4 * i as i64),
            amount: Money(*a),
            product: Some("House blend".into()),
            category: Some("coffee".into()),
            currency: None,
            order_id: None,
            refunded: Default::default(),
            refund_ids: Vec::new(),
            lines: Vec::new(),
        });
    }
    w.store.save_profile(&p).await.unwrap();
    let assignment = shared::domain::experiment::Assignment {
        group: Group::Treated,
        variant: "amount-10".into(),
        timing: "amount-10".into(),
    };
    let mut e = Enrollment::start_assigned(
        &id.parse().unwrap(),
        &c,
        1,
        &assignment,
        shared::domain::sequence::Flow::AtRisk,
        now() - Duration::days(12),
    );
    for s in 1..step {
        e = e
            .record_sent(s, now() - Duration::days(12), None, &c)
            .unwrap();
    }
    w.store.save_enrollment(&e).await.unwrap();
    StepDue {
        campaign: "example".into(),
        customer_id: id.parse().unwrap(),
        enrollment_id: e.id.clone(),
        step,
        due_at: now(),
    }
}

#[tokio::test]
async fn the_at_risk_flow_interests_then_answers_then_rewards_only_who_would_not_return_alone() {
    let (w, d) = world();
    // Step 1: content and the NPS question, no reward.
    let first = at_risk(&w, "steady-1", &[3000; 6], 1).await;
    process_step(&d, &first, now()).await.unwrap();
    let email = &w.mailer.drain()[0].1;
    assert!(
        email.subject.contains("How are things going"),
        "{}",
        email.subject
    );
    assert!(email.text.contains("/v1/survey?") && email.text.contains("&a=10"));
    assert!(
        !email.text.contains("WB-"),
        "no reward before the last step"
    );
    // Step 3, for a steady buyer only a little late: likely to return alone, so no discount.
    let steady = at_risk(&w, "steady", &[3000; 6], 3).await;
    assert!(matches!(
        process_step(&d, &steady, now()).await.unwrap(),
        Outcome::Sent { .. }
    ));
    let email = &w.mailer.drain()[0].1;
    assert!(!email.text.contains("WB-"), "{}", email.text);
    assert!(email.subject.contains("favourites"), "{}", email.subject);
    // A customer spending far less lately: unlikely to come back alone, so the reward.
    let fading = at_risk(&w, "fading", &[6000, 6000, 6000, 6000, 900, 900], 3).await;
    process_step(&d, &fading, now()).await.unwrap();
    let email = &w.mailer.drain()[0].1;
    let e = w
        .store
        .get_enrollment("fading", "example")
        .await
        .unwrap()
        .unwrap();
    let code = e
        .reward_code
        .expect("a reward for who would not return alone");
    assert!(email.text.contains(&code));
    // Every at-risk email is tagged with its flow, so SES events count for it too.
    assert!(email
        .tags
        .iter()
        .any(|(k, v)| k == "flow" && v == "at-risk"));
}

#[tokio::test]
async fn after_the_last_step_the_enrollment_waits_for_sunset() {
    let (w, d) = world();
    let mut due = enrolled(&w, "c1", "pl").await;
    let mut t = now();
    for step in 1..=3u8 {
        due.step = step;
        let out = process_step(&d, &due, t).await.unwrap();
        assert!(matches!(out, Outcome::Sent { .. }), "step {step}: {out:?}");
        t += Duration::days(8);
    }
    let e = enrollment(&w).await;
    assert_eq!(e.status, Status::AwaitingSunset);
    assert_eq!(e.sent.len(), 3);
}

#[tokio::test]
async fn an_address_on_the_account_suppression_list_is_not_sent_to_and_the_customer_is_suppressed()
{
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    w.mailer.put_suppressed("C1@example.com");
    let out = process_step(&d, &due, now()).await.unwrap();
    assert_eq!(
        out,
        Outcome::Skipped {
            why: "account_suppression_list"
        }
    );
    assert_eq!(w.mailer.count(), 0);
    let p = w.store.get_profile("c1").await.unwrap().unwrap();
    assert_eq!(p.email_status, EmailStatus::Suppressed);
    assert!(matches!(enrollment(&w).await.status, Status::Exited { .. }));
    // Someone else on the same account's list changes nothing for c2.
    let due2 = enrolled(&w, "c2", "en").await;
    assert!(matches!(
        process_step(&d, &due2, now()).await.unwrap(),
        Outcome::Sent { .. }
    ));
}

#[tokio::test]
async fn a_role_address_enrolled_before_the_campaign_kept_it_out_is_not_sent_to() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
    p.email = Some("info@example.com".into());
    w.store.save_profile(&p).await.unwrap();
    let out = process_step(&d, &due, now()).await.unwrap();
    assert_eq!(
        out,
        Outcome::Skipped {
            why: "role_address"
        }
    );
    assert_eq!(w.mailer.count(), 0);
    let p = w.store.get_profile("c1").await.unwrap().unwrap();
    assert_eq!(
        p.email_status,
        EmailStatus::Subscribed,
        "a role address is kept out by policy, not suppressed"
    );
}

#[tokio::test]
async fn an_unsubscribed_customer_is_skipped_and_leaves_the_sequence() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
    p.email_status = EmailStatus::Unsubscribed;
    w.store.save_profile(&p).await.unwrap();
    let out = process_step(&d, &due, now()).await.unwrap();
    assert!(matches!(out, Outcome::Skipped { .. }));
    assert_eq!(w.mailer.count(), 0);
    let e = enrollment(&w).await;
    assert!(matches!(e.status, Status::Exited { .. }));
}

#[tokio::test]
async fn a_won_back_customer_gets_no_more_emails() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    let e = enrollment(&w).await;
    w.store
        .save_enrollment(&e.win_back(now()).unwrap())
        .await
        .unwrap();
    let out = process_step(&d, &due, now()).await.unwrap();
    assert_eq!(
        out,
        Outcome::Skipped {
            why: "enrollment_ended"
        }
    );
    assert_eq!(w.mailer.count(), 0);
}

#[tokio::test]
async fn an_evening_buyer_gets_the_email_at_their_usual_hour() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    // Three more orders a little after 19:00 in Stockholm (18:00 UTC in winter).
    let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
    for days in [390, 380, 370] {
        let day = (now() - Duration::days(days)).date_naive();
        p.record_order(OrderRecord {
            at: day.and_hms_opt(18, 10, 0).unwrap().and_utc(),
            amount: Money(3000),
            product: None,
            category: None,
            currency: None,
            order_id: None,
            refunded: Default::default(),
            refund_ids: Vec::new(),
            lines: Vec::new(),
        });
    }
    w.store.save_profile(&p).await.unwrap();
    // Due at 11:00 in Stockholm: deferred to 19:00 the same day, then sent.
    let evening = Utc.with_ymd_and_hms(2026, 11, 22, 18, 0, 0).unwrap();
    let out = process_step(&d, &due, now()).await.unwrap();
    assert_eq!(out, Outcome::Deferred { until: evening });
    assert_eq!(w.mailer.count(), 0);
    assert_eq!(enrollment(&w).await.due_at, Some(evening));
    let mut again = due.clone();
    again.due_at = evening;
    process_step(&d, &again, evening).await.unwrap();
    assert_eq!(w.mailer.count(), 1, "sent at the usual hour, never dropped");
}

#[tokio::test]
async fn quiet_hours_in_the_customers_time_zone_defer_the_email() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    // 22:30 UTC = 23:30 in Stockholm.
    let late = Utc.with_ymd_and_hms(2026, 11, 22, 22, 30, 0).unwrap();
    let out = process_step(&d, &due, late).await.unwrap();
    let morning = Utc.with_ymd_and_hms(2026, 11, 23, 7, 0, 0).unwrap();
    assert_eq!(out, Outcome::Deferred { until: morning });
    assert_eq!(w.mailer.count(), 0);
    let e = enrollment(&w).await;
    assert_eq!(e.due_at, Some(morning));
    assert_eq!(e.published_step, 0, "the scheduler publishes it again then");
}

#[tokio::test]
async fn the_frequency_cap_defers_a_step_that_comes_too_soon() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    process_step(&d, &due, now()).await.unwrap();
    let soon = now() + Duration::days(1);
    let out = process_step(&d, &StepDue { step: 2, ..due }, soon)
        .await
        .unwrap();
    assert_eq!(
        out,
        Outcome::Deferred {
            until: now() + Duration::days(3)
        }
    );
}

/// A mailer that fails with a chosen error the first `n` times.
struct FailingMailer {
    inner: MemoryMailer,
    left: AtomicUsize,
    kind: &'static str,
    seen: Mutex<usize>,
}

#[async_trait]
impl Mailer for FailingMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        *self.seen.lock().unwrap() += 1;
        if self.left.load(Ordering::SeqCst) > 0 {
            self.left.fetch_sub(1, Ordering::SeqCst);
            return Err(match self.kind {
                "throttle" => MailError::Throttled("TooManyRequestsException".into()),
                "reject" => MailError::Rejected("MessageRejected".into()),
                "refuse" => {
                    shared::adapters::ses::classify("MessageRejected", "Email contains a virus.")
                }
                "other" => MailError::Other("connection reset".into()),
                _ => MailError::Paused("SendingPausedException".into()),
            });
        }
        self.inner.send(email).await
    }
}

fn failing(kind: &'static str, n: usize) -> Arc<FailingMailer> {
    Arc::new(FailingMailer {
        inner: MemoryMailer::new(),
        left: AtomicUsize::new(n),
        kind,
        seen: Mutex::new(0),
    })
}

#[tokio::test]
async fn throttling_is_reported_for_retry_and_the_retry_sends_once() {
    let (w, _) = world();
    let m = failing("throttle", 1);
    let d = deps_with(&w, m.clone());
    let due = enrolled(&w, "c1", "en").await;
    let err = process_step(&d, &due, now()).await.unwrap_err();
    assert!(matches!(err, SendError::Throttled(_)), "{err}");
    let e = enrollment(&w).await;
    let claim = e.claim.expect("the claim keeps its reward code");
    assert!(
        claim.lease_until <= now(),
        "the lease is released for the retry"
    );
    let code = claim.reward_code.expect("step 1 carries a reward");
    let out = process_step(&d, &due, now()).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }));
    assert_eq!(m.inner.count(), 1);
    assert_eq!(w.metrics.sum("SendThrottled", &[]), 1.0);
    // The retry sent the reward the failed attempt had inserted, and issued no other.
    let rewards = w.store.all_rewards();
    assert_eq!(rewards.len(), 1, "{rewards:?}");
    assert_eq!(rewards[0].code.to_string(), code);
    assert!(m.inner.drain()[0].1.text.contains(&code));
    assert_eq!(enrollment(&w).await.reward_code, Some(code));
}

#[tokio::test]
async fn a_permanently_rejected_address_is_suppressed_without_retry() {
    let (w, _) = world();
    let m = failing("reject", 1);
    let d = deps_with(&w, m.clone());
    let due = enrolled(&w, "c1", "en").await;
    let out = process_step(&d, &due, now()).await.unwrap();
    assert_eq!(
        out,
        Outcome::Skipped {
            why: "address_rejected"
        }
    );
    let p = w.store.get_profile("c1").await.unwrap().unwrap();
    assert_eq!(p.email_status, EmailStatus::Suppressed);
    let e = enrollment(&w).await;
    assert!(matches!(e.status, Status::Exited { .. }));
}

#[tokio::test]
async fn a_content_rejection_is_a_counted_send_failure_not_a_suppression() {
    let (w, _) = world();
    let m = failing("refuse", 1);
    let d = deps_with(&w, m.clone());
    let due = enrolled(&w, "c1", "en").await;
    let err = process_step(&d, &due, now()).await.unwrap_err();
    assert!(
        matches!(err, SendError::Mail(MailError::Refused(_))),
        "{err}"
    );
    let p = w.store.get_profile("c1").await.unwrap().unwrap();
    assert_eq!(
        p.email_status,
        EmailStatus::Subscribed,
        "the address is fine"
    );
    let e = enrollment(&w).await;
    assert!(matches!(e.status, Status::Active { .. }), "{:?}", e.status);
    assert!(e.claim.expect("claimed").lease_until <= now(), "released");
    assert_eq!(w.metrics.sum("SendRejected", &[("Service", "sender")]), 1.0);
    assert_eq!(w.metrics.sum("SendFailures", &[("Service", "sender")]), 1.0);
    // Once the content is fixed, the retry sends.
    let out = process_step(&d, &due, now()).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }));
}

#[tokio::test]
async fn paused_sending_fails_loudly() {
    let (w, _) = world();
    let d = deps_with(&w, failing("paused", 10));
    let due = enrolled(&w, "c1", "en").await;
    let err = process_step(&d, &due, now()).await.unwrap_err();
    assert!(matches!(err, SendError::Paused(_)));
    assert_eq!(w.metrics.sum("SendingPaused", &[]), 1.0);
}

/// Customer `c1`, enrolled in Swedish, paying in `currency`.
async fn paying_in(w: &World, currency: &str) -> StepDue {
    let due = enrolled(w, "c1", "sv").await;
    let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
    p.currency = Some(currency.into());
    w.store.save_profile(&p).await.unwrap();
    due
}

#[tokio::test]
async fn a_swedish_customer_is_offered_kronor_not_euros_relabelled() {
    let (w, d) = world();
    let due = paying_in(&w, "SEK").await;
    let out = process_step(&d, &due, now()).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }), "{out:?}");
    let code = enrollment(&w).await.reward_code.expect("a reward");
    let r = reward_of(&w, &code).await;
    assert_eq!(r.currency, "SEK");
    assert_eq!(
        r.spec.value,
        Some(Money(11500)),
        "the campaign's own SEK amount"
    );
    let (_, email) = w.mailer.drain().pop().unwrap();
    assert!(email.text.contains("115"), "{}", email.text);
    assert!(
        !email.text.contains("10.00") && !email.text.contains("10,00"),
        "{}",
        email.text
    );
}

#[tokio::test]
async fn a_currency_without_an_amount_or_a_rate_gets_the_email_without_a_reward() {
    let (w, d) = world();
    let due = paying_in(&w, "NOK").await;
    let out = process_step(&d, &due, now()).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }), "{out:?}");
    assert_eq!(
        enrollment(&w).await.reward_code,
        None,
        "no code in a wrong currency"
    );
    let (_, email) = w.mailer.drain().pop().unwrap();
    assert!(!email.text.contains("WB-"), "{}", email.text);
}

/// The stored reward of `code`.
async fn reward_of(w: &World, code: &str) -> shared::domain::reward::Reward {
    let code = RewardCode::parse(code).unwrap();
    w.store.get_reward(&code).await.unwrap().expect("stored")
}

/// The sender connected to a shop (the example campaign's checkout is Shopify).
fn with_shop(w: &World) -> (Deps, Arc<MemoryCheckout>) {
    let shop = Arc::new(MemoryCheckout::new());
    let mut d = deps_with(w, w.mailer.clone());
    d.checkout = Some(shop.clone());
    (d, shop)
}

#[tokio::test]
async fn the_email_goes_out_only_once_its_code_exists_in_the_shop_and_an_outage_waits() {
    let (w, _) = world();
    let (d, shop) = with_shop(&w);
    let due = enrolled(&w, "c1", "en").await;
    shop.set_down(true);
    let err = process_step(&d, &due, now()).await.unwrap_err();
    assert!(matches!(err, SendError::Checkout(_)), "{err}");
    assert!(err.retryable());
    assert_eq!(
        w.mailer.count(),
        0,
        "no email with a code the shop does not know"
    );
    let claim = enrollment(&w).await.claim.expect("claimed");
    assert!(
        claim.lease_until <= now(),
        "the claim is released for the retry"
    );
    let code = claim.reward_code.expect("the claim names its code");

    shop.set_down(false);
    let later = now() + Duration::minutes(20);
    let out = process_step(&d, &due, later).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }), "{out:?}");
    assert_eq!(w.mailer.count(), 1);
    assert_eq!(
        shop.len(),
        1,
        "exactly one code, after the outage and the retry"
    );
    let (made, active) = shop
        .code(&code)
        .expect("the emailed code exists in the shop");
    assert!(active);
    let reward = reward_of(&w, &code).await;
    assert_eq!(
        made.buyer,
        shared::domain::checkout::Buyer::ShopifyCustomer("c1".into())
    );
    assert_eq!(made.usage_limit, 1);
    assert_eq!(made.ends_at, reward.expires_at);
    assert_eq!(reward.in_checkout_at, Some(later));
    let (_, email) = w.mailer.drain().pop().unwrap();
    assert!(
        email.html.contains(&code),
        "the email carries the code the shop has"
    );

    // The same message again sends nothing and asks the shop nothing.
    let calls = shop.calls();
    process_step(&d, &due, later).await.unwrap();
    assert_eq!(shop.calls(), calls);
}

#[tokio::test]
async fn a_shop_outage_hands_the_step_back_instead_of_spending_receives() {
    let (w, _) = world();
    let (d, shop) = with_shop(&w);
    let due = enrolled(&w, "c1", "en").await;
    shop.set_down(true);
    let resp = handle_batch(&d, sqs(&[envelope(&due)]), now()).await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "handed back, not failed"
    );
    assert_eq!(w.mailer.count(), 0);
    assert_eq!(
        enrollment(&w).await.due_at,
        Some(now() + sender::CHECKOUT_RETRY)
    );
    assert_eq!(w.metrics.sum("CheckoutFailed", &[]), 1.0);
}

#[tokio::test]
async fn without_a_connected_shop_nothing_is_created() {
    let (w, d) = world();
    assert!(d.checkout.is_none());
    let due = enrolled(&w, "c1", "en").await;
    let out = process_step(&d, &due, now()).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }));
    let code = enrollment(&w).await.reward_code.expect("a reward");
    let reward = reward_of(&w, &code).await;
    assert_eq!(reward.in_checkout_at, None);
}

#[tokio::test]
async fn every_failed_send_releases_its_claim_and_the_retry_sends_at_once() {
    for kind in ["throttle", "refuse", "paused", "other"] {
        let (w, _) = world();
        let m = failing(kind, 1);
        let d = deps_with(&w, m.clone());
        let due = enrolled(&w, "c1", "en").await;
        let err = process_step(&d, &due, now()).await.unwrap_err();
        let claim = enrollment(&w).await.claim.expect("claimed");
        assert!(claim.lease_until <= now(), "{kind} ({err}): released");
        assert!(
            claim.reward_code.is_some(),
            "{kind}: the claim keeps its code"
        );
        let out = process_step(&d, &due, now()).await.unwrap();
        assert!(matches!(out, Outcome::Sent { .. }), "{kind}: {out:?}");
        assert_eq!(m.inner.count(), 1, "{kind}");
    }
}

fn sqs(bodies: &[String]) -> SqsEvent {
    let mut ev = SqsEvent::default();
    for (i, b) in bodies.iter().enumerate() {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m{i}"));
        m.body = Some(b.clone());
        ev.records.push(m);
    }
    ev
}

fn envelope(due: &StepDue) -> String {
    serde_json::json!({
        "version": "0", "id": "e1", "detail-type": "WinbackStepDue", "source": "winback",
        "account": "123456789012", "time": "2026-11-22T09:00:00Z", "region": "eu-north-1",
        "resources": [], "detail": due
    })
    .to_string()
}

#[tokio::test]
async fn a_batch_reports_only_its_failed_items() {
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    let batch = sqs(&[envelope(&due), "not json".into(), envelope(&due)]);
    let resp = handle_batch(&d, batch, now()).await;
    let failed: Vec<String> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec!["m1".to_string()]);
    assert_eq!(w.mailer.count(), 1);
}

#[tokio::test]
async fn the_sample_sqs_event_parses() {
    let ev: SqsEvent = serde_json::from_str(include_str!("../events/sqs-step-due.json")).unwrap();
    let body = ev.records[0].body.clone().unwrap();
    let due = sender::parse_body(&body).unwrap();
    assert_eq!(due.step, 1);
}

/// Fails every send with the error SES gives for `code` and `message`.
struct SesErrorMailer {
    code: &'static str,
    message: String,
}

#[async_trait]
impl Mailer for SesErrorMailer {
    async fn send(&self, _email: &Email) -> Result<String, MailError> {
        Err(shared::adapters::ses::classify(self.code, &self.message))
    }
}

#[tokio::test]
async fn an_address_in_an_ses_error_never_reaches_the_log() {
    for (code, message) in [
        ("InternalFailure", "Failed to deliver to <c1@example.com>"),
        (
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in region EU-NORTH-1: c1@example.com, shop@example.com",
        ),
        ("BadRequestException", "Header value for c1%40example.com is too long"),
    ] {
        let (w, _) = world();
        let d = deps_with(
            &w,
            Arc::new(SesErrorMailer {
                code,
                message: message.into(),
            }),
        );
        let due = enrolled(&w, "c1", "en").await;
        let (lines, guard) = LogLines::capture();
        handle_batch(&d, sqs(&[envelope(&due)]), now()).await;
        drop(guard);
        let log = lines.text();
        assert!(log.contains(code), "the code is logged: {log}");
        assert!(
            !log.contains("c1@example.com") && !log.contains("c1%40example.com"),
            "no address in the log: {log}"
        );
        assert!(!log.contains("shop@example.com"), "{log}");
    }
}

fn received(mut ev: SqsEvent, times: u32) -> SqsEvent {
    for m in &mut ev.records {
        m.attributes
            .insert("ApproximateReceiveCount".into(), times.to_string());
    }
    ev
}

#[tokio::test]
async fn a_pause_stops_the_batch_and_hands_every_step_back_to_the_scheduler() {
    let (w, _) = world();
    let m = failing("paused", 100);
    let d = deps_with(&w, m.clone());
    let mut bodies = Vec::new();
    for id in ["c1", "c2", "c3"] {
        bodies.push(envelope(&enrolled(&w, id, "en").await));
    }
    let resp = handle_batch(&d, received(sqs(&bodies), 1), now()).await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "no receive is spent on a pause: {:?}",
        resp.batch_item_failures
    );
    assert_eq!(*m.seen.lock().unwrap(), 1, "no SES call after the pause");
    for id in ["c1", "c2", "c3"] {
        let e = w
            .store
            .get_enrollment(id, "example")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.due_at, Some(now() + sender::PAUSED_RETRY), "{id}");
        assert_eq!(e.published_step, 0, "the scheduler publishes {id} again");
        assert!(matches!(e.status, Status::Active { next_step: 1 }));
        assert!(e.claim.is_none_or(|c| c.lease_until <= now()));
    }
    assert_eq!(w.metrics.sum("SendingPaused", &[]), 1.0);
    assert_eq!(m.inner.count(), 0);
}

#[tokio::test]
async fn a_step_throttled_late_in_its_receives_is_handed_back_not_dead_lettered() {
    let (w, _) = world();
    let m = failing("throttle", 2);
    let d = deps_with(&w, m.clone());
    let due = enrolled(&w, "c1", "en").await;
    // Early receives: redelivered by the queue, as before.
    let resp = handle_batch(&d, received(sqs(&[envelope(&due)]), 1), now()).await;
    assert_eq!(resp.batch_item_failures.len(), 1);
    // A later receive: the scheduler publishes it again instead.
    let late = sender::HAND_BACK_FROM_RECEIVE;
    let resp = handle_batch(&d, received(sqs(&[envelope(&due)]), late), now()).await;
    assert!(resp.batch_item_failures.is_empty());
    let e = enrollment(&w).await;
    assert_eq!(e.due_at, Some(now() + sender::THROTTLED_RETRY));
    assert_eq!(e.published_step, 0);
    let code = e.claim.and_then(|c| c.reward_code);
    assert!(
        code.is_some(),
        "the claim keeps its reward code for the retry"
    );
    // The republished step sends the reward already issued.
    let later = now() + sender::THROTTLED_RETRY;
    let out = process_step(&d, &due, later).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }));
    assert_eq!(w.store.all_rewards().len(), 1);
}

#[tokio::test]
async fn an_open_follow_up_holds_the_email_until_a_person_closes_it() {
    use shared::domain::follow_up;
    use shared::domain::survey::FollowUp;
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
    let opened = now() - Duration::days(1);
    follow_up::open(
        &mut p,
        "example",
        FollowUp::Detractor,
        Some(3),
        None,
        opened,
    );
    w.store.save_profile(&p).await.unwrap();

    // Held for the pause (14 days from the answer), not dropped.
    let until = opened + Duration::days(14);
    let out = process_step(&d, &due, now()).await.unwrap();
    assert_eq!(out, Outcome::Deferred { until });
    assert_eq!(w.mailer.count(), 0);
    assert_eq!(enrollment(&w).await.due_at, Some(until));

    // A person closes it: the next look sends.
    let mut p = w.store.get_profile("c1").await.unwrap().unwrap();
    follow_up::close(&mut p, now());
    w.store.save_profile(&p).await.unwrap();
    let mut again = due.clone();
    again.due_at = until;
    let later = now() + Duration::hours(1);
    let mut e = enrollment(&w).await.defer(later).unwrap();
    e.version = enrollment(&w).await.version;
    w.store.save_enrollment(&e).await.unwrap();
    process_step(&d, &again, later).await.unwrap();
    assert_eq!(w.mailer.count(), 1, "sent once the follow-up is closed");
}

#[tokio::test]
async fn an_email_the_targeting_decision_sends_without_a_reward_carries_no_code() {
    use shared::domain::targeting::Treatment;
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    let mut e = enrollment(&w).await;
    e.treatment = Some(Treatment::EmailWithoutReward);
    w.store.save_enrollment(&e).await.unwrap();
    let out = process_step(&d, &due, now()).await.unwrap();
    assert!(matches!(out, Outcome::Sent { .. }), "{out:?}");
    assert_eq!(enrollment(&w).await.reward_code, None);
    let (_, email) = w.mailer.drain().pop().unwrap();
    assert!(!email.text.contains("WB-"), "{}", email.text);
    assert!(email.text.contains("unsubscribe"), "still the step's email");

    // The same customer as the rules treat them gets the reward.
    let (w, d) = world();
    let due = enrolled(&w, "c1", "en").await;
    let mut e = enrollment(&w).await;
    e.treatment = Some(Treatment::EmailWithReward);
    w.store.save_enrollment(&e).await.unwrap();
    process_step(&d, &due, now()).await.unwrap();
    assert!(enrollment(&w).await.reward_code.is_some());
}
