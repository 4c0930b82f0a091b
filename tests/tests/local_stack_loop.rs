//! The whole loop on the local stack: the scheduler publishes, EventBridge routes to SQS, the
//! sender emails through moto's SES, and the customer follows the email's links into the webhook.

use chrono::Duration;
use shared::domain::customer::EmailStatus;
use shared::domain::sequence::Status;
use shared::domain::survey::Reason;
use shared::ports::EnrollmentStore;
use winback_tests::*;

#[tokio::test]
async fn a_lapsed_customer_is_emailed_answers_the_survey_unsubscribes_and_hears_no_more() {
    let stack = LocalStack::from_env().await;
    let table = stack.fresh_table("loop").await;
    let queue = stack
        .bus_to_queue("loop", &["WinbackStepDue", "SurveyAnswered"])
        .await;
    let domain = format!("{}.test", unique("loop"));
    stack.verify_sender(&domain).await;
    let (mailer, _) = stack.mailer();
    let scheduler = scheduler_deps(&table, &queue);
    let sender = sender_deps(&table, mailer, &format!("shop@{domain}"));
    let webhook = webhook_deps(&table, &queue);

    let id = treated_ids("loop", 1).remove(0);
    let to = format!("{id}@{domain}");
    let steps = one_step_due(&table, &queue, &scheduler, &id, &to).await;
    assert_eq!(steps[0].json()["detail"]["customer_id"], id.as_str());

    let sent_at = now() + Duration::minutes(2);
    let out = sender::handle_batch(&sender, sqs_event(&steps), sent_at).await;
    assert!(out.batch_item_failures.is_empty());
    let emails = stack.emails_to(&to);
    assert_eq!(emails.len(), 1);
    let html = &emails[0].body;

    let survey = links_in(html, "/v1/survey?")
        .into_iter()
        .find(|l| l.ends_with("&a=forgot"))
        .expect("a forgot answer link");
    let clicked_at = sent_at + Duration::hours(3);
    let resp = follow(&webhook, &survey, "POST", "choice=answer", clicked_at).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let answered: Vec<_> = queue
        .drain()
        .await
        .iter()
        .map(QueuedMessage::json)
        .collect();
    assert!(
        answered
            .iter()
            .any(|j| j["detail-type"] == "SurveyAnswered"
                && j["detail"]["customer_id"] == id.as_str()),
        "{answered:?}"
    );
    let e = table
        .store
        .get_enrollment(&id, CAMPAIGN)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.survey_reason, Some(Reason::Forgot));
    assert_eq!(
        e.status,
        Status::Active { next_step: 2 },
        "forgetting does not pause the sequence"
    );

    let unsubscribe = link_in(html, "/v1/unsubscribe?");
    let page = follow(&webhook, &unsubscribe, "GET", "", clicked_at).await;
    assert_eq!(
        page.status, 200,
        "the link opens the choice page: {}",
        page.body
    );
    assert_eq!(
        stored_profile(&table, &id).await.email_status,
        EmailStatus::Subscribed,
        "opening the page changes nothing"
    );
    let resp = follow(
        &webhook,
        &unsubscribe,
        "POST",
        "List-Unsubscribe=One-Click",
        clicked_at,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        stored_profile(&table, &id).await.email_status,
        EmailStatus::Unsubscribed
    );

    // When step 2 would have been due, nothing is published and nothing is sent.
    let later = now() + Duration::days(6);
    let summary = invoke_scheduler(&scheduler, &scheduled_event(later))
        .await
        .unwrap();
    assert_eq!(summary.steps_published, 0, "{summary:?}");
    assert!(queue.drain().await.is_empty());
    assert_eq!(stack.emails_to(&to).len(), 1, "one email in all");
    table.delete().await;
}
