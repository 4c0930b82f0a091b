//! What an activity changes on the customer's profile, and its next due time.

use chrono::{DateTime, Utc};
use shared::campaign::config::LapsePolicy;
use shared::domain::customer::{EmailStatus, OrderRecord, Profile};
use shared::domain::due;
use shared::domain::engagement::PageKind;
use shared::domain::sequence::Enrollment;
use shared::fitted::lapse_policy;
use shared::ports::StoreError;

use super::{Activity, Kind};
use crate::{Deps, SAVE_ATTEMPTS};

fn apply(profile: &mut Profile, a: &Activity, still_with_us: &[Kind]) {
    // An erased customer's tombstone records nothing: no orders, dates or tags come back.
    if profile.erased {
        return;
    }
    {
        // Details the shop sent replace the stored ones.
        let f = &a.profile;
        for (slot, value) in [
            (&mut profile.email, f.email.as_ref().map(|e| e.to_string())),
            (&mut profile.first_name, f.first_name.clone()),
            (
                &mut profile.locale,
                f.locale.as_ref().map(|l| l.to_string()),
            ),
            (
                &mut profile.time_zone,
                f.time_zone.as_ref().map(|z| z.to_string()),
            ),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        if f.birthday.is_some() {
            profile.birthday = f.birthday;
        }
        if f.renewal_due_at.is_some() {
            profile.renewal_due_at = f.renewal_due_at;
        }
    }
    match a.kind {
        Kind::Order => {
            if let Some((amount, currency)) = &a.amount {
                profile.record_order_in(
                    OrderRecord {
                        at: a.occurred_at,
                        amount: *amount,
                        product: a.product.clone(),
                        category: a.category.clone(),
                        currency: None,
                    },
                    currency,
                );
            }
        }
        Kind::Profile | Kind::RenewalUpcoming => {}
        // A visit to the terms or cancellation page is an early signal (another page, nothing).
        Kind::PageView => {
            if a.page_kind.is_some_and(PageKind::is_signal) {
                profile.signal_page_viewed_at = Some(
                    profile
                        .signal_page_viewed_at
                        .map_or(a.occurred_at, |l| l.max(a.occurred_at)),
                );
            }
        }
        Kind::Login | Kind::SubscriptionRenewed | Kind::SubscriptionCancelled => {
            profile.last_activity_at = Some(
                profile
                    .last_activity_at
                    .map_or(a.occurred_at, |l| l.max(a.occurred_at)),
            );
            // A sign of life the campaign counts: the lapse clock restarts from it.
            if still_with_us.contains(&a.kind) {
                profile.still_with_us_at = Some(
                    profile
                        .still_with_us_at
                        .map_or(a.occurred_at, |l| l.max(a.occurred_at)),
                );
            }
        }
    }
    match a.kind {
        Kind::SubscriptionCancelled => {
            profile.tags.insert("subscription:cancelled".into());
        }
        Kind::SubscriptionRenewed => {
            profile.tags.remove("subscription:cancelled");
        }
        Kind::RenewalUpcoming => {
            profile.tags.insert("subscription:renewal_upcoming".into());
        }
        _ => {}
    }
    if a.kind == Kind::Order {
        profile.tags.remove("subscription:renewal_upcoming");
    }
    if a.profile.marketing_opt_out && profile.email_status.moves_to(EmailStatus::Unsubscribed) {
        profile.email_status = EmailStatus::Unsubscribed;
    }
}

pub(super) async fn update_profile(
    deps: &Deps,
    a: &Activity,
    enrollment: Option<&Enrollment>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let config = deps.campaign.config();
    // The stored customer model, read only when this activity sets a due time (not for an
    // erased customer or one an enrollment drives), once whatever the retries.
    let mut lapse: Option<LapsePolicy> = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let stored = deps.store.get_profile(&a.customer_id).await?;
        let mut p = stored
            .clone()
            .unwrap_or_else(|| Profile::new(a.customer_id.as_str()));
        apply(&mut p, a, &config.sending.still_with_us);
        if p.erased {
            p.due_at = None;
        } else if enrollment.is_none_or(|e| e.status.is_final()) {
            let policy = match lapse.take() {
                Some(policy) => policy,
                None => lapse_policy(deps.store.as_ref(), &config.name, &config.lapse).await,
            };
            p.due_at = due::next_due(&p, &policy, config.watch(), now);
            lapse = Some(policy);
        }
        if stored.as_ref() == Some(&p) {
            return Ok(());
        }
        match deps.store.save_profile(&p).await {
            Ok(_) => return Ok(()),
            Err(err) if err.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(err) => return Err(err),
        }
    }
}
