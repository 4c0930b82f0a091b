//! Wall time of `winback simulate` on the embedded default.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::report::{Figure, Figures, Notes};

const BENCH: &str = "simulate";

/// Runs `winback simulate --customers 10000 --days 180` from `release`, when it was built.
pub fn run(out: &mut Vec<Figure>, notes: &mut Notes, release: &Path) {
    let mut fig = Figures::new(BENCH, out);
    let cli = release.join("winback");
    if !cli.exists() {
        notes.push((
            BENCH,
            format!(
                "Not measured: {} was not built (`cargo build --release -p winback-cli`).",
                cli.display()
            ),
        ));
        return;
    }
    let dir = std::env::temp_dir().join(format!("winback-bench-simulate-{}", std::process::id()));
    let began = Instant::now();
    let result = Command::new(&cli)
        .args(["simulate", "--customers", "10000", "--days", "180", "--out"])
        .arg(&dir)
        .output();
    let secs = began.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(o) if o.status.success() => {
            fig.info(
                "winback simulate, 10 000 customers × 180 days, wall time",
                secs,
                "s",
            );
            fig.info("customer-days per second", 10_000.0 * 180.0 / secs, "/s");
        }
        Ok(o) => notes.push((
            BENCH,
            format!(
                "Not measured: `winback simulate` exited with {} after {secs:.1} s: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
        )),
        Err(e) => notes.push((
            BENCH,
            format!("Not measured: could not start {}: {e}", cli.display()),
        )),
    }
}
