//! SNS adapter for [`Notifier`]: publishes to the follow-up topic (`FOLLOW_UP_TOPIC_ARN`), whose
//! email subscription reaches a person.

use async_trait::async_trait;

use crate::ports::{Notifier, NotifyError};

/// Publishes each notification to one topic.
#[derive(Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    pub fn from_conf(conf: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        SnsNotifier::new(aws_sdk_sns::Client::new(conf), topic_arn)
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, subject: &str, body: &str) -> Result<(), NotifyError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(body)
            .send()
            .await
            .map_err(|e| NotifyError::Backend(Box::new(e)))?;
        Ok(())
    }
}
