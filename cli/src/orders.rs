//! The orders CSV (`customer_id,email,ordered_at,amount[,currency,first_name,locale,time_zone,
//! category,product,marketing_consent,unsubscribed,bounced,order_id,quantity,price]`, header
//! required) and the profiles it builds. With `order_id`, a file may list an order's lines one
//! per row (the order-line form): the rows of one customer's order are one order, its `amount`
//! the order's total (the first row's), each row's `product`, `category`, `quantity` and `price`
//! a line of its basket.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use shared::campaign::config::LapsePolicy;
use shared::domain::customer::{EmailStatus, OrderLine, OrderRecord, Profile};
use shared::domain::due::{self, Watch};
use shared::domain::edge::{CustomerId, Locale};
use shared::domain::hygiene::EmailAddress;
use shared::domain::money::{Currency, Money};
use shared::domain::zone::Zone;

use crate::error::{CliError, CliResult};
use crate::time::parse_instant;
use shared::domain::celebration::Birthday;

/// Columns every file must have.
pub const REQUIRED: [&str; 4] = ["customer_id", "email", "ordered_at", "amount"];
/// Columns a file may have.
pub const OPTIONAL: [&str; 15] = [
    "currency",
    "first_name",
    "locale",
    "time_zone",
    "category",
    "product",
    "marketing_consent",
    "unsubscribed",
    "bounced",
    "birthday",
    "renewal_due_at",
    "signed_up_at",
    "order_id",
    "quantity",
    "price",
];

/// One good row of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    /// Line number in the file (the header is line 1).
    pub line: u64,
    pub customer_id: CustomerId,
    pub email: String,
    pub ordered_at: DateTime<Utc>,
    pub amount: Money,
    /// How much of `amount` was refunded by the time of the import (a platform import; a CSV's
    /// amounts are what was kept, so 0 there).
    pub refunded: Money,
    pub currency: Option<String>,
    pub first_name: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub category: Option<String>,
    pub product: Option<String>,
    /// `YYYY-MM-DD` or `--MM-DD`.
    pub birthday: Option<Birthday>,
    /// When the customer's subscription next renews (an upcoming renewal is an early signal).
    pub renewal_due_at: Option<DateTime<Utc>>,
    /// When the customer signed up with the shop (a date or an RFC 3339 time).
    pub signed_up_at: Option<DateTime<Utc>>,
    /// What the shop's old tools knew: no marketing consent or an unsubscribe
    /// (`Unsubscribed`), a bounce or complaint (`Suppressed`); `None` when the row says neither.
    pub email_status: Option<EmailStatus>,
    /// The shop's id of the order: rows of one customer with the same id are lines of one order
    /// (and a refund can name it).
    pub order_id: Option<String>,
    /// The line's quantity (1 when not given).
    pub quantity: Option<u32>,
    /// The line's unit price.
    pub price: Option<Money>,
}

/// How far a status keeps a customer from email: an import only ever moves a customer further.
pub fn strictness(s: EmailStatus) -> u8 {
    match s {
        EmailStatus::Subscribed => 0,
        EmailStatus::FewerEmails => 1,
        EmailStatus::Unsubscribed => 2,
        EmailStatus::Suppressed => 3,
    }
}

/// The stricter of two statuses.
pub fn stricter(a: EmailStatus, b: EmailStatus) -> EmailStatus {
    if strictness(b) > strictness(a) {
        b
    } else {
        a
    }
}

/// A yes/no column: `yes`, `y`, `true`, `1`, `x` or a date mean yes; `no`, `n`, `false`, `0`
/// mean no.
fn flag(name: &str, text: Option<String>) -> Result<Option<bool>, String> {
    let Some(t) = text else { return Ok(None) };
    match t.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "x" => Ok(Some(true)),
        "no" | "n" | "false" | "0" => Ok(Some(false)),
        _ if parse_instant(&t).is_some() => Ok(Some(true)),
        _ => Err(format!(
            "{name} '{t}' is not yes or no: write yes, no, true, false, 1, 0 or the date it happened"
        )),
    }
}

/// How the reason of a row skipped for its email starts.
const EMAIL_REFUSED: &str = "email: ";

/// How many customers' addresses the campaign's hygiene keeps out, by rule (rows skipped for an
/// email that is not an address are in [`OrdersFile::bad`], marked `invalid_email`).
pub fn kept_out(
    profiles: &[Profile],
    policy: &shared::domain::hygiene::HygienePolicy,
) -> BTreeMap<&'static str, usize> {
    shared::domain::hygiene::tally(profiles.iter().filter_map(|p| p.email.as_deref()), policy)
        .into_iter()
        .map(|(k, n)| (k.rule(), n))
        .collect()
}

/// `counts` as `role_address 2, disposable_domain 1`, or `none`.
pub fn describe_kept_out(counts: &BTreeMap<&'static str, usize>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(rule, n)| format!("{rule} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row that was skipped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
    /// The row was skipped because its email is not an address.
    pub invalid_email: bool,
}

/// What a file held.
#[derive(Debug, Default)]
pub struct OrdersFile {
    pub rows: Vec<OrderRow>,
    pub bad: Vec<BadRow>,
}

impl OrdersFile {
    /// Rows skipped because their email is not an address.
    pub fn invalid_emails(&self) -> usize {
        self.bad.iter().filter(|b| b.invalid_email).count()
    }
}

/// Reads an orders file. A file without the required header columns is an error; a bad row is
/// collected in [`OrdersFile::bad`] and the rest are read.
pub fn read_orders(path: &Path) -> CliResult<OrdersFile> {
    let file = std::fs::File::open(path).map_err(CliError::io("read", path))?;
    read_orders_from(file, path)
}

/// [`read_orders`] from any reader; `path` names it in messages.
pub fn read_orders_from(reader: impl Read, path: &Path) -> CliResult<OrdersFile> {
    let mut records = Records::open(reader, path)?;
    let mut out = OrdersFile::default();
    let mut record = csv::StringRecord::new();
    while let Some(read) = records.next(&mut record) {
        match read.and_then(|line| {
            parse_row(&record, &records.index, line).map_err(|reason| BadRow {
                line,
                invalid_email: reason.starts_with(EMAIL_REFUSED),
                reason,
            })
        }) {
            Ok(row) => out.rows.push(row),
            Err(bad) => out.bad.push(bad),
        }
    }
    Ok(out)
}

/// The records of an orders file after its header, with the column of each name.
struct Records<R> {
    rdr: csv::Reader<R>,
    index: BTreeMap<String, usize>,
}

impl<R: Read> Records<R> {
    /// Reads the header: a file without the required columns is an error.
    fn open(reader: R, path: &Path) -> CliResult<Records<R>> {
        let bad_csv = |reason: String| CliError::BadCsv {
            path: path.to_path_buf(),
            reason,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers = rdr
            .headers()
            .map_err(|e| bad_csv(format!("cannot read the header line: {e}")))?
            .clone();
        let index: BTreeMap<String, usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase(),
                    i,
                )
            })
            .collect();
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|c| !index.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            return Err(bad_csv(format!(
                "the header line lacks {}; the first line must name the columns, e.g. {}",
                missing.join(", "),
                REQUIRED.join(",")
            )));
        }
        Ok(Records { rdr, index })
    }

    /// The next record into `record`, with its line; a row that cannot be read at all is a
    /// [`BadRow`]; `None` at the end of the file.
    fn next(&mut self, record: &mut csv::StringRecord) -> Option<Result<u64, BadRow>> {
        let line = self.rdr.position().line();
        match self.rdr.read_record(record) {
            Ok(false) => None,
            Ok(true) => Some(Ok(record.position().map_or(line, |p| p.line()))),
            Err(e) => Some(Err(BadRow {
                line: e.position().map_or(line + 1, |p| p.line()),
                reason: format!("unreadable row: {e}"),
                invalid_email: false,
            })),
        }
    }
}

/// An orders file read for one customer at a time: every good row at or before a moment, kept as
/// the text of its fields (about its size in the file) and grouped by customer, and each
/// customer's profile built from their rows alone when it is asked for ([`Self::profiles`]), so
/// only one profile is held at once. Used where every customer of a large file is looked at once
/// in turn (`winback plan --orders`).
#[derive(Debug, Default)]
pub struct CustomerOrders {
    index: BTreeMap<String, usize>,
    /// The kept rows' fields, one after another.
    text: String,
    /// Where each field ends in its row's text.
    ends: Vec<u32>,
    /// The kept rows, each customer's together, customers in the order of their ids.
    rows: Vec<KeptRow>,
    /// Where each customer's rows end in `rows`.
    customers: Vec<usize>,
    /// The rows that were skipped, in the order of the file.
    pub bad: Vec<BadRow>,
}

#[derive(Debug, Clone, Copy)]
struct KeptRow {
    line: u64,
    /// Where the row's text starts in `text`.
    text: usize,
    /// Its first field in `ends`.
    first: usize,
    fields: u32,
    /// The customer's number in the order first read.
    customer: u32,
}

/// Reads an orders file as [`read_orders`] does (the same rows are good or skipped, for the same
/// reasons), keeping those ordered at or before `until` (when given) for [`CustomerOrders`].
pub fn read_customer_orders(
    path: &Path,
    until: Option<DateTime<Utc>>,
) -> CliResult<CustomerOrders> {
    let file = std::fs::File::open(path).map_err(CliError::io("read", path))?;
    read_customer_orders_from(file, path, until)
}

/// [`read_customer_orders`] from any reader; `path` names it in messages.
pub fn read_customer_orders_from(
    reader: impl Read,
    path: &Path,
    until: Option<DateTime<Utc>>,
) -> CliResult<CustomerOrders> {
    let mut records = Records::open(reader, path)?;
    let mut out = CustomerOrders::default();
    let mut numbers: std::collections::HashMap<CustomerId, u32> = Default::default();
    let mut record = csv::StringRecord::new();
    while let Some(read) = records.next(&mut record) {
        let line = match read {
            Ok(line) => line,
            Err(bad) => {
                out.bad.push(bad);
                continue;
            }
        };
        let row = match parse_row(&record, &records.index, line) {
            Ok(row) => row,
            Err(reason) => {
                out.bad.push(BadRow {
                    line,
                    invalid_email: reason.starts_with(EMAIL_REFUSED),
                    reason,
                });
                continue;
            }
        };
        if until.is_some_and(|u| row.ordered_at > u) {
            continue;
        }
        let next = u32::try_from(numbers.len()).map_err(|_| CliError::BadCsv {
            path: path.to_path_buf(),
            reason: "more than 4,294,967,295 customers".into(),
        })?;
        let customer = *numbers.entry(row.customer_id).or_insert(next);
        let kept = KeptRow {
            line,
            text: out.text.len(),
            first: out.ends.len(),
            fields: record.len() as u32,
            customer,
        };
        for field in record.iter() {
            out.text.push_str(field);
            let end = out.text.len() - kept.text;
            out.ends
                .push(u32::try_from(end).map_err(|_| CliError::BadCsv {
                    path: path.to_path_buf(),
                    reason: format!("line {line} is longer than 4 GB"),
                })?);
        }
        out.rows.push(kept);
    }
    // Customers in the order of their ids (as [`build_profiles`] returns them), each one's rows
    // together in the order read.
    let mut ids: Vec<(CustomerId, u32)> = numbers.into_iter().collect();
    ids.sort_unstable();
    let mut rank = vec![0u32; ids.len()];
    for (r, (_, n)) in ids.iter().enumerate() {
        rank[*n as usize] = r as u32;
    }
    drop(ids);
    out.rows.sort_by_key(|r| rank[r.customer as usize]);
    out.customers = (1..=out.rows.len())
        .filter(|&i| i == out.rows.len() || out.rows[i].customer != out.rows[i - 1].customer)
        .collect();
    out.index = records.index;
    Ok(out)
}

impl CustomerOrders {
    /// Each customer's profile in the order of their ids, built one at a time by
    /// [`build_profiles`] from that customer's rows: the same profiles as `build_profiles` over
    /// the whole file.
    pub fn profiles<'a>(
        &'a self,
        policy: &'a LapsePolicy,
        at: DateTime<Utc>,
    ) -> impl Iterator<Item = Profile> + 'a {
        let mut record = csv::StringRecord::new();
        let mut rows = Vec::new();
        let mut start = 0;
        self.customers.iter().filter_map(move |&end| {
            rows.clear();
            for kept in &self.rows[start..end] {
                record.clear();
                let text = &self.text[kept.text..];
                let mut from = 0;
                for &e in &self.ends[kept.first..kept.first + kept.fields as usize] {
                    record.push_field(&text[from..e as usize]);
                    from = e as usize;
                }
                // The row parsed when the file was read; it parses the same again.
                rows.extend(parse_row(&record, &self.index, kept.line).ok());
            }
            start = end;
            build_profiles(&rows, policy, at, None).pop()
        })
    }
}

fn parse_row(
    record: &csv::StringRecord,
    index: &BTreeMap<String, usize>,
    line: u64,
) -> Result<OrderRow, String> {
    let field = |name: &str| -> Option<String> {
        index
            .get(name)
            .and_then(|i| record.get(*i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let required = |name: &str| field(name).ok_or_else(|| format!("{name} is empty"));
    // The activity contract's types: one rule for each value wherever it comes in.
    let customer_id =
        CustomerId::parse(&required("customer_id")?).map_err(|e| format!("customer_id: {e}"))?;
    let email = EmailAddress::parse(&required("email")?)
        .map_err(|e| format!("{EMAIL_REFUSED}{e}"))?
        .as_str()
        .to_string();
    let at_text = required("ordered_at")?;
    let ordered_at = parse_instant(&at_text).ok_or_else(|| {
        format!("ordered_at '{at_text}' is not a date: write 2026-03-01 or 2026-03-01T09:00:00Z")
    })?;
    let amount_text = required("amount")?;
    let amount = Money::parse(&amount_text).map_err(|e| format!("amount: {e}"))?;
    if amount.0 < 0 {
        return Err(format!(
            "amount '{amount_text}' is negative: list refunds separately"
        ));
    }
    let time_zone = field("time_zone")
        .map(Zone::try_from)
        .transpose()
        .map_err(|e| format!("time_zone: {e}"))?
        .map(|z| z.name().to_string());
    let locale = field("locale")
        .map(Locale::try_from)
        .transpose()
        .map_err(|e| format!("locale: {e}"))?
        .map(Locale::into_string);
    // Any case in the file: `eur` is EUR.
    let currency = field("currency")
        .map(|c| Currency::parse(&c.to_ascii_uppercase()))
        .transpose()
        .map_err(|e| format!("currency: {e}"))?
        .map(String::from);
    let birthday = field("birthday")
        .map(|b| Birthday::parse(&b))
        .transpose()
        .map_err(|e| e.to_string())?;
    let renewal_due_at = field("renewal_due_at")
        .map(|t| {
            shared::domain::engagement::parse_renewal(&t).ok_or_else(|| {
                format!(
                    "renewal_due_at '{t}' is not a date: write 2026-03-01 or 2026-03-01T09:00:00Z"
                )
            })
        })
        .transpose()?;
    let signed_up_at = field("signed_up_at")
        .map(|t| {
            parse_instant(&t).ok_or_else(|| {
                format!(
                    "signed_up_at '{t}' is not a date: write 2024-05-01 or 2024-05-01T09:00:00Z"
                )
            })
        })
        .transpose()?;
    let quantity = field("quantity")
        .map(|q| {
            q.parse::<u32>()
                .ok()
                .filter(|q| (1..=100_000).contains(q))
                .ok_or_else(|| format!("quantity '{q}' is not a whole number from 1 to 100000"))
        })
        .transpose()?;
    let price = field("price")
        .map(|t| match Money::parse(&t) {
            Ok(m) if m.0 >= 0 => Ok(m),
            _ => Err(format!("price '{t}' is not an amount like 12.50")),
        })
        .transpose()?;
    let consent = flag("marketing_consent", field("marketing_consent"))?;
    let unsubscribed = flag("unsubscribed", field("unsubscribed"))?;
    let bounced = flag("bounced", field("bounced"))?;
    let email_status = if bounced == Some(true) {
        Some(EmailStatus::Suppressed)
    } else if unsubscribed == Some(true) || consent == Some(false) {
        Some(EmailStatus::Unsubscribed)
    } else {
        None
    };
    Ok(OrderRow {
        line,
        customer_id,
        email,
        ordered_at,
        amount,
        refunded: Money(0),
        currency,
        first_name: field("first_name"),
        locale,
        time_zone,
        category: field("category"),
        product: field("product"),
        birthday,
        renewal_due_at,
        signed_up_at,
        email_status,
        order_id: field("order_id"),
        quantity,
        price,
    })
}

/// Builds one profile per customer from their orders (those at or before `until`, when given),
/// with `due_at` set from the lapse assessment at `at`: `at` itself once lapsed, else the moment
/// the customer would lapse.
pub fn build_profiles(
    rows: &[OrderRow],
    policy: &LapsePolicy,
    at: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Vec<Profile> {
    let mut by_customer: BTreeMap<&str, Profile> = BTreeMap::new();
    let mut sorted: Vec<&OrderRow> = rows
        .iter()
        .filter(|r| until.is_none_or(|u| r.ordered_at <= u))
        .collect();
    sorted.sort_by_key(|r| (r.ordered_at, r.line));
    // The orders, in the order read: an order's rows are gathered before it is recorded.
    let mut open: Vec<(&str, OrderRecord)> = Vec::new();
    let mut seen: std::collections::HashMap<(&str, &str), usize> = Default::default();
    for r in sorted {
        let p = by_customer
            .entry(r.customer_id.as_str())
            .or_insert_with(|| Profile::new(r.customer_id.clone()));
        p.email = Some(r.email.clone());
        let keep = |slot: &mut Option<String>, v: &Option<String>| {
            if v.is_some() {
                slot.clone_from(v);
            }
        };
        keep(&mut p.first_name, &r.first_name);
        keep(&mut p.locale, &r.locale);
        keep(&mut p.time_zone, &r.time_zone);
        if r.birthday.is_some() {
            p.birthday = r.birthday;
        }
        if r.renewal_due_at.is_some() {
            p.renewal_due_at = r.renewal_due_at;
        }
        p.note_sign_up(r.signed_up_at);
        if let Some(status) = r.email_status {
            p.email_status = stricter(p.email_status, status);
        }
        let line = r.product.as_ref().map(|product| OrderLine {
            product: product.clone(),
            category: r.category.clone(),
            quantity: r.quantity.unwrap_or(1),
            price: r.price,
        });
        // A later row of an order already read adds a line to it.
        if let Some(id) = &r.order_id {
            match seen.entry((r.customer_id.as_str(), id.as_str())) {
                std::collections::hash_map::Entry::Occupied(at) => {
                    open[*at.get()].1.lines.extend(line);
                    continue;
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(open.len());
                }
            }
        }
        let order = OrderRecord {
            at: r.ordered_at,
            amount: r.amount,
            product: r.product.clone(),
            category: r.category.clone(),
            // Amounts in another currency than the customer's first are kept apart, never summed.
            currency: r.currency.clone(),
            order_id: r.order_id.clone(),
            refunded: r.refunded,
            refund_ids: Vec::new(),
            lines: line.into_iter().filter(|_| r.order_id.is_some()).collect(),
        };
        open.push((r.customer_id.as_str(), order));
    }
    for (customer, order) in open {
        if let Some(p) = by_customer.get_mut(customer) {
            p.record_order(order);
        }
    }
    by_customer
        .into_values()
        .map(|mut p| {
            p.due_at = due::next_due(&p, policy, Watch::LAPSE_ONLY, at);
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn read(text: &str) -> CliResult<OrdersFile> {
        read_orders_from(text.as_bytes(), Path::new("orders.csv"))
    }

    /// Reads `text`, checks that exactly one row was skipped and why, and returns the rows read.
    fn read_one_bad(text: &str, says: &str) -> Vec<OrderRow> {
        let f = read(text).unwrap();
        assert_eq!(f.bad.len(), 1);
        assert!(f.bad[0].reason.contains(says), "{}", f.bad[0].reason);
        f.rows
    }

    #[test]
    fn a_bad_row_is_reported_with_its_line_and_the_rest_are_read() {
        let f = read(
            "customer_id,email,ordered_at,amount,locale\n\
             c1,a@example.com,2026-01-01,12.50,sv\n\
             c1,a@example.com,yesterday,10,sv\n\
             c2,b@example.com,2026-01-03T10:00:00Z,7,pl\n",
        )
        .unwrap();
        assert_eq!(f.rows.len(), 2);
        assert_eq!(f.bad.len(), 1);
        assert_eq!(f.bad[0].line, 3);
        assert!(
            f.bad[0].reason.contains("ordered_at"),
            "{}",
            f.bad[0].reason
        );
        assert_eq!(f.rows[1].line, 4);
        assert_eq!(f.rows[0].amount, Money(1250));
    }

    #[test]
    fn a_file_without_the_required_header_is_refused() {
        let e = read("c1,a@example.com,2026-01-01,12.50\n").unwrap_err();
        assert!(e.to_string().contains("customer_id"), "{e}");
    }

    #[test]
    fn ids_and_locales_follow_the_activity_contracts_rules() {
        let f = read(
            "customer_id,email,ordered_at,amount,locale,time_zone\n\
             c1,a@example.com,2026-01-01,1,sv SE,\n\
             \"c\u{7}2\",a@example.com,2026-01-01,1,,\n\
             c3,a@example.com,2026-01-01,1,pt_BR, Europe/Lisbon \n",
        )
        .unwrap();
        let reasons: Vec<&str> = f.bad.iter().map(|b| b.reason.as_str()).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].starts_with("locale: "), "{}", reasons[0]);
        assert!(reasons[1].starts_with("customer_id: "), "{}", reasons[1]);
        assert_eq!(f.rows[0].locale.as_deref(), Some("pt_BR"));
        assert_eq!(f.rows[0].time_zone.as_deref(), Some("Europe/Lisbon"));
    }

    #[test]
    fn amounts_emails_zones_and_currencies_are_checked() {
        let f = read(
            "customer_id,email,ordered_at,amount,currency,time_zone\n\
             c1,nobody,2026-01-01,1,,\n\
             c1,a@example.com,2026-01-01,1.234,,\n\
             c1,a@example.com,2026-01-01,1,EURO,\n\
             c1,a@example.com,2026-01-01,1,,Mars/Base\n\
             ,a@example.com,2026-01-01,1,,\n",
        )
        .unwrap();
        assert!(f.rows.is_empty());
        let reasons: Vec<&str> = f.bad.iter().map(|b| b.reason.as_str()).collect();
        assert!(reasons[0].contains("email"));
        assert!(reasons[1].contains("amount"));
        assert!(reasons[2].contains("currency"));
        assert!(reasons[3].contains("time_zone"));
        assert!(reasons[4].contains("customer_id"));

        let rows = read_one_bad(
            "customer_id,email,ordered_at,amount,birthday\n\
             c1,a@example.com,2026-01-01,1,17/04/1990\n\
             c2,b@example.com,2026-01-01,1,--04-17\n\
             c3,c@example.com,2026-01-01,1,\n",
            "birthday \"17/04/1990\" is not a date",
        );
        assert_eq!(
            rows[0].birthday.map(|b| b.to_string()).as_deref(),
            Some("--04-17")
        );
        assert_eq!(rows[1].birthday, None);
    }

    #[test]
    fn a_signup_or_renewal_that_is_not_a_date_skips_the_row_naming_the_column() {
        type Column = fn(&OrderRow) -> Option<DateTime<Utc>>;
        let cases: [(&str, &str, &str, Column); 2] = [
            (
                "customer_id,email,ordered_at,amount,signed_up_at\n\
                 c1,a@example.com,2026-01-01,1,2024-05-01\n\
                 c2,b@example.com,2026-01-01,1,last spring\n",
                "signed_up_at 'last spring' is not a date",
                "2024-05-01T00:00:00+00:00",
                |r| r.signed_up_at,
            ),
            (
                "customer_id,email,ordered_at,amount,renewal_due_at\n\
                 c1,a@example.com,2026-01-01,1,next month\n\
                 c2,b@example.com,2026-01-01,1,2026-02-01\n",
                "renewal_due_at 'next month' is not a date",
                "2026-02-01T00:00:00+00:00",
                |r| r.renewal_due_at,
            ),
        ];
        for (text, says, read, column) in cases {
            let rows = read_one_bad(text, says);
            let got = column(&rows[0]).map(|t| t.to_rfc3339());
            assert_eq!(got.as_deref(), Some(read), "{says}");
        }
    }

    #[test]
    fn the_same_addresses_as_the_webhook_are_refused_and_counted_as_invalid() {
        let f = read(
            "customer_id,email,ordered_at,amount\n\
             c1,a@b,2026-01-01,1\n\
             c2,Ann <ann@example.com>,2026-01-01,1\n\
             c3,a@[127.0.0.1],2026-01-01,1\n\
             c4,Ann@Example.COM,2026-01-01,1\n\
             c5,,2026-01-01,1\n",
        )
        .unwrap();
        assert_eq!(f.rows.len(), 1);
        assert_eq!(
            f.rows[0].email, "Ann@example.com",
            "the domain in lower case"
        );
        assert_eq!(f.invalid_emails(), 3, "an empty email is a missing field");
        assert!(f.bad.iter().all(|b| !b.reason.contains("ann@")));
    }

    #[test]
    fn the_order_line_form_gathers_a_basket_per_order() {
        let f = read(
            "customer_id,email,ordered_at,amount,order_id,product,category,quantity,price
             c1,a@example.com,2026-01-01,48.00,1001,Espresso blend 1 kg,coffee,2,18.00
             c1,a@example.com,2026-01-01,48.00,1001,Filter papers,accessories,3,4.00
             c2,b@example.com,2026-01-02,9.00,1001,Mug,,,
             c1,a@example.com,2026-02-01,18.00,1002,Espresso blend 1 kg,coffee,,18.00
             c1,a@example.com,2026-02-03,5,1003,Gift card,,0,
",
        )
        .unwrap();
        assert_eq!(f.bad.len(), 1, "a quantity of 0 is refused");
        assert!(f.bad[0].reason.contains("quantity"), "{}", f.bad[0].reason);
        let policy = shared::campaign::testing::example_campaign().lapse;
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let ps = build_profiles(&f.rows, &policy, at, None);
        let c1 = ps.iter().find(|p| p.customer_id == "c1").unwrap();
        assert_eq!(c1.order_count, 2, "two rows of order 1001 are one order");
        assert_eq!(c1.lifetime_value, Money(6600));
        let first = &c1.orders[0];
        assert_eq!(first.order_id.as_deref(), Some("1001"));
        assert_eq!(first.lines.len(), 2);
        assert_eq!(first.lines[1].quantity, 3);
        assert_eq!(first.lines[1].price, Some(Money(400)));
        assert_eq!(
            c1.favourite_product(),
            Some("Espresso blend 1 kg"),
            "3 units each: the one bought last"
        );
        let c2 = ps.iter().find(|p| p.customer_id == "c2").unwrap();
        assert_eq!(
            c2.orders[0].lines.len(),
            1,
            "another customer's 1001 is their own"
        );
    }

    #[test]
    fn a_customer_buying_in_two_currencies_has_a_lifetime_value_in_each() {
        let f = read(
            "customer_id,email,ordered_at,amount,currency\n\
             c1,a@example.com,2026-01-01,10,EUR\n\
             c1,a@example.com,2026-01-05,399,SEK\n\
             c1,a@example.com,2026-01-09,5,eur\n",
        )
        .unwrap();
        let policy = shared::campaign::testing::example_campaign().lapse;
        let at = Utc.with_ymd_and_hms(2026, 1, 20, 0, 0, 0).unwrap();
        let p = &build_profiles(&f.rows, &policy, at, None)[0];
        assert_eq!(p.order_count, 3);
        assert_eq!(p.currency.as_deref(), Some("EUR"));
        assert_eq!(p.lifetime_value, Money(1500));
        assert_eq!(p.lifetime_value_other.get("SEK"), Some(&Money(39900)));
    }

    #[test]
    fn one_customer_at_a_time_gives_the_profiles_of_the_whole_file() {
        // Customers interleaved and out of id order, an order of two lines, two currencies,
        // details that change, bad rows, an unreadable row and an order after the cut-off.
        let text = "customer_id,email,ordered_at,amount,currency,first_name,order_id,product,quantity,unsubscribed\n\
             c2,b@example.com,2025-11-02,10,EUR,Bo,,,,\n\
             c10,j@example.com,2025-10-01,48.00,EUR,,7,Beans,2,\n\
             c1,a@example.com,2025-09-01,5,eur,Ann,,,,\n\
             c10,j@example.com,2025-10-01,48.00,EUR,,7,Filter,1,\n\
             c2,nobody,2025-12-01,10,EUR,,,,,\n\
             c1,a@example.com,2025-09-20,399,SEK,,,,,yes\n\
             c2,b2@example.com,2025-12-03,12,EUR,Bob,,,,\n\
             c3,c@example.com,2026-02-01,7,EUR,,,,,\n\
             \"c4,d@example.com,2025-01-01,1\n\
             c1,a@example.com,2025-08-01,5,EUR,,,,,\n";
        let policy = shared::campaign::testing::example_campaign().lapse;
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let all = read(text).unwrap();
        let whole = build_profiles(&all.rows, &policy, at, Some(at));
        let one_by_one =
            read_customer_orders_from(text.as_bytes(), Path::new("orders.csv"), Some(at)).unwrap();
        assert_eq!(
            one_by_one.bad, all.bad,
            "the same rows are skipped, for the same reasons"
        );
        let profiles: Vec<Profile> = one_by_one.profiles(&policy, at).collect();
        let ids: Vec<&str> = profiles.iter().map(|p| p.customer_id.as_str()).collect();
        assert_eq!(
            ids,
            ["c1", "c10", "c2"],
            "in id order; c3 ordered after the cut-off"
        );
        assert_eq!(profiles, whole);
        assert_eq!(profiles[1].orders[0].lines.len(), 2);
        // Asked again, the same profiles.
        assert_eq!(one_by_one.profiles(&policy, at).collect::<Vec<_>>(), whole);
    }

    #[test]
    fn profiles_gather_each_customers_orders_and_know_when_they_are_due() {
        let f = read(
            "customer_id,email,ordered_at,amount,first_name\n\
             c1,a@example.com,2026-01-01,10,Ann\n\
             c1,a@example.com,2026-01-15,20,\n\
             c2,b@example.com,2025-01-01,5,Bo\n",
        )
        .unwrap();
        let policy = shared::campaign::testing::example_campaign().lapse;
        let at = Utc.with_ymd_and_hms(2026, 1, 20, 0, 0, 0).unwrap();
        let ps = build_profiles(&f.rows, &policy, at, None);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].order_count, 2);
        assert_eq!(ps[0].first_name.as_deref(), Some("Ann"));
        assert!(ps[0].due_at.unwrap() > at);
        assert_eq!(
            ps[1].due_at,
            Some(at),
            "a customer quiet for a year is due now"
        );
        let early = build_profiles(&f.rows, &policy, at, Some(at - chrono::Duration::days(10)));
        assert_eq!(early[0].order_count, 1);
    }
}
