//! The best hour in `winback simulate`: recipients with a habitual local hour (cli/behaviour.toml
//! `[habit]`) open an email that arrives within it more often, and the sender's best hour
//! (`sending.best_hour`) sends more of their emails then than the campaign's own timing does.

use winback_cli::simulate::{self, Options};

async fn run(best_hour: bool, dir: &str) -> simulate::Outcome {
    let out = std::env::temp_dir().join(format!("winback-best-hour-{dir}-{}", std::process::id()));
    let opts = Options {
        customers: 1_500,
        days: 90,
        seed: 11,
        out: out.clone(),
        progress: false,
        best_hour: Some(best_hour),
        ..Options::default()
    };
    let outcome = simulate::run(&opts).await.expect("the simulation runs");
    std::fs::remove_dir_all(out).ok();
    outcome
}

#[tokio::test]
async fn sending_at_the_usual_hour_reaches_more_customers_within_it_and_more_open() {
    let on = run(true, "on").await;
    let off = run(false, "off").await;
    let within = |o: &simulate::Outcome| {
        let t = &o.tally;
        t.at_habit_hour.emails as f64
            / (t.at_habit_hour.emails + t.off_habit_hour.emails).max(1) as f64
    };
    assert!(on.best_hour && !off.best_hour);
    assert!(
        within(&on) > within(&off) + 0.3,
        "within the habitual hour: on {:.2}, off {:.2}",
        within(&on),
        within(&off)
    );
    let habitual_open = |o: &simulate::Outcome| {
        let t = &o.tally;
        (t.at_habit_hour.opens + t.off_habit_hour.opens) as f64
            / (t.at_habit_hour.emails + t.off_habit_hour.emails).max(1) as f64
    };
    assert!(
        habitual_open(&on) > habitual_open(&off) * 1.2,
        "open rate of habitual customers: on {:.3}, off {:.3}",
        habitual_open(&on),
        habitual_open(&off)
    );
    // Deferred, never dropped: the best hour sends about as many emails as the campaign's timing.
    let (a, b) = (on.tally.emails as f64, off.tally.emails as f64);
    assert!((a - b).abs() / b < 0.1, "emails: on {a}, off {b}");
    let text = simulate::best_hour_text(&on.tally, on.best_hour);
    assert!(text.contains("sending.best_hour = on") && text.contains("within the habitual hour"));
}
