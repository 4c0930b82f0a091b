//! Address hygiene before the first send: which addresses are real, deliverable addresses of a
//! person, and which are kept out and why. One parser for everything that takes an address in
//! (the orders CSV, the webhook's contract, the platforms' webhooks): [`EmailAddress::parse`].

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Longest address SES (and RFC 5321's path limit) accepts.
pub const MAX_LEN: usize = 254;

/// Local parts that name a role or a machine, not a person: mail to them reaches a team, a
/// ticket queue or nobody, and complaints from them count against the sender.
pub const ROLE_LOCAL_PARTS: &[&str] = &[
    "abuse",
    "accounts",
    "admin",
    "administrator",
    "billing",
    "careers",
    "contact",
    "do-not-reply",
    "donotreply",
    "enquiries",
    "hello",
    "help",
    "helpdesk",
    "hostmaster",
    "info",
    "inquiries",
    "jobs",
    "legal",
    "mailer-daemon",
    "marketing",
    "newsletter",
    "no-reply",
    "noreply",
    "office",
    "orders",
    "postmaster",
    "press",
    "privacy",
    "root",
    "sales",
    "security",
    "support",
    "team",
    "webmaster",
];

/// Known disposable (throwaway) domains, shipped with winback.
const DISPOSABLE: &str = include_str!("disposable_domains.txt");

fn disposable_domains() -> &'static BTreeSet<&'static str> {
    static SET: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        DISPOSABLE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Why text is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty")]
    Empty,
    #[error("the address is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("'{shown}' is not an email address ({cause}): write it as name@shop.example")]
    Invalid { shown: String, cause: String },
}

/// An email address that parsed: one `local@domain` with a dotted domain name (no display name,
/// no IP literal), the domain in lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses with the `email_address` crate (RFC 5322 addr-spec), requiring a top-level domain
    /// (`a@b` is refused: no mail is delivered there) and refusing display names and IP literals.
    pub fn parse(text: &str) -> Result<EmailAddress, AddressError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(AddressError::Empty);
        }
        if t.len() > MAX_LEN {
            return Err(AddressError::TooLong);
        }
        if t.chars().any(char::is_control) {
            return Err(AddressError::Invalid {
                shown: shape(t),
                cause: "it contains control characters".into(),
            });
        }
        let options = email_address::Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        let parsed = email_address::EmailAddress::parse_with_options(t, options).map_err(|e| {
            AddressError::Invalid {
                // The shape only, never the address itself: messages can reach logs.
                shown: shape(t),
                cause: e.to_string(),
            }
        })?;
        Ok(EmailAddress(format!(
            "{}@{}",
            parsed.local_part(),
            parsed.domain().to_ascii_lowercase()
        )))
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

parsed_text!(EmailAddress, AddressError);

/// `text` with letters and digits masked (`ann@shop.se` → `aaa@aaaa.aa`): enough to see what is
/// wrong with it, not whose it is.
/// The shape of text that may be an address, for messages that can reach logs: letters and
/// digits shown as `a`, at most 60 characters.
pub fn shape(text: &str) -> String {
    text.chars()
        .take(60)
        .map(|c| if c.is_alphanumeric() { 'a' } else { c })
        .collect()
}

/// Which addresses are kept out before the first send. In the campaign file under
/// `[eligibility.hygiene]`; every field may be left out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HygienePolicy {
    /// Keep out role addresses (`info@`, `sales@`, `noreply@`, … and `role_local_parts`).
    pub keep_out_role_addresses: bool,
    /// Keep out known disposable domains (the shipped list and `disposable_domains`).
    pub keep_out_disposable_domains: bool,
    /// More local parts to treat as role addresses.
    pub role_local_parts: Vec<String>,
    /// More domains to treat as disposable (their subdomains too).
    pub disposable_domains: Vec<String>,
    /// Addresses or domains never kept out as role or disposable (e.g. a shop whose customers
    /// really are small businesses writing from `info@`).
    pub allow: Vec<String>,
}

impl Default for HygienePolicy {
    fn default() -> Self {
        HygienePolicy {
            keep_out_role_addresses: true,
            keep_out_disposable_domains: true,
            role_local_parts: Vec::new(),
            disposable_domains: Vec::new(),
            allow: Vec::new(),
        }
    }
}

/// Why an address is kept out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeptOut {
    /// Not an address at all.
    InvalidAddress,
    /// A role or machine address.
    RoleAddress,
    /// A throwaway domain.
    DisposableDomain,
    /// On the SES account-level suppression list (an earlier bounce or complaint, from any
    /// sender of the account).
    AccountSuppressionList,
}

impl KeptOut {
    pub const ALL: [KeptOut; 4] = [
        KeptOut::InvalidAddress,
        KeptOut::RoleAddress,
        KeptOut::DisposableDomain,
        KeptOut::AccountSuppressionList,
    ];

    /// The name used in plans, summaries and metrics.
    pub fn rule(self) -> &'static str {
        match self {
            KeptOut::InvalidAddress => "invalid_address",
            KeptOut::RoleAddress => "role_address",
            KeptOut::DisposableDomain => "disposable_domain",
            KeptOut::AccountSuppressionList => "account_suppression_list",
        }
    }
}

fn matches_domain(domain: &str, listed: &str) -> bool {
    let listed = listed.trim().trim_start_matches('@');
    let Some(cut) = domain.len().checked_sub(listed.len()) else {
        return false;
    };
    // Compared in place, case-insensitively: this runs for every customer the scheduler checks.
    domain.is_char_boundary(cut)
        && domain[cut..].eq_ignore_ascii_case(listed)
        && (cut == 0 || domain[..cut].ends_with('.'))
}

/// The domain and each domain it is a subdomain of (`a.b.example` → `a.b.example`,
/// `b.example`, `example`).
fn domain_and_parents(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::once(domain).chain(
        domain
            .char_indices()
            .filter(|(_, c)| *c == '.')
            .map(move |(i, _)| &domain[i + 1..]),
    )
}

/// Whether an address is kept out by `policy`, before anything is sent: `Ok` with the parsed
/// address, or the reason.
pub fn assess(text: &str, policy: &HygienePolicy) -> Result<EmailAddress, KeptOut> {
    let address = EmailAddress::parse(text).map_err(|_| KeptOut::InvalidAddress)?;
    let allowed = policy.allow.iter().any(|a| {
        let a = a.trim();
        if a.contains('@') {
            a.eq_ignore_ascii_case(address.as_str())
        } else {
            matches_domain(address.domain(), a)
        }
    });
    if allowed {
        return Ok(address);
    }
    if policy.keep_out_role_addresses {
        // `info+shop@` is still `info@`.
        let local = address.local_part();
        let local = local.split('+').next().unwrap_or_default();
        if ROLE_LOCAL_PARTS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(local))
            || policy
                .role_local_parts
                .iter()
                .any(|r| r.trim().eq_ignore_ascii_case(local))
        {
            return Err(KeptOut::RoleAddress);
        }
    }
    if policy.keep_out_disposable_domains {
        let domain = address.domain();
        // The shipped list is lower case and the address's domain too: a set lookup per level.
        let shipped = domain_and_parents(domain).any(|d| disposable_domains().contains(d));
        if shipped
            || policy
                .disposable_domains
                .iter()
                .any(|d| matches_domain(domain, d))
        {
            return Err(KeptOut::DisposableDomain);
        }
    }
    Ok(address)
}

/// The check right before a send: [`assess`], then the account-level suppression list (which the
/// caller looked up for this address).
pub fn assess_send(
    text: &str,
    policy: &HygienePolicy,
    on_account_suppression_list: bool,
) -> Result<EmailAddress, KeptOut> {
    let address = assess(text, policy)?;
    if on_account_suppression_list {
        return Err(KeptOut::AccountSuppressionList);
    }
    Ok(address)
}

/// How many of `addresses` each rule keeps out (rules that keep none out are left out).
pub fn tally<'a>(
    addresses: impl IntoIterator<Item = &'a str>,
    policy: &HygienePolicy,
) -> std::collections::BTreeMap<KeptOut, usize> {
    let mut out = std::collections::BTreeMap::new();
    for a in addresses {
        if let Err(k) = assess(a, policy) {
            *out.entry(k).or_default() += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> HygienePolicy {
        HygienePolicy::default()
    }

    #[test]
    fn addresses_parse_with_a_top_level_domain_and_nothing_else() {
        for good in [
            "ann@shop.example",
            "Ann.Lee+news@Mail.Example.COM",
            "o'brien@example.ie",
        ] {
            assert!(EmailAddress::parse(good).is_ok(), "{good}");
        }
        assert_eq!(
            EmailAddress::parse(" Ann@Shop.SE ").unwrap().as_str(),
            "Ann@shop.se"
        );
        for bad in [
            "",
            "a@b",
            "nobody",
            "@example.com",
            "a@",
            "a b@example.com",
            "Ann <ann@example.com>",
            "a@[127.0.0.1]",
            "a@@example.com",
            "a@exa mple.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} parsed");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(AddressError::TooLong));
    }

    #[test]
    fn an_error_shows_the_shape_not_the_address() {
        let e = EmailAddress::parse("ann.lee@@shop.se")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("ann"), "{e}");
        assert!(e.contains("aaa.aaa@@aaaa.aa"), "{e}");
    }

    #[test]
    fn role_and_disposable_addresses_are_kept_out_by_default() {
        assert_eq!(assess("ann@shop.se", &p()).unwrap().as_str(), "ann@shop.se");
        assert_eq!(assess("info@shop.se", &p()), Err(KeptOut::RoleAddress));
        assert_eq!(assess("NoReply+x@shop.se", &p()), Err(KeptOut::RoleAddress));
        assert_eq!(
            assess("ann@mailinator.com", &p()),
            Err(KeptOut::DisposableDomain)
        );
        assert_eq!(
            assess("ann@eu.Mailinator.com", &p()),
            Err(KeptOut::DisposableDomain)
        );
        assert!(assess("ann@notmailinator.com", &p()).is_ok());
        assert!(assess("ann@mailinator.com.example", &p()).is_ok());
        assert_eq!(assess("a@b", &p()), Err(KeptOut::InvalidAddress));
    }

    #[test]
    fn the_campaign_file_can_turn_rules_off_add_to_them_and_allow_exceptions() {
        let off = HygienePolicy {
            keep_out_role_addresses: false,
            keep_out_disposable_domains: false,
            ..p()
        };
        assert!(assess("info@shop.se", &off).is_ok());
        assert!(assess("ann@yopmail.com", &off).is_ok());
        assert_eq!(assess("a@b", &off), Err(KeptOut::InvalidAddress));
        let more = HygienePolicy {
            role_local_parts: vec!["kundtjanst".into()],
            disposable_domains: vec!["Throwaway.TEST".into()],
            allow: vec!["info@partner.se".into(), "wholesale.example".into()],
            ..p()
        };
        assert_eq!(
            assess("Kundtjanst@shop.se", &more),
            Err(KeptOut::RoleAddress)
        );
        assert_eq!(
            assess("x@mx.throwaway.test", &more),
            Err(KeptOut::DisposableDomain)
        );
        assert_eq!(
            assess("x@throwaway.test", &more),
            Err(KeptOut::DisposableDomain)
        );
        assert!(assess("x@nothrowaway.test", &more).is_ok());
        assert!(assess("info@partner.se", &more).is_ok());
        assert!(assess("sales@wholesale.example", &more).is_ok());
        assert_eq!(assess("info@other.se", &more), Err(KeptOut::RoleAddress));
    }

    #[test]
    fn the_account_suppression_list_keeps_out_at_send_after_the_other_rules() {
        assert_eq!(
            assess_send("ann@shop.se", &p(), true),
            Err(KeptOut::AccountSuppressionList)
        );
        assert_eq!(
            assess_send("info@shop.se", &p(), true),
            Err(KeptOut::RoleAddress)
        );
        assert!(assess_send("ann@shop.se", &p(), false).is_ok());
    }

    #[test]
    fn a_tally_counts_each_reason() {
        let t = tally(
            [
                "ann@shop.se",
                "info@shop.se",
                "sales@shop.se",
                "x@yopmail.com",
                "a@b",
            ],
            &p(),
        );
        assert_eq!(t.get(&KeptOut::RoleAddress), Some(&2));
        assert_eq!(t.get(&KeptOut::DisposableDomain), Some(&1));
        assert_eq!(t.get(&KeptOut::InvalidAddress), Some(&1));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn the_shipped_list_is_lower_case_and_has_no_duplicates() {
        let lines: Vec<&str> = DISPOSABLE
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(lines.len(), disposable_domains().len());
        assert!(lines.iter().all(|l| *l == l.to_ascii_lowercase()));
    }
}
