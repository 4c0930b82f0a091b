//! The reliability suite: replays, concurrent senders, crashes, throttling, partial PutEvents
//! failures, unsubscribe races and overlapping scheduler runs. Each case prints one line of
//! figures; `WINBACK_WRITE_RELIABILITY=1` writes them all to `RELIABILITY.md`.
//!
//! Cases 1, 2, 6, 8 and 11 depend on the store's conditional writes, so they run against the
//! embedded store and against DynamoDB Local (the env of `infra/local/stack.sh`).

mod reliability_common;

use reliability_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_twice_and_two_senders_at_once_send_exactly_one_email_per_step() {
    assert_replayed_messages_and_two_senders_send_one_email_per_step(
        replayed_messages_and_two_senders_send_one_email_per_step(Backend::Embedded).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_twice_and_two_senders_at_once_send_exactly_one_email_per_step_on_dynamodb() {
    assert_replayed_messages_and_two_senders_send_one_email_per_step(
        replayed_messages_and_two_senders_send_one_email_per_step(Backend::Dynamo).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_at_any_sender_point_recovers_every_step_within_the_stated_duplicate_bound() {
    for f in sender_crashes_at_every_point_recover_every_step(Backend::Embedded).await {
        assert_sender_crashes_at_every_point_recover_every_step(&f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_at_any_sender_point_recovers_every_step_within_the_stated_duplicate_bound_on_dynamodb(
) {
    for f in sender_crashes_at_every_point_recover_every_step(Backend::Dynamo).await {
        assert_sender_crashes_at_every_point_recover_every_step(&f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ses_throttling_half_the_calls_sends_everything_once_and_reports_the_failed_items() {
    assert_ses_throttling_sends_everything_once(ses_throttling_sends_everything_once().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_throttling_and_lost_acks_are_retried_by_redelivery_and_leave_no_half_written_state()
{
    assert_store_throttling_and_lost_acks_leave_no_half_written_state(
        store_throttling_and_lost_acks_leave_no_half_written_state().await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_events_partial_failures_retry_only_the_failed_entries_and_lose_none() {
    assert_put_events_partial_failures_lose_nothing(
        put_events_partial_failures_lose_nothing().await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_email_is_sent_after_an_unsubscribe_was_acknowledged() {
    assert_no_email_follows_an_acknowledged_unsubscribe(
        no_email_follows_an_acknowledged_unsubscribe(Backend::Embedded).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_email_is_sent_after_an_unsubscribe_was_acknowledged_on_dynamodb() {
    assert_no_email_follows_an_acknowledged_unsubscribe(
        no_email_follows_an_acknowledged_unsubscribe(Backend::Dynamo).await,
    );
}

#[test]
fn thousands_of_bad_webhook_requests_get_a_clear_4xx_and_change_nothing() {
    assert_bad_webhook_requests_get_a_clear_4xx_and_change_nothing(
        bad_webhook_requests_get_a_clear_4xx_and_change_nothing(BAD_INPUT_CASES),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_and_resumed_scheduler_runs_enroll_everyone_exactly_once() {
    assert_overlapping_scheduler_runs_enroll_everyone_once(
        overlapping_scheduler_runs_enroll_everyone_once(Backend::Embedded).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_and_resumed_scheduler_runs_enroll_everyone_exactly_once_on_dynamodb() {
    assert_overlapping_scheduler_runs_enroll_everyone_once(
        overlapping_scheduler_runs_enroll_everyone_once(Backend::Dynamo).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_crash_right_after_a_claim_loses_no_bounce_and_counts_no_open_twice() {
    for f in a_webhook_crash_after_a_claim_loses_no_bounce().await {
        assert_a_webhook_crash_after_a_claim_loses_no_bounce(&f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ses_pause_hands_steps_back_without_spending_receives_and_sends_each_once_after() {
    assert_an_ses_pause_hands_steps_back_and_sends_each_once_after(
        an_ses_pause_hands_steps_back_and_sends_each_once_after().await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_customer_leaves_nothing_but_a_tombstone() {
    assert_an_erasure_leaves_only_a_tombstone(
        an_erasure_leaves_only_a_tombstone(Backend::Embedded).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_customer_leaves_nothing_but_a_tombstone_on_dynamodb() {
    assert_an_erasure_leaves_only_a_tombstone(
        an_erasure_leaves_only_a_tombstone(Backend::Dynamo).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn link_scanners_that_open_every_link_in_a_browser_answer_no_survey() {
    assert_link_scanners_that_run_scripts_answer_nothing(
        link_scanners_that_run_scripts_answer_nothing(Backend::Embedded).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn link_scanners_that_open_every_link_in_a_browser_answer_no_survey_on_dynamodb() {
    assert_link_scanners_that_run_scripts_answer_nothing(
        link_scanners_that_run_scripts_answer_nothing(Backend::Dynamo).await,
    );
}

#[test]
fn the_reliability_report_is_written_from_a_full_run_when_asked() {
    if std::env::var("WINBACK_WRITE_RELIABILITY").as_deref() != Ok("1") {
        eprintln!("set WINBACK_WRITE_RELIABILITY=1 to write RELIABILITY.md from this run");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut figures = Vec::new();
    rt.block_on(async {
        for backend in [Backend::Embedded, Backend::Dynamo] {
            let f = replayed_messages_and_two_senders_send_one_email_per_step(backend).await;
            assert_replayed_messages_and_two_senders_send_one_email_per_step(f.clone());
            figures.push(f);
        }
        for backend in [Backend::Embedded, Backend::Dynamo] {
            for f in sender_crashes_at_every_point_recover_every_step(backend).await {
                assert_sender_crashes_at_every_point_recover_every_step(&f);
                figures.push(f);
            }
        }
        let f = ses_throttling_sends_everything_once().await;
        assert_ses_throttling_sends_everything_once(f.clone());
        figures.push(f);
        let f = store_throttling_and_lost_acks_leave_no_half_written_state().await;
        assert_store_throttling_and_lost_acks_leave_no_half_written_state(f.clone());
        figures.push(f);
        let f = put_events_partial_failures_lose_nothing().await;
        assert_put_events_partial_failures_lose_nothing(f.clone());
        figures.push(f);
        for backend in [Backend::Embedded, Backend::Dynamo] {
            let f = no_email_follows_an_acknowledged_unsubscribe(backend).await;
            assert_no_email_follows_an_acknowledged_unsubscribe(f.clone());
            figures.push(f);
        }
    });
    let f = bad_webhook_requests_get_a_clear_4xx_and_change_nothing(BAD_INPUT_CASES);
    assert_bad_webhook_requests_get_a_clear_4xx_and_change_nothing(f.clone());
    figures.push(f);
    rt.block_on(async {
        for backend in [Backend::Embedded, Backend::Dynamo] {
            let f = overlapping_scheduler_runs_enroll_everyone_once(backend).await;
            assert_overlapping_scheduler_runs_enroll_everyone_once(f.clone());
            figures.push(f);
        }
        for f in a_webhook_crash_after_a_claim_loses_no_bounce().await {
            assert_a_webhook_crash_after_a_claim_loses_no_bounce(&f);
            figures.push(f);
        }
        let f = an_ses_pause_hands_steps_back_and_sends_each_once_after().await;
        assert_an_ses_pause_hands_steps_back_and_sends_each_once_after(f.clone());
        figures.push(f);
        for backend in [Backend::Embedded, Backend::Dynamo] {
            let f = an_erasure_leaves_only_a_tombstone(backend).await;
            assert_an_erasure_leaves_only_a_tombstone(f.clone());
            figures.push(f);
        }
        for backend in [Backend::Embedded, Backend::Dynamo] {
            let f = link_scanners_that_run_scripts_answer_nothing(backend).await;
            assert_link_scanners_that_run_scripts_answer_nothing(f.clone());
            figures.push(f);
        }
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../RELIABILITY.md");
    std::fs::write(&path, report(&figures)).expect("RELIABILITY.md is writable");
    println!("wrote {}", path.display());
}
