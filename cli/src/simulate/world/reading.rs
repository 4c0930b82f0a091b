//! Reading an email as a recipient does: its links and what each does, its reward code, the
//! forms of the pages they open; and the SES events EventBridge delivers about it.

use super::*;

/// What a link in an email does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Reason(Reason),
    Nps(u8),
    FewerEmails,
    Unsubscribe,
}

/// The first value of an SES message tag.
pub fn tag<'a>(email: &'a Email, name: &str) -> Option<&'a str> {
    email
        .tags
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The URL of the `List-Unsubscribe` header (`<https://...>`).
pub fn list_unsubscribe(email: &Email) -> Option<String> {
    let (_, v) = email
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("List-Unsubscribe"))?;
    v.split(',')
        .map(|p| p.trim().trim_start_matches('<').trim_end_matches('>'))
        .find(|u| u.starts_with("http"))
        .map(str::to_string)
}

/// Every URL in a text.
pub fn urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        let tail = &rest[at..];
        if !(tail.starts_with("http://") || tail.starts_with("https://")) {
            rest = &tail[4..];
            continue;
        }
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']'))
            .unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches(['.', ',', ';']);
        out.push(url.replace("&amp;", "&"));
        rest = &tail[end..];
    }
    out
}

/// The links of an email that point at the webhook, with what each does.
pub fn links_in(text: &str, base: &str) -> Vec<(String, Answer)> {
    let base = base.trim_end_matches('/');
    urls(text)
        .into_iter()
        .filter(|u| u.starts_with(base))
        .filter_map(|u| {
            let parsed = url::Url::parse(&u).ok()?;
            let q = |name: &str| {
                parsed
                    .query_pairs()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            let answer = if parsed.path().ends_with("/v1/survey") {
                let a = q("a")?;
                match a.parse::<u8>() {
                    Ok(score) => Answer::Nps(score),
                    Err(_) => Answer::Reason(a.parse().ok()?),
                }
            } else if parsed.path().ends_with("/v1/unsubscribe")
                || parsed.path().ends_with("/v1/preferences")
            {
                if q("offer").as_deref() == Some("fewer")
                    || parsed.path().ends_with("/v1/preferences")
                {
                    Answer::FewerEmails
                } else {
                    Answer::Unsubscribe
                }
            } else {
                return None;
            };
            Some((u, answer))
        })
        .collect()
}

/// The first link to the shop (not to the webhook).
pub fn first_shop_link(text: &str, base: &str) -> Option<String> {
    let base = base.trim_end_matches('/');
    urls(text).into_iter().find(|u| !u.starts_with(base))
}

/// The reward code in an email's text (`WB-XXXX-XXXX-XXXX`).
pub fn find_code(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find("WB-") {
        let candidate: String = rest[at..].chars().take(17).collect();
        if let Ok(code) = RewardCode::parse(&candidate) {
            return Some(code.as_str().to_string());
        }
        rest = &rest[at + 3..];
    }
    None
}

/// Undoes the HTML escaping templates apply to attribute values.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `action` of the page's form that sends `choice`, as an absolute URL.
pub fn form_action(html: &str, choice: &str, page_url: &str) -> Option<String> {
    let wanted = format!("value=\"{choice}\"");
    let body = html
        .split("<form")
        .skip(1)
        .map(|f| f.split("</form>").next().unwrap_or(f))
        .find(|f| f.contains(&wanted))?;
    let tag = &body[..body.find('>')?];
    let a = tag.find("action=\"")? + "action=\"".len();
    let action = unescape(tag[a..].split('"').next()?);
    if action.starts_with("http") {
        return Some(action);
    }
    if action.is_empty() {
        return Some(page_url.to_string());
    }
    url::Url::parse(page_url)
        .ok()?
        .join(&action)
        .ok()
        .map(String::from)
}

/// An SES event as EventBridge delivers it.
pub fn ses_event(
    seq: u64,
    detail_type: &str,
    message_id: &str,
    email: &Email,
    link: Option<&str>,
    at: DateTime<Utc>,
) -> Value {
    let mut tags = serde_json::Map::new();
    for (k, v) in &email.tags {
        tags.insert(k.clone(), json!([v]));
    }
    let ts = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mail = json!({
        "timestamp": ts,
        "source": email.from,
        "sendingAccountId": "000000000000",
        "messageId": message_id,
        "destination": [email.to],
        "headersTruncated": false,
        "tags": tags,
        "commonHeaders": {"from": [email.from], "to": [email.to], "messageId": message_id, "subject": email.subject},
    });
    let (event_type, key, body) = match detail_type {
        "Email Opened" => (
            "Open",
            "open",
            json!({"timestamp": ts, "userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.1"}),
        ),
        "Email Clicked" => (
            "Click",
            "click",
            json!({"timestamp": ts, "link": link.unwrap_or_default(), "linkTags": {}, "userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.1"}),
        ),
        "Email Bounced" => (
            "Bounce",
            "bounce",
            json!({"bounceType": "Permanent", "bounceSubType": "General", "timestamp": ts, "feedbackId": format!("sim-{seq}"), "bouncedRecipients": [{"emailAddress": email.to, "action": "failed", "status": "5.1.1"}]}),
        ),
        "Email Complaint Received" => (
            "Complaint",
            "complaint",
            json!({"timestamp": ts, "feedbackId": format!("sim-{seq}"), "complaintFeedbackType": "abuse", "complainedRecipients": [{"emailAddress": email.to}]}),
        ),
        _ => (
            "Delivery",
            "delivery",
            json!({"timestamp": ts, "processingTimeMillis": 420, "recipients": [email.to], "smtpResponse": "250 2.6.0 Message received"}),
        ),
    };
    json!({
        "version": "0",
        "id": format!("sim-ses-{seq:012}"),
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": "000000000000",
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "eu-west-1",
        "resources": [],
        "detail": {"eventType": event_type, "mail": mail, key: body},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://hooks.example.com";

    #[test]
    fn links_in_an_email_are_read_with_what_they_do() {
        let text = format!(
            "Why did you go?\n- Too expensive: {BASE}/v1/survey?t=abc.def&a=too_expensive\n\
             Score 7: {BASE}/v1/survey?t=abc.def&a=7\nFewer: {BASE}/v1/unsubscribe?t=x.y&offer=fewer\n\
             Stop: {BASE}/v1/unsubscribe?t=x.y.\nShop: https://shop.example.com/?utm=1"
        );
        let links = links_in(&text, BASE);
        assert_eq!(links.len(), 4);
        assert_eq!(links[0].1, Answer::Reason(Reason::TooExpensive));
        assert_eq!(links[1].1, Answer::Nps(7));
        assert_eq!(links[2].1, Answer::FewerEmails);
        assert_eq!(
            links[3],
            (format!("{BASE}/v1/unsubscribe?t=x.y"), Answer::Unsubscribe)
        );
        assert_eq!(
            first_shop_link(&text, BASE).as_deref(),
            Some("https://shop.example.com/?utm=1")
        );
    }

    #[test]
    fn html_escaped_links_are_unescaped() {
        let html = format!("<a href=\"{BASE}/v1/survey?t=a.b&amp;a=forgot\">x</a>");
        assert_eq!(links_in(&html, BASE)[0].1, Answer::Reason(Reason::Forgot));
    }

    #[test]
    fn the_reward_code_is_found_in_the_text() {
        assert_eq!(
            find_code("Use WB-7K3M-Q9XD-2HFP before Friday").as_deref(),
            Some("WB-7K3M-Q9XD-2HFP")
        );
        assert_eq!(find_code("WB- nothing here"), None);
    }

    #[test]
    fn the_form_of_the_wanted_choice_is_found_and_its_action_unescaped() {
        let page = "<form method=\"post\" action=\"https:&#x2f;&#x2f;hooks.example.com&#x2f;v1&#x2f;preferences?t=a&amp;b=c\">\
                    <input type=\"hidden\" name=\"choice\" value=\"unsubscribe\"></form>\
                    <form method=\"post\" action=\"preferences?t=f\"><input type=\"hidden\" name=\"choice\" value=\"fewer\"></form>";
        let here = "https://hooks.example.com/v1/unsubscribe?t=a";
        assert_eq!(
            form_action(page, "unsubscribe", here).as_deref(),
            Some("https://hooks.example.com/v1/preferences?t=a&b=c")
        );
        assert_eq!(
            form_action(page, "fewer", here).as_deref(),
            Some("https://hooks.example.com/v1/preferences?t=f")
        );
        assert_eq!(form_action(page, "more", here), None);
        assert_eq!(unescape("a &amp; b &#39;c&#39; &bogus"), "a & b 'c' &bogus");
    }

    #[test]
    fn ses_events_look_like_what_eventbridge_delivers() {
        let email = Email {
            to: "a@customers.example".into(),
            from: "shop@example.com".into(),
            subject: "s".into(),
            html: String::new(),
            text: String::new(),
            headers: vec![(
                "List-Unsubscribe".into(),
                format!("<{BASE}/v1/unsubscribe?t=z>"),
            )],
            tags: vec![
                ("customer_id".into(), "c1".into()),
                ("step".into(), "2".into()),
            ],
        };
        let at = DateTime::parse_from_rfc3339("2026-01-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let v = ses_event(3, "Email Opened", "m-1", &email, None, at);
        assert_eq!(v["detail-type"], "Email Opened");
        assert_eq!(v["source"], "aws.ses");
        assert_eq!(v["detail"]["mail"]["messageId"], "m-1");
        assert_eq!(v["detail"]["mail"]["tags"]["customer_id"][0], "c1");
        assert_eq!(v["detail"]["eventType"], "Open");
        assert_eq!(
            list_unsubscribe(&email).as_deref(),
            Some(&*format!("{BASE}/v1/unsubscribe?t=z"))
        );
    }
}
