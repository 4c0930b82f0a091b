//! The functions' secrets on moto's Secrets Manager: the webhook's secret, the link keys' and
//! the pseudonym key's are separate, each function reads only its own, and a stack from before
//! the split (one secret named by SECRETS_ARN) still works.

use std::collections::HashMap;

use shared::settings::{load_link_keys_with, Keys};
use shared::signing::LinkKeys;
use winback_tests::*;

async fn secret(stack: &LocalStack, label: &str, value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(&stack.conf)
        .create_secret()
        .name(unique(label))
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateSecret on moto: {e:?}"))
        .arn()
        .unwrap()
        .to_string()
}

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Sync {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

#[tokio::test]
async fn the_webhook_and_link_secrets_are_read_apart_and_the_combined_one_still_works() {
    let stack = LocalStack::from_env().await;
    // An older template's webhook secret still holds a copy of the link key: it is not read.
    let webhook = secret(
        &stack,
        "webhook-keys",
        r#"{"webhook_keys": "new-hook, old-hook", "stripe_secret": "whsec_x", "link_key": "copied"}"#,
    )
    .await;
    let link = secret(&stack, "link-keys", "new-link,old-link, retired:older-link").await;
    let pseudonym = secret(&stack, "pseudonym-key", "the-pseudonym-key\n").await;
    let split = vars(&[
        ("WEBHOOK_SECRET_ARN", &webhook),
        ("LINK_SECRET_ARN", &link),
        ("PSEUDONYM_SECRET_ARN", &pseudonym),
    ]);
    let keys = Keys::load_with(&stack.conf, &split).await.unwrap();
    assert_eq!(
        keys.webhook,
        vec![b"new-hook".to_vec(), b"old-hook".to_vec()]
    );
    assert_eq!(keys.platforms.stripe, vec![b"whsec_x".to_vec()]);
    let rotated = LinkKeys::with_retired(
        [b"new-link".to_vec(), b"old-link".to_vec()],
        [b"older-link".to_vec()],
    );
    assert_eq!(keys.link, rotated);
    assert_eq!(
        keys.pseudonym,
        shared::pseudonym::Pseudonyms::new(b"the-pseudonym-key")
    );
    // Without the pseudonym key's secret the webhook does not start, and says what to set.
    let missing = vars(&[("WEBHOOK_SECRET_ARN", &webhook), ("LINK_SECRET_ARN", &link)]);
    let err = Keys::load_with(&stack.conf, &missing)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("PSEUDONYM_SECRET_ARN"), "{err}");
    // The sender reads the link keys' secret alone.
    let sender = vars(&[("LINK_SECRET_ARN", &link)]);
    assert_eq!(
        load_link_keys_with(&stack.conf, &sender).await.unwrap(),
        rotated
    );

    let combined = secret(
        &stack,
        "combined",
        r#"{"webhook_keys": "hook", "link_key": "link"}"#,
    )
    .await;
    let old = vars(&[
        ("SECRETS_ARN", &combined),
        ("PSEUDONYM_SECRET_ARN", &pseudonym),
    ]);
    let keys = Keys::load_with(&stack.conf, &old).await.unwrap();
    assert_eq!(keys.webhook, vec![b"hook".to_vec()]);
    assert_eq!(keys.link, LinkKeys::one(b"link"));

    let empty = secret(&stack, "empty-link", " , ").await;
    let err = load_link_keys_with(&stack.conf, &vars(&[("LINK_SECRET_ARN", &empty)]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&empty), "{err}");
}
