//! The oracle (`simulate --targeting oracle`): the targeting decision made on each customer's true
//! chances, which only the simulation knows (their response kind, reason and rhythm), instead
//! of a learned model's. It is the ceiling uplift targeting is measured against.

use shared::domain::enroll::KnownChances;
use shared::domain::sequence::Flow;
use shared::domain::targeting::Chances;

use super::*;

impl World {
    /// Gives the scheduler every reachable customer's true chances at `now`, for every flow
    /// (they depend on whether the customer still buys, not on the flow the product puts them in).
    pub(super) fn give_oracle_chances(&mut self, now: DateTime<Utc>) {
        let config = (*self.scheduler.campaign).clone();
        let window = f64::from(config.sending.attribution_days);
        let reward = config.rewards.default.kind;
        let mut known = KnownChances::new();
        for i in 0..self.people.len() {
            if self.people[i].unreachable {
                continue;
            }
            for flow in Flow::ALL {
                let steps = config.steps_of(flow).len().max(1);
                let c = self.true_chances(i, now, window, steps, reward);
                known.insert((self.people[i].id.clone(), flow), c);
            }
        }
        let mut config = config;
        config.known_chances = Arc::new(known);
        // The oracle knows: it needs no share decided by the rules to go on learning.
        config.targeting.exploration = 0.0;
        self.scheduler.campaign = Arc::new(config);
    }

    /// Customer `i`'s chance of an order within `window` days after `now`: with a sequence of
    /// `steps` emails carrying a `reward`, with the emails alone, and with none.
    fn true_chances(
        &self,
        i: usize,
        now: DateTime<Utc>,
        window: f64,
        steps: usize,
        reward: RewardKind,
    ) -> Chances {
        let p = &self.people[i];
        let e = &self.model.email;
        let open = if p.churned { e.open } else { e.open_if_active };
        // Opens at least one of the emails.
        let opens = 1.0 - (1.0 - open.clamp(0.0, 1.0)).powi(steps as i32);
        let by_themselves = if p.churned {
            self.natural_return_mean(i)
                .map_or(0.0, |mean| 1.0 - (-window / mean).exp())
        } else {
            let next = p
                .next_order_at
                .filter(|n| p.churn_at.is_none_or(|c| *n < c));
            f64::from(u8::from(next.is_some_and(|n| {
                (n - now).num_seconds() as f64 / 86_400.0 <= window
            })))
        };
        let same = |c: f64| Chances {
            with_reward: Some(c),
            email_only: Some(c),
            no_email: by_themselves,
        };
        match p.kind {
            Kind::SureThing | Kind::LostCause => same(by_themselves),
            // An opened email drives them away.
            Kind::DoNotDisturb => same(by_themselves * (1.0 - opens)),
            Kind::Persuadable if p.churned => {
                let reason = &self.model.reasons[&p.reason];
                let reminded = 1.0
                    - (1.0 - (e.return_without_open * reason.return_factor).clamp(0.0, 1.0))
                        .powi(steps as i32);
                let emailed = |kind: Option<RewardKind>| {
                    let back =
                        opens * self.model.return_chance(p.reason, kind) + (1.0 - opens) * reminded;
                    by_themselves + (1.0 - by_themselves) * back
                };
                Chances {
                    with_reward: Some(emailed(Some(reward))),
                    email_only: Some(emailed(None)),
                    no_email: by_themselves,
                }
            }
            Kind::Persuadable => {
                // An opened email brings the next order sooner; the reward changes nothing.
                let sooner = p.next_order_at.is_some_and(|n| {
                    let days = (n - now).num_seconds() as f64 / 86_400.0;
                    days * (1.0 - self.model.churn.active_customer_speed_up) <= window
                });
                let emailed = opens * f64::from(u8::from(sooner)) + (1.0 - opens) * by_themselves;
                same(emailed.max(by_themselves))
            }
        }
    }
}
