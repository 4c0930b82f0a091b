//! The links in emails: survey answers, unsubscribe (one-click and the page), fewer emails.

mod common;

use chrono::Duration;
use common::*;
use shared::domain::customer::EmailStatus;
use shared::domain::experiment::Group;
use shared::domain::metrics::counter;
use shared::domain::sequence::{ExitReason, Status};
use shared::domain::survey::{FollowUp, Reason};
use shared::events::BusEvent;
use shared::signing::Purpose;

/// The customer's answer: the post the survey page's form makes.
fn survey(enrollment_id: &str, answer: &str) -> webhook::HttpRequest {
    let q = format!("t={}&a={answer}", token(Purpose::Survey, enrollment_id));
    link("POST", "/v1/survey", &q, "choice=answer")
}

#[tokio::test]
async fn a_scanner_fetching_the_survey_link_changes_nothing_and_the_page_posts_the_answer() {
    let (w, e) = world_with_enrollment().await;
    let before = w.snapshot().await;
    for answer in ["quality", "bad_experience", "2"] {
        let q = format!("t={}&a={answer}", token(Purpose::Survey, &e.id));
        // A mail filter fetches every link in the email, maybe several times.
        for _ in 0..3 {
            let resp = w.http(link("GET", "/v1/survey", &q, "")).await;
            assert_eq!(resp.status, 200);
            assert!(resp.body.contains("<form method=\"post\""), "{}", resp.body);
            assert!(resp.body.contains("survey?t="), "{}", resp.body);
            // No script sends the form: a scanner that runs scripts answers nothing either.
            assert!(!resp.body.contains("<script"), "{}", resp.body);
            let csp = resp.header("content-security-policy").unwrap();
            assert!(
                csp.contains("default-src 'none'") && !csp.contains("script-src"),
                "{csp}"
            );
            for directive in [
                "frame-ancestors 'none'",
                "form-action 'self'",
                "base-uri 'none'",
            ] {
                assert!(csp.contains(directive), "{csp}");
            }
            assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
        }
    }
    assert_eq!(w.snapshot().await, before, "no tag, no pause, no count");
    assert!(w.bus.drain().is_empty());
    assert_eq!(w.enrollment(CUSTOMER).await.status, e.status);

    // The page shows the answer in the customer's language, and its form records it.
    let q = format!("t={}&a=quality", token(Purpose::Survey, &e.id));
    let page = w.http(link("GET", "/v1/survey", &q, "")).await;
    assert!(
        page.body.contains("Jag var inte nöjd med kvaliteten"),
        "{}",
        page.body
    );
    let action = page
        .body
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let query = action.split_once('?').unwrap().1.to_string();
    let resp = w
        .http(link("POST", "/v1/survey", &query, "choice=answer"))
        .await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.contains("Tack"));
    assert!(w.profile(CUSTOMER).await.tags.contains("reason:quality"));
    assert!(matches!(
        w.enrollment(CUSTOMER).await.status,
        Status::Exited {
            reason: ExitReason::Paused,
            ..
        }
    ));
}

#[tokio::test]
async fn a_survey_answer_is_recorded_tagged_counted_and_thanked_in_the_customers_language() {
    let (w, e) = world_with_enrollment().await;
    let resp = w.http(survey(&e.id, "bad_experience")).await;
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(
        resp.body.contains("lang=\"sv\"") && resp.body.contains("Tack"),
        "{}",
        resp.body
    );

    let p = w.profile(CUSTOMER).await;
    assert_eq!(p.survey_reason, Some(Reason::BadExperience));
    assert!(p.tags.contains("reason:bad_experience"));
    assert_eq!(
        w.enrollment(CUSTOMER).await.survey_reason,
        Some(Reason::BadExperience)
    );
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::ANSWERED), 1);
    assert_eq!(t.get("reason_bad_experience"), 1);
    assert_eq!(t.get(counter::FOLLOW_UPS), 1);
    let events = w.bus.drain();
    assert!(events.iter().any(|ev| matches!(
        ev,
        BusEvent::SurveyAnswered {
            reason: Some(Reason::BadExperience),
            ..
        }
    )));
    assert!(events.iter().any(|ev| matches!(
        ev,
        BusEvent::FollowUpNeeded {
            why: FollowUp::BadExperience,
            ..
        }
    )));
    assert!(
        (w.metrics
            .sum("SurveyAnswers", &[("Reason", "bad_experience")])
            - 1.0)
            .abs()
            < 1e-9
    );
}

#[tokio::test]
async fn answering_again_updates_and_never_double_counts() {
    let (w, e) = world_with_enrollment().await;
    w.http(survey(&e.id, "forgot")).await;
    w.http(survey(&e.id, "forgot")).await;
    w.http(survey(&e.id, "too_expensive")).await;
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::ANSWERED), 1);
    assert_eq!(t.get("reason_forgot"), 0);
    assert_eq!(t.get("reason_too_expensive"), 1);
    let p = w.profile(CUSTOMER).await;
    assert!(!p.tags.contains("reason:forgot"));
    assert!(p.tags.contains("reason:too_expensive"));
    assert_eq!(
        w.bus.drain().len(),
        2,
        "the repeated click publishes nothing"
    );

    w.http(survey(&e.id, "3")).await;
    w.http(survey(&e.id, "5")).await;
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::ANSWERED), 1);
    assert_eq!(t.get("nps_detractor"), 1);
    assert_eq!(t.get(counter::FOLLOW_UPS), 1, "still the same detractor");
    assert_eq!(w.profile(CUSTOMER).await.nps, Some(5));
}

#[tokio::test]
async fn a_paused_reason_ends_the_sequence() {
    let (w, e) = world_with_enrollment().await;
    w.http(survey(&e.id, "quality")).await;
    assert!(matches!(
        w.enrollment(CUSTOMER).await.status,
        Status::Exited {
            reason: ExitReason::Paused,
            ..
        }
    ));
}

#[tokio::test]
async fn forged_expired_wrong_purpose_and_unreadable_answers_get_an_error_page_and_change_nothing()
{
    let (w, e) = world_with_enrollment().await;
    let before = w.snapshot().await;
    let good = token(Purpose::Survey, &e.id);
    let (body, sig) = good.split_once('.').unwrap();
    let forged = format!("{body}x.{sig}");
    let cases = [
        format!("t={forged}&a=forgot"),
        format!("t={}&a=forgot", token(Purpose::Unsubscribe, &e.id)),
        format!("t={good}&a=cheap"),
        format!("t={good}&a=11"),
        format!("t={good}"),
        "a=forgot".to_string(),
        "t=nonsense&a=forgot".to_string(),
    ];
    for q in cases {
        for method in ["GET", "POST"] {
            let resp = w
                .http(link(method, "/v1/survey", &q, "choice=answer"))
                .await;
            assert_eq!(resp.status, 400, "{method} {q}");
            assert!(resp.body.contains("<h1>"), "an error page for {q}");
        }
    }
    let later = now() + Duration::days(31);
    let resp = webhook::handle_http(&w.deps, survey(&e.id, "forgot"), later).await;
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("expired"));
    assert_eq!(w.snapshot().await, before);
    assert!(w.bus.drain().is_empty());
}

#[tokio::test]
async fn error_pages_follow_the_browsers_language() {
    let w = world();
    let mut req = link("GET", "/v1/survey", "t=broken&a=1", "");
    req.headers
        .push(("accept-language".into(), "pl-PL,pl;q=0.9,en;q=0.5".into()));
    let resp = w.http(req).await;
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("lang=\"pl\""));
}

#[tokio::test]
async fn the_unsubscribe_page_offers_fewer_emails_or_none_and_changes_nothing() {
    let (w, e) = world_with_enrollment().await;
    let before = w.snapshot().await;
    let t = token(Purpose::Unsubscribe, &e.id);
    let resp = w
        .http(link("GET", "/v1/unsubscribe", &format!("t={t}"), ""))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.matches("<form method=\"post\"").count(), 2);
    let html = resp.body.replace("&#x2f;", "/");
    assert!(
        html.contains("action=\"https://hooks.example.com/v1/preferences?t="),
        "{html}"
    );
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn one_click_unsubscribe_ends_the_sequence_and_counts_once() {
    let (w, e) = world_with_enrollment().await;
    let q = format!("t={}", token(Purpose::Unsubscribe, &e.id));
    for _ in 0..2 {
        let resp = w
            .http(link(
                "POST",
                "/v1/unsubscribe",
                &q,
                "List-Unsubscribe=One-Click",
            ))
            .await;
        assert_eq!(resp.status, 200);
        assert!(resp.body.contains("avregistrerad"));
    }
    w.assert_ended(
        EmailStatus::Unsubscribed,
        ExitReason::Unsubscribed,
        counter::UNSUBSCRIBED,
    )
    .await;
    assert!((w.metrics.sum("Unsubscribed", &[("Campaign", "example")]) - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn an_unsubscribe_post_without_the_one_click_body_is_refused() {
    let (w, e) = world_with_enrollment().await;
    let before = w.snapshot().await;
    let q = format!("t={}", token(Purpose::Unsubscribe, &e.id));
    assert_eq!(
        w.http(link("POST", "/v1/unsubscribe", &q, "")).await.status,
        400
    );
    let survey_token = format!("t={}", token(Purpose::Survey, &e.id));
    assert_eq!(
        w.http(link(
            "POST",
            "/v1/unsubscribe",
            &survey_token,
            "List-Unsubscribe=One-Click"
        ))
        .await
        .status,
        400
    );
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn fewer_emails_keeps_the_sequence_and_unsubscribing_later_still_works() {
    let (w, e) = world_with_enrollment().await;
    let q = format!("t={}", token(Purpose::FewerEmails, &e.id));
    let resp = w
        .http(link("POST", "/v1/preferences", &q, "choice=fewer"))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        w.profile(CUSTOMER).await.email_status,
        EmailStatus::FewerEmails
    );
    assert!(matches!(
        w.enrollment(CUSTOMER).await.status,
        Status::Active { .. }
    ));
    assert_eq!(
        w.totals(VARIANT, Group::Treated)
            .await
            .get(counter::FEWER_EMAILS),
        1
    );

    let q = format!("t={}", token(Purpose::Unsubscribe, &e.id));
    w.http(link("POST", "/v1/preferences", &q, "choice=unsubscribe"))
        .await;
    assert_eq!(
        w.profile(CUSTOMER).await.email_status,
        EmailStatus::Unsubscribed
    );
    let bad = w
        .http(link("POST", "/v1/preferences", &q, "choice=more"))
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn an_authentic_unsubscribe_link_still_unsubscribes_after_its_expiry() {
    let (w, e) = world_with_enrollment().await;
    let q = format!("t={}", token(Purpose::Unsubscribe, &e.id));
    // Long after the token's expiry (30 days): the choice page and one-click both still work.
    let later = now() + Duration::days(400);
    let page = webhook::handle_http(&w.deps, link("GET", "/v1/unsubscribe", &q, ""), later).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let resp = webhook::handle_http(
        &w.deps,
        link("POST", "/v1/unsubscribe", &q, "List-Unsubscribe=One-Click"),
        later,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        w.profile(CUSTOMER).await.email_status,
        EmailStatus::Unsubscribed
    );
    // A forged one still does not.
    let forged = q.replace('.', "x.");
    let resp = webhook::handle_http(
        &w.deps,
        link(
            "POST",
            "/v1/unsubscribe",
            &forged,
            "List-Unsubscribe=One-Click",
        ),
        later,
    )
    .await;
    assert_eq!(resp.status, 400);
}
