//! The sender against DynamoDB Local and moto's SES v2, fed the SQS messages the scheduler's
//! events produced through EventBridge. Assertions read what moto recorded as sent.

use chrono::Duration;
use shared::campaign::format_date;
use shared::campaign::testing::example;
use shared::domain::experiment;
use shared::domain::reward::RewardCode;
use shared::domain::survey::Reason;
use shared::ports::{EnrollmentStore, ProfileStore, RewardStore};
use winback_tests::*;

#[tokio::test]
async fn due_steps_from_the_queue_become_one_ses_email_each_with_code_expiry_and_links_even_when_the_batch_comes_twice(
) {
    let stack = LocalStack::from_env().await;
    let (table, queue) = stack.steps_table("send").await;
    let domain = format!("{}.test", unique("send"));
    let sender_address = format!("shop@{domain}");
    stack.verify_sender(&domain).await;
    let (mailer, wire) = stack.mailer();

    // Two customers of one cohort (variant), so the batch's counts take one counter write.
    let ids: Vec<String> = {
        let cfg = &example().config().experiment;
        let variant = |id: &String| experiment::assign(id, CAMPAIGN, cfg).variant;
        let all = treated_ids("buyer", 12);
        let first = variant(&all[0]);
        all.into_iter()
            .filter(|id| variant(id) == first)
            .take(2)
            .collect()
    };
    assert_eq!(ids.len(), 2);
    let recipients: Vec<String> = ids.iter().map(|id| format!("{id}@{domain}")).collect();
    let profiles: Vec<_> = ids
        .iter()
        .zip(&recipients)
        .map(|(id, to)| customer(id, to, 7, 120))
        .collect();
    table.store.put_profiles(&profiles).await.unwrap();
    let summary = invoke_scheduler(&scheduler_deps(&table, &queue), &scheduled_event(now()))
        .await
        .unwrap();
    assert_eq!(summary.steps_published, 2);
    let messages = queue.drain().await;
    assert_eq!(messages.len(), 2);

    let mut published = Vec::new();
    for id in &ids {
        let e = table.store.get_enrollment(id, CAMPAIGN).await.unwrap();
        published.push(e.unwrap());
    }

    let deps = sender_deps(&table, mailer, &sender_address);
    let send_at = now() + Duration::minutes(1);
    let writes_before = table.store.writes();
    let first = sender::handle_batch(&deps, sqs_event(&messages), send_at).await;
    assert!(
        first.batch_item_failures.is_empty(),
        "{:?}",
        first.batch_item_failures
    );
    // Per email: the claim, the reward's listing under its customer (for erasure), the new
    // reward, the mark; then one counter write for the batch (one cohort, one day).
    assert!(published.iter().all(|e| e.variant == published[0].variant));
    assert_eq!(table.store.writes() - writes_before, 4 * 2 + 1);
    for before in &published {
        let after = table
            .store
            .get_enrollment(&before.customer_id, CAMPAIGN)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            after.due_at, before.due_at,
            "the mark keeps the due time set at publish, so the due index is not rewritten"
        );
        assert_eq!(after.due_step(), Some(2));
    }
    let second =
        sender::handle_batch(&deps, sqs_event(&messages), send_at + Duration::minutes(1)).await;
    assert!(
        second.batch_item_failures.is_empty(),
        "a replay is a success, not a failure"
    );

    for (id, to) in ids.iter().zip(&recipients) {
        let emails = stack.emails_to(to);
        assert_eq!(
            emails.len(),
            1,
            "one email per step for {id}, even after a replay: {emails:?}"
        );
        let email = &emails[0];
        assert_eq!(email.source, sender_address);
        assert!(email.subject.contains("Alex, here's"), "{}", email.subject);

        let enrollment = table
            .store
            .get_enrollment(id, CAMPAIGN)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(enrollment.sent.len(), 1);
        assert_eq!(
            enrollment.sent[0].message_id.as_deref(),
            Some(email.id.as_str()),
            "SES's id is recorded"
        );
        let code = enrollment
            .reward_code
            .clone()
            .expect("the enrollment holds its code");
        let reward = table
            .store
            .get_reward(&RewardCode::parse(&code).unwrap())
            .await
            .unwrap()
            .expect("the reward item is in DynamoDB");
        assert_eq!(reward.customer_id, *id);
        assert_eq!(reward.enrollment_id, enrollment.id);
        assert_eq!(
            reward.expires_at,
            send_at + Duration::days(14),
            "the example's 14-day reward"
        );
        assert_eq!(reward.uses_left, 1);
        let stockholm: shared::domain::zone::Zone = "Europe/Stockholm".parse().unwrap();
        let expires_on = format_date(stockholm.date(reward.expires_at), "en");

        assert!(
            email.body.contains(&code),
            "the code is in the email:\n{}",
            email.body
        );
        assert!(
            email.body.contains(&expires_on),
            "the expiry {expires_on} is in the email:\n{}",
            email.body
        );
        let survey = links_in(&email.body, "/v1/survey?");
        for reason in Reason::ALL {
            assert!(
                survey
                    .iter()
                    .any(|l| l.ends_with(&format!("&a={}", reason.as_str()))),
                "a one-click answer for {} in {survey:?}",
                reason.as_str()
            );
        }
        let unsubscribe = link_in(&email.body, "/v1/unsubscribe?");
        assert!(unsubscribe.contains("t="), "{unsubscribe}");

        // moto records neither custom headers nor message tags of Simple content: check them on
        // the SendEmail request the SES client sent to moto.
        let request = wire
            .send_requests()
            .into_iter()
            .find(|r| r["Destination"]["ToAddresses"][0] == to.as_str())
            .expect("the SendEmail request went out");
        let header = |name: &str| {
            request["Content"]["Simple"]["Headers"]
                .as_array()
                .and_then(|hs| hs.iter().find(|h| h["Name"] == name))
                .and_then(|h| h["Value"].as_str())
                .map(str::to_string)
        };
        let list_unsubscribe = header("List-Unsubscribe").expect("a List-Unsubscribe header");
        assert!(
            list_unsubscribe.starts_with(&format!("<{PUBLIC_BASE_URL}/v1/unsubscribe?t="))
                && list_unsubscribe.ends_with('>'),
            "{list_unsubscribe}"
        );
        assert_eq!(
            header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        let tags = request["EmailTags"].as_array().cloned().unwrap_or_default();
        for (name, value) in [
            ("campaign", CAMPAIGN),
            ("step", "1"),
            ("variant", enrollment.variant.as_str()),
        ] {
            assert!(
                tags.iter()
                    .any(|t| t["Name"] == name && t["Value"] == value),
                "tag {name}={value} in {tags:?}"
            );
        }
        assert!(
            request["Content"]["Simple"]["Body"]["Text"]["Data"]
                .as_str()
                .is_some_and(|t| t.contains(&code)),
            "the text part carries the code too"
        );

        let profile = table.store.get_profile(id).await.unwrap().unwrap();
        assert!(profile.is_mailable());
    }
    assert_eq!(
        wire.send_requests().len(),
        2,
        "the replay sent nothing to SES"
    );
    table.delete().await;
}

#[tokio::test]
async fn an_unverified_sender_is_refused_by_ses_and_the_step_is_handed_back_to_the_scheduler() {
    let stack = LocalStack::from_env().await;
    let (table, queue) = stack.steps_table("send-unverified").await;
    let domain = format!("{}.test", unique("unverified"));
    let (mailer, _wire) = stack.mailer();
    let ids = treated_ids("buyer", 1);
    let to = format!("{}@{domain}", ids[0]);
    let scheduler = scheduler_deps(&table, &queue);
    let messages = one_step_due(&table, &queue, &scheduler, &ids[0], &to).await;

    let deps = sender_deps(&table, mailer, &format!("shop@{domain}"));
    let out = sender::handle_batch(&deps, sqs_event(&messages), now()).await;
    assert!(
        out.batch_item_failures.is_empty(),
        "a pause spends no receive of the queue"
    );
    assert!(stack.emails_to(&to).is_empty());
    let e = table
        .store
        .get_enrollment(&ids[0], CAMPAIGN)
        .await
        .unwrap()
        .unwrap();
    assert!(e.sent.is_empty(), "nothing was sent: {e:?}");
    assert!(
        e.claim.as_ref().is_some_and(|c| c.lease_until <= now()),
        "the claim's lease is released for the retry, its reward code kept: {e:?}"
    );
    assert_eq!(
        e.due_at,
        Some(now() + sender::PAUSED_RETRY),
        "due again: {e:?}"
    );
    assert!(
        table
            .store
            .get_profile(&ids[0])
            .await
            .unwrap()
            .unwrap()
            .is_mailable(),
        "the customer is not blamed"
    );

    // Once the sender is verified, the scheduler publishes the step again and it goes out.
    stack.verify_sender(&domain).await;
    let later = now() + sender::PAUSED_RETRY;
    invoke_scheduler(&scheduler_deps(&table, &queue), &scheduled_event(later))
        .await
        .unwrap();
    let messages = queue.drain().await;
    assert_eq!(messages.len(), 1, "published again");
    let retry = sender::handle_batch(&deps, sqs_event(&messages), later).await;
    assert!(retry.batch_item_failures.is_empty());
    assert_eq!(stack.emails_to(&to).len(), 1);
    table.delete().await;
}
