//! Lapse and eligibility evaluations per second on one core.

use std::hint::black_box;
use std::time::{Duration, Instant};

use shared::campaign::testing::example_campaign;
use shared::domain::experiment::Group;
use shared::domain::sequence::Enrollment;
use shared::domain::{eligibility, lapse};

use crate::report::{Figure, Figures, Notes, Target};
use crate::world;

const BENCH: &str = "domain";

/// Calls `f` for `min` in all, in rounds of a tenth of a second; returns the calls per second of
/// the fastest round. On a shared machine a round can lose time to other work, never gain it, so
/// the fastest round is the closest to what the code itself costs (Python's `timeit` advises the
/// same); the mean over the whole time swung by a third between runs here.
fn rate(min: Duration, mut f: impl FnMut() -> usize) -> f64 {
    f();
    let began = Instant::now();
    let mut best: f64 = 0.0;
    while began.elapsed() < min {
        let round = Instant::now();
        let mut calls = 0usize;
        while round.elapsed() < Duration::from_millis(100) {
            calls += f();
        }
        best = best.max(calls as f64 / round.elapsed().as_secs_f64());
    }
    best
}

/// Runs the domain benchmark on a thread of its own, held on one core: left free to move, the
/// thread went between the two cores and its rates came out at either of two levels, 40% apart,
/// from run to run.
pub fn run(out: &mut Vec<Figure>, notes: &mut Notes) {
    let (figures, mut more) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let core = core_affinity::get_core_ids().and_then(|ids| ids.into_iter().last());
                let pinned = core.is_some_and(core_affinity::set_for_current);
                let (mut figures, mut notes) = (Vec::new(), Vec::new());
                measure(&mut figures, &mut notes, pinned);
                (figures, notes)
            })
            .join()
            .expect("the domain benchmark's thread")
    });
    out.extend(figures);
    notes.append(&mut more);
}

fn measure(out: &mut Vec<Figure>, notes: &mut Notes, pinned: bool) {
    let mut fig = Figures::new(BENCH, out);
    let campaign = example_campaign();
    let now = world::now();
    let profiles: Vec<_> = (0..1024).map(|i| world::customer(i, i % 3 == 0)).collect();
    let ended: Vec<Option<Enrollment>> = profiles
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (i % 4 == 0).then(|| {
                Enrollment::start(
                    &p.customer_id,
                    &campaign,
                    1,
                    Group::Treated,
                    "amount-10",
                    now - chrono::Duration::days(200),
                )
            })
        })
        .collect();
    let secs = Duration::from_secs(2);
    let assess = rate(secs, || {
        for p in &profiles {
            black_box(lapse::assess(black_box(p), &campaign.lapse, now));
        }
        profiles.len()
    });
    // The same customers under the rule alone (`[lapse] model = "threshold"`).
    let mut rule = campaign.lapse.clone();
    rule.model = lapse::LapseModel::Threshold;
    let assess_rule = rate(secs, || {
        for p in &profiles {
            black_box(lapse::assess(black_box(p), &rule, now));
        }
        profiles.len()
    });
    let check = rate(secs, || {
        for (p, e) in profiles.iter().zip(&ended) {
            let _ = black_box(eligibility::check(
                black_box(p),
                e.as_ref(),
                &campaign.eligibility,
                now,
            ));
        }
        profiles.len()
    });
    let both = rate(secs, || {
        for (p, e) in profiles.iter().zip(&ended) {
            black_box(lapse::assess(black_box(p), &campaign.lapse, now));
            let _ = black_box(eligibility::check(
                p,
                e.as_ref(),
                &campaign.eligibility,
                now,
            ));
        }
        profiles.len()
    });
    fig.held(
        "lapse::assess per second, one core",
        assess,
        "/s",
        Target::AtLeast(1_000_000.0),
    );
    fig.held(
        "lapse::assess per second, one core, the threshold rule (model = \"threshold\")",
        assess_rule,
        "/s",
        Target::AtLeast(1_000_000.0),
    );
    fig.held(
        "eligibility::check per second, one core",
        check,
        "/s",
        Target::AtLeast(1_000_000.0),
    );
    fig.info(
        "assess + check of one customer per second, one core",
        both,
        "/s",
    );
    fig.info("assess + check, per customer", 1e9 / both, "ns");
    notes.push((
        BENCH,
        format!(
            "The example campaign assesses with the fitted MBG/NBD model (`[lapse] model = \"mbgnbd\"`): \
             each customer's lapse moment is solved numerically (Newton's method on the chance of an \
             order within the horizon, inside a bracket of two closed-form P(active) moments, about \
             four steps), and whether they are at risk is read from that chance at `now` rather than \
             solved for: {:.2} µs per customer here, against {:.2} µs for the threshold rule on the \
             same customers. Each rate is the fastest of 20 rounds of 0.1 s on one core{}. \
             eligibility::check parses the stored address and checks it (role names, \
             disposable domains) on every call.",
            1e6 / assess,
            1e6 / assess_rule,
            if pinned {
                " (the thread held on it)"
            } else {
                " (the thread could not be held on one)"
            }
        ),
    ));
}
