//! SES v2 adapter for [`Mailer`]: Simple content (HTML and text), custom headers, message tags
//! and an optional configuration set.

use async_trait::async_trait;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{
    Body, Content, Destination, EmailContent, Message, MessageHeader, MessageTag, RawMessage,
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

/// `message` with every email address in it replaced by `<address>`: SES error messages can name
/// the recipient (or the sender identity), and they end up in logs and the "Failed sends" query.
/// A word counts as an address when it holds `@` (or its URL encoding `%40`).
pub fn redact_addresses(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') || word.to_ascii_lowercase().contains("%40") {
            out.push_str("<address>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in message.chars() {
        if c.is_whitespace() || "<>()[]{}\"',;:".contains(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// What SES says when it refuses the recipient's address itself (lower case): a list entry, or
/// an address it cannot parse. Any other `MessageRejected` is about the message.
const ADDRESS_REASONS: &[&str] = &[
    "address blacklisted",
    "illegal address",
    "missing final '@domain'",
    "local address contains",
    "domain contains illegal character",
    "domain ends with dot",
    "domain starts with dot",
    "invalid email address",
    "recipient address rejected",
];

fn about_the_address(message: &str) -> bool {
    let m = message.to_lowercase();
    ADDRESS_REASONS.iter().any(|r| m.contains(r))
}

/// Sorts an SES error code into what the sender should do. The error keeps the code and the
/// message with addresses redacted ([`redact_addresses`]). `MessageRejected` suppresses the
/// customer only for a reason about the address; for anything else (content, size, headers) it
/// is [`MailError::Refused`]: a send failure, counted and alarmed, that every recipient of the
/// step would meet.
pub fn classify(code: &str, message: &str) -> MailError {
    let said = format!("{code}: {}", redact_addresses(message));
    match code {
        "TooManyRequestsException"
        | "LimitExceededException"
        | "Throttling"
        | "ThrottlingException" => MailError::Throttled(said),
        "AccountSuspendedException" | "SendingPausedException" => MailError::Paused(said),
        "MessageRejected" if message.contains("not verified") => MailError::Paused(said),
        "MessageRejected" if about_the_address(message) => MailError::Rejected(said),
        "MessageRejected" => MailError::Refused(said),
        "BadRequestException" if about_the_address(message) => MailError::Rejected(said),
        _ => MailError::Other(said.into()),
    }
}

#[async_trait]
impl Mailer for SesMailer {
    /// `GetSuppressedDestination`: found means on the list, `NotFoundException` means not.
    async fn is_suppressed(&self, address: &str) -> Result<bool, MailError> {
        match self
            .client
            .get_suppressed_destination()
            .email_address(address)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NotFoundException") => Ok(false),
            Err(e) => Err(classify(
                e.code().unwrap_or("Unknown"),
                e.message().unwrap_or(""),
            )),
        }
    }

    async fn send_raw(&self, from: &str, to: &[String], mime: &[u8]) -> Result<String, MailError> {
        let raw = RawMessage::builder()
            .data(aws_sdk_sesv2::primitives::Blob::new(mime))
            .build()
            .map_err(|e| MailError::Other(Box::new(e)))?;
        let req = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.to_vec()))
                    .build(),
            )
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone());
        answer(req.send().await)
    }

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
        answer(req.send().await)
    }
}

type SendResult = Result<
    aws_sdk_sesv2::operation::send_email::SendEmailOutput,
    aws_sdk_sesv2::error::SdkError<aws_sdk_sesv2::operation::send_email::SendEmailError>,
>;

/// The message id of a sent email, or the SES error sorted by [`classify`].
fn answer(sent: SendResult) -> Result<String, MailError> {
    match sent {
        Ok(out) => Ok(out.message_id().unwrap_or_default().to_string()),
        Err(err) => {
            let code = err.code().unwrap_or_default().to_string();
            let message = err.message().unwrap_or_default().to_string();
            if code.is_empty() {
                // No SES error code (a timeout, a connection failure): the SDK's own
                // description, redacted like an SES message.
                let said = aws_sdk_sesv2::error::DisplayErrorContext(&err).to_string();
                Err(MailError::Other(redact_addresses(&said).into()))
            } else {
                Err(classify(&code, &message))
            }
        }
    }
}

impl SesMailer {
    /// Whether SES may send from `address`: the address itself or its domain is a verified
    /// identity. `Ok(false)` when neither is, or verification is pending or failed.
    pub async fn may_send_from(&self, address: &str) -> Result<bool, MailError> {
        let domain = address.rsplit_once('@').map(|(_, d)| d);
        for identity in std::iter::once(address).chain(domain) {
            match self
                .client
                .get_email_identity()
                .email_identity(identity)
                .send()
                .await
            {
                Ok(out) if out.verified_for_sending_status() => return Ok(true),
                Ok(_) => {}
                Err(e) if e.code() == Some("NotFoundException") => {}
                Err(e) => {
                    return Err(classify(
                        e.code().unwrap_or("Unknown"),
                        e.message().unwrap_or(""),
                    ))
                }
            }
        }
        Ok(false)
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
        // Only a reason about the address suppresses it; a content rejection is a send failure.
        for address in [
            "Address blacklisted.",
            "Illegal address",
            "Missing final '@domain'",
            "Local address contains control or whitespace",
            "Domain contains illegal character",
            "Domain ends with dot",
        ] {
            assert!(
                matches!(classify("MessageRejected", address), MailError::Rejected(_)),
                "{address}"
            );
        }
        for content in [
            "Email contains a virus.",
            "Message length is more than 10485760 bytes long.",
            "Invalid headers in message",
            "Transaction failed",
            "",
        ] {
            assert!(
                matches!(classify("MessageRejected", content), MailError::Refused(_)),
                "{content}"
            );
        }
        assert!(matches!(
            classify("InternalFailure", "x"),
            MailError::Other(_)
        ));
        assert_eq!(tag_value("c-1#example#1"), "c-1_example_1");
    }

    #[test]
    fn addresses_are_redacted_from_ses_messages() {
        assert_eq!(
            redact_addresses("Email address is not verified: a.b+c@example.com, <d@e.org>."),
            "Email address is not verified: <address>, <<address>>."
        );
        assert_eq!(
            redact_addresses("Illegal address A%40B.com"),
            "Illegal address <address>"
        );
        let e = classify("InternalFailure", "could not reach x@y.z");
        assert_eq!(
            e.to_string(),
            "mail service error: InternalFailure: could not reach <address>"
        );
    }
}
