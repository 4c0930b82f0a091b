//! The synthetic customers: their rhythm, locale, hidden reason for leaving, and the order history
//! that exists before the first simulated day.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rand::rngs::SmallRng;
use rand::Rng;
use shared::domain::celebration::Birthday;
use shared::domain::edge::CustomerId;
use shared::domain::money::Money;
use shared::domain::survey::Reason;

use shared::domain::zone::Zone;

use super::behaviour::{Behaviour, Habit, Kind, KindShares, Segment};
use crate::orders::OrderRow;

/// One simulated customer and what only the simulation knows about them.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: CustomerId,
    pub email: String,
    pub locale: String,
    pub time_zone: String,
    pub first_name: String,
    /// The birthday the shop knows (six in ten synthetic customers gave one).
    pub birthday: Option<Birthday>,
    /// The local hour they usually order and read email at (`[habit]` of the behaviour model);
    /// only the simulation knows it, the sender infers it from their orders.
    pub habit_hour: Option<u32>,
    /// Index into the model's segments; `None` for customers read from an orders file.
    pub segment: Option<usize>,
    /// Usual days between orders; 0 = no rhythm (one-off).
    pub gap_days: f64,
    pub gap_jitter: f64,
    pub amount: Money,
    pub currency: String,
    pub category: String,
    pub product: String,
    /// The hidden reason they stop (or stopped).
    pub reason: Reason,
    /// How they respond to being emailed (`[response]`); only the simulation knows it.
    pub kind: Kind,
    /// Driven away by an email (a do-not-disturb customer who opened one): buys no more.
    pub driven_away: bool,
    /// When they would come back by themselves (the pending natural return), to tell an order an
    /// email brought from one it merely pulled forward.
    pub natural_return_at: Option<DateTime<Utc>>,
    /// When they stop buying by themselves, if they do.
    pub churn_at: Option<DateTime<Utc>>,
    /// Not buying at the moment.
    pub churned: bool,
    /// The pending rhythm order (older scheduled ones are stale).
    pub next_order_at: Option<DateTime<Utc>>,
    /// The pending return after stopping (older scheduled ones are stale).
    pub return_at: Option<DateTime<Utc>>,
    /// Reward code of the latest email, and until when they would think of using it.
    pub code: Option<(String, DateTime<Utc>)>,
    /// No longer reachable by email (bounced, complained, unsubscribed).
    pub unreachable: bool,
}

/// Samples from simple distributions with the simulation's seeded generator.
pub trait Draw {
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64;
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Exponential with the given mean.
    fn exp_mean(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// An index chosen with the given weights.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().map(|w| w.max(0.0)).sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            x -= w.max(0.0);
            if x < 0.0 {
                return i;
            }
        }
        weights.len().saturating_sub(1)
    }
}

impl Draw for SmallRng {
    fn unit(&mut self) -> f64 {
        self.gen::<f64>()
    }
}

/// Days as a duration.
pub fn days(d: f64) -> Duration {
    Duration::seconds((d * 86_400.0).round() as i64)
}

const NAMES: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "Olivia", "Jack", "Amelia", "Harry", "Isla", "Noah", "Grace", "Leo",
        ],
    ),
    (
        "sv",
        &[
            "Astrid", "Erik", "Maja", "Lars", "Elsa", "Nils", "Ingrid", "Oskar",
        ],
    ),
    (
        "da",
        &[
            "Freja", "Mads", "Ida", "Søren", "Karen", "Magnus", "Sofie", "Rasmus",
        ],
    ),
    (
        "pl",
        &[
            "Zofia", "Jakub", "Maja", "Kacper", "Zuzanna", "Szymon", "Hanna", "Łukasz",
        ],
    ),
    (
        "pt",
        &[
            "Beatriz", "João", "Inês", "Tiago", "Mariana", "Rafael", "Leonor", "Duarte",
        ],
    ),
];

fn first_name(locale: &str, rng: &mut impl Draw) -> String {
    let names = NAMES
        .iter()
        .find(|(l, _)| *l == locale)
        .map_or(NAMES[0].1, |(_, n)| *n);
    names[(rng.unit() * names.len() as f64) as usize % names.len()].to_string()
}

/// The next gap of a rhythm, never shorter than a day.
pub fn next_gap(gap_days: f64, jitter: f64, rng: &mut impl Draw) -> f64 {
    (gap_days * (1.0 + jitter * rng.normal())).max(1.0)
}

/// A synthetic customer base of `n` customers whose history runs up to `start`, with the orders
/// it holds before `start`.
pub fn synthetic(
    n: usize,
    model: &Behaviour,
    currency: &str,
    start: DateTime<Utc>,
    sim_days: u32,
    rng: &mut impl Draw,
) -> (Vec<Person>, Vec<OrderRow>) {
    let seg_weights: Vec<f64> = model.segments.iter().map(|s| s.share).collect();
    let loc_weights: Vec<f64> = model.locales.iter().map(|l| l.share).collect();
    let reasons: Vec<Reason> = model.reasons.keys().copied().collect();
    let reason_weights: Vec<f64> = model.reasons.values().map(|r| r.share).collect();
    let history = f64::from(model.history_days.max(1));
    let horizon = history + f64::from(sim_days);
    let history_start = start - days(history);
    let mut people = Vec::with_capacity(n);
    let mut rows = Vec::new();
    for i in 0..n {
        let seg_i = rng.weighted(&seg_weights);
        let seg = &model.segments[seg_i];
        let loc = &model.locales[rng.weighted(&loc_weights)];
        let tz = loc.time_zones
            [(rng.unit() * loc.time_zones.len() as f64) as usize % loc.time_zones.len()]
        .clone();
        let reason = reasons[rng.weighted(&reason_weights)];
        let product = seg.products
            [(rng.unit() * seg.products.len() as f64) as usize % seg.products.len()]
        .clone();
        let amount = Money(((seg.amount.0 as f64) * (0.8 + 0.4 * rng.unit())).round() as i64);
        let id = format!("c{i:06}");
        let mut p = Person {
            birthday: birthday_of(&id),
            habit_hour: habit_of(&id, &model.habit),
            email: format!("{id}@customers.example"),
            id: CustomerId::parse(&id).expect("c and six digits is a customer id"),
            first_name: first_name(&loc.locale, rng),
            locale: loc.locale.clone(),
            time_zone: tz,
            segment: Some(seg_i),
            gap_days: seg.gap_days,
            gap_jitter: seg.gap_jitter,
            amount,
            currency: currency.to_string(),
            category: seg.category.clone(),
            product,
            reason,
            kind: kind_of(&id, seg.response.unwrap_or(model.response.shares())),
            driven_away: false,
            natural_return_at: None,
            churn_at: None,
            churned: false,
            next_order_at: None,
            return_at: None,
            code: None,
            unreachable: false,
        };
        let mut orders = Vec::new();
        if seg.gap_days <= 0.0 {
            let at = start - days(1.0 + rng.unit() * (history - 1.0));
            orders.push(at);
            p.churn_at = Some(at);
            p.churned = true;
        } else {
            if rng.chance(model.churn.share) {
                p.churn_at = Some(history_start + days(rng.unit() * horizon));
            }
            let mut at = first_order(seg, history_start, history, rng.unit());
            loop {
                if p.churn_at.is_some_and(|c| at >= c) {
                    p.churned = at < start;
                    break;
                }
                if at >= start {
                    let planned = at_habit(&p, at, &model.habit, rng);
                    p.next_order_at = Some(if planned >= start { planned } else { at });
                    break;
                }
                orders.push(at);
                at += days(next_gap(seg.gap_days, seg.gap_jitter, rng));
            }
            if orders.is_empty() {
                // Stopped before their first order would have come: give them that one order.
                let first = first_order(seg, history_start, history, rng.unit());
                orders.push(first.min(start - Duration::hours(1)));
                p.churned = true;
                p.churn_at = Some(first);
                p.next_order_at = None;
            }
        }
        for (k, at) in orders.into_iter().enumerate() {
            let at = at_habit(&p, at, &model.habit, rng).min(start - Duration::minutes(1));
            let amount = Money(((p.amount.0 as f64) * (0.85 + 0.3 * rng.unit())).round() as i64);
            rows.push(order_row(&p, at, amount, k == 0));
        }
        people.push(p);
    }
    (people, rows)
}

/// A rhythm customer's first order from the draw `u` (0–1): within their first gap of the
/// history's start, or for a segment with a `season_day`, within its jitter of the first such day
/// of the history.
fn first_order(seg: &Segment, history_start: DateTime<Utc>, history: f64, u: f64) -> DateTime<Utc> {
    let Some(day) = seg.season_day else {
        return history_start + days(u * seg.gap_days.min(history));
    };
    let year = history_start.year();
    let centre = [year, year + 1]
        .into_iter()
        .filter_map(|y| NaiveDate::from_yo_opt(y, day).or_else(|| NaiveDate::from_yo_opt(y, 365)))
        .map(|d| d.and_hms_opt(12, 0, 0).expect("noon").and_utc())
        .find(|c| *c >= history_start)
        .unwrap_or(history_start);
    let reach = seg.gap_jitter * seg.gap_days;
    (centre + days((2.0 * u - 1.0) * reach)).max(history_start)
}

/// A synthetic customer's habitual local hour, from their id like the birthday (no random draw,
/// so the rest of the run's draws stay the same): `habit.share` of them have one of `habit.hours`.
fn habit_of(id: &str, habit: &Habit) -> Option<u32> {
    if habit.hours.is_empty() {
        return None;
    }
    let h = id.bytes().fold(0x84222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3) ^ (h >> 29)
    });
    let unit = (h % 10_000) as f64 / 10_000.0;
    (unit < habit.share).then(|| habit.hours[((h / 10_000) % habit.hours.len() as u64) as usize])
}

/// A customer's response kind, from their id like the habit (no random draw, so a model with
/// every customer persuadable keeps the run's other draws and figures).
fn kind_of(id: &str, shares: KindShares) -> Kind {
    let h = id.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3) ^ (h >> 31)
    });
    let w = shares.weights();
    let total: f64 = w.iter().sum();
    let mut x = (h % 1_000_000) as f64 / 1_000_000.0 * total;
    for (k, share) in Kind::ALL.iter().zip(w) {
        x -= share;
        if x < 0.0 {
            return *k;
        }
    }
    Kind::Persuadable
}

/// When a customer with a habitual hour places an order planned for `at`: `habit.orders_at_hour`
/// of the time within that local hour of the same local day (a minute into it at the earliest),
/// else at `at`. Customers without a habit order at `at`.
pub fn at_habit(
    p: &Person,
    at: DateTime<Utc>,
    habit: &Habit,
    rng: &mut impl Draw,
) -> DateTime<Utc> {
    let Some(hour) = p.habit_hour else {
        return at;
    };
    if !rng.chance(habit.orders_at_hour) {
        return at;
    }
    let zone: Zone = p.time_zone.parse().unwrap_or(Zone::UTC);
    let minute = 1 + (rng.unit() * 58.0) as u32;
    let Some(local) = zone.date(at).and_hms_opt(hour, minute, 0) else {
        return at;
    };
    zone.earliest(local).unwrap_or(at)
}

/// The local hour of `at` for this customer.
pub fn local_hour(p: &Person, at: DateTime<Utc>) -> u32 {
    use chrono::Timelike;
    let zone: Zone = p.time_zone.parse().unwrap_or(Zone::UTC);
    zone.local(at).hour()
}

/// An orders-file row for a simulated order.
pub fn order_row(p: &Person, at: DateTime<Utc>, amount: Money, _first: bool) -> OrderRow {
    OrderRow {
        line: 0,
        customer_id: p.id.clone(),
        email: p.email.clone(),
        ordered_at: at,
        amount,
        refunded: Money(0),
        currency: Some(p.currency.clone()),
        first_name: Some(p.first_name.clone()),
        locale: Some(p.locale.clone()),
        time_zone: Some(p.time_zone.clone()),
        category: Some(p.category.clone()),
        product: Some(p.product.clone()),
        birthday: p.birthday,
        renewal_due_at: None,
        signed_up_at: None,
        email_status: None,
        order_id: None,
        quantity: None,
        price: None,
    }
}

/// A synthetic customer's birthday, from their id (no random draw, so runs keep their figures):
/// six in ten give one, spread over the year.
fn birthday_of(id: &str) -> Option<Birthday> {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    if h % 10 >= 6 {
        return None;
    }
    let day = chrono::NaiveDate::from_yo_opt(2001, 1 + ((h / 10) % 365) as u32)?;
    Birthday::parse(&day.format("--%m-%d").to_string()).ok()
}

/// People for customers read from an orders file: their rhythm is their own median gap, their
/// reason is drawn from the model, and whoever has been quiet for more than twice their rhythm
/// (or 90 days without one) at `start` has stopped.
pub fn from_orders(
    rows: &[OrderRow],
    model: &Behaviour,
    currency: &str,
    start: DateTime<Utc>,
    rng: &mut impl Draw,
) -> Vec<Person> {
    use std::collections::BTreeMap;
    let reasons: Vec<Reason> = model.reasons.keys().copied().collect();
    let reason_weights: Vec<f64> = model.reasons.values().map(|r| r.share).collect();
    let mut by: BTreeMap<&CustomerId, Vec<&OrderRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.ordered_at < start) {
        by.entry(&r.customer_id).or_default().push(r);
    }
    let mut people = Vec::with_capacity(by.len());
    for (id, mut os) in by {
        os.sort_by_key(|o| o.ordered_at);
        let last = os[os.len() - 1];
        let mut gaps: Vec<f64> = os
            .windows(2)
            .map(|w| (w[1].ordered_at - w[0].ordered_at).num_seconds() as f64 / 86_400.0)
            .collect();
        gaps.sort_by(f64::total_cmp);
        let gap = gaps.get(gaps.len() / 2).copied().unwrap_or(0.0);
        let avg = os.iter().map(|o| o.amount.0).sum::<i64>() / os.len() as i64;
        let quiet = (start - last.ordered_at).num_seconds() as f64 / 86_400.0;
        let churned = if gap > 0.0 {
            quiet > 2.0 * gap
        } else {
            quiet > 90.0
        };
        let pick = |f: fn(&OrderRow) -> &Option<String>| os.iter().rev().find_map(|o| f(o).clone());
        let mut p = Person {
            birthday: os.iter().rev().find_map(|o| o.birthday),
            habit_hour: None,
            id: id.clone(),
            email: last.email.clone(),
            locale: pick(|o| &o.locale).unwrap_or_else(|| "en".into()),
            time_zone: pick(|o| &o.time_zone).unwrap_or_else(|| "UTC".into()),
            first_name: pick(|o| &o.first_name).unwrap_or_default(),
            segment: None,
            gap_days: gap,
            gap_jitter: 0.25,
            amount: Money(avg.max(1)),
            currency: pick(|o| &o.currency).unwrap_or_else(|| currency.to_string()),
            category: pick(|o| &o.category).unwrap_or_default(),
            product: pick(|o| &o.product).unwrap_or_default(),
            reason: reasons[rng.weighted(&reason_weights)],
            kind: kind_of(id.as_str(), model.response.shares()),
            driven_away: false,
            natural_return_at: None,
            churn_at: churned.then_some(last.ordered_at),
            churned,
            next_order_at: None,
            return_at: None,
            code: None,
            unreachable: false,
        };
        if !churned && gap > 0.0 {
            let mut at = last.ordered_at + days(next_gap(gap, p.gap_jitter, rng));
            while at < start {
                at += days(next_gap(gap, p.gap_jitter, rng));
            }
            p.next_order_at = Some(at);
            if rng.chance(model.churn.share) {
                p.churn_at = Some(start + days(rng.unit() * 180.0));
            }
        }
        people.push(p);
    }
    people
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rand::SeedableRng;

    /// The first simulated day of these tests.
    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap()
    }

    /// `n` synthetic customers of the shipped model for a run of `days` from [`start`].
    fn base(n: usize, days: u32, seed: u64) -> (Vec<Person>, Vec<OrderRow>) {
        let model = Behaviour::default_model();
        synthetic(
            n,
            &model,
            "EUR",
            start(),
            days,
            &mut SmallRng::seed_from_u64(seed),
        )
    }

    #[test]
    fn the_synthetic_base_has_history_before_the_start_and_some_already_gone() {
        let start = start();
        let (people, rows) = base(2_000, 180, 7);
        assert_eq!(people.len(), 2_000);
        assert!(rows.iter().all(|r| r.ordered_at < start));
        assert!(people
            .iter()
            .all(|p| rows.iter().any(|r| r.customer_id == p.id)));
        let gone = people.iter().filter(|p| p.churned).count();
        assert!(gone > 300 && gone < 1_500, "{gone}");
        let buying = people.iter().filter(|p| p.next_order_at.is_some()).count();
        assert!(buying > 300, "{buying}");
        for l in ["en", "sv", "da", "pl", "pt"] {
            assert!(people.iter().any(|p| p.locale == l));
        }
        let sv = people.iter().find(|p| p.locale == "sv").unwrap();
        assert_eq!(sv.time_zone, "Europe/Stockholm");
    }

    #[test]
    fn habitual_customers_order_mostly_within_their_local_hour_and_the_sender_can_tell() {
        use shared::domain::schedule::habitual_hour;
        let start = start();
        let (people, rows) = base(2_000, 180, 3);
        let habitual = people.iter().filter(|p| p.habit_hour.is_some()).count();
        assert!((1_200..1_600).contains(&habitual), "{habitual}");
        let (mut found, mut frequent) = (0, 0);
        for p in people.iter().filter(|p| p.habit_hour.is_some()) {
            let times: Vec<_> = rows
                .iter()
                .filter(|r| r.customer_id == p.id)
                .map(|r| r.ordered_at)
                .collect();
            assert!(times.iter().all(|t| *t < start));
            if times.len() >= 6 {
                frequent += 1;
                let zone: Zone = p.time_zone.parse().unwrap();
                if habitual_hour(&times, &zone) == p.habit_hour {
                    found += 1;
                }
            }
        }
        // The sender's rule reads the habit from the orders of nearly every frequent buyer.
        assert!(
            frequent > 300 && found * 10 >= frequent * 9,
            "{found} of {frequent}"
        );
        // Customers without a habit order at any hour: no hour holds most of their orders.
        let orders_of = |id: &str| rows.iter().filter(|r| r.customer_id == id).count();
        let scattered = people
            .iter()
            .filter(|p| p.habit_hour.is_none())
            .max_by_key(|p| orders_of(&p.id))
            .unwrap();
        let hours: std::collections::BTreeSet<u32> = rows
            .iter()
            .filter(|r| r.customer_id == scattered.id)
            .map(|r| local_hour(scattered, r.ordered_at))
            .collect();
        assert!(hours.len() > 10, "{hours:?}");
    }

    #[test]
    fn each_segment_has_its_own_mix_of_response_kinds() {
        let model = Behaviour::default_model();
        let (people, _) = base(20_000, 30, 3);
        for (i, seg) in model.segments.iter().enumerate() {
            let of_seg: Vec<&Person> = people.iter().filter(|p| p.segment == Some(i)).collect();
            let shares = seg.response.unwrap_or(model.response.shares());
            let total: f64 = shares.weights().iter().sum();
            for (kind, want) in Kind::ALL.iter().zip(shares.weights()) {
                let got =
                    of_seg.iter().filter(|p| p.kind == *kind).count() as f64 / of_seg.len() as f64;
                assert!(
                    (got - want / total).abs() < 0.04,
                    "{}: {} {got:.3} against {want}",
                    seg.name,
                    kind.as_str()
                );
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_customers() {
        assert_eq!(base(100, 30, 1).1, base(100, 30, 1).1);
    }
}
