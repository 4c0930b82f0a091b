//! `infra/audit.sh` refuses an advisory snapshot older than 45 days (fixed dates, no clock).

fn age_check(today: &str) -> std::process::Output {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    std::process::Command::new("bash")
        .arg(format!("{root}/infra/audit.sh"))
        .arg("--age-only")
        .env("AUDIT_TODAY", today)
        .output()
        .expect("bash runs infra/audit.sh")
}

#[test]
fn an_advisory_snapshot_older_than_45_days_fails_the_audit_and_says_how_to_refresh_it() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let date = std::fs::read_to_string(format!("{root}/infra/advisory-db/SNAPSHOT_DATE")).unwrap();
    let taken = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").unwrap();
    let fresh = age_check(&(taken + chrono::Duration::days(45)).to_string());
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    let stale = age_check(&(taken + chrono::Duration::days(46)).to_string());
    assert!(!stale.status.success());
    let said = String::from_utf8_lossy(&stale.stderr);
    assert!(said.contains("46 days old"), "{said}");
    assert!(said.contains("infra/advisory-db/README.md"), "{said}");
}
