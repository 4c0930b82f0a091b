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
    targeting(&mut fig, notes, &cli);
}

/// Customers and days of the targeting comparison: long enough for the weekly rebuilds to learn
/// each flow's model from the example campaign's `min_enrollments` and then decide by it.
const TARGETING_RUN: (&str, &str) = ("20000", "365");

/// Rules, uplift and the oracle on the same simulated customers (seed 42): what each gave sure
/// things, and the ground truth's incremental orders, profit and unsubscribes per 1,000 emails.
fn targeting(fig: &mut Figures<'_>, notes: &mut Notes, cli: &Path) {
    for targeting in ["rules", "uplift", "oracle"] {
        let dir = std::env::temp_dir().join(format!(
            "winback-bench-targeting-{targeting}-{}",
            std::process::id()
        ));
        let o = Command::new(cli)
            .args([
                "simulate",
                "--customers",
                TARGETING_RUN.0,
                "--days",
                TARGETING_RUN.1,
                "--quiet",
                "--targeting",
                targeting,
                "--out",
            ])
            .arg(&dir)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let text = match o {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => {
                notes.push((
                    BENCH,
                    format!(
                        "Targeting {targeting} not measured: `winback simulate` exited with {}",
                        o.status
                    ),
                ));
                continue;
            }
            Err(e) => {
                notes.push((BENCH, format!("Targeting {targeting} not measured: {e}")));
                continue;
            }
        };
        let figures = [
            (
                "rewards given to sure things:",
                "",
                "rewards used by sure things",
                "codes",
            ),
            ("rewards given to sure things:", "(", "their cost", "EUR"),
            (
                "per 1,000 emails:",
                "",
                "incremental orders per 1,000 emails",
                "orders",
            ),
            (
                "per 1,000 emails:",
                "profit",
                "profit per 1,000 emails",
                "EUR",
            ),
            (
                "per 1,000 emails:",
                "EUR,",
                "unsubscribes per 1,000 emails",
                "unsubscribes",
            ),
            ("per 1,000 emails:", "; ", "emails sent", "emails"),
        ];
        for (line, after, name, unit) in figures {
            match figure(&text, line, after) {
                Some(v) => fig.info(
                    format!(
                        "targeting {targeting}, {} customers × {} days: {name}",
                        TARGETING_RUN.0, TARGETING_RUN.1
                    ),
                    v,
                    unit,
                ),
                None => notes.push((
                    BENCH,
                    format!("Targeting {targeting}: no '{name}' in the output"),
                )),
            }
        }
    }
    notes.push((
        BENCH,
        format!(
            "Targeting: `winback simulate --customers {} --days {} --targeting rules|uplift|oracle` (seed 42, the example campaign: margin 30%, 0.001 EUR per email, min_enrollments 500) on the same customers. The figures are the simulation's ground truth (its responses section): each customer's true kind, the orders emails brought that the customer would not have made by themselves before the end, less the orders they lost (do-not-disturbs driven away), the margin on those less every reward used and every email; the oracle decides on each customer's true chances (the ceiling).",
            TARGETING_RUN.0, TARGETING_RUN.1
        ),
    ));
}

/// The first number after `after` (from the start when empty) on the line of `text` that starts
/// with `line`, as the simulate output prints it.
fn figure(text: &str, line: &str, after: &str) -> Option<f64> {
    let l = text.lines().find(|l| l.trim_start().starts_with(line))?;
    let rest = &l.trim_start()[line.len()..];
    let rest = if after.is_empty() {
        rest
    } else {
        rest.split_once(after)?.1
    };
    let start = rest.find(|c: char| c.is_ascii_digit() || c == '-')?;
    let num: String = rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    num.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::figure;

    #[test]
    fn the_figures_are_read_from_the_simulate_output() {
        let text = "x\n  rewards given to sure things: 49 codes used (439.32 EUR) of 226 sent\n  per 1,000 emails: 25.7 incremental orders, profit -123.43 EUR, 16.1 unsubscribes (margin 30% of the orders brought less those lost, less rewards used and 0.001 EUR per email; 1867 emails in all)\n";
        assert_eq!(
            figure(text, "rewards given to sure things:", ""),
            Some(49.0)
        );
        assert_eq!(
            figure(text, "rewards given to sure things:", "("),
            Some(439.32)
        );
        assert_eq!(figure(text, "per 1,000 emails:", ""), Some(25.7));
        assert_eq!(figure(text, "per 1,000 emails:", "profit"), Some(-123.43));
        assert_eq!(figure(text, "per 1,000 emails:", "EUR,"), Some(16.1));
        assert_eq!(figure(text, "per 1,000 emails:", "; "), Some(1867.0));
    }
}
