//! Values that come in from outside (the shop's activity JSON, the platforms' webhooks, the
//! orders CSV), parsed once where they come in: a [`CustomerId`] or a [`Locale`] inside the
//! product is one that passed these rules. Email addresses are
//! [`EmailAddress`](super::hygiene::EmailAddress), time zones [`Zone`](super::zone::Zone).

use serde::{Deserialize, Serialize};

/// The longest customer id, in characters.
pub const CUSTOMER_ID_MAX: usize = 200;

/// The longest locale tag, in characters.
pub const LOCALE_MAX: usize = 35;

/// The shop's id of a customer: 1 to [`CUSTOMER_ID_MAX`] characters, none of them a control
/// character, surrounding white space dropped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

/// Why text is not a customer id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerIdError {
    #[error("the customer id is empty")]
    Empty,
    #[error("the customer id is longer than {CUSTOMER_ID_MAX} characters")]
    TooLong,
    #[error("the customer id contains control characters")]
    Control,
}

impl CustomerId {
    pub fn parse(text: &str) -> Result<CustomerId, CustomerIdError> {
        let t = text.trim();
        if t.is_empty() {
            Err(CustomerIdError::Empty)
        } else if t.chars().count() > CUSTOMER_ID_MAX {
            Err(CustomerIdError::TooLong)
        } else if t.chars().any(char::is_control) {
            Err(CustomerIdError::Control)
        } else {
            Ok(CustomerId(t.to_string()))
        }
    }
}

parsed_text!(CustomerId, CustomerIdError);

/// A locale as the shop names it (`en`, `sv-SE`, `pt_BR`): 1 to [`LOCALE_MAX`] ASCII letters,
/// digits, `-` and `_`. Which language the product writes for it is
/// `campaign::locale::Lang::of`'s choice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locale(String);

/// Text that is not a locale tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the locale must be a language tag like sv-SE (letters, digits, - and _, at most {LOCALE_MAX})"
)]
pub struct BadLocale;

impl Locale {
    pub fn parse(text: &str) -> Result<Locale, BadLocale> {
        let t = text.trim();
        let fits = !t.is_empty()
            && t.chars().count() <= LOCALE_MAX
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if fits {
            Ok(Locale(t.to_string()))
        } else {
            Err(BadLocale)
        }
    }
}

parsed_text!(Locale, BadLocale);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_are_trimmed_printable_and_bounded() {
        assert_eq!(CustomerId::parse(" c-1 ").unwrap().as_str(), "c-1");
        assert_eq!(CustomerId::parse("  "), Err(CustomerIdError::Empty));
        assert_eq!(CustomerId::parse("a\u{7}b"), Err(CustomerIdError::Control));
        let long = "é".repeat(CUSTOMER_ID_MAX);
        assert!(CustomerId::parse(&long).is_ok());
        assert_eq!(
            CustomerId::parse(&format!("{long}x")),
            Err(CustomerIdError::TooLong)
        );
    }

    #[test]
    fn locales_are_language_tags() {
        for good in ["en", "sv-SE", "pt_BR", " de "] {
            assert!(Locale::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "sv SE", "sv;SE", "a\nb", &"x".repeat(LOCALE_MAX + 1)] {
            assert_eq!(Locale::parse(bad), Err(BadLocale), "{bad:?}");
        }
    }

    #[test]
    fn they_deserialize_through_their_rules() {
        let id: CustomerId = serde_json::from_str("\" c1 \"").unwrap();
        assert_eq!(id.as_str(), "c1");
        let e = serde_json::from_str::<CustomerId>("\"\"").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        assert!(serde_json::from_str::<Locale>("\"x y\"").is_err());
    }
}
