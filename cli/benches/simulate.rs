//! Wall time of `winback simulate` on the embedded default: 10 000 customers over 180 days.
//! Run with `cargo bench -p winback-cli --bench simulate` (release profile). Prints figures; asserts
//! nothing. `WINBACK_BENCH_CUSTOMERS` and `WINBACK_BENCH_DAYS` change the size.

use std::time::Instant;

fn main() {
    let customers = std::env::var("WINBACK_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let days = std::env::var("WINBACK_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(180);
    let out = std::env::temp_dir().join(format!("winback-bench-{}", std::process::id()));
    let opts = winback_cli::simulate::Options {
        customers,
        days,
        out: out.clone(),
        progress: false,
        ..winback_cli::simulate::Options::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let began = Instant::now();
    let outcome = runtime
        .block_on(winback_cli::simulate::run(&opts))
        .expect("the simulation runs");
    let wall = began.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&out).ok();
    let t = &outcome.tally;
    println!("simulate: {customers} customers × {days} days on the embedded store");
    println!("  wall time              {wall:.2} s (target: under 60 s)");
    println!(
        "  customer-days / s      {:.0}",
        customers as f64 * f64::from(days) / wall
    );
    println!(
        "  emails                 {} ({:.0} / s)",
        t.emails,
        t.emails as f64 / wall
    );
    println!(
        "  webhook calls (orders) {}",
        t.natural_orders + t.returns_after_email + t.natural_returns
    );
    println!(
        "  scheduler items read   {} ({:.1} per customer-day)",
        t.scheduler_items_read,
        t.scheduler_items_read as f64 / (customers as f64 * f64::from(days))
    );
    println!(
        "  reactivation           treated {:.1}% vs holdout {:.1}%, lift {:+.1} pts",
        outcome.report.treated_rate.value * 100.0,
        outcome.report.holdout_rate.value * 100.0,
        outcome.report.lift.value * 100.0
    );
}
