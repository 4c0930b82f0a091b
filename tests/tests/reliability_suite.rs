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
    assert_case_1(case_1(Backend::Embedded).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_twice_and_two_senders_at_once_send_exactly_one_email_per_step_on_dynamodb() {
    assert_case_1(case_1(Backend::Dynamo).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_at_any_sender_point_recovers_every_step_within_the_stated_duplicate_bound() {
    for f in case_2(Backend::Embedded).await {
        assert_case_2(&f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_at_any_sender_point_recovers_every_step_within_the_stated_duplicate_bound_on_dynamodb(
) {
    for f in case_2(Backend::Dynamo).await {
        assert_case_2(&f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ses_throttling_half_the_calls_sends_everything_once_and_reports_the_failed_items() {
    assert_case_3(case_3().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_throttling_and_lost_acks_are_retried_by_redelivery_and_leave_no_half_written_state()
{
    assert_case_4(case_4().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_events_partial_failures_retry_only_the_failed_entries_and_lose_none() {
    assert_case_5(case_5().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_email_is_sent_after_an_unsubscribe_was_acknowledged() {
    assert_case_6(case_6(Backend::Embedded).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_email_is_sent_after_an_unsubscribe_was_acknowledged_on_dynamodb() {
    assert_case_6(case_6(Backend::Dynamo).await);
}

#[test]
fn thousands_of_bad_webhook_requests_get_a_clear_4xx_and_change_nothing() {
    assert_case_7(case_7(BAD_INPUT_CASES));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_and_resumed_scheduler_runs_enroll_everyone_exactly_once() {
    assert_case_8(case_8(Backend::Embedded).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_and_resumed_scheduler_runs_enroll_everyone_exactly_once_on_dynamodb() {
    assert_case_8(case_8(Backend::Dynamo).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_crash_right_after_a_claim_loses_no_bounce_and_counts_no_open_twice() {
    for f in case_9().await {
        assert_case_9(&f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ses_pause_hands_steps_back_without_spending_receives_and_sends_each_once_after() {
    assert_case_10(case_10().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_customer_leaves_nothing_but_a_tombstone() {
    assert_case_11(case_11(Backend::Embedded).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_customer_leaves_nothing_but_a_tombstone_on_dynamodb() {
    assert_case_11(case_11(Backend::Dynamo).await);
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
            let f = case_1(backend).await;
            assert_case_1(f.clone());
            figures.push(f);
        }
        for backend in [Backend::Embedded, Backend::Dynamo] {
            for f in case_2(backend).await {
                assert_case_2(&f);
                figures.push(f);
            }
        }
        let f = case_3().await;
        assert_case_3(f.clone());
        figures.push(f);
        let f = case_4().await;
        assert_case_4(f.clone());
        figures.push(f);
        let f = case_5().await;
        assert_case_5(f.clone());
        figures.push(f);
        for backend in [Backend::Embedded, Backend::Dynamo] {
            let f = case_6(backend).await;
            assert_case_6(f.clone());
            figures.push(f);
        }
    });
    let f = case_7(BAD_INPUT_CASES);
    assert_case_7(f.clone());
    figures.push(f);
    rt.block_on(async {
        for backend in [Backend::Embedded, Backend::Dynamo] {
            let f = case_8(backend).await;
            assert_case_8(f.clone());
            figures.push(f);
        }
        for f in case_9().await {
            assert_case_9(&f);
            figures.push(f);
        }
        let f = case_10().await;
        assert_case_10(f.clone());
        figures.push(f);
        for backend in [Backend::Embedded, Backend::Dynamo] {
            let f = case_11(backend).await;
            assert_case_11(f.clone());
            figures.push(f);
        }
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../RELIABILITY.md");
    std::fs::write(&path, report(&figures)).expect("RELIABILITY.md is writable");
    println!("wrote {}", path.display());
}
