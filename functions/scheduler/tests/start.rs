//! The built scheduler binary, started as Lambda starts it, refuses a bad `CAMPAIGNS` before it
//! reads an event: it exits non-zero with a message naming the flow.

use std::process::{Command, Output};

/// Runs the scheduler binary with the settings a stack gives it and `CAMPAIGNS` = `flows`. AWS
/// points at a closed local port, so nothing leaves the machine.
fn start(flows: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .env_clear()
        .env("TABLE_NAME", "winback-test")
        .env("EVENT_BUS_NAME", "winback-test")
        .env("CAMPAIGN", "example")
        .env("CAMPAIGNS", flows)
        .env("AWS_REGION", "eu-north-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .expect("the scheduler binary runs")
}

fn refused(flows: &str) -> String {
    let out = start(flows);
    assert!(
        !out.status.success(),
        "CAMPAIGNS={flows} must stop the function"
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_bad_campaigns_list_stops_the_function_at_start_naming_the_flow() {
    for (flows, says) in [
        (
            "win-back,birthday",
            "CAMPAIGNS names `birthday`, which is no flow",
        ),
        (
            "win-back,at-risk,win-back",
            "CAMPAIGNS names `win-back` twice",
        ),
        ("at-risk,celebration", "CAMPAIGNS leaves out win-back"),
    ] {
        let text = refused(flows);
        // The exit message (Lambda's init error) and the log line both carry it.
        assert!(text.contains(&format!("Error: {says}")), "{flows}: {text}");
        assert!(text.contains("refused_at_start"), "{flows}: {text}");
    }
}

#[test]
fn a_missing_setting_stops_it_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .env_clear()
        .env("EVENT_BUS_NAME", "winback-test")
        .output()
        .expect("the scheduler binary runs");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Error: environment variable TABLE_NAME is not set"),
        "{text}"
    );
}

#[test]
fn a_good_campaigns_list_gets_past_the_campaign_to_the_lambda_runtime() {
    // Outside Lambda the runtime's variables (AWS_LAMBDA_FUNCTION_NAME, ...) are missing, so it
    // stops there instead: after the campaign and its flows loaded.
    let out = start("win-back,celebration");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(!text.contains("CAMPAIGNS"), "{text}");
    assert!(text.contains("AWS_LAMBDA_"), "{text}");
    assert!(!text.contains("refused_at_start"), "{text}");
}
