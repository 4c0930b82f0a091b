//! The customer profile the shop's orders build up, and its buying rhythm.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::edge::CustomerId;
use super::money::Money;

/// How many recent orders a profile keeps to find the rhythm.
pub const ORDER_HISTORY: usize = 24;
/// How many lines of one order are kept (the first ones the shop lists).
pub const ORDER_LINES: usize = 20;
/// How many order lines a profile keeps in all: past it, the oldest orders' lines go (their
/// `product` and `category` stay).
pub const PROFILE_LINES: usize = 120;

/// One line of an order: what was bought, how many, at what unit price.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderLine {
    pub product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub quantity: u32,
    /// The unit price, when the shop says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// One order as the profile remembers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct OrderRecord {
    pub at: DateTime<Utc>,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The order's currency when it is not the customer's (`Profile::currency`); `None` when it
    /// is, or when the shop did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The shop's id of the order, the one its refunds name (platform orders and the activity
    /// contract's `order_id`; `None` for imported orders that gave none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// How much of `amount` was refunded since (partial refunds: a whole refund or a
    /// cancellation removes the order).
    #[serde(default, skip_serializing_if = "Money::is_zero")]
    pub refunded: Money,
    /// The platform's ids of the refunds `refunded` counts (see [`crate::refund::Refunded`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refund_ids: Vec<String>,
    /// The order's lines, at most [`ORDER_LINES`] (`product` and `category` are the first
    /// line's when the shop sends lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<OrderLine>,
}

impl OrderRecord {
    /// What the customer kept paying: the amount less what was refunded.
    pub fn net(&self) -> Money {
        Money(self.amount.0 - self.refunded.0)
    }
}

/// Whether, and how, the customer may be emailed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    #[default]
    Subscribed,
    /// Asked for fewer emails: a longer frequency cap instead of none.
    FewerEmails,
    Unsubscribed,
    /// Bounced permanently or complained: never emailed again.
    Suppressed,
}

impl EmailStatus {
    /// Whether a customer at this status moves when asking for (or found at) `to`: unsubscribing
    /// beats fewer emails, a suppression beats everything, and nothing lifts a suppression or
    /// subscribes again.
    pub fn moves_to(self, to: EmailStatus) -> bool {
        match to {
            EmailStatus::Unsubscribed => {
                matches!(self, EmailStatus::Subscribed | EmailStatus::FewerEmails)
            }
            EmailStatus::FewerEmails => self == EmailStatus::Subscribed,
            EmailStatus::Suppressed => self != EmailStatus::Suppressed,
            EmailStatus::Subscribed => false,
        }
    }
}

/// Everything known about one customer. Personal fields are optional so they can be erased.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub customer_id: CustomerId,
    /// Optimistic-concurrency version; 0 means "not stored yet".
    #[serde(default)]
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    /// The most recent orders, oldest first, at most [`ORDER_HISTORY`].
    #[serde(default)]
    pub orders: Vec<OrderRecord>,
    /// Orders counted in `order_count` and `lifetime_value` that fell out of `orders`, as (unix
    /// seconds, minor units), oldest first: remembered so an order imported or delivered again
    /// is recognised and not counted twice. About 20 bytes an order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_orders: Vec<(i64, i64)>,
    /// The same for orders in another currency than `currency`, by currency, so merging a
    /// profile into another (an import) keeps each amount in its own currency.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub earlier_orders_other: BTreeMap<String, Vec<(i64, i64)>>,
    #[serde(default)]
    pub order_count: u32,
    /// The value of the customer's orders in `currency` (their first order's currency).
    #[serde(default)]
    pub lifetime_value: Money,
    /// The value of orders in any other currency, by currency: kept apart, never added to
    /// `lifetime_value`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lifetime_value_other: BTreeMap<String, Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_order_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_order_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_at: Option<DateTime<Utc>>,
    /// The latest activity other than an order that the campaign counts as "still with us"
    /// (`sending.still_with_us`: a renewal, a login): the lapse clock counts from it when it is
    /// later than the last order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub still_with_us_at: Option<DateTime<Utc>>,
    /// When the shop's newest details (address, name, locale, time zone, birthday, renewal)
    /// were current: details of an earlier time that arrive later are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub email_status: EmailStatus,
    /// When the last goodbye went unanswered; cleared by a later order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset_at: Option<DateTime<Utc>>,
    /// Reason tags (`reason:quality`, `nps:detractor`, …).
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// Reasons the marketer has marked resolved (the customer may be contacted again).
    #[serde(default)]
    pub resolved_reasons: BTreeSet<Reason>,
    /// The marketer's note on each resolved reason ("the new roaster is in"), for the email that
    /// tells the customer it is fixed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolution_notes: BTreeMap<Reason, String>,
    /// Resolved reasons the customer has been told about (each is told once).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub told_resolved: BTreeSet<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nps: Option<u8>,
    #[serde(default)]
    pub emails_opened: u32,
    #[serde(default)]
    pub emails_clicked: u32,
    /// When SES last reported a click of one of their emails (a click after the last order
    /// without an order since: "clicked but did not buy", see `domain::engagement`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_clicked_at: Option<DateTime<Utc>>,
    /// The latest visit to the shop's terms or cancellation page (activity `page_view`): an early
    /// signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_page_viewed_at: Option<DateTime<Utc>>,
    /// When the customer's subscription next renews (`profile.renewal_due_at`, the import's
    /// `renewal_due_at`): an upcoming renewal is an early signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_due_at: Option<DateTime<Utc>>,
    /// When the scheduler should next look at this customer (drives the due index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// From the shop's profile or the import (`YYYY-MM-DD` or `--MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<Birthday>,
    /// When the customer signed up with the shop (from the import), if before their first order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_up_at: Option<DateTime<Utc>>,
    /// The year each occasion was last celebrated (in the customer's time zone).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub celebrated: BTreeMap<Occasion, i32>,
    /// The latest follow-up a person was asked to make (see `domain::follow_up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUpCase>,
    /// Personal data erased on request; aggregates kept.
    #[serde(default)]
    pub erased: bool,
    /// The features the latest enrollment was decided on (see `targeting`): what the flow's
    /// uplift model learns from once that enrollment is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_on: Option<EnrolledOn>,
    /// Earlier enrollments that were over when a new one took their place, as examples for the
    /// flows' uplift models (the newest [`MAX_FINISHED`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished: Vec<Finished>,
}

impl Profile {
    /// A customer known by id only: no contact details, no orders, subscribed.
    pub fn new(customer_id: CustomerId) -> Profile {
        Profile {
            customer_id,
            version: Default::default(),
            email: Default::default(),
            first_name: Default::default(),
            locale: Default::default(),
            time_zone: Default::default(),
            currency: Default::default(),
            orders: Default::default(),
            earlier_orders: Default::default(),
            earlier_orders_other: Default::default(),
            order_count: Default::default(),
            lifetime_value: Default::default(),
            lifetime_value_other: Default::default(),
            first_order_at: Default::default(),
            last_order_at: Default::default(),
            last_activity_at: Default::default(),
            still_with_us_at: Default::default(),
            details_at: None,
            email_status: Default::default(),
            sunset_at: Default::default(),
            tags: Default::default(),
            resolved_reasons: Default::default(),
            resolution_notes: Default::default(),
            told_resolved: Default::default(),
            survey_reason: Default::default(),
            nps: Default::default(),
            emails_opened: Default::default(),
            emails_clicked: Default::default(),
            last_clicked_at: Default::default(),
            signal_page_viewed_at: Default::default(),
            renewal_due_at: Default::default(),
            due_at: Default::default(),
            birthday: Default::default(),
            signed_up_at: Default::default(),
            celebrated: Default::default(),
            follow_up: Default::default(),
            erased: Default::default(),
            enrolled_on: None,
            finished: Vec::new(),
        }
    }

    /// Adds an order paid in `currency` (see [`Profile::record_order`]).
    pub fn record_order_in(&mut self, mut order: OrderRecord, currency: &str) -> bool {
        order.currency = Some(currency.to_string());
        self.record_order(order)
    }

    /// Adds an order, keeping the history ordered and bounded (orders that fall out of it are
    /// remembered in `earlier_orders`). A replayed order (same time and amount), in the history
    /// or earlier, is ignored; the caller deduplicates by event id as well.
    ///
    /// The customer's `currency` is set by their first order that names one; `lifetime_value`
    /// holds the amounts in it (and of orders that name none), any other currency's go to
    /// `lifetime_value_other`, never summed with it.
    pub fn record_order(&mut self, mut order: OrderRecord) -> bool {
        if self.erased {
            return false;
        }
        let key = order_key(order.at, order.amount);
        if self.orders.iter().any(|o| order_key(o.at, o.amount) == key)
            || self.earlier_orders.binary_search(&key).is_ok()
            || self
                .earlier_orders_other
                .values()
                .any(|keys| keys.binary_search(&key).is_ok())
        {
            return false;
        }
        order.currency = match order.currency.take() {
            Some(c) => {
                let c = c.trim().to_ascii_uppercase();
                let home = self.currency.get_or_insert_with(|| c.clone());
                (!home.eq_ignore_ascii_case(&c)).then_some(c)
            }
            None => None,
        };
        self.order_count += 1;
        // An order after the sunset wakes the customer (an imported older one does not).
        if self.sunset_at.is_some_and(|s| order.at >= s) {
            self.sunset_at = None;
        }
        match &order.currency {
            // What was refunded of it before it came in (an imported history) is not value.
            Some(other) => {
                *self.lifetime_value_other.entry(other.clone()).or_default() += order.net()
            }
            None => self.lifetime_value += order.net(),
        }
        self.first_order_at = Some(self.first_order_at.map_or(order.at, |f| f.min(order.at)));
        self.last_order_at = Some(self.last_order_at.map_or(order.at, |l| l.max(order.at)));
        self.last_activity_at = Some(self.last_activity_at.map_or(order.at, |l| l.max(order.at)));
        order.lines.truncate(ORDER_LINES);
        let pos = self.orders.partition_point(|o| o.at <= order.at);
        self.orders.insert(pos, order);
        let mut lines: usize = self.orders.iter().map(|o| o.lines.len()).sum();
        for o in self.orders.iter_mut() {
            if lines <= PROFILE_LINES {
                break;
            }
            lines -= o.lines.len();
            o.lines.clear();
        }
        if self.orders.len() > ORDER_HISTORY {
            let extra = self.orders.len() - ORDER_HISTORY;
            for o in self.orders.drain(..extra) {
                let key = order_key(o.at, o.amount);
                let keys = match o.currency {
                    Some(c) => self.earlier_orders_other.entry(c).or_default(),
                    None => &mut self.earlier_orders,
                };
                if let Err(pos) = keys.binary_search(&key) {
                    keys.insert(pos, key);
                }
            }
        }
        true
    }

    /// Every order counted, oldest first: the remembered earlier ones (time and amount only),
    /// then the history. Merging them into another profile counts each once.
    pub fn all_orders(&self) -> impl Iterator<Item = OrderRecord> + '_ {
        let earlier = |keys: &[(i64, i64)], currency: Option<&String>| {
            keys.iter()
                .filter_map(|&(secs, minor)| {
                    Some(OrderRecord {
                        at: DateTime::from_timestamp(secs, 0)?,
                        amount: Money(minor),
                        product: None,
                        category: None,
                        currency: currency.cloned(),
                        order_id: None,
                        refunded: Default::default(),
                        refund_ids: Vec::new(),
                        lines: Vec::new(),
                    })
                })
                .collect::<Vec<_>>()
        };
        let mut older = earlier(&self.earlier_orders, None);
        for (c, keys) in &self.earlier_orders_other {
            older.extend(earlier(keys, Some(c)));
        }
        older.sort_by_key(|o| o.at);
        // Orders in the customer's currency name it, so a profile with another home currency
        // they are merged into keeps them apart.
        let home = self.currency.clone();
        older
            .into_iter()
            .chain(self.orders.iter().cloned())
            .map(move |mut o| {
                if o.currency.is_none() {
                    o.currency.clone_from(&home);
                }
                o
            })
    }

    /// The customer's lifetime value in the campaign currency: their currency's amounts and every
    /// other currency's, converted at the configured rates; `None` when one has no rate.
    pub fn lifetime_value_in(&self, valuation: &super::money::Valuation) -> Option<Money> {
        let home = self.currency.as_deref().unwrap_or(valuation.currency);
        valuation.total(
            std::iter::once((home, self.lifetime_value)).chain(
                self.lifetime_value_other
                    .iter()
                    .map(|(c, m)| (c.as_str(), *m)),
            ),
        )
    }

    /// Since when the shop has known the customer: their sign-up, or their first order when
    /// that came first or no sign-up date is known.
    pub fn customer_since(&self) -> Option<DateTime<Utc>> {
        earliest(self.signed_up_at, self.first_order_at)
    }

    /// Records a sign-up date from the shop's data; the earliest one known is kept.
    pub fn note_sign_up(&mut self, at: Option<DateTime<Utc>>) {
        self.signed_up_at = earliest(self.signed_up_at, at);
    }

    /// The product, else the category, of the most recent order that names one.
    pub fn last_product(&self) -> Option<&str> {
        self.orders.iter().rev().find_map(|o| o.product.as_deref())
    }

    pub fn last_category(&self) -> Option<&str> {
        self.orders.iter().rev().find_map(|o| o.category.as_deref())
    }

    /// What the customer bought most: the product with the most units over the orders the
    /// profile keeps (an order without lines counts its `product` once); of equals, the one
    /// bought last.
    pub fn favourite_product(&self) -> Option<&str> {
        let mut units: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
        for (i, o) in self.orders.iter().enumerate() {
            let lines: Vec<(&str, u32)> = if o.lines.is_empty() {
                o.product.as_deref().map(|p| (p, 1)).into_iter().collect()
            } else {
                o.lines
                    .iter()
                    .map(|l| (l.product.as_str(), l.quantity))
                    .collect()
            };
            for (product, quantity) in lines {
                let e = units.entry(product).or_default();
                e.0 += u64::from(quantity);
                e.1 = i;
            }
        }
        units
            .into_iter()
            .max_by_key(|(_, (n, last))| (*n, *last))
            .map(|(p, _)| p)
    }

    /// Whether any email may be sent at all. A sunset is not checked here: it keeps the customer
    /// out of new enrollments for a while (see `eligibility::sunset_until`), and no enrollment is
    /// running while it lasts.
    pub fn is_mailable(&self) -> bool {
        self.email.is_some()
            && !self.erased
            && matches!(
                self.email_status,
                EmailStatus::Subscribed | EmailStatus::FewerEmails
            )
    }

    /// Right to erasure: everything known about the customer goes (contact details, orders,
    /// their count and value, survey answers, NPS, tags, opens and clicks, email status); what
    /// stays is a tombstone, the id marked erased, so later activity or an import does not
    /// build a profile again. The version is kept for the conditional save.
    pub fn erase_personal_data(&mut self) {
        let mut tombstone = Profile::new(self.customer_id.clone());
        tombstone.version = self.version;
        tombstone.erased = true;
        *self = tombstone;
    }

    /// Whether this is an erased customer's tombstone and nothing more.
    pub fn is_tombstone(&self) -> bool {
        let mut bare = Profile::new(self.customer_id.clone());
        bare.version = self.version;
        bare.erased = true;
        *self == bare
    }

    /// When the stored orders were placed, oldest first.
    pub fn order_times(&self) -> Vec<DateTime<Utc>> {
        self.orders.iter().map(|o| o.at).collect()
    }

    /// Gaps between consecutive orders, in days.
    pub fn gaps_days(&self) -> Vec<f64> {
        self.orders
            .windows(2)
            .map(|w| (w[1].at - w[0].at).num_seconds() as f64 / 86_400.0)
            .collect()
    }
}

/// The earlier of two optional times.
fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How `earlier_orders` remembers an order (its time to the second, as orders are recorded).
fn order_key(at: DateTime<Utc>, amount: Money) -> (i64, i64) {
    (at.timestamp(), amount.0)
}

// What a profile records from the other policies: their rules live in `celebration`, `survey`
// and `follow_up` (which re-export these), the vocabulary here, so no module depends back on a
// module that depends on it.

/// A birthday: month and day, with the year when the shop knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Birthday {
    pub year: Option<i32>,
    pub month: u32,
    pub day: u32,
}

/// A birthday that is not a date.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("birthday {0:?} is not a date: write YYYY-MM-DD (1990-04-17) or, without the year, --MM-DD (--04-17)")]
pub struct BirthdayError(pub String);

impl Birthday {
    /// Parses `YYYY-MM-DD` or `--MM-DD` (ISO 8601 without the year). February 29 is accepted
    /// without a year; with one, only in a leap year.
    pub fn parse(text: &str) -> Result<Birthday, BirthdayError> {
        let err = || BirthdayError(text.to_string());
        let t = text.trim();
        if let Some(md) = t.strip_prefix("--") {
            let (m, d) = md.split_once('-').ok_or_else(err)?;
            if m.len() != 2 || d.len() != 2 {
                return Err(err());
            }
            let (month, day) = (m.parse().map_err(|_| err())?, d.parse().map_err(|_| err())?);
            // 2000 is a leap year: every month-day that ever exists is valid in it.
            NaiveDate::from_ymd_opt(2000, month, day).ok_or_else(err)?;
            return Ok(Birthday {
                year: None,
                month,
                day,
            });
        }
        let date = NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| err())?;
        if t.len() != 10 || !(1900..=2100).contains(&date.year()) {
            return Err(err());
        }
        Ok(Birthday {
            year: Some(date.year()),
            month: date.month(),
            day: date.day(),
        })
    }
}

impl fmt::Display for Birthday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.year {
            Some(y) => write!(f, "{y:04}-{:02}-{:02}", self.month, self.day),
            None => write!(f, "--{:02}-{:02}", self.month, self.day),
        }
    }
}

impl TryFrom<String> for Birthday {
    type Error = BirthdayError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Birthday::parse(&s)
    }
}

impl From<Birthday> for String {
    fn from(b: Birthday) -> String {
        b.to_string()
    }
}

/// What is celebrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Occasion {
    Birthday,
    /// The anniversary of becoming a customer: the sign-up, or the first order when that came
    /// first or no sign-up date is known.
    Anniversary,
}

impl Occasion {
    pub fn as_str(self) -> &'static str {
        match self {
            Occasion::Birthday => "birthday",
            Occasion::Anniversary => "anniversary",
        }
    }
}

/// A reason for leaving, as offered in the email's one-click survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    TooExpensive,
    BadExperience,
    HardToUnderstand,
    Forgot,
    Quality,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::TooExpensive,
        Reason::BadExperience,
        Reason::HardToUnderstand,
        Reason::Forgot,
        Reason::Quality,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TooExpensive => "too_expensive",
            Reason::BadExperience => "bad_experience",
            Reason::HardToUnderstand => "hard_to_understand",
            Reason::Forgot => "forgot",
            Reason::Quality => "quality",
            Reason::Other => "other",
        }
    }

    /// The tag the reason puts on the profile.
    pub fn tag(self) -> String {
        format!("reason:{}", self.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A survey answer that is not one of the known reasons.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown reason '{0}': use one of too_expensive, bad_experience, hard_to_understand, forgot, quality, other")]
pub struct UnknownReason(pub String);

impl FromStr for Reason {
    type Err = UnknownReason;
    fn from_str(s: &str) -> Result<Reason, UnknownReason> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_string()))
    }
}

/// Why a person should act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    /// A detractor: an account manager should call.
    Detractor,
    /// A bad experience: apologise personally.
    BadExperience,
}

/// One follow-up on a customer. Its id is the customer id: a customer has at most one open at a
/// time (a new one replaces a closed one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUpCase {
    /// The flow (campaign) whose email carried the answer.
    pub campaign: String,
    pub why: FollowUp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nps: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    pub opened_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
}

impl FollowUpCase {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn order(day: u32, amount: i64) -> OrderRecord {
        OrderRecord {
            at: Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap(),
            amount: Money(amount),
            product: None,
            category: None,
            currency: None,
            order_id: None,
            refunded: Default::default(),
            refund_ids: Vec::new(),
            lines: Vec::new(),
        }
    }

    fn basket(day: u32, lines: &[(&str, u32)]) -> OrderRecord {
        OrderRecord {
            lines: lines
                .iter()
                .map(|(p, q)| OrderLine {
                    product: (*p).into(),
                    category: Some("coffee".into()),
                    quantity: *q,
                    price: Some(Money(1200)),
                })
                .collect(),
            ..order(day, 4800)
        }
    }

    #[test]
    fn the_favourite_is_what_they_bought_most_units_of_not_what_came_first() {
        let mut p = Profile::new("c1".parse().unwrap());
        p.record_order(basket(1, &[("Filter papers", 1), ("Espresso blend", 2)]));
        p.record_order(basket(5, &[("Espresso blend", 1), ("Mug", 1)]));
        p.record_order(basket(9, &[("Filter papers", 2)]));
        assert_eq!(
            p.favourite_product(),
            Some("Filter papers"),
            "3 units, bought last"
        );
        p.record_order(basket(12, &[("Espresso blend", 4)]));
        assert_eq!(p.favourite_product(), Some("Espresso blend"));
        p.record_order(OrderRecord {
            product: Some("Gift card".into()),
            ..order(14, 2500)
        });
        assert_eq!(p.favourite_product(), Some("Espresso blend"));
    }

    #[test]
    fn lines_are_bounded_per_order_and_per_profile() {
        let mut p = Profile::new("c1".parse().unwrap());
        let many: Vec<(String, u32)> = (0..30).map(|i| (format!("item {i}"), 1)).collect();
        let many: Vec<(&str, u32)> = many.iter().map(|(s, q)| (s.as_str(), *q)).collect();
        for day in 1..=20 {
            p.record_order(basket(day, &many));
        }
        assert!(p.orders.iter().all(|o| o.lines.len() <= ORDER_LINES));
        let kept: usize = p.orders.iter().map(|o| o.lines.len()).sum();
        assert!(kept <= PROFILE_LINES, "{kept}");
        assert_eq!(
            p.orders.last().unwrap().lines.len(),
            ORDER_LINES,
            "the newest orders keep theirs"
        );
    }

    #[test]
    fn an_order_after_the_sunset_wakes_the_customer_and_an_older_one_does_not() {
        let mut p = Profile::new("c1".parse().unwrap());
        p.email = Some("a@example.com".into());
        p.sunset_at = Some(Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap());
        p.record_order(order(10, 500));
        assert!(p.sunset_at.is_some());
        p.record_order(order(20, 500));
        assert_eq!(p.sunset_at, None);
        assert!(p.is_mailable());
    }

    #[test]
    fn orders_are_kept_sorted_bounded_and_counted_once() {
        let mut p = Profile::new("c1".parse().unwrap());
        assert!(p.record_order(order(10, 500)));
        assert!(p.record_order(order(3, 700)));
        assert!(!p.record_order(order(3, 700)));
        assert_eq!(p.order_count, 2);
        assert_eq!(p.lifetime_value, Money(1200));
        assert_eq!(p.orders[0].amount, Money(700));
        assert_eq!(p.gaps_days(), vec![7.0]);
        for d in 1..=28 {
            p.record_order(order(d, 100 + d as i64));
        }
        assert_eq!(p.orders.len(), ORDER_HISTORY);
        assert!(p.orders.windows(2).all(|w| w[0].at <= w[1].at));
        let (count, value) = (p.order_count, p.lifetime_value);
        for d in 1..=28 {
            assert!(!p.record_order(order(d, 100 + d as i64)), "day {d} again");
        }
        assert_eq!((p.order_count, p.lifetime_value), (count, value));
        let mut copy = Profile::new("c1".parse().unwrap());
        for o in p.all_orders() {
            copy.record_order(o);
        }
        assert_eq!((copy.order_count, copy.lifetime_value), (count, value));
    }

    #[test]
    fn unsubscribing_beats_fewer_emails_and_nothing_lifts_a_suppression() {
        use EmailStatus::*;
        assert!(FewerEmails.moves_to(Unsubscribed));
        assert!(Subscribed.moves_to(FewerEmails));
        assert!(!Unsubscribed.moves_to(FewerEmails));
        assert!(!Suppressed.moves_to(Unsubscribed));
        assert!(!FewerEmails.moves_to(FewerEmails));
        assert!(Unsubscribed.moves_to(Suppressed));
        assert!(!Suppressed.moves_to(Suppressed));
        assert!(!Unsubscribed.moves_to(Subscribed));
    }

    #[test]
    fn merging_a_profile_keeps_each_amount_in_its_own_currency_also_for_older_orders() {
        let mut file = Profile::new("c1".parse().unwrap());
        assert!(file.record_order_in(order(1, 1000), "eur"));
        for d in 2..=28 {
            let currency = if d % 2 == 0 { "SEK" } else { "EUR" };
            file.record_order_in(order(d, 100 * d as i64), currency);
        }
        assert_eq!(file.currency.as_deref(), Some("EUR"));
        assert!(
            !file.earlier_orders_other.is_empty(),
            "SEK orders fell out of the history"
        );
        let sek: i64 = (2..=28).filter(|d| d % 2 == 0).map(|d| 100 * d).sum();
        let eur: i64 = 1000
            + (2..=28)
                .filter(|d| d % 2 == 1)
                .map(|d| 100 * d)
                .sum::<i64>();
        assert_eq!(file.lifetime_value, Money(eur));
        assert_eq!(file.lifetime_value_other.get("SEK"), Some(&Money(sek)));

        // What an import does: the stored profile takes every order of the file's.
        let mut stored = Profile::new("c1".parse().unwrap());
        stored.record_order_in(order(1, 1000), "EUR");
        for o in file.all_orders() {
            stored.record_order(o);
        }
        assert_eq!(stored.order_count, 28);
        assert_eq!(stored.lifetime_value, Money(eur));
        assert_eq!(stored.lifetime_value_other.get("SEK"), Some(&Money(sek)));
        // Twice changes nothing.
        for o in file.all_orders() {
            assert!(!stored.record_order(o));
        }
        assert_eq!(stored.lifetime_value, Money(eur));

        // A customer whose home currency is another keeps the file's euros apart.
        let mut sek_home = Profile::new("c1".parse().unwrap());
        sek_home.record_order_in(order(1, 50), "SEK");
        for o in file.all_orders() {
            sek_home.record_order(o);
        }
        assert_eq!(sek_home.lifetime_value, Money(sek + 50));
        assert_eq!(sek_home.lifetime_value_other.get("EUR"), Some(&Money(eur)));
    }
}

/// Which treatment a finished enrollment had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    WithReward,
    EmailOnly,
    NoEmail,
}

/// A finished enrollment, as the model learns from it: its features at enrollment, its
/// treatment, and whether the customer ordered within the attribution window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub features: Snapshot,
    pub arm: Arm,
    pub ordered: bool,
}

/// An earlier enrollment of the customer that is over, kept for learning when a new enrollment
/// took its place (the enrollment item holds the latest only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub enrollment_id: String,
    /// The flow's name (`win-back`, `at-risk`, ...).
    pub flow: String,
    pub example: Example,
}

/// How many earlier finished enrollments a profile keeps for learning (the newest).
pub const MAX_FINISHED: usize = 3;

/// The features targeting read of a customer at an enrollment (`crate::targeting::snapshot`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolledOn {
    pub enrollment_id: String,
    pub features: Snapshot,
}

/// The features the flows' uplift models learn from and score, by name, in this order. What
/// winback knows of the customer at the moment of enrollment.
pub const FEATURES: [&str; 13] = [
    "days_quiet",
    "orders",
    "lifetime_value",
    "predicted_value",
    "p_active",
    "p_order",
    "tenure_days",
    "category",
    "segment",
    "locale",
    "opens",
    "clicks",
    "survey_reason",
];

/// A customer's features at enrollment ([`FEATURES`]; a missing one is unknown), kept so the
/// model later learns from what was known then, not from what came after. Stored as a list in
/// [`FEATURES`]' order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<Option<String>>", into = "Vec<Option<String>>")]
pub struct Snapshot(pub BTreeMap<String, String>);

impl From<Snapshot> for Vec<Option<String>> {
    fn from(s: Snapshot) -> Self {
        let mut v: Vec<Option<String>> = FEATURES.iter().map(|f| s.0.get(*f).cloned()).collect();
        while v.last().is_some_and(Option::is_none) {
            v.pop();
        }
        v
    }
}

impl From<Vec<Option<String>>> for Snapshot {
    fn from(v: Vec<Option<String>>) -> Self {
        Snapshot(
            FEATURES
                .iter()
                .zip(v)
                .filter_map(|(f, x)| Some(((*f).to_string(), x?)))
                .collect(),
        )
    }
}
