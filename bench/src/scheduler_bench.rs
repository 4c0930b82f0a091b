//! Scheduler cost against table size: items read through the due index vs a full scan.

use shared::ports::{DueQuery, PageAt, ScanSegment};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use shared::adapters::embedded::{MemoryBus, MemoryStore};
use shared::campaign::testing::example_campaign;
use shared::emf::MemoryMetrics;
use shared::ports::{Store, DUE_SHARDS};
use shared::retry::RetryPolicy;

use crate::report::{Figure, Figures, Notes, Target};
use crate::world::{self, LocalTable};
use crate::BenchError;

const BENCH: &str = "scheduler";
/// One customer in a hundred is due.
const DUE_EVERY: usize = 100;

/// What one table size measured.
struct Sizing {
    due_reads: u64,
    scan_reads: u64,
    run_reads: u64,
    run_secs: f64,
    scan_secs: f64,
    enrolled: u64,
}

async fn seed(store: Arc<dyn Store>, n: usize, what: &str) -> Result<f64, BenchError> {
    let began = Instant::now();
    let chunks: Vec<Vec<_>> = world::customers(n, DUE_EVERY)
        .chunks(500)
        .map(<[_]>::to_vec)
        .collect();
    let total = chunks.len();
    let mut done = 0usize;
    let mut writes = futures::stream::iter(chunks.into_iter().map(|c| {
        let store = store.clone();
        async move { store.put_profiles(&c).await }
    }))
    .buffer_unordered(4);
    while let Some(r) = writes.next().await {
        r?;
        done += 1;
        if done.is_multiple_of((total / 10).max(1)) || done == total {
            eprintln!(
                "    seeding {what}: {:>3}% ({} customers, {:.0} s)",
                done * 100 / total,
                (done * 500).min(n),
                began.elapsed().as_secs_f64()
            );
        }
    }
    Ok(began.elapsed().as_secs_f64())
}

async fn measure(store: Arc<dyn Store>) -> Result<Sizing, BenchError> {
    let now = world::now();
    let mut due_reads = 0;
    for shard in 0..DUE_SHARDS {
        let mut cursor = None;
        loop {
            let page = store
                .due_page(DueQuery { shard, now }, PageAt::new(cursor, 100))
                .await?;
            due_reads += page.items_read;
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
    }
    let began = Instant::now();
    let mut scan_reads = 0;
    for segment in 0..scheduler::REBUILD_SEGMENTS {
        let mut cursor = None;
        loop {
            let page = store
                .scan_profiles(
                    ScanSegment::new(segment, scheduler::REBUILD_SEGMENTS),
                    PageAt::new(cursor, 1000),
                )
                .await?;
            scan_reads += page.items_read;
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
    }
    let scan_secs = began.elapsed().as_secs_f64();
    let deps = scheduler::Deps {
        store: store.clone(),
        bus: Arc::new(MemoryBus::new()),
        campaign: Arc::new(example_campaign()),
        metrics: Arc::new(MemoryMetrics::default()),
        retry: RetryPolicy::default(),
    };
    let began = Instant::now();
    let summary = scheduler::run(
        &deps,
        scheduler::Input {
            now,
            mode: scheduler::Mode::Due,
        },
        scheduler::Budget::unlimited(),
    )
    .await?;
    Ok(Sizing {
        due_reads,
        scan_reads,
        run_reads: summary.items_read,
        run_secs: began.elapsed().as_secs_f64(),
        scan_secs,
        enrolled: summary.enrolled,
    })
}

fn figures(out: &mut Vec<Figure>, where_: &str, n: usize, s: &Sizing, held: bool) {
    let mut fig = Figures::new(BENCH, out);
    let k = n / 1000;
    let ratio = s.scan_reads as f64 / s.run_reads.max(1) as f64;
    fig.info(
        format!("{where_} {k}k: due customers (1%)"),
        (n / DUE_EVERY) as f64,
        "customers",
    );
    fig.info(
        format!("{where_} {k}k: items read by scheduler::run (due index)"),
        s.run_reads as f64,
        "items",
    );
    fig.info(
        format!("{where_} {k}k: items read by a full scan"),
        s.scan_reads as f64,
        "items",
    );
    fig.info(
        format!("{where_} {k}k: due index alone (16 shards, read-only)"),
        s.due_reads as f64,
        "items",
    );
    fig.info(
        format!("{where_} {k}k: customers enrolled by the run"),
        s.enrolled as f64,
        "customers",
    );
    fig.info(
        format!("{where_} {k}k: scheduler::run wall time"),
        s.run_secs * 1000.0,
        "ms",
    );
    fig.info(
        format!("{where_} {k}k: full scan wall time"),
        s.scan_secs * 1000.0,
        "ms",
    );
    if held {
        fig.held(
            format!("{where_} {k}k: scan / due-index items read"),
            ratio,
            "×",
            Target::AtLeast(50.0),
        );
    } else {
        fig.info(
            format!("{where_} {k}k: scan / due-index items read"),
            ratio,
            "×",
        );
    }
}

/// Runs the scheduler benchmark; returns its figures and what its notes should say.
pub async fn run(out: &mut Vec<Figure>, notes: &mut Notes) -> Result<(), BenchError> {
    let max_seed_secs: f64 = std::env::var("WINBACK_BENCH_MAX_SEED_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(900.0);
    let mut dynamo_100k = false;
    let mut seed_rate = 0.0;
    for n in [10_000usize, 100_000] {
        if n == 100_000 {
            let projected = n as f64 / seed_rate;
            if projected > max_seed_secs {
                notes.push((BENCH, format!(
                    "Seeding 100 000 customers into DynamoDB Local would take about {projected:.0} s \
                     at the {seed_rate:.0} items/s measured at 10k (limit {max_seed_secs:.0} s, \
                     `WINBACK_BENCH_MAX_SEED_SECS`), so the 100k ratio comes from the embedded store, \
                     which counts items read the same way."
                )));
                continue;
            }
        }
        eprintln!("  scheduler: {n} customers on DynamoDB Local");
        let table = LocalTable::create("bench-scheduler").await?;
        let result = async {
            let secs = seed(table.store.clone(), n, "DynamoDB Local").await?;
            if n == 10_000 {
                seed_rate = n as f64 / secs;
            }
            measure(table.store.clone()).await
        }
        .await;
        table.delete().await;
        let s = result?;
        if n == 100_000 {
            dynamo_100k = true;
        }
        figures(out, "DynamoDB Local", n, &s, n == 100_000);
    }
    Figures::new(BENCH, out).info(
        "DynamoDB Local seeding rate (BatchWriteItem, 4 in flight)",
        seed_rate,
        "items/s",
    );
    for n in [10_000usize, 100_000] {
        eprintln!("  scheduler: {n} customers on the embedded store");
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        seed(store.clone(), n, "embedded").await?;
        let s = measure(store).await?;
        figures(out, "embedded", n, &s, n == 100_000 && !dynamo_100k);
    }
    notes.push((BENCH,
        "Each table holds its customers with one in a hundred due (lapsed, due an hour ago); the rest \
         are due 30–120 days from now. \"Items read\" is DynamoDB's `ScannedCount` summed over pages \
         (`Page::items_read`), the figure read capacity is billed on. The scheduler's figure is its \
         `Summary.items_read`: due-index pages only (16 shards); the run's other reads are one \
         `GetItem` of the latest enrollment per due customer, which finds none here. The full scan \
         is `DueIndex::scan_profiles` over all 4 segments, as the rebuild mode reads. The due index \
         reads what is due and nothing else, so its cost grows with the due count and not with the \
         table; a scan grows with the table.".to_string()));
    Ok(())
}
