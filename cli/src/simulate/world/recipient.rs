//! What a recipient does with an email they receive: open it, click, answer, unsubscribe, come
//! back and order, or nothing.

use super::*;

impl World {
    /// A moment within `hours` after `now`, drawn uniformly.
    fn soon(&mut self, now: DateTime<Utc>, hours: f64) -> DateTime<Utc> {
        now + Duration::seconds((self.rng.unit() * hours * 3600.0) as i64 + 1)
    }

    /// Customer `i` can no longer be reached by email; `action`, which says so, comes within
    /// `hours` after `now`.
    fn lose(&mut self, i: usize, now: DateTime<Utc>, hours: f64, action: Action) {
        self.people[i].unreachable = true;
        let at = self.soon(now, hours);
        self.push(at, action);
    }

    /// A recipient receives an email at `now` and decides what to do with it.
    pub(super) async fn receive(
        &mut self,
        now: DateTime<Utc>,
        message_id: String,
        email: Email,
    ) -> CliResult<()> {
        let Some(cid) = tag(&email, "customer_id") else {
            return Err(CliError::Simulation(
                "an email carries no customer_id tag".into(),
            ));
        };
        let Some(&i) = self.index.get(cid) else {
            return Err(CliError::Simulation(format!(
                "an email went to unknown customer {cid}"
            )));
        };
        self.tally.emails += 1;
        let kind = self.people[i].kind;
        self.tally.by_kind.entry(kind).or_default().emails += 1;
        if let Some(step) = tag(&email, "step").and_then(|s| s.parse::<usize>().ok()) {
            if let Some(slot) = self.tally.emails_per_step.get_mut(step) {
                *slot += 1;
            }
        }
        let e = self.model.email.clone();
        let ses = |detail_type: &'static str, link: Option<String>| Action::Ses {
            person: i,
            detail_type,
            message_id: message_id.clone(),
            email: Box::new(email.clone()),
            link,
        };
        if self.rng.chance(e.bounce) {
            self.tally.bounces += 1;
            self.lose(i, now, 0.1, ses("Email Bounced", None));
            return Ok(());
        }
        let at = self.soon(now, 0.05);
        self.push(at, ses("Email Delivered", None));
        if self.rng.chance(e.complaint) {
            self.tally.complaints += 1;
            self.lose(i, now, 24.0, ses("Email Complaint Received", None));
            return Ok(());
        }
        let person = self.people[i].clone();
        let reason_model = self.model.reasons[&person.reason].clone();
        let unsubscribe_chance = if person.churned {
            reason_model.unsubscribe
        } else {
            reason_model.unsubscribe / 2.0
        };
        if self.rng.chance(unsubscribe_chance) {
            if let Some(url) = list_unsubscribe(&email) {
                self.tally.unsubscribes += 1;
                self.tally.by_kind.entry(kind).or_default().unsubscribes += 1;
                self.lose(i, now, 48.0, Action::OneClickUnsubscribe { url });
                return Ok(());
            }
        }
        let code = find_code(&email.text);
        if code.is_some() {
            self.tally.by_kind.entry(kind).or_default().codes_sent += 1;
        }
        let reward = match &code {
            Some(c) => self.reward_kind(c).await?,
            None => None,
        };
        if let Some(c) = &code {
            let valid_for = Duration::days(14);
            self.people[i].code = Some((c.clone(), now + valid_for));
        }
        let hour = local_hour(&person, now);
        self.tally.emails_by_local_hour[hour as usize] += 1;
        let (timing, habit_factor) = match person.habit_hour {
            Some(h) if h == hour => (Timing::Within, self.model.habit.open_at_hour),
            Some(_) => (Timing::Other, self.model.habit.open_off_hour),
            None => (Timing::Without, 1.0),
        };
        self.figures(timing).emails += 1;
        let open = if person.churned {
            e.open
        } else {
            e.open_if_active
        } * habit_factor;
        if !self.rng.chance(open.clamp(0.0, 1.0)) {
            let reminded = e.return_without_open * reason_model.return_factor;
            if person.churned
                && kind == Kind::Persuadable
                && self.rng.chance(reminded.clamp(0.0, 1.0))
            {
                let at = now + days(self.rng.exp_mean(e.order_within_days_mean));
                self.schedule_return(i, at, None);
            }
            return Ok(());
        }
        self.tally.opens += 1;
        self.tally.opens_by_local_hour[hour as usize] += 1;
        self.figures(timing).opens += 1;
        // Who reads at their habitual hour reads at once; others within `open_within_hours`.
        let opened_at = match timing {
            Timing::Within => self.soon(now, 0.5),
            _ => self.soon(now, e.open_within_hours),
        };
        self.push(opened_at, ses("Email Opened", None));
        if kind == Kind::DoNotDisturb {
            self.drive_away(i, opened_at);
            if self
                .rng
                .chance(self.model.response.do_not_disturb_unsubscribe)
            {
                if let Some(url) = list_unsubscribe(&email) {
                    self.tally.unsubscribes += 1;
                    self.tally.by_kind.entry(kind).or_default().unsubscribes += 1;
                    self.lose(i, opened_at, 1.0, Action::OneClickUnsubscribe { url });
                    return Ok(());
                }
            }
        }
        let links = links_in(&email.text, &self.webhook.public_base_url);
        if self.rng.chance(e.click_given_open) {
            self.tally.clicks += 1;
            let shop = first_shop_link(&email.text, &self.webhook.public_base_url);
            self.push(
                opened_at + Duration::seconds(40),
                ses("Email Clicked", shop),
            );
        }
        let survey: Vec<&(String, Answer)> = links
            .iter()
            .filter(|(_, a)| matches!(a, Answer::Reason(_)))
            .collect();
        if !survey.is_empty() && self.rng.chance(e.survey_given_open) {
            let answer = if self.rng.chance(e.survey_truthful) {
                person.reason
            } else {
                Reason::ALL
                    [(self.rng.unit() * Reason::ALL.len() as f64) as usize % Reason::ALL.len()]
            };
            if let Some((url, _)) = survey.iter().find(|(_, a)| *a == Answer::Reason(answer)) {
                self.tally.survey_answers += 1;
                self.push(
                    opened_at + Duration::seconds(90),
                    Action::FollowLink { url: url.clone() },
                );
            }
        }
        let nps: Vec<&(String, Answer)> = links
            .iter()
            .filter(|(_, a)| matches!(a, Answer::Nps(_)))
            .collect();
        if !nps.is_empty() && self.rng.chance(e.nps_given_open) {
            let jitter = (self.rng.unit() * 3.0) as i16 - 1;
            let score = (i16::from(reason_model.nps) + jitter).clamp(0, 10) as u8;
            if let Some((url, _)) = nps.iter().find(|(_, a)| *a == Answer::Nps(score)) {
                self.tally.nps_answers += 1;
                self.push(
                    opened_at + Duration::seconds(120),
                    Action::FollowLink { url: url.clone() },
                );
            }
        }
        if self.rng.chance(e.fewer_emails_given_open) {
            if let Some((url, _)) = links.iter().find(|(_, a)| *a == Answer::FewerEmails) {
                self.tally.fewer_emails += 1;
                self.push(
                    opened_at + Duration::seconds(150),
                    Action::FewerEmails { url: url.clone() },
                );
            }
        }
        if kind != Kind::Persuadable {
            // Nothing in an email changes when a sure thing or a lost cause buys.
            return Ok(());
        }
        if person.churned {
            let chance = self.model.return_chance(person.reason, reward);
            if self.rng.chance(chance) {
                self.figures(timing).orders += 1;
                let at = opened_at + days(self.rng.exp_mean(e.order_within_days_mean));
                let at = self.habit_time(i, at, opened_at);
                let use_code = code.filter(|_| self.rng.chance(e.use_code));
                self.schedule_return(i, at, use_code);
            }
        } else if let Some(next) = person.next_order_at {
            if next > opened_at {
                let sooner = opened_at
                    + (next - opened_at)
                        * ((1.0 - self.model.churn.active_customer_speed_up) * 1000.0) as i32
                        / 1000;
                self.people[i].next_order_at = Some(sooner);
                self.push(sooner, Action::RhythmOrder(i));
            }
        }
        Ok(())
    }

    /// A do-not-disturb customer opened an email at `at`: they buy no more. A natural return
    /// (or, while still buying, the next order) that would have come before the end is lost.
    fn drive_away(&mut self, i: usize, at: DateTime<Utc>) {
        let end = self.end;
        let p = &mut self.people[i];
        if p.driven_away {
            return;
        }
        p.driven_away = true;
        let lost = if p.churned {
            p.natural_return_at.filter(|n| *n > at && *n < end)
        } else {
            p.next_order_at.filter(|n| *n > at && *n < end)
        };
        p.return_at = None;
        p.natural_return_at = None;
        p.next_order_at = None;
        p.churned = true;
        p.churn_at = Some(at);
        if lost.is_some() {
            let value = p.amount.0 as f64 / 100.0;
            let k = self.tally.by_kind.entry(Kind::DoNotDisturb).or_default();
            k.orders_lost += 1;
            k.value_lost += value;
        }
    }

    /// Schedules a return after an email, unless an earlier one is already pending.
    pub(super) fn schedule_return(&mut self, i: usize, at: DateTime<Utc>, code: Option<String>) {
        if self.people[i].return_at.is_some_and(|r| r <= at) {
            return;
        }
        self.people[i].return_at = Some(at);
        if code.is_some() {
            self.people[i].code = None;
        }
        self.push(
            at,
            Action::Return {
                person: i,
                code,
                after_email: true,
            },
        );
    }

    pub(super) async fn reward_kind(&self, code: &str) -> CliResult<Option<RewardKind>> {
        let Ok(code) = RewardCode::parse(code) else {
            return Ok(None);
        };
        Ok(self.rewards().get_reward(&code).await?.map(|r| r.spec.kind))
    }
}
