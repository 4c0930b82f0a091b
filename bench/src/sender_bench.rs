//! Sender: CPU per email, DynamoDB writes per email, and sustained rate against a throttling
//! SES stand-in.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use shared::adapters::checkout::MemoryCheckout;
use shared::adapters::embedded::{MemoryBus, MemoryMailer, MemoryStore};
use shared::campaign::testing::{example, example_campaign};
use shared::domain::experiment::Group;
use shared::domain::reward::Reward;
use shared::domain::sequence::Enrollment;
use shared::emf::MemoryMetrics;
use shared::events::{BusEvent, StepDue};
use shared::ports::{Email, MailError, Mailer, Store};
use shared::retry::RetryPolicy;

use crate::report::{Figure, Figures, Notes, Target};
use crate::world::{self, is_write, LocalTable};
use crate::BenchError;

const BENCH: &str = "sender";

fn deps(store: Arc<dyn Store>, mailer: Arc<dyn Mailer>, rate: Option<f64>) -> sender::Deps {
    sender::Deps {
        store,
        mailer,
        campaign: Arc::new(example().clone()),
        metrics: Arc::new(MemoryMetrics::default()),
        link_keys: shared::signing::LinkKeys::one(b"bench-link-key"),
        public_base_url: "https://hooks.example.com".into(),
        sender_address: "winback@example.com".into(),
        limiter: Arc::new(sender::RateLimiter::new(rate)),
        lease: chrono::Duration::minutes(5),
        checkout: None,
    }
}

/// Seeds `n` due customers and runs the scheduler: returns the `WinbackStepDue` events it published.
async fn enrolled(store: Arc<dyn Store>, n: usize) -> Result<Vec<StepDue>, BenchError> {
    let profiles: Vec<_> = (0..n).map(|i| world::customer(i, true)).collect();
    for chunk in profiles.chunks(500) {
        store.put_profiles(chunk).await?;
    }
    publish_due(store, world::now()).await
}

fn cpu(out: &mut Vec<Figure>) -> Result<(), BenchError> {
    let mut fig = Figures::new(BENCH, out);
    let d = deps(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryMailer::new()),
        None,
    );
    let config = example_campaign();
    let now = world::now();
    let cases: Vec<_> = (0..50)
        .map(|i| {
            let p = world::customer(i, true);
            let e = Enrollment::start(&p.customer_id, &config, 1, Group::Treated, "amount-10", now);
            let r = Reward::issue(
                shared::entropy::reward_code().expect("random source"),
                config.rewards.default.clone(),
                &p.customer_id,
                &config.name,
                &e.id,
                "amount-10",
                1,
                "EUR",
                now,
            );
            (p, e, r, (i % 3 + 1) as u8)
        })
        .collect();
    for (p, e, r, step) in &cases {
        sender::compose(&d, e, p, *step, Some(r), now)?;
    }
    let began = Instant::now();
    let mut emails = 0u64;
    let mut bytes = 0usize;
    while began.elapsed() < Duration::from_secs(3) {
        for (p, e, r, step) in &cases {
            let email = sender::compose(&d, black_box(e), p, *step, Some(r), now)?;
            bytes += email.html.len() + email.text.len();
            black_box(email);
            emails += 1;
        }
    }
    let per = began.elapsed().as_secs_f64() / emails as f64;
    fig.held(
        "compose + render_email, CPU per email (one core)",
        per * 1e6,
        "µs",
        Target::AtMost(200.0),
    );
    fig.info("emails composed per second, one core", 1.0 / per, "/s");
    fig.info(
        "average email size (HTML + text)",
        (bytes as f64 / emails as f64) / 1024.0,
        "KiB",
    );
    Ok(())
}

/// Delivers every step `times` times to `d`: the emails sent and the seconds it took.
async fn deliver_all(
    d: &sender::Deps,
    steps: &[StepDue],
    times: usize,
) -> Result<(u64, f64), BenchError> {
    let began = Instant::now();
    let mut sent = 0u64;
    for s in steps {
        for _ in 0..times {
            if matches!(
                sender::process_step(d, s, world::now()).await?,
                sender::Outcome::Sent { .. }
            ) {
                sent += 1;
            }
        }
    }
    Ok((sent, began.elapsed().as_secs_f64()))
}

async fn end_to_end(out: &mut Vec<Figure>) -> Result<(), BenchError> {
    let mut fig = Figures::new(BENCH, out);
    let store = Arc::new(MemoryStore::new());
    let steps = enrolled(store.clone(), 2000).await?;
    let d = deps(store.clone(), Arc::new(MemoryMailer::new()), None);
    let writes = store.writes();
    let (sent, secs) = deliver_all(&d, &steps, 1).await?;
    fig.info(
        "process_step on the embedded store, per email",
        secs / sent as f64 * 1e6,
        "µs",
    );
    fig.info(
        "embedded store item writes per email (its counter omits metric counters)",
        (store.writes() - writes) as f64 / sent as f64,
        "writes",
    );
    // The same with the example campaign's Shopify checkout connected (an in-memory shop): every
    // issued code is created there before its email, once.
    let store = Arc::new(MemoryStore::new());
    let steps = enrolled(store.clone(), 500).await?;
    let shop = Arc::new(MemoryCheckout::new());
    let mut d = deps(store.clone(), Arc::new(MemoryMailer::new()), None);
    d.checkout = Some(shop.clone());
    // Each message twice, as SQS may deliver it: the shop is asked once.
    let (sent, secs) = deliver_all(&d, &steps, 2).await?;
    fig.info(
        "process_step with a checkout connected (in-memory shop), per email",
        secs / sent.max(1) as f64 * 1e6,
        "µs",
    );
    fig.held(
        "shop checkout calls per issued code (each message delivered twice)",
        shop.calls() as f64 / shop.len().max(1) as f64,
        "calls",
        Target::AtMost(1.0),
    );
    Ok(())
}

/// The scheduler's run at `now`: the `WinbackStepDue` events it published.
async fn publish_due(
    store: Arc<dyn Store>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<StepDue>, BenchError> {
    let bus = Arc::new(MemoryBus::new());
    let deps = scheduler::Deps {
        store,
        bus: bus.clone(),
        campaign: Arc::new(example_campaign()),
        metrics: Arc::new(MemoryMetrics::default()),
        retry: RetryPolicy::default(),
    };
    let input = scheduler::Input {
        now,
        mode: scheduler::Mode::Due,
    };
    scheduler::run(&deps, input, scheduler::Budget::unlimited()).await?;
    Ok(bus
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            BusEvent::WinbackStepDue(s) => Some(s),
            _ => None,
        })
        .collect())
}

/// SQS batches of `size` as the event source mapping delivers them (BatchSize in template.yaml).
fn sqs_batches(steps: &[StepDue], size: usize) -> Vec<SqsEvent> {
    steps
        .chunks(size)
        .map(|chunk| {
            let mut event = SqsEvent::default();
            for (i, s) in chunk.iter().enumerate() {
                let mut record = SqsMessage::default();
                record.message_id = Some(format!("{}-{i}", s.enrollment_id));
                record.body = serde_json::to_string(&BusEvent::WinbackStepDue(s.clone())).ok();
                event.records.push(record);
            }
            event
        })
        .collect()
}

fn write_units(log: &[world::Consumed]) -> f64 {
    log.iter()
        .filter(|c| is_write(&c.label))
        .map(|c| c.units)
        .sum()
}

/// The whole sequence on DynamoDB Local, as deployed: the scheduler publishes each step when it
/// is due, and the sender takes the events in SQS batches of 10.
async fn dynamo_writes(out: &mut Vec<Figure>, notes: &mut Notes) -> Result<(), BenchError> {
    let mut fig = Figures::new(BENCH, out);
    const CUSTOMERS: usize = 200;
    const BATCH: usize = 10;
    let table = LocalTable::create("bench-sender").await?;
    let result = async {
        let store: Arc<dyn Store> = table.store.clone();
        // The first run enrolls (and publishes step 1); its writes are not per email.
        let mut steps = enrolled(store.clone(), CUSTOMERS).await?;
        table.capacity.take();
        let d = deps(store.clone(), Arc::new(MemoryMailer::new()), None);
        let mut per_step = Vec::new();
        let mut all = Vec::new();
        let mut publish_units = 0.0;
        let mut now = world::now();
        while !steps.is_empty() {
            let step = steps[0].step;
            let writes = table.store.writes();
            let mut failures = 0;
            for batch in sqs_batches(&steps, BATCH) {
                failures += sender::handle_batch(&d, batch, now + chrono::Duration::minutes(1))
                    .await
                    .batch_item_failures
                    .len();
            }
            let log = table.capacity.take();
            let sent = steps.len() - failures;
            per_step.push((step, sent, table.store.writes() - writes, write_units(&log)));
            all.extend(log);
            // The next run once the next step is due publishes it (or closes the sunset).
            let Some(next) = store
                .get_enrollment(&steps[0].customer_id, &steps[0].campaign)
                .await?
                .and_then(|e| e.due_at)
            else {
                break;
            };
            now = next;
            steps = publish_due(store.clone(), now).await?;
            publish_units += write_units(&table.capacity.take());
            if steps.first().is_some_and(|s| s.step <= step) {
                break;
            }
        }
        Ok::<_, BenchError>((per_step, all, publish_units))
    }
    .await;
    table.delete().await;
    let (per_step, log, publish_units) = result?;
    let sent: usize = per_step.iter().map(|p| p.1).sum();
    let sent_f = sent.max(1) as f64;
    let writes: u64 = per_step.iter().map(|p| p.2).sum();
    let units = write_units(&log);
    fig.info(
        "DynamoDB Local: emails sent over the whole sequence (SQS batches of 10)",
        sent as f64,
        "emails",
    );
    fig.held(
        "DynamoDB item writes per email, whole sequence (DynamoStore::writes)",
        writes as f64 / sent_f,
        "writes",
        Target::AtMost(3.0),
    );
    fig.held("DynamoDB write capacity units per email, whole sequence (ConsumedCapacity, index included)",
        units / sent_f,
        "WCU",
        Target::AtMost(3.0));
    for (step, n, _, u) in &per_step {
        fig.info(
            format!("write units per email, step {step}"),
            u / (*n).max(1) as f64,
            "WCU",
        );
    }
    fig.info("scheduler runs between the steps (publish the next, close the sunset): write units per email",
        publish_units / sent_f,
        "WCU");
    let mut by_label: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for c in &log {
        let e = by_label.entry(c.label.clone()).or_default();
        e.0 += 1;
        e.1 += c.units;
    }
    let mut md = String::from(
        "Per email over the whole sequence (step 1 issues the reward code, later steps reuse it), what the sender asked DynamoDB Local for (`ReturnConsumedCapacity: TOTAL` added to every request by an SDK interceptor; the label is the operation and the kind of item by its sort key). Write units include the due index: the claim and the mark keep the due time the scheduler set when it published the step, and enrollments are stored outside the index's projection, so neither writes the index. Counts are written once per cohort and day per SQS batch. The profile is read up to twice per email: to decide the step, and again after the claim, right before SES, so that no email follows an unsubscribe acknowledged meanwhile (RELIABILITY.md, case 6).\n\n| request | per email | capacity units per email |\n| --- | --- | --- |\n",
    );
    for (label, (count, u)) in &by_label {
        md.push_str(&format!(
            "| `{label}` | {:.2} | {} |\n",
            *count as f64 / sent_f,
            if u.is_finite() {
                format!("{:.2}", u / sent_f)
            } else {
                "not reported".into()
            }
        ));
    }
    md.push_str("\n| step | emails | item writes per email | write units per email |\n| --- | --- | --- | --- |\n");
    for (step, n, w, u) in &per_step {
        let n_f = (*n).max(1) as f64;
        md.push_str(&format!(
            "| {step} | {n} | {:.2} | {:.2} |\n",
            *w as f64 / n_f,
            u / n_f
        ));
    }
    notes.push((BENCH, md));
    Ok(())
}

/// An SES stand-in that allows `rate` sends a second (token bucket of `burst`) and answers
/// `Throttled` past it, after a fixed latency.
struct ThrottlingSes {
    rate: f64,
    burst: f64,
    latency: Duration,
    bucket: Mutex<(f64, Instant)>,
    accepted: Mutex<Vec<Instant>>,
    throttled: AtomicU64,
}

#[async_trait]
impl Mailer for ThrottlingSes {
    async fn send(&self, _email: &Email) -> Result<String, MailError> {
        let ok = {
            let mut b = self.bucket.lock().expect("bucket");
            let now = Instant::now();
            b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.rate).min(self.burst);
            b.1 = now;
            if b.0 >= 1.0 {
                b.0 -= 1.0;
                self.accepted.lock().expect("accepted").push(now);
                true
            } else {
                false
            }
        };
        tokio::time::sleep(self.latency).await;
        if ok {
            Ok(format!(
                "ses-{}",
                self.accepted.lock().expect("accepted").len()
            ))
        } else {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            Err(MailError::Throttled(
                "Maximum sending rate exceeded.".into(),
            ))
        }
    }
}

async fn sustained(out: &mut Vec<Figure>, notes: &mut Notes) -> Result<(), BenchError> {
    let mut fig = Figures::new(BENCH, out);
    const RATE: f64 = 50.0;
    const SENDERS: usize = 2;
    const EMAILS: usize = 600;
    let store = Arc::new(MemoryStore::new());
    let steps = enrolled(store.clone(), EMAILS).await?;
    let ses = Arc::new(ThrottlingSes {
        rate: RATE,
        burst: RATE / 10.0,
        latency: Duration::from_millis(15),
        // Idle SES has its whole burst available.
        bucket: Mutex::new((RATE / 10.0, Instant::now())),
        accepted: Mutex::new(Vec::new()),
        throttled: AtomicU64::new(0),
    });
    let mut handles = Vec::new();
    for part in steps.chunks(steps.len().div_ceil(SENDERS)) {
        let d = deps(store.clone(), ses.clone(), Some(RATE / SENDERS as f64));
        let part = part.to_vec();
        handles.push(tokio::spawn(async move {
            let mut errors = 0u64;
            for s in &part {
                if sender::process_step(&d, s, world::now()).await.is_err() {
                    errors += 1;
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for h in handles {
        errors += h.await.map_err(|e| BenchError::Setup(e.to_string()))?;
    }
    let accepted = ses.accepted.lock().expect("accepted").clone();
    let span = match (accepted.first(), accepted.last()) {
        (Some(a), Some(b)) if accepted.len() > 1 => b.duration_since(*a).as_secs_f64(),
        _ => f64::NAN,
    };
    let achieved = (accepted.len() - 1) as f64 / span;
    fig.info("SES stand-in limit", RATE, "emails/s");
    fig.held(
        "sustained sends against the limit",
        achieved,
        "emails/s",
        Target::AtLeast(0.95 * RATE),
    );
    fig.info(
        "sustained sends as a share of the limit",
        100.0 * achieved / RATE,
        "%",
    );
    fig.held(
        "throttling errors from the SES stand-in",
        ses.throttled.load(Ordering::Relaxed) as f64,
        "errors",
        Target::AtMost(0.0),
    );
    fig.info("failed process_step calls", errors as f64, "calls");
    notes.push((BENCH, format!(
        "Sustained rate: {EMAILS} due steps split over {SENDERS} concurrent senders (the SQS event \
         source's `MaximumConcurrency`), each with `sender::RateLimiter` at the limit / {SENDERS} as \
         the deployed sender paces (`SES_MAX_SEND_RATE / SENDER_MAX_CONCURRENCY`), on the embedded \
         store. The SES stand-in enforces {RATE} emails/s with a token bucket of {} (a tenth of a \
         second of burst), answers after 15 ms, and counts every send it throttles. The rate is \
         accepted sends over the time from the first to the last.",
        RATE / 10.0
    )));
    Ok(())
}

/// Runs the sender benchmark.
pub async fn run(out: &mut Vec<Figure>, notes: &mut Notes) -> Result<(), BenchError> {
    eprintln!("  sender: CPU per email");
    cpu(out)?;
    eprintln!("  sender: end to end on the embedded store");
    end_to_end(out).await?;
    notes.push((
        BENCH,
        "Checkout: the due steps of 500 enrolled customers, with the example campaign's Shopify checkout \
         connected (the in-memory shop, `MemoryCheckout`), each SQS message delivered twice as \
         SQS may deliver it. A call is one `Checkout::create_code` or `disable_code`: for Shopify \
         one GraphQL `discountCodeBasicCreate`, for WooCommerce one `POST /coupons`, for Stripe \
         two requests (the coupon, then the promotion code). The sender creates each issued code \
         once, before its email: the reward records `in_checkout_at`, so the second delivery, \
         and a later email that reuses the code, ask the shop nothing. A code replaced by a later \
         email (the survey answer changed the reward) costs one more call, to disable it; none \
         is replaced here."
            .to_string(),
    ));
    eprintln!("  sender: writes per email on DynamoDB Local");
    dynamo_writes(out, notes).await?;
    eprintln!("  sender: sustained rate against a throttling SES stand-in");
    sustained(out, notes).await?;
    Ok(())
}
