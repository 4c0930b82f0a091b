use super::*;
use crate::domain::sequence::{Claim, SentStep, Status};
use crate::domain::survey::Reason;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use chrono::TimeZone;

/// DynamoDB's item size: attribute names plus values (numbers count about one byte per two
/// digits plus one; counted here as their text, which is larger).
fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    AttributeValue::S(x) | AttributeValue::N(x) => x.len(),
                    other => panic!("unexpected attribute {other:?}"),
                }
        })
        .sum()
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 9, 30, 0).unwrap()
}

#[test]
fn a_fully_sent_enrollment_item_stays_under_one_kilobyte() {
    let customer = "5f0c2d9e-8b7a-4c3d-9e1f-2a3b4c5d6e7f";
    let campaign = "spring-winback-2026";
    let e = Enrollment {
        customer_id: customer.parse().unwrap(),
        campaign: campaign.into(),
        id: format!("{customer}#{campaign}#12"),
        version: 41,
        round: 12,
        group: Group::Treated,
        variant: "amount-off-large".into(),
        enrolled_at: at(1),
        status: Status::Active { next_step: 3 },
        due_at: Some(at(20)),
        published_step: 3,
        published_at: Some(at(15)),
        sent: (1..=3)
            .map(|step| SentStep {
                step,
                at: at(u32::from(step) * 5),
                message_id: Some(
                    "010001899d2fa5d0-6c3c8bb8-a57b-4c12-9c3b-a5d9f7b2e0b8-000000".into(),
                ),
            })
            .collect(),
        claim: Some(Claim {
            step: 3,
            token: "0123456789abcdef0123456789abcdef".into(),
            lease_until: at(21),
            reward_code: Some("WB-7K3M-Q9XD-2HFP".into()),
        }),
        reward_code: Some("WB-7K3M-Q9XD-2HFP".into()),
        survey_reason: Some(Reason::TooExpensive),
        nps: Some(6),
        revenue_minor: 1_234_567,
        orders: Vec::new(),
        resolved: None,
        flow: Default::default(),
        occasion: None,
        segment: None,
        treatment: Some(crate::domain::targeting::Treatment::EmailWithoutReward),
    };
    let item = enrollment_item(&e, 42).unwrap();
    let size = item_size(&item);
    assert!(size < 1024, "enrollment item is {size} bytes: {item:?}");

    let mut back: Enrollment = decode(&item).unwrap();
    assert_eq!(back.version, 42);
    back.version = e.version;
    assert_eq!(back, e);

    let mut unusual = e.clone();
    unusual.id = "imported-enrollment-7".into();
    let back: Enrollment = decode(&enrollment_item(&unusual, 1).unwrap()).unwrap();
    assert_eq!(back.id, "imported-enrollment-7");

    // A won enrollment remembers the orders its refunds will name.
    let mut won = e.clone();
    won.status = Status::WonBack { at: at(22) };
    won.orders = vec![crate::domain::sequence::CountedOrder {
        order_id: "5012345678901".into(),
        at: at(22),
        minor: 1_234_567,
        currency: "EUR".into(),
        refunded_minor: 500,
        refund_ids: Vec::new(),
    }];
    let mut back: Enrollment = decode(&enrollment_item(&won, 1).unwrap()).unwrap();
    back.version = won.version;
    assert_eq!(back, won);
}

#[test]
fn profiles_read_back_whole_with_the_stored_version() {
    let mut p = Profile::new("c#with#hashes".parse().unwrap());
    p.email = Some("someone@example.com".into());
    p.due_at = Some(at(3));
    p.tags.insert("reason:quality".into());
    let item = profile_item(&p, 7).unwrap();
    assert_eq!(
        item.get("due_shard"),
        Some(&s(format!("{:02}", due_shard(&p.customer_id))))
    );
    let back: Profile = decode(&item).unwrap();
    assert_eq!(back.version, 7);
    assert_eq!(Profile { version: 0, ..back }, p);
    p.due_at = None;
    let item = profile_item(&p, 8).unwrap();
    assert!(!item.contains_key("due_shard") && !item.contains_key("due_key"));
}

#[test]
fn due_keys_sort_by_time_and_include_everything_due_at_now() {
    let now = at(10);
    let upper = format!("{}#~", due_time(now));
    let exactly_now = due_key(now, 'P', "zzz", "");
    let enrollment_now = due_key(now, 'E', "~~~", "~~~");
    let later = due_key(now + chrono::Duration::milliseconds(1), 'E', "a", "b");
    let earlier = due_key(at(9), 'P', "~", "");
    assert!(exactly_now <= upper && enrollment_now <= upper && earlier <= upper);
    assert!(later > upper);
    let year_2100 = due_key(
        Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap(),
        'P',
        "a",
        "",
    );
    assert!(year_2100 > exactly_now);
    assert_eq!(due_time(now).len(), due_time(year_2100_time()).len());
}

fn year_2100_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2100, 12, 31, 23, 59, 59).unwrap()
}

#[test]
fn counter_sort_keys_read_back_with_hashes_in_the_variant() {
    let cohort = CohortKey {
        campaign: "c".into(),
        variant: "a#b".into(),
        group: Group::Holdout,
    };
    let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
    assert_eq!(
        parse_counters_sk(&counters_sk(&cohort, None)),
        Some(("a#b".into(), Group::Holdout, None))
    );
    assert_eq!(
        parse_counters_sk(&counters_sk(&cohort, Some(day))),
        Some(("a#b".into(), Group::Holdout, Some(day)))
    );
    assert_eq!(parse_counters_sk("TOTAL#x#nobody"), None);
    assert_eq!(parse_counters_sk("DAY#notaday#x#treated"), None);
}

fn service_error(code: &str, status: u16) -> SdkError<PutItemError, HttpResponse> {
    let err = PutItemError::generic(
        aws_sdk_dynamodb::error::ErrorMetadata::builder()
            .code(code)
            .message("from the test")
            .build(),
    );
    let raw = HttpResponse::new(status.try_into().unwrap(), "{}".into());
    SdkError::service_error(err, raw)
}

fn conflict_context() -> Option<OnConflict<'static>> {
    Some(OnConflict {
        entity: "profile",
        id: "c-1",
        expected: 3,
    })
}

#[test]
fn throttling_server_errors_and_timeouts_are_transient() {
    for code in [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ] {
        let e = classify(service_error(code, 400), "PutItem", "t", None);
        assert!(matches!(e, StoreError::Transient(_)), "{code}: {e:?}");
    }
    let e = classify(
        service_error("InternalServerError", 500),
        "PutItem",
        "t",
        None,
    );
    assert!(matches!(e, StoreError::Transient(_)), "{e:?}");
    let timeout: SdkError<PutItemError, HttpResponse> = SdkError::timeout_error("slow");
    let e = classify(timeout, "PutItem", "t", None);
    assert!(matches!(e, StoreError::Transient(_)), "{e:?}");
}

#[test]
fn a_failed_condition_is_a_conflict_and_other_errors_keep_their_cause() {
    let e = classify(
        service_error("ConditionalCheckFailedException", 400),
        "PutItem",
        "t",
        conflict_context(),
    );
    assert!(
        matches!(&e, StoreError::Conflict { entity: "profile", id, expected: 3 } if id == "c-1"),
        "{e:?}"
    );
    let e = classify(
        service_error("ValidationException", 400),
        "Query",
        "winback",
        conflict_context(),
    );
    let StoreError::Backend(source) = &e else {
        panic!("expected a backend error, got {e:?}");
    };
    let text = source.to_string();
    assert!(
        text.contains("Query") && text.contains("winback") && text.contains("ValidationException"),
        "{text}"
    );
    assert!(std::error::Error::source(source.as_ref()).is_some());
}

#[tokio::test]
async fn unprocessed_batch_items_are_resent_until_written() {
    let mut calls = Vec::new();
    let result = write_until_processed(
        (0..25).collect::<Vec<u32>>(),
        "t",
        Duration::from_millis(1),
        |batch| {
            calls.push(batch.len());
            // The service takes the first ten of each batch.
            let left = batch.into_iter().skip(10).collect::<Vec<_>>();
            async move { Ok(left) }
        },
    )
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(calls, vec![25, 15, 5]);
}

#[tokio::test]
async fn items_still_unprocessed_after_the_last_attempt_are_a_transient_error() {
    let mut calls = 0;
    let result = write_until_processed(
        vec![1, 2, 3],
        "winback",
        Duration::from_millis(1),
        |batch| {
            calls += 1;
            let left = batch.into_iter().skip(1).chain([9]).collect::<Vec<_>>();
            async move { Ok(left) }
        },
    )
    .await;
    assert_eq!(calls, BATCH_ATTEMPTS);
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::Transient(_)), "{err:?}");
    assert!(
        err.to_string().contains("3 of 3 items") && err.to_string().contains("winback"),
        "{err}"
    );
}

#[test]
fn cursors_round_trip_and_garbage_is_reported_as_corrupt() {
    let last = key("C#1".into(), "PROFILE".into());
    let text = encode_cursor(Some(&last)).unwrap().unwrap();
    assert_eq!(decode_cursor(&text).unwrap(), last);
    assert_eq!(encode_cursor(Some(&Item::new())).unwrap(), None);
    assert!(matches!(
        decode_cursor("not json"),
        Err(StoreError::Corrupt { .. })
    ));
}
