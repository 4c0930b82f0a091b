//! A person in the loop: a detractor or a bad experience opens a follow-up, the team is told in
//! a readable message with a signed link to the record, the customer's emails wait, and the link
//! (or `winback follow-up close`) closes it.

mod common;

use chrono::Duration;
use common::*;
use shared::domain::experiment::Group;
use shared::domain::metrics::counter;
use shared::domain::survey::FollowUp;
use shared::signing::Purpose;

fn answer(enrollment_id: &str, a: &str) -> webhook::HttpRequest {
    let q = format!("t={}&a={a}", token(Purpose::Survey, enrollment_id));
    link("POST", "/v1/survey", &q, "choice=answer")
}

/// The record link in the message, as path and query.
fn record_link(body: &str) -> (String, String) {
    let url = body
        .lines()
        .find(|l| l.contains("/v1/follow-ups/"))
        .expect("the message carries the record link")
        .trim();
    let path_q = url.strip_prefix("https://hooks.example.com").unwrap();
    let (path, q) = path_q.split_once('?').unwrap();
    (path.to_string(), q.to_string())
}

#[tokio::test]
async fn a_detractor_is_told_to_the_team_and_their_emails_wait_until_the_link_closes_it() {
    let (w, e) = world_with_enrollment().await;
    assert_eq!(w.http(answer(&e.id, "2")).await.status, 200);

    let sent = w.notifier.drain();
    assert_eq!(sent.len(), 1, "one message to the team");
    let (subject, body) = &sent[0];
    assert_eq!(
        subject,
        &format!("Follow-up needed: customer {CUSTOMER}, detractor")
    );
    for want in [
        format!("Customer id: {CUSTOMER}"),
        "Flow: example".into(),
        "NPS score: 2 of 10".into(),
        "Last order: ".into(),
        "Lifetime value: ".into(),
        format!("winback follow-up close {CUSTOMER}"),
    ] {
        assert!(body.contains(&want), "{want} missing in:\n{body}");
    }
    let p = w.profile(CUSTOMER).await;
    let email = p.email.clone().unwrap();
    assert!(!body.contains(&email), "no email address in the message");
    let case = p.follow_up.clone().expect("a follow-up is open");
    assert_eq!(
        (case.why, case.nps, case.closed_at),
        (FollowUp::Detractor, Some(2), None)
    );

    // The emails wait: the customer is held back from new flows until the pause passes.
    let pol = &w.deps.campaign.config().eligibility;
    let held = shared::domain::eligibility::check(&p, None, pol, now()).unwrap_err();
    assert_eq!(held.rule(), "follow_up_open");
    assert_eq!(
        held.retry_at(),
        Some(now() + Duration::days(i64::from(pol.follow_up_pause_days)))
    );

    // A second detractor click tells nobody again.
    w.http(answer(&e.id, "1")).await;
    assert_eq!(w.notifier.count(), 0);
    assert_eq!(
        w.totals(VARIANT, Group::Treated)
            .await
            .get(counter::FOLLOW_UPS),
        1
    );

    // The link shows the record with a close button; a forged or foreign link is refused.
    let (path, q) = record_link(body);
    let page = w.http(link("GET", &path, &q, "")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&email) && page.body.contains("Close the follow-up"),
        "{}",
        page.body
    );
    let forged = w
        .http(link("GET", &path, &q.replace("t=", "t=x"), ""))
        .await;
    assert_eq!(forged.status, 400);
    let other = w.http(link("GET", "/v1/follow-ups/c-9999", &q, "")).await;
    assert_eq!(other.status, 400);
    assert!(other.body.contains("another customer"));
    let email_link = w
        .http(link(
            "GET",
            &path,
            &format!("t={}", token(Purpose::Survey, &e.id)),
            "",
        ))
        .await;
    assert_eq!(
        email_link.status, 400,
        "a customer's survey link never opens the record"
    );
    assert!(
        w.profile(CUSTOMER).await.follow_up.unwrap().is_open(),
        "viewing changes nothing"
    );

    // Closing lets the emails go again, and is counted once.
    let closed = w.http(link("POST", &path, &q, "")).await;
    assert_eq!(closed.status, 200);
    assert!(closed.body.contains("Follow-up closed"));
    let p = w.profile(CUSTOMER).await;
    assert_eq!(p.follow_up.as_ref().unwrap().closed_at, Some(now()));
    assert_eq!(
        shared::domain::eligibility::check(&p, None, pol, now()),
        Ok(())
    );
    let again = w.http(link("POST", &path, &q, "")).await;
    assert!(again.body.contains("closed already"));
    assert_eq!(
        w.totals(VARIANT, Group::Treated)
            .await
            .get(counter::FOLLOW_UPS_CLOSED),
        1
    );
    assert!((w.metrics.sum("FollowUpsClosed", &[("Campaign", "example")]) - 1.0).abs() < 1e-9);
    assert!((w.metrics.sum("FollowUpsOpened", &[("Campaign", "example")]) - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn closing_releases_an_enrollment_held_for_the_follow_up() {
    let (w, e) = world_with_enrollment().await;
    w.http(answer(&e.id, "bad_experience")).await;
    assert_eq!(w.notifier.count(), 1);
    // The sender held the next step for the pause.
    let held_until = now() + Duration::days(14);
    let mut held = w.enrollment(CUSTOMER).await.defer(held_until).unwrap();
    held.version = w.enrollment(CUSTOMER).await.version;
    use shared::ports::EnrollmentStore;
    w.store.save_enrollment(&held).await.unwrap();

    let flows = webhook::follow_up::flows(&w.deps);
    let (closed, _) = webhook::follow_up::close(w.store.as_ref(), CUSTOMER, &flows, now())
        .await
        .unwrap();
    assert_eq!(closed, shared::domain::follow_up::Closed::Now);
    assert_eq!(
        w.enrollment(CUSTOMER).await.due_at,
        Some(now()),
        "due again now"
    );
}

#[tokio::test]
async fn the_team_s_link_is_signed_apart_bound_to_its_case_for_a_day_logged_and_on_the_set_url() {
    let (w, e) = world_with_enrollment().await;
    // A request with a spoofed Host opens the case: the link is on PUBLIC_BASE_URL all the same.
    let mut spoofed = answer(&e.id, "2");
    spoofed.headers.push(("host".into(), "evil.example".into()));
    assert_eq!(w.http(spoofed).await.status, 200);
    let (_, body) = w.notifier.drain().remove(0);
    assert!(!body.contains("evil.example"), "{body}");
    let (path, q) = record_link(&body);

    // A follow-up token signed with the customers' link key opens nothing.
    let case = w.profile(CUSTOMER).await.follow_up.unwrap();
    let customer_key_token = shared::signing::sign_link(
        &shared::signing::LinkKeys::one(LINK_KEY),
        &shared::signing::LinkClaims {
            purpose: Purpose::FollowUp,
            customer_id: CUSTOMER.parse().unwrap(),
            campaign: case.campaign.clone(),
            enrollment_id: format!("case-{}", case.opened_at.timestamp()),
            step: 0,
            expires: (now() + Duration::days(60)).timestamp(),
        },
    );
    let forged = w
        .http(link("GET", &path, &format!("t={customer_key_token}"), ""))
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);

    // The link works for a day from the case's opening, and each view is logged without the
    // customer's address or name.
    let (lines, guard) = test_support::logs::LogLines::capture();
    let in_a_day = now() + Duration::hours(23);
    let page = webhook::handle_http(&w.deps, link("GET", &path, &q, ""), in_a_day).await;
    drop(guard);
    assert_eq!(page.status, 200, "{}", page.body);
    let log = lines.text();
    assert!(log.contains("follow_up_viewed"), "{log}");
    assert!(
        log.contains(&format!("case-{}", case.opened_at.timestamp())),
        "{log}"
    );
    let p = w.profile(CUSTOMER).await;
    assert!(!log.contains(p.email.as_deref().unwrap()), "{log}");
    assert!(!log.contains(p.first_name.as_deref().unwrap()), "{log}");
    let late = now() + Duration::hours(25);
    let expired = webhook::handle_http(&w.deps, link("GET", &path, &q, ""), late).await;
    assert_eq!(expired.status, 400, "{}", expired.body);

    // Closed, then a newer case: the old link neither shows nor closes the newer one.
    assert_eq!(w.http(link("POST", &path, &q, "")).await.status, 200);
    let later = now() + Duration::hours(2);
    let mut p = w.profile(CUSTOMER).await;
    p.follow_up = Some(shared::domain::customer::FollowUpCase {
        opened_at: later,
        closed_at: None,
        ..case.clone()
    });
    shared::ports::ProfileStore::save_profile(w.store.as_ref(), &p)
        .await
        .unwrap();
    let at = later + Duration::minutes(1);
    let old_view = webhook::handle_http(&w.deps, link("GET", &path, &q, ""), at).await;
    assert_eq!(old_view.status, 400);
    assert!(
        old_view.body.contains("earlier follow-up"),
        "{}",
        old_view.body
    );
    let old_close = webhook::handle_http(&w.deps, link("POST", &path, &q, ""), at).await;
    assert_eq!(old_close.status, 400);
    assert!(w.profile(CUSTOMER).await.follow_up.unwrap().is_open());
}
