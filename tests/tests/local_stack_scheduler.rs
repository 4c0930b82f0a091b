//! The scheduler against DynamoDB Local and moto: EventBridge's rule routes `WinbackStepDue` to an
//! SQS queue, and the test reads the queue to see exactly which events arrived.

use serde_json::json;
use shared::domain::sequence::Status;
use shared::ports::{EnrollmentStore, ProfileStore};
use winback_tests::*;

/// `customer_id:step` of every `WinbackStepDue` in the messages, sorted.
fn steps_due(messages: &[QueuedMessage]) -> Vec<String> {
    let mut v: Vec<String> = messages
        .iter()
        .map(|m| {
            let j = m.json();
            assert_eq!(j["source"], "winback", "{j}");
            assert_eq!(j["detail-type"], "WinbackStepDue", "{j}");
            format!(
                "{}:{}",
                j["detail"]["customer_id"].as_str().unwrap(),
                j["detail"]["step"]
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn lapsed_customers_get_exactly_one_step_due_event_through_eventbridge_to_sqs_and_a_second_run_publishes_nothing(
) {
    let stack = LocalStack::from_env().await;
    let (table, queue) = stack.steps_table("sched").await;
    let deps = scheduler_deps(&table, &queue);

    let lapsed = treated_ids("lapsed", 2);
    let active = treated_ids("active", 1);
    let profiles = vec![
        // Weekly buyers quiet for 60 days: lapsed. Quiet for 2 days: active.
        customer(&lapsed[0], "a@sched.test", 7, 120),
        customer(&lapsed[1], "b@sched.test", 7, 150),
        customer(&active[0], "c@sched.test", 7, 2),
    ];
    table.store.put_profiles(&profiles).await.unwrap();

    let summary = invoke_scheduler(&deps, &scheduled_event(now()))
        .await
        .unwrap();
    assert!(summary.complete);
    assert_eq!(summary.evaluated, 3);
    assert_eq!(summary.enrolled, 2);
    assert_eq!(summary.steps_published, 2);
    assert_eq!(summary.publish_failures, 0);

    let arrived = queue.drain().await;
    let mut expected = vec![format!("{}:1", lapsed[0]), format!("{}:1", lapsed[1])];
    expected.sort();
    assert_eq!(
        steps_due(&arrived),
        expected,
        "exactly the lapsed customers' first steps"
    );
    for m in &arrived {
        let due = sender::parse_body(&m.body).expect("the sender reads what arrived");
        let e = table
            .store
            .get_enrollment(&due.customer_id, CAMPAIGN)
            .await
            .unwrap()
            .expect("the enrollment is in DynamoDB");
        assert_eq!(due.enrollment_id, e.id);
        assert_eq!(e.status, Status::Active { next_step: 1 });
        assert_eq!(e.published_step, 1);
    }
    assert_eq!(
        table
            .store
            .get_enrollment(&active[0], CAMPAIGN)
            .await
            .unwrap(),
        None,
        "an active customer is not enrolled"
    );
    let active_profile = table.store.get_profile(&active[0]).await.unwrap().unwrap();
    assert!(
        active_profile.due_at.is_some_and(|d| d > now()),
        "an active customer is due again when they would lapse: {active_profile:?}"
    );

    let again = invoke_scheduler(
        &deps,
        &scheduled_event(now() + chrono::Duration::minutes(5)),
    )
    .await
    .unwrap();
    assert_eq!(again.enrolled, 0);
    assert_eq!(again.steps_published, 0);
    assert!(
        queue.drain().await.is_empty(),
        "a second run publishes nothing new"
    );
    table.delete().await;
}

#[tokio::test]
async fn a_scheduled_event_without_time_or_with_an_unknown_mode_is_refused_and_writes_nothing() {
    let stack = LocalStack::from_env().await;
    let (table, queue) = stack.steps_table("sched-bad").await;
    let deps = scheduler_deps(&table, &queue);
    let lapsed = treated_ids("lapsed", 1);
    table
        .store
        .put_profiles(&[customer(&lapsed[0], "a@sched-bad.test", 7, 120)])
        .await
        .unwrap();
    let before = table.items().await;

    let mut no_time = scheduled_event(now());
    no_time.as_object_mut().unwrap().remove("time");
    let err = invoke_scheduler(&deps, &no_time).await.unwrap_err();
    assert!(
        matches!(err, scheduler::SchedulerError::MissingTime),
        "{err}"
    );
    assert!(err.to_string().contains("`time`"), "{err}");

    let mut unknown = scheduled_event(now());
    unknown["mode"] = json!("everything");
    let err = invoke_scheduler(&deps, &unknown).await.unwrap_err();
    assert!(
        matches!(err, scheduler::SchedulerError::UnknownMode(ref m) if m == "everything"),
        "{err}"
    );
    assert!(
        err.to_string().contains("rebuild"),
        "the error says what to use: {err}"
    );

    let mut bad_time = scheduled_event(now());
    bad_time["time"] = json!("yesterday");
    assert!(matches!(
        invoke_scheduler(&deps, &bad_time).await.unwrap_err(),
        scheduler::SchedulerError::BadTime(_)
    ));

    let after = table.items().await;
    assert_eq!(
        after.len(),
        before.len(),
        "the table's item count is unchanged"
    );
    assert_eq!(after, before, "no item changed");
    assert!(queue.drain().await.is_empty(), "nothing was published");

    // The same customer is enrolled by a well-formed event: the refusals were about the input.
    let ok = invoke_scheduler(&deps, &scheduled_event(now()))
        .await
        .unwrap();
    assert_eq!(ok.enrolled, 1);
    assert_eq!(queue.drain().await.len(), 1);
    table.delete().await;
}

#[tokio::test]
async fn plan_on_the_table_decides_every_profile_page_by_page_and_hands_each_row_on_as_it_goes() {
    use winback_cli::plan::{self, Decision};
    let stack = LocalStack::from_env().await;
    let table = stack.fresh_table("plan").await;
    let lapsed = treated_ids("plan-lapsed", 2);
    let active = treated_ids("plan-active", 1);
    table
        .store
        .put_profiles(&[
            customer(&lapsed[0], "a@plan.test", 7, 120),
            customer(&lapsed[1], "b@plan.test", 7, 150),
            customer(&active[0], "c@plan.test", 7, 2),
        ])
        .await
        .unwrap();
    let config = shared::campaign::testing::example_campaign();
    // Room for one row at a time: the scan can only finish if each row is taken as it comes.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let taker = tokio::spawn(async move {
        let mut rows = Vec::new();
        while let Some(row) = rx.recv().await {
            rows.push(row);
        }
        rows
    });
    plan::plan_store(table.store.as_ref(), &config, now(), &tx)
        .await
        .unwrap();
    drop(tx);
    let mut rows = taker.await.unwrap();
    rows.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    let decided: Vec<(String, Decision)> = rows
        .iter()
        .map(|r| (r.customer_id.clone(), r.decision))
        .collect();
    let mut want = vec![
        (lapsed[0].clone(), Decision::Enroll),
        (lapsed[1].clone(), Decision::Enroll),
        (active[0].clone(), Decision::Wait),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(decided, want);
}
