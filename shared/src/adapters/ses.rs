//! SES v2 adapter for [`Mailer`]: Simple content (HTML and text), custom headers, message tags
//! and an optional configuration set.

use async_trait::async_trait;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{
    Body, Content, Destination, EmailContent, Message, MessageHeader, MessageTag,
};

use crate::ports::{Email, MailError, Mailer};

/// Sends through SES v2 `SendEmail`.
#[derive(Clone)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, configuration_set: Option<String>) -> Self {
        SesMailer {
            client,
            configuration_set: configuration_set.filter(|s| !s.is_empty()),
        }
    }
}

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Other(Box::new(e)))
}

/// SES tag names allow only ASCII letters, digits, `_`, `-`, `.`, `@`.
fn tag_value(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

/// Sorts an SES error code into what the sender should do.
pub fn classify(code: &str, message: &str) -> MailError {
    match code {
        "TooManyRequestsException"
        | "LimitExceededException"
        | "Throttling"
        | "ThrottlingException" => MailError::Throttled(format!("{code}: {message}")),
        "AccountSuspendedException" | "SendingPausedException" => {
            MailError::Paused(format!("{code}: {message}"))
        }
        "MessageRejected" if message.contains("not verified") => {
            MailError::Paused(format!("{code}: {message}"))
        }
        "MessageRejected" => MailError::Rejected(format!("{code}: {message}")),
        _ => MailError::Other(format!("{code}: {message}").into()),
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let mut message = Message::builder().subject(content(&email.subject)?).body(
            Body::builder()
                .html(content(&email.html)?)
                .text(content(&email.text)?)
                .build(),
        );
        for (name, value) in &email.headers {
            message = message.headers(
                MessageHeader::builder()
                    .name(name)
                    .value(value)
                    .build()
                    .map_err(|e| MailError::Other(Box::new(e)))?,
            );
        }
        let mut req = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message.build()).build())
            .set_configuration_set_name(self.configuration_set.clone());
        // Values are encoded reversibly (the webhook reads them back with `ses_tags::read`).
        for (name, value) in &email.tags {
            for (name, value) in crate::ses_tags::tags(&tag_value(name), value) {
                req = req.email_tags(
                    MessageTag::builder()
                        .name(name)
                        .value(value)
                        .build()
                        .map_err(|e| MailError::Other(Box::new(e)))?,
                );
            }
        }
        match req.send().await {
            Ok(out) => Ok(out.message_id().unwrap_or_default().to_string()),
            Err(err) => {
                let code = err.code().unwrap_or_default().to_string();
                let message = err.message().unwrap_or_default().to_string();
                if code.is_empty() {
                    Err(MailError::Other(Box::new(err)))
                } else {
                    Err(classify(&code, &message))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ses_errors_map_to_what_the_sender_does() {
        assert!(matches!(
            classify("TooManyRequestsException", "x"),
            MailError::Throttled(_)
        ));
        assert!(matches!(
            classify("SendingPausedException", "x"),
            MailError::Paused(_)
        ));
        assert!(matches!(
            classify("AccountSuspendedException", "x"),
            MailError::Paused(_)
        ));
        assert!(matches!(
            classify("MessageRejected", "Address blacklisted"),
            MailError::Rejected(_)
        ));
        assert!(matches!(
            classify("MessageRejected", "Email address is not verified"),
            MailError::Paused(_)
        ));
        assert!(matches!(
            classify("InternalFailure", "x"),
            MailError::Other(_)
        ));
        assert_eq!(tag_value("c-1#example#1"), "c-1_example_1");
    }
}
