//! Dates, money and reward descriptions written the way each supported language writes them.
//!
//! Hand-written tables for English, Swedish, Danish, Polish and Portuguese; any other locale is
//! written in English. A locale is read by its language (`pt-BR` → `pt`, `sv_SE` → `sv`).

use chrono::{Datelike, NaiveDate};

use crate::domain::money::Money;
use crate::domain::reward::{RewardKind, RewardSpec};

/// The languages the product writes in: the tables below and the webhook's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Sv,
    Da,
    Pl,
    Pt,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Sv => "sv",
            Lang::Da => "da",
            Lang::Pl => "pl",
            Lang::Pt => "pt",
        }
    }

    /// The language of a locale (`sv-SE`, `pt_BR`, `PL`), if the product writes it.
    pub fn of(locale: &str) -> Option<Lang> {
        let language = locale
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match language.as_str() {
            "en" => Some(Lang::En),
            "sv" => Some(Lang::Sv),
            "da" => Some(Lang::Da),
            "pl" => Some(Lang::Pl),
            "pt" => Some(Lang::Pt),
            _ => None,
        }
    }

    /// The first of `locales` the product writes, else English.
    pub fn pick<'a>(locales: impl IntoIterator<Item = &'a str>) -> Lang {
        locales.into_iter().find_map(Lang::of).unwrap_or(Lang::En)
    }
}

/// The language of a locale; English for any the tables do not have.
fn lang(locale: &str) -> Lang {
    Lang::of(locale).unwrap_or(Lang::En)
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_SV: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];
const MONTHS_DA: [&str; 12] = [
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
];
/// Polish months in the genitive, as a day-month date needs them ("14 marca").
const MONTHS_PL: [&str; 12] = [
    "stycznia",
    "lutego",
    "marca",
    "kwietnia",
    "maja",
    "czerwca",
    "lipca",
    "sierpnia",
    "września",
    "października",
    "listopada",
    "grudnia",
];
const MONTHS_PT: [&str; 12] = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
];

/// A date as a reader of `locale` expects it: "14 March 2026", "14 mars 2026",
/// "14. marts 2026", "14 marca 2026", "14 de março de 2026".
pub fn format_date(date: NaiveDate, locale: &str) -> String {
    let d = date.day();
    let m = date.month0() as usize;
    let y = date.year();
    match lang(locale) {
        Lang::En => format!("{d} {} {y}", MONTHS_EN[m]),
        Lang::Sv => format!("{d} {} {y}", MONTHS_SV[m]),
        Lang::Da => format!("{d}. {} {y}", MONTHS_DA[m]),
        Lang::Pl => format!("{d} {} {y}", MONTHS_PL[m]),
        Lang::Pt => format!("{d} de {} de {y}", MONTHS_PT[m]),
    }
}

/// Separators and whether whole amounts keep their decimals.
struct NumberStyle {
    thousands: &'static str,
    decimal: char,
}

fn number_style(lang: Lang) -> NumberStyle {
    match lang {
        Lang::En => NumberStyle {
            thousands: ",",
            decimal: '.',
        },
        Lang::Sv | Lang::Pl => NumberStyle {
            thousands: "\u{a0}",
            decimal: ',',
        },
        Lang::Da | Lang::Pt => NumberStyle {
            thousands: ".",
            decimal: ',',
        },
    }
}

fn group_thousands(whole: u64, sep: &str) -> String {
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    let head = digits.len() % 3;
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % 3 == head {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

fn number(amount: Money, lang: Lang, keep_zero_decimals: bool) -> String {
    let style = number_style(lang);
    let sign = if amount.0 < 0 { "-" } else { "" };
    let abs = amount.0.unsigned_abs();
    let whole = group_thousands(abs / 100, style.thousands);
    let cents = abs % 100;
    if cents == 0 && !keep_zero_decimals {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}{}{cents:02}", style.decimal)
    }
}

/// Where the currency goes and what it is called.
enum Placement<'a> {
    Prefix(&'a str),
    PrefixSpaced(&'a str),
    Suffix(&'a str),
}

fn placement(currency: &str, lang: Lang) -> Placement<'_> {
    match (currency, lang) {
        ("EUR", Lang::En) => Placement::Prefix("€"),
        ("EUR", _) => Placement::Suffix("€"),
        ("USD", Lang::En) => Placement::Prefix("$"),
        ("USD", Lang::Pt) => Placement::PrefixSpaced("US$"),
        ("GBP", Lang::En) => Placement::Prefix("£"),
        ("GBP", _) => Placement::Suffix("£"),
        ("BRL", Lang::En) => Placement::Prefix("R$"),
        ("BRL", Lang::Pt) => Placement::PrefixSpaced("R$"),
        ("SEK", Lang::Sv) => Placement::Suffix("kr"),
        ("DKK", Lang::Da) => Placement::Suffix("kr."),
        ("PLN", Lang::Pl) => Placement::Suffix("zł"),
        (code, Lang::En) => Placement::PrefixSpaced(code),
        (code, _) => Placement::Suffix(code),
    }
}

fn with_currency(num: String, currency: &str, lang: Lang) -> String {
    match placement(currency, lang) {
        Placement::Prefix(sym) => format!("{sym}{num}"),
        Placement::PrefixSpaced(sym) => format!("{sym}\u{a0}{num}"),
        Placement::Suffix(sym) => format!("{num}\u{a0}{sym}"),
    }
}

/// Whether the locale writes whole prices with their decimals ("€10.00", "R$ 100,00") or
/// without ("100 kr", "100 zł").
fn keeps_zero_decimals(lang: Lang) -> bool {
    matches!(lang, Lang::En | Lang::Pt)
}

/// An amount in `currency` as a reader of `locale` writes a price: en "€10.00", sv "100 kr",
/// da "100 kr", pl "100 zł", pt "R$ 100,00" (BRL) or "10,00 €" (EUR). Unknown currencies are
/// written with their ISO code. Spaces inside an amount are non-breaking.
pub fn format_money(amount: Money, currency: &str, locale: &str) -> String {
    let l = lang(locale);
    with_currency(number(amount, l, keeps_zero_decimals(l)), currency, l)
}

/// Like [`format_money`], but whole amounts never show decimals ("€10", "R$ 100"): the style of
/// a headline offer.
pub fn format_money_short(amount: Money, currency: &str, locale: &str) -> String {
    let l = lang(locale);
    with_currency(number(amount, l, false), currency, l)
}

fn percent(value: Money, lang: Lang) -> String {
    let n = number(value, lang, false);
    match lang {
        Lang::Sv | Lang::Da => format!("{n}\u{a0}%"),
        Lang::En | Lang::Pl | Lang::Pt => format!("{n}%"),
    }
}

/// What a reward gives, in a short phrase for the customer: "€10 off your next order",
/// "10 € rabatt på din nästa beställning", "15% off your next order", "free shipping on your
/// next order", "a free personal consultation", "€5 off each of your next 5 orders".
pub fn describe_reward(spec: &RewardSpec, currency: &str, locale: &str) -> String {
    let l = lang(locale);
    let value = spec.value.unwrap_or_default();
    let money = format_money_short(value, currency, locale);
    let pct = percent(value, l);
    let orders = spec.orders.unwrap_or(1);
    let product = spec.product.as_deref().unwrap_or_default();
    match (l, spec.kind) {
        (Lang::En, RewardKind::AmountOff) => format!("{money} off your next order"),
        (Lang::En, RewardKind::PercentOff) => format!("{pct} off your next order"),
        (Lang::En, RewardKind::FreeShipping) => "free shipping on your next order".into(),
        (Lang::En, RewardKind::FreeProduct) => format!("a free {product} with your next order"),
        (Lang::En, RewardKind::Consultation) => "a free personal consultation".into(),
        (Lang::En, RewardKind::MultiOrder) => {
            format!("{money} off each of your next {orders} orders")
        }

        (Lang::Sv, RewardKind::AmountOff) => {
            format!("{money} rabatt på din nästa beställning")
        }
        (Lang::Sv, RewardKind::PercentOff) => format!("{pct} rabatt på din nästa beställning"),
        (Lang::Sv, RewardKind::FreeShipping) => "fri frakt på din nästa beställning".into(),
        (Lang::Sv, RewardKind::FreeProduct) => {
            format!("{product} på köpet med din nästa beställning")
        }
        (Lang::Sv, RewardKind::Consultation) => "en kostnadsfri personlig rådgivning".into(),
        (Lang::Sv, RewardKind::MultiOrder) => {
            format!("{money} rabatt på var och en av dina nästa {orders} beställningar")
        }

        (Lang::Da, RewardKind::AmountOff) => format!("{money} rabat på din næste ordre"),
        (Lang::Da, RewardKind::PercentOff) => format!("{pct} rabat på din næste ordre"),
        (Lang::Da, RewardKind::FreeShipping) => "gratis fragt på din næste ordre".into(),
        (Lang::Da, RewardKind::FreeProduct) => format!("{product} gratis med din næste ordre"),
        (Lang::Da, RewardKind::Consultation) => "en gratis personlig rådgivning".into(),
        (Lang::Da, RewardKind::MultiOrder) => {
            format!("{money} rabat på hver af dine næste {orders} ordrer")
        }

        (Lang::Pl, RewardKind::AmountOff) => format!("rabat {money} na następne zamówienie"),
        (Lang::Pl, RewardKind::PercentOff) => format!("rabat {pct} na następne zamówienie"),
        (Lang::Pl, RewardKind::FreeShipping) => "darmowa dostawa przy następnym zamówieniu".into(),
        (Lang::Pl, RewardKind::FreeProduct) => {
            format!("{product} gratis do następnego zamówienia")
        }
        (Lang::Pl, RewardKind::Consultation) => "bezpłatna indywidualna konsultacja".into(),
        (Lang::Pl, RewardKind::MultiOrder) => {
            format!("rabat {money} na każde z {orders} kolejnych zamówień")
        }

        (Lang::Pt, RewardKind::AmountOff) => {
            format!("{money} de desconto no seu próximo pedido")
        }
        (Lang::Pt, RewardKind::PercentOff) => {
            format!("{pct} de desconto no seu próximo pedido")
        }
        (Lang::Pt, RewardKind::FreeShipping) => "envio grátis no seu próximo pedido".into(),
        (Lang::Pt, RewardKind::FreeProduct) => {
            format!("{product} grátis no seu próximo pedido")
        }
        (Lang::Pt, RewardKind::Consultation) => "uma consultoria personalizada gratuita".into(),
        (Lang::Pt, RewardKind::MultiOrder) => {
            format!("{money} de desconto em cada um dos seus próximos {orders} pedidos")
        }
    }
}

/// Whole months from `from` to `to` (0 when `to` is earlier): the length of a customer
/// relationship. The years of it are `months / 12`.
pub fn months_between(from: NaiveDate, to: NaiveDate) -> u32 {
    if to <= from {
        return 0;
    }
    let mut months = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    if to.day() < from.day() {
        months -= 1;
    }
    u32::try_from(months).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: RewardKind, value: Option<&str>) -> RewardSpec {
        RewardSpec {
            amounts: Default::default(),
            kind,
            value: value.map(|v| Money::parse(v).unwrap()),
            product: None,
            orders: None,
            validity_days: 14,
        }
    }

    #[test]
    fn dates_are_written_in_each_language() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 14).unwrap();
        assert_eq!(format_date(d, "en"), "14 March 2026");
        assert_eq!(format_date(d, "sv-SE"), "14 mars 2026");
        assert_eq!(format_date(d, "da"), "14. marts 2026");
        assert_eq!(format_date(d, "pl"), "14 marca 2026");
        assert_eq!(format_date(d, "pt-BR"), "14 de março de 2026");
        assert_eq!(format_date(d, "fr"), "14 March 2026");
    }

    #[test]
    fn money_follows_the_locale_and_the_currency() {
        let nbsp = |s: &str| s.replace(' ', "\u{a0}");
        assert_eq!(format_money(Money(1000), "EUR", "en"), "€10.00");
        assert_eq!(format_money(Money(123_456), "USD", "en"), "$1,234.56");
        assert_eq!(format_money(Money(10000), "SEK", "sv"), nbsp("100 kr"));
        assert_eq!(format_money(Money(9950), "SEK", "sv"), nbsp("99,50 kr"));
        assert_eq!(format_money(Money(10000), "DKK", "da"), nbsp("100 kr."));
        assert_eq!(format_money(Money(10000), "PLN", "pl"), nbsp("100 zł"));
        assert_eq!(
            format_money(Money(10000), "BRL", "pt-BR"),
            nbsp("R$ 100,00")
        );
        assert_eq!(format_money(Money(1000), "EUR", "pt"), nbsp("10,00 €"));
        assert_eq!(format_money(Money(1000), "EUR", "sv"), nbsp("10 €"));
        assert_eq!(format_money(Money(1000), "GBP", "en"), "£10.00");
        assert_eq!(
            format_money(Money(25_000_000), "SEK", "sv"),
            nbsp("250 000 kr")
        );
        assert_eq!(format_money(Money(1000), "CHF", "en"), nbsp("CHF 10.00"));
        assert_eq!(format_money(Money(1000), "SEK", "en"), nbsp("SEK 10.00"));
    }

    #[test]
    fn rewards_are_described_per_kind_and_language() {
        let nbsp = |s: &str| s.replace(' ', "\u{a0}");
        let amount = spec(RewardKind::AmountOff, Some("10"));
        assert_eq!(
            describe_reward(&amount, "EUR", "en"),
            "€10 off your next order"
        );
        assert_eq!(
            describe_reward(&amount, "EUR", "sv"),
            "10\u{a0}€ rabatt på din nästa beställning"
        );
        assert_eq!(
            describe_reward(&spec(RewardKind::PercentOff, Some("15")), "EUR", "en"),
            "15% off your next order"
        );
        assert_eq!(
            describe_reward(&spec(RewardKind::FreeShipping, None), "EUR", "en"),
            "free shipping on your next order"
        );
        assert_eq!(
            describe_reward(&spec(RewardKind::Consultation, None), "EUR", "da"),
            "en gratis personlig rådgivning"
        );
        let mut multi = spec(RewardKind::MultiOrder, Some("5"));
        multi.orders = Some(5);
        assert_eq!(
            describe_reward(&multi, "EUR", "en"),
            "€5 off each of your next 5 orders"
        );
        assert!(describe_reward(&multi, "PLN", "pl").contains(&nbsp("5 zł")));
        let mut product = spec(RewardKind::FreeProduct, None);
        product.product = Some("tote bag".into());
        assert_eq!(
            describe_reward(&product, "EUR", "en"),
            "a free tote bag with your next order"
        );
    }

    #[test]
    fn relationship_length_counts_whole_months() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(months_between(d(2023, 3, 14), d(2026, 3, 14)), 36);
        assert_eq!(months_between(d(2023, 3, 14), d(2026, 3, 13)), 35);
        assert_eq!(months_between(d(2026, 3, 14), d(2023, 3, 14)), 0);
    }
}
