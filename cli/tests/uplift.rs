//! `winback uplift fit` and `score`, run as an operator runs them, on experiment files made here
//! from a fixed seed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `winback uplift ARGS`: exit code, stdout, stderr.
fn uplift(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_winback"))
        .arg("uplift")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs `winback uplift fit` on `file`, the model and report going into `dir`.
fn fit(dir: &Path, file: &str, more: &[&str]) -> (Option<i32>, String, String) {
    let model = dir.join("model.json").to_string_lossy().into_owned();
    let report = dir.join("report").to_string_lossy().into_owned();
    let mut args = vec![
        "fit",
        "--experiment",
        file,
        "--out",
        &model,
        "--report",
        &report,
    ];
    args.extend_from_slice(more);
    uplift(&args)
}

fn folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("winback-uplift-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// 6,000 customers: those in segment "young" order 50% when emailed and 20% when not, the
/// others 30% either way; `visits` is missing for one in seven.
fn experiment() -> String {
    let mut state: u64 = 2026;
    let mut draw = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut s = String::from("customer_id,group,ordered,revenue,segment,visits\n");
    for i in 0..6000 {
        let young = draw() < 0.4;
        let treated = draw() < 0.5;
        let chance = match (young, treated) {
            (true, true) => 0.5,
            (true, false) => 0.2,
            _ => 0.3,
        };
        let ordered = draw() < chance;
        let visits = if i % 7 == 0 {
            String::new()
        } else {
            format!("{}", (draw() * 20.0).floor())
        };
        let _ = writeln!(
            s,
            "c{i},{},{},{},{},{visits}",
            if treated { "treated" } else { "holdout" },
            ordered as u8,
            if ordered { "35.50" } else { "0" },
            if young { "young" } else { "settled" },
        );
    }
    s
}

#[test]
fn fit_reports_the_qini_and_the_top_k_and_score_ranks_the_persuadable_first() {
    let dir = folder("fit");
    let file = write(&dir, "experiment.csv", &experiment());
    let model = dir.join("model.json").to_string_lossy().into_owned();
    let (code, out, err) = fit(&dir, &file, &["--margin", "0.4", "--cost", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("6000 customers"), "{out}");
    assert!(out.contains("Qini coefficient"), "{out}");
    assert!(out.contains("top  20%"), "{out}");
    assert!(out.contains("profit at margin 0.4 and cost 1"), "{out}");
    let page = std::fs::read_to_string(dir.join("report/index.html")).unwrap();
    assert!(
        page.contains("<svg") && page.contains("Qini curve"),
        "{page}"
    );

    let (code, json, _) = fit(&dir, &file, &["--json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["evaluation"]["qini_normalised"].as_f64().unwrap() > 0.2,
        "{json}"
    );

    let customers = write(
        &dir,
        "customers.csv",
        "customer_id,segment,visits\nx1,young,3\nx2,settled,3\nx3,,\n",
    );
    let (code, csv, err) = uplift(&["score", "--model", &model, "--customers", &customers]);
    assert_eq!(code, Some(0), "{err}");
    assert!(csv.starts_with("customer_id,uplift\nx1,"), "{csv}");
    let (code, json, _) = uplift(&[
        "score",
        "--model",
        &model,
        "--customers",
        &customers,
        "--json",
    ]);
    assert_eq!(code, Some(0));
    let scored: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(scored.len(), 3);
    assert_eq!(scored[0]["customer_id"], "x1");
    let u = |i: usize| scored[i]["uplift"].as_f64().unwrap();
    assert!(u(0) > u(1) + 0.15, "{json}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_input_is_refused_with_exit_code_2_naming_the_row_and_column() {
    let dir = folder("bad");
    let model = dir.join("model.json").to_string_lossy().into_owned();
    let good = experiment();
    let fit = |name: &str, text: &str| fit(&dir, &write(&dir, name, text), &[]);
    let refused = |(code, _, err): (Option<i32>, String, String), says: &str| {
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    };

    // The file with its row `row` (the header is row 1) replaced.
    let with_row = |row: usize, line: &str| {
        let mut lines: Vec<&str> = good.lines().collect();
        lines[row - 1] = line;
        lines.join("\n")
    };
    refused(
        fit("no_group.csv", &with_row(3, "c1,,0,0,young,3")),
        "row 3, column group: empty: write treated or holdout",
    );
    refused(
        fit("word.csv", &with_row(4, "c2,treated,no,0,young,3")),
        "row 4, column ordered: 'no' is not 0 or 1",
    );
    let one_sided = good.replace(",holdout,", ",treated,");
    refused(fit("one_sided.csv", &one_sided), "0 holdout customer(s)");
    refused(
        fit("no_outcome.csv", "customer_id,group\nc1,treated\n"),
        "no ordered column",
    );

    assert_eq!(fit("good.csv", &good).0, Some(0));
    let score = |name: &str, text: &str| {
        let file = write(&dir, name, text);
        uplift(&["score", "--model", &model, "--customers", &file])
    };
    refused(
        score(
            "unknown.csv",
            "customer_id,segment,visits,shoe_size\nx1,young,3,42\n",
        ),
        "column shoe_size is not a feature of the model",
    );
    refused(
        score(
            "text.csv",
            "customer_id,segment,visits\nx1,young,3\nx2,young,many\n",
        ),
        "row 3, column visits: 'many' is not a number",
    );
    refused(
        score("missing.csv", "customer_id,segment\nx1,young\n"),
        "column visits is missing",
    );
    let _ = std::fs::remove_dir_all(dir);
}
