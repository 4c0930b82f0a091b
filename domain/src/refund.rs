//! What a refund or a cancellation takes back: the order's revenue comes off the enrollment that
//! counted it (and so off the campaign's counters) and off the customer's profile, and a win
//! whose every counted order was refunded or cancelled within the attribution window is no
//! longer a win. A redeemed reward code stays redeemed: a refund never re-enables it.
//!
//! Refunds arrive in two shapes: one refund at a time (the activity contract), deduplicated by
//! their event id, and the total refunded so far (Stripe's `amount_refunded`, WooCommerce's
//! order), which is idempotent by itself. Shopify sends both for the same refund, in no set
//! order: `refunds/create` (this refund, by its id) and `orders/updated` (every refund of the
//! order so far, each by its id). Each is a [`Refunded`]; each order remembers what was refunded
//! of it, and which of the platform's refund ids that counts, so a refund delivered both ways is
//! taken off once, and nothing ever takes back more than the order was worth.

use chrono::{DateTime, Duration, Utc};

use super::customer::{OrderRecord, Profile};
use super::money::Money;
use super::sequence::{Attribution, Enrollment, Status, TakenBack};

/// How many of the platform's refund ids an order remembers (the latest): more refunds of one
/// order than this are rare, and a delivery of an older one than these is then taken as new.
pub const REFUND_IDS: usize = 20;

/// How much of an order a refund takes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refunded {
    /// The whole order: a cancellation, or a refund of everything.
    Whole,
    /// This refund's amount, on top of earlier ones.
    This(Money),
    /// Everything refunded of the order so far.
    SoFar(Money),
    /// One refund the platform names by `id` (Shopify's `refunds/create`): [`Refunded::This`],
    /// unless the order already counts that id.
    Named { id: String, amount: Money },
    /// Every refund of the order so far, each by the platform's id (Shopify's `orders/updated`):
    /// [`Refunded::SoFar`] of their sum, and each id is counted from then on.
    AllNamed(Vec<(String, Money)>),
}

impl Refunded {
    /// What is refunded in all of an order worth `minor`, `before` of which was refunded
    /// already: never more than the order, never less than before (a total delivered late).
    pub fn total(&self, minor: i64, before: i64) -> i64 {
        self.apply(minor, before, &mut Vec::new())
    }

    /// [`Refunded::total`], for an order that counts the refund ids `ids`, which it adds to
    /// (keeping the latest [`REFUND_IDS`]).
    pub fn apply(&self, minor: i64, before: i64, ids: &mut Vec<String>) -> i64 {
        let mut count = |id: &str| {
            if ids.iter().any(|i| i == id) {
                false
            } else {
                ids.push(id.to_string());
                if ids.len() > REFUND_IDS {
                    ids.remove(0);
                }
                true
            }
        };
        let total = match self {
            Refunded::Whole => minor,
            Refunded::This(m) => before.saturating_add(m.0.max(0)),
            Refunded::SoFar(m) => m.0,
            Refunded::Named { id, amount } => {
                if count(id) {
                    before.saturating_add(amount.0.max(0))
                } else {
                    before
                }
            }
            Refunded::AllNamed(refunds) => refunds.iter().fold(0i64, |sum, (id, m)| {
                count(id);
                sum.saturating_add(m.0.max(0))
            }),
        };
        total.clamp(before.min(minor), minor.max(0))
    }
}

/// What refund `refunded` of order `order_id` at `at` does to enrollment `e`: the enrollment to
/// save and what it takes back (`None`: the enrollment counted no such order, or nothing more of
/// it is refunded, as for a replay). The win is taken back when every order counted for it is
/// wholly refunded and the refund comes within `attribution_days` of the win; after that the
/// revenue comes off, the win stays. `campaign_currency` is the currency `revenue_minor` holds.
pub fn enrollment(
    e: &Enrollment,
    order_id: &str,
    refunded: &Refunded,
    at: DateTime<Utc>,
    attribution_days: u32,
    campaign_currency: &str,
) -> Option<(Enrollment, Attribution)> {
    let i = e.orders.iter().position(|o| o.order_id == order_id)?;
    let mut next = e.clone();
    let order = &mut next.orders[i];
    let total = refunded.apply(order.minor, order.refunded_minor, &mut order.refund_ids);
    let minor = total - order.refunded_minor;
    if minor <= 0 {
        return None;
    }
    order.refunded_minor = total;
    let currency = order.currency.clone();
    if currency.eq_ignore_ascii_case(campaign_currency) {
        next.revenue_minor -= minor;
    }
    let won_at = match e.status {
        Status::WonBack { at: won } => Some(won),
        _ => None,
    };
    let from_win = won_at == Some(next.orders[i].at);
    // The win's own order must be among those counted (an enrollment won before orders were
    // remembered keeps its win), and every counted order wholly refunded.
    let win_taken_back = won_at.is_some_and(|won| {
        at - won <= Duration::days(i64::from(attribution_days))
            && next.orders.iter().any(|o| o.at == won)
            && next.orders.iter().all(|o| o.wholly_refunded())
    });
    if win_taken_back {
        next = next.take_back_win(at).ok()?;
    }
    let taken = TakenBack {
        minor,
        currency,
        from_win,
        win_taken_back,
    };
    Some((
        next.clone(),
        Attribution::Refunded {
            enrollment: next,
            taken,
        },
    ))
}

/// What refund `refunded` of order `order_id` does to profile `p` (`false`: the profile holds no
/// such order, or nothing more is refunded). A partial refund lowers the order's value and the
/// customer's lifetime value; a whole one (or a cancellation) removes the order, as if it had
/// never been placed: it no longer counts among their orders, and their last order is the one
/// before.
pub fn profile(p: &mut Profile, order_id: &str, refunded: &Refunded) -> bool {
    if p.erased {
        return false;
    }
    let Some(i) = p
        .orders
        .iter()
        .position(|o| o.order_id.as_deref() == Some(order_id))
    else {
        return false;
    };
    let order = &mut p.orders[i];
    let total = refunded.apply(order.amount.0, order.refunded.0, &mut order.refund_ids);
    let minor = total - order.refunded.0;
    if minor <= 0 {
        return false;
    }
    order.refunded = Money(total);
    let off = Money(-minor);
    match &order.currency {
        Some(other) => *p.lifetime_value_other.entry(other.clone()).or_default() += off,
        None => p.lifetime_value += off,
    }
    if order.net().0 <= 0 {
        let gone: OrderRecord = p.orders.remove(i);
        p.order_count = p.order_count.saturating_sub(1);
        if p.last_order_at == Some(gone.at) {
            p.last_order_at = latest_order(p);
        }
        if p.first_order_at == Some(gone.at) {
            p.first_order_at = p.all_orders().map(|o| o.at).min();
        }
    }
    true
}

/// The time of the latest order the profile still counts.
fn latest_order(p: &Profile) -> Option<DateTime<Utc>> {
    p.all_orders().map(|o| o.at).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::CustomerId;
    use crate::sequence::{CountedOrder, ExitReason};
    use chrono::TimeZone;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
    }

    fn counted(id: &str, minor: i64) -> CountedOrder {
        CountedOrder {
            order_id: id.into(),
            at: t(5),
            minor,
            currency: "EUR".into(),
            refunded_minor: 0,
            refund_ids: Vec::new(),
        }
    }

    fn won(orders: Vec<CountedOrder>) -> Enrollment {
        let mut e: Enrollment = serde_json::from_value(serde_json::json!({
            "customer_id": "c1", "campaign": "example", "id": "c1#example#1", "version": 3,
            "round": 1, "group": "treated", "variant": "a", "enrolled_at": t(1),
            "status": {"state": "won_back", "at": t(5)}, "sent": [{"step": 1, "at": t(1)}],
        }))
        .unwrap();
        e.revenue_minor = orders.iter().map(|o| o.minor).sum();
        e.orders = orders;
        e
    }

    #[test]
    fn a_refund_never_takes_more_than_the_order_nor_less_than_before() {
        assert_eq!(Refunded::Whole.total(5000, 1000), 5000);
        assert_eq!(Refunded::This(Money(1500)).total(5000, 1000), 2500);
        assert_eq!(Refunded::This(Money(9000)).total(5000, 1000), 5000);
        assert_eq!(Refunded::SoFar(Money(2000)).total(5000, 1000), 2000);
        assert_eq!(
            Refunded::SoFar(Money(500)).total(5000, 1000),
            1000,
            "a total delivered late gives nothing back"
        );
        assert_eq!(Refunded::This(Money(-300)).total(5000, 1000), 1000);
    }

    fn named(id: &str, minor: i64) -> Refunded {
        Refunded::Named {
            id: id.into(),
            amount: Money(minor),
        }
    }

    fn all_named(refunds: &[(&str, i64)]) -> Refunded {
        Refunded::AllNamed(
            refunds
                .iter()
                .map(|(id, m)| ((*id).to_string(), Money(*m)))
                .collect(),
        )
    }

    #[test]
    fn a_named_refund_delivered_by_both_topics_counts_once_in_either_order() {
        // refunds/create first, then the orders/updated that follows it.
        let mut ids = Vec::new();
        let after_create = named("r1", 1500).apply(5000, 0, &mut ids);
        assert_eq!(after_create, 1500);
        assert_eq!(all_named(&[("r1", 1500)]).apply(5000, 1500, &mut ids), 1500);
        // The other way round.
        let mut ids = Vec::new();
        assert_eq!(all_named(&[("r1", 1500)]).apply(5000, 0, &mut ids), 1500);
        assert_eq!(named("r1", 1500).apply(5000, 1500, &mut ids), 1500);
        // A second refund: new by either topic, counted once.
        assert_eq!(named("r2", 1000).apply(5000, 1500, &mut ids), 2500);
        assert_eq!(
            all_named(&[("r1", 1500), ("r2", 1000)]).apply(5000, 2500, &mut ids),
            2500
        );
        assert_eq!(named("r2", 1000).apply(5000, 2500, &mut ids), 2500);
        assert_eq!(ids, ["r1", "r2"]);
    }

    #[test]
    fn an_order_remembers_only_the_latest_refund_ids() {
        let mut ids = Vec::new();
        let mut total = 0;
        for i in 0..=REFUND_IDS {
            total = named(&format!("r{i}"), 1).apply(1000, total, &mut ids);
        }
        assert_eq!(total, REFUND_IDS as i64 + 1);
        assert_eq!(ids.len(), REFUND_IDS);
        assert_eq!(ids[0], "r1", "the oldest went");
    }

    #[test]
    fn a_refund_by_refunds_create_then_orders_updated_takes_the_win_back_once() {
        let e = won(vec![counted("o1", 5000)]);
        let (saved, a) = enrollment(&e, "o1", &named("r1", 5000), t(9), 30, "EUR").unwrap();
        assert!(matches!(
            a,
            Attribution::Refunded {
                taken: TakenBack {
                    win_taken_back: true,
                    minor: 5000,
                    ..
                },
                ..
            }
        ));
        assert_eq!(saved.orders[0].refund_ids, ["r1"]);
        assert!(
            enrollment(&saved, "o1", &all_named(&[("r1", 5000)]), t(9), 30, "EUR").is_none(),
            "orders/updated after it takes nothing more"
        );
        let mut p = Profile::new(CustomerId::parse("c1").unwrap());
        p.record_order_in(
            OrderRecord {
                at: t(5),
                amount: Money(5000),
                order_id: Some("o1".into()),
                ..OrderRecord::default()
            },
            "EUR",
        );
        assert!(profile(&mut p, "o1", &all_named(&[("r1", 2000)])));
        assert!(
            !profile(&mut p, "o1", &named("r1", 2000)),
            "counted already"
        );
        assert_eq!(p.lifetime_value, Money(3000));
    }

    #[test]
    fn a_wholly_refunded_win_within_the_window_is_no_longer_a_win() {
        let e = won(vec![counted("o1", 5000)]);
        let (saved, a) = enrollment(&e, "o1", &Refunded::Whole, t(9), 30, "EUR").unwrap();
        assert_eq!(
            saved.status,
            Status::Exited {
                reason: ExitReason::Refunded,
                at: t(9)
            }
        );
        assert_eq!(saved.revenue_minor, 0);
        let Attribution::Refunded { taken, .. } = a else {
            panic!("{a:?}")
        };
        assert!(taken.win_taken_back && taken.from_win);
        assert_eq!(taken.minor, 5000);
    }

    #[test]
    fn a_partial_refund_takes_its_amount_and_leaves_the_win() {
        let e = won(vec![counted("o1", 5000)]);
        let (saved, a) =
            enrollment(&e, "o1", &Refunded::This(Money(1200)), t(9), 30, "EUR").unwrap();
        assert_eq!(saved.status, Status::WonBack { at: t(5) });
        assert_eq!(saved.revenue_minor, 3800);
        let Attribution::Refunded { taken, .. } = a else {
            panic!("{a:?}")
        };
        assert!(!taken.win_taken_back);
        assert_eq!(taken.minor, 1200);
        assert!(
            enrollment(&saved, "o1", &Refunded::SoFar(Money(1200)), t(9), 30, "EUR").is_none(),
            "the same total again takes nothing"
        );
    }

    #[test]
    fn a_later_order_kept_keeps_the_win_and_a_late_refund_only_takes_revenue() {
        let e = won(vec![counted("o1", 5000), counted("o2", 2000)]);
        let (saved, _) = enrollment(&e, "o1", &Refunded::Whole, t(9), 30, "EUR").unwrap();
        assert!(matches!(saved.status, Status::WonBack { .. }));
        assert_eq!(saved.revenue_minor, 2000);

        let e = won(vec![counted("o1", 5000)]);
        let late = t(5) + Duration::days(31);
        let (saved, _) = enrollment(&e, "o1", &Refunded::Whole, late, 30, "EUR").unwrap();
        assert!(matches!(saved.status, Status::WonBack { .. }));
        assert_eq!(saved.revenue_minor, 0);
    }

    #[test]
    fn an_order_the_enrollment_did_not_count_changes_nothing() {
        let e = won(vec![counted("o1", 5000)]);
        assert!(enrollment(&e, "o9", &Refunded::Whole, t(9), 30, "EUR").is_none());
    }

    #[test]
    fn the_profile_loses_a_cancelled_order_and_a_refunded_part() {
        let mut p = Profile::new(CustomerId::parse("c1").unwrap());
        for (id, day, minor) in [("o1", 2, 3000), ("o2", 8, 5000)] {
            p.record_order_in(
                OrderRecord {
                    at: t(day),
                    amount: Money(minor),
                    product: None,
                    category: None,
                    currency: None,
                    order_id: Some(id.into()),
                    refunded: Money::ZERO,
                    refund_ids: Vec::new(),
                    lines: Vec::new(),
                },
                "EUR",
            );
        }
        assert!(profile(&mut p, "o2", &Refunded::This(Money(1000))));
        assert_eq!(p.lifetime_value, Money(7000));
        assert_eq!(p.orders[1].net(), Money(4000));
        assert!(profile(&mut p, "o2", &Refunded::Whole));
        assert_eq!(p.lifetime_value, Money(3000));
        assert_eq!(p.order_count, 1);
        assert_eq!(p.last_order_at, Some(t(2)));
        assert!(!profile(&mut p, "o2", &Refunded::Whole), "gone already");
    }
}
