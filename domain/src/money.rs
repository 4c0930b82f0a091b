//! Money as integer minor units (cents), parsed from and written as decimal strings.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in minor units (two decimals). Serialized as `"12.50"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

/// A decimal string that is not an amount.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not an amount: write digits with at most two decimals, like \"12.50\"")]
pub struct MoneyError(pub String);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
    /// The largest amount taken, in major units: 10¹³ (anything larger is no real order, and
    /// its minor units would come near `i64`'s limit in sums).
    pub const MAX_MAJOR: i64 = 10_000_000_000_000;

    /// `major` whole units (a JSON integer amount), or `None` above [`Money::MAX_MAJOR`] in
    /// either direction.
    pub fn from_major(major: i64) -> Option<Money> {
        if major.unsigned_abs() > Money::MAX_MAJOR.unsigned_abs() {
            return None;
        }
        major.checked_mul(100).map(Money)
    }

    /// `percent_hundredths` (hundredths of a percent: 1000 = 10 %) of the amount, rounded
    /// toward zero, computed in `i128` so no product overflows.
    pub fn percent(self, percent_hundredths: i64) -> Money {
        let v = i128::from(self.0) * i128::from(percent_hundredths) / 10_000;
        Money(i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX }))
    }

    /// Parses `"12"`, `"12.5"`, `"12.50"`, `"-3.20"` (at most 13 digits before the point, so
    /// below [`Money::MAX_MAJOR`]).
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let err = || MoneyError(text.to_string());
        let t = text.trim();
        let (neg, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        if whole.is_empty()
            || whole.len() > 13
            || frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let w: i64 = whole.parse().map_err(|_| err())?;
        let f: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| err())? * 10,
            _ => frac.parse().map_err(|_| err())?,
        };
        let minor = w * 100 + f;
        Ok(Money(if neg { -minor } else { minor }))
    }

    pub fn minor(self) -> i64 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0 + o.0)
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        self.0 += o.0;
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(i64),
            F(f64),
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("an amount is a decimal string like \"12.50\" or a number")
        })?;
        match raw {
            Raw::S(s) => Money::parse(&s).map_err(serde::de::Error::custom),
            Raw::I(i) => Money::from_major(i).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{i} is larger than any order: amounts above 10^13 are refused"
                ))
            }),
            Raw::F(x) => Money::parse(&format!("{x:.2}")).map_err(serde::de::Error::custom),
        }
    }
}

/// An ISO 4217 currency code: three capital letters (`EUR`). Parsed once at the edge, so every
/// code inside the product is one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

/// A currency code that is not three capital letters.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an ISO 4217 currency code: write three capital letters like EUR")]
pub struct BadCurrency(pub String);

impl Currency {
    /// Reads a code as written: exactly three capital letters.
    pub fn parse(code: &str) -> Result<Currency, BadCurrency> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(code.to_string()))
        } else {
            Err(BadCurrency(code.to_string()))
        }
    }
}

parsed_text!(Currency, BadCurrency);

/// What one unit of each other currency is worth in the campaign's currency (`[exchange_rates]`
/// in the campaign file: `SEK = 0.087` for one SEK = 0.087 EUR). A currency without a rate is
/// never converted, and never added to or compared with the campaign currency.
pub type ExchangeRates = std::collections::BTreeMap<String, f64>;

/// Currencies without a minor unit (ISO 4217 exponent 0): their amounts are whole units.
pub const ZERO_DECIMAL: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Whether `currency` has no minor unit.
pub fn zero_decimal(currency: &str) -> bool {
    ZERO_DECIMAL
        .iter()
        .any(|c| c.eq_ignore_ascii_case(currency))
}

/// The campaign's currency with the rates that bring other currencies into it.
#[derive(Debug, Clone, Copy)]
pub struct Valuation<'a> {
    pub currency: &'a str,
    pub rates: &'a ExchangeRates,
}

impl Valuation<'_> {
    /// `amount` in `from`, in the campaign currency: itself when `from` is the campaign's, else
    /// at the configured rate (rounded to the minor unit); `None` without a rate.
    pub fn convert(&self, amount: Money, from: &str) -> Option<Money> {
        if from.eq_ignore_ascii_case(self.currency) {
            return Some(amount);
        }
        let rate = self
            .rates
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(from))
            .map(|(_, r)| *r)?;
        Some(Money((amount.0 as f64 * rate).round() as i64))
    }

    /// `amount` in the campaign currency, in `to`: at the configured rate, rounded to `to`'s
    /// smallest unit (whole units for a currency without decimals, such as JPY); `None` without
    /// a rate.
    pub fn convert_to(&self, amount: Money, to: &str) -> Option<Money> {
        if to.eq_ignore_ascii_case(self.currency) {
            return Some(amount);
        }
        let rate = self
            .rates
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(to))
            .map(|(_, r)| *r)
            .filter(|r| *r > 0.0)?;
        let cents = amount.0 as f64 / rate;
        let unit = if zero_decimal(to) { 100.0 } else { 1.0 };
        Some(Money(((cents / unit).round() * unit) as i64))
    }

    /// The sum of `amounts` (by currency) in the campaign currency, or `None` when one of them
    /// has no rate: then it cannot be compared with anything in the campaign currency.
    pub fn total<'c>(&self, amounts: impl IntoIterator<Item = (&'c str, Money)>) -> Option<Money> {
        amounts
            .into_iter()
            .try_fold(Money::ZERO, |sum, (c, m)| Some(sum + self.convert(m, c)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_currency_is_three_capital_letters_and_a_bad_one_says_how_to_write_it() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        for bad in ["eur", "EURO", "E1R", "", " EUR"] {
            let e = Currency::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("three capital letters"),
                "{bad}: {e}"
            );
        }
        let c: Currency = serde_json::from_str("\"SEK\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"SEK\"");
        assert!(serde_json::from_str::<Currency>("\"sek\"").is_err());
    }

    #[test]
    fn integer_amounts_above_ten_to_the_thirteen_are_refused_not_wrapped() {
        // 184467440737095517 × 100 wraps to 84 minor units in release (and panics in debug).
        let err = serde_json::from_str::<Money>("184467440737095517").unwrap_err();
        assert!(err.to_string().contains("10^13"), "{err}");
        assert!(serde_json::from_str::<Money>("10000000000001").is_err());
        assert_eq!(
            serde_json::from_str::<Money>("10000000000000").unwrap(),
            Money(1_000_000_000_000_000)
        );
        assert_eq!(serde_json::from_str::<Money>("-12").unwrap(), Money(-1200));
        assert!(Money::parse("10000000000000.00").is_err(), "14 digits");
        // Percentages in i128: no overflow however large the amount.
        assert_eq!(Money(i64::MAX).percent(10_000), Money(i64::MAX));
        assert_eq!(
            Money(1_000_000_000_000_000).percent(1_500),
            Money(150_000_000_000_000)
        );
    }

    #[test]
    fn parses_and_prints_decimal_amounts() {
        assert_eq!(Money::parse("12.50").unwrap(), Money(1250));
        assert_eq!(Money::parse("12.5").unwrap(), Money(1250));
        assert_eq!(Money::parse("7").unwrap(), Money(700));
        assert_eq!(Money::parse("-3.05").unwrap().to_string(), "-3.05");
        assert!(Money::parse("1.234").is_err());
        assert!(Money::parse("abc").is_err());
        assert!(Money::parse("").is_err());
        assert!(Money::parse(".5").is_err());
    }

    #[test]
    fn converts_only_with_a_rate_and_never_sums_without_one() {
        let rates = ExchangeRates::from([("SEK".to_string(), 0.087)]);
        let v = Valuation {
            currency: "EUR",
            rates: &rates,
        };
        assert_eq!(v.convert(Money(1000), "eur"), Some(Money(1000)));
        assert_eq!(v.convert(Money(10000), "sek"), Some(Money(870)));
        assert_eq!(v.convert(Money(10000), "USD"), None);
        assert_eq!(
            v.total([("EUR", Money(500)), ("SEK", Money(10000))]),
            Some(Money(1370))
        );
        assert_eq!(v.total([("EUR", Money(500)), ("USD", Money(100))]), None);
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(minor in -1_000_000_000i64..1_000_000_000) {
            proptest::prop_assert_eq!(Money::parse(&Money(minor).to_string()).unwrap(), Money(minor));
        }
    }
}
