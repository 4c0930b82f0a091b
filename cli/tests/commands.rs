//! The `winback` binary, run as an operator runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn winback(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(args)
        .env_remove("TABLE_NAME")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory for one test.
/// A fresh folder for one test, removed when the test ends (also when it fails).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("winback-cli-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Checks that the command was refused as a usage error (exit 2) and that its message says `says`.
fn assert_refused(o: &Output, says: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(stderr(o).contains(says), "{}", stderr(o));
}

/// `winback simulate --customers N --days D --quiet`, then `more`.
fn simulate(customers: &str, days: &str, more: &[&str]) -> Output {
    let args = [
        "simulate",
        "--customers",
        customers,
        "--days",
        days,
        "--quiet",
    ];
    winback(&[&args[..], more].concat())
}

/// `winback import CSV --store STORE --at AT`, checked to succeed.
fn import(csv: &Path, store: &Path, at: &str) -> Output {
    let o = winback(&["import", s(csv), "--store", s(store), "--at", at]);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// A JSON file (a store snapshot), parsed.
fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The entry of `id` in a list of customers or profiles.
fn customer<'a>(list: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["customer_id"] == id)
        .unwrap_or_else(|| panic!("{id} in {list}"))
}

/// Writes `text` as the orders CSV `orders.csv` in `dir`.
fn write_orders(dir: &Path, text: &str) -> PathBuf {
    let csv = dir.join("orders.csv");
    std::fs::write(&csv, text).unwrap();
    csv
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const ORDERS: &str =
    "customer_id,email,ordered_at,amount,currency,first_name,locale,time_zone,category,product
c-weekly,w@example.com,2025-10-01,40.00,EUR,Ann,sv,Europe/Stockholm,groceries,Veg box
c-weekly,w@example.com,2025-10-08,41.00,EUR,Ann,sv,Europe/Stockholm,groceries,Veg box
c-weekly,w@example.com,2025-10-15,39.50,EUR,Ann,sv,Europe/Stockholm,groceries,Veg box
c-weekly,w@example.com,2025-10-22,40.00,EUR,Ann,sv,Europe/Stockholm,groceries,Veg box
c-recent,r@example.com,2026-01-20,25.00,EUR,Bo,da,Europe/Copenhagen,coffee,Beans
c-recent,r@example.com,2026-02-20,25.00,EUR,Bo,da,Europe/Copenhagen,coffee,Beans
c-noemail,x@example.com,2025-06-01,12.00,EUR,,pl,Europe/Warsaw,coffee,Beans
";

#[test]
fn simulate_with_uplift_targeting_prints_what_each_flows_enrollments_were_given() {
    let dir = scratch("simulate-targeting");
    let o = simulate(
        "300",
        "30",
        &["--targeting", "uplift", "--out", s(&dir.join("report"))],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("targeting ([targeting] mode = \"uplift\")"),
        "{text}"
    );
    // 300 customers hold out too few to learn from in a month: the rules decided everything.
    assert!(text.contains("  win-back: as_the_rules "), "{text}");
    assert!(
        text.contains("no flow's uplift model was learned"),
        "{text}"
    );
    let bad = simulate("300", "30", &["--targeting", "random"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("none of rules, uplift and oracle"),
        "{}",
        stderr(&bad)
    );
}

/// The figure after `label` on the line that starts with `line` (`12.5 EUR` reads as 12.5).
fn figure(text: &str, line: &str, label: &str) -> f64 {
    let l = text
        .lines()
        .find(|l| l.trim_start().starts_with(line))
        .unwrap_or_else(|| panic!("no line {line}: {text}"));
    let after = l
        .split(label)
        .nth(1)
        .unwrap_or_else(|| panic!("no {label} in {l}"));
    after
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label} in {l}"))
}

#[test]
fn the_oracle_spares_sure_things_the_reward_and_earns_more_per_email_than_the_rules() {
    let dir = scratch("simulate-oracle");
    let run = |targeting: &str| {
        let o = simulate(
            "800",
            "90",
            &["--targeting", targeting, "--out", s(&dir.join(targeting))],
        );
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        stdout(&o)
    };
    let rules = run("rules");
    let oracle = run("oracle");
    assert!(oracle.contains("targeting (the oracle"), "{oracle}");
    // Every kind is in the shipped behaviour model.
    for kind in [
        "persuadable:",
        "sure thing:",
        "lost cause:",
        "do-not-disturb:",
    ] {
        assert!(rules.contains(&format!("  {kind} ")), "{kind}: {rules}");
    }
    let sure_things_rewarded = |t: &str| figure(t, "rewards given to sure things:", "of");
    assert!(
        sure_things_rewarded(&oracle) < sure_things_rewarded(&rules) / 2.0,
        "{oracle}\n{rules}"
    );
    let profit = |t: &str| figure(t, "per 1,000 emails:", "profit");
    let orders = |t: &str| figure(t, "per 1,000 emails:", "emails:");
    assert!(profit(&oracle) > profit(&rules), "{oracle}\n{rules}");
    assert!(orders(&oracle) > orders(&rules), "{oracle}\n{rules}");
    // The report page shows the same ground truth.
    let page = std::fs::read_to_string(dir.join("oracle").join("index.html")).unwrap();
    assert!(
        page.contains("rewards given to sure things") && page.contains("targeting (the oracle"),
        "{page}"
    );
}

#[test]
fn a_small_simulation_prints_the_reactivation_rate_and_lift_and_writes_the_report() {
    let dir = scratch("simulate");
    let out = dir.join("report");
    let store = dir.join("store.json");
    let o = simulate("300", "60", &["--out", s(&out), "--save-store", s(&store)]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Reactivation rate: treated"), "{text}");
    assert!(text.contains("lift"), "{text}");
    assert!(text.contains("95% CI"), "{text}");
    assert!(
        text.contains("Simulated 300 customers over 60 days in"),
        "{text}"
    );
    assert!(
        !text.contains("requests the webhook refused"),
        "every simulated request is well-formed: {text}"
    );
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    // Three charts for the win-back flow (reactivation by day, lift per variant, survey
    // reasons), then a section with its own chart per other flow.
    assert_eq!(
        page.matches("<h2>Flow ").count(),
        3,
        "a section per other flow"
    );
    assert_eq!(
        page.matches("src=\"data:image/png;base64,").count(),
        3 + 3,
        "charts inline, as PNG images"
    );

    // The report command reads what the simulation stored, and finds the same figures.
    let sim_line = text
        .lines()
        .find(|l| l.starts_with("  treated (all variants)"))
        .unwrap()
        .to_string();
    let report_out = dir.join("again");
    let r = winback(&["report", "--store", s(&store), "--out", s(&report_out)]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        stdout(&r).contains(&sim_line),
        "{}\nvs\n{sim_line}",
        stdout(&r)
    );
    assert!(report_out.join("index.html").exists());
    // Each other flow gets its own section from its own counters, with the figures simulate saw.
    // The HTML page has the same sections.
    let page = std::fs::read_to_string(report_out.join("index.html")).unwrap();
    for (flow, name) in [
        ("at-risk", "example-at-risk"),
        ("celebration", "example-celebration"),
        ("re-engagement", "example-re-engagement"),
    ] {
        let heading = format!("Flow {flow} (counters of campaign {name})");
        assert!(
            stdout(&r).contains(&heading),
            "{heading} missing: {}",
            stdout(&r)
        );
        let section = page
            .split(&format!("<h2>{heading}</h2>"))
            .nth(1)
            .unwrap_or_else(|| panic!("{heading} missing in the HTML"));
        let section = section.split("<h2>").next().unwrap_or_default();
        assert!(
            section.contains("<table") && section.contains("data:image/png;base64,"),
            "{heading}: tables and a chart, not text"
        );
        // A lift is claimed only against a holdout that exists.
        assert_eq!(
            section.contains("<td>holdout</td>"),
            section.contains("Lift <b>"),
            "{heading}: {section}"
        );
    }
    // --json: the win-back flow's figures at the top, each other flow's under `flows`.
    let j = winback(&[
        "report",
        "--store",
        s(&store),
        "--out",
        s(&report_out),
        "--json",
    ]);
    assert!(j.status.success(), "{}", stderr(&j));
    let json: serde_json::Value = serde_json::from_str(&stdout(&j)).expect("report --json");
    assert_eq!(json["campaign"], "example");
    // The whole program's figures, under `program`, and in the text.
    assert!(json["program"]["held_out"]["trials"].is_i64(), "{json}");
    assert!(
        json["program"]["offered"]["trials"].as_i64() > Some(0),
        "{json}"
    );
    assert!(stdout(&r).contains("The whole program"), "{}", stdout(&r));
    for (flow, name) in [
        ("at-risk", "example-at-risk"),
        ("celebration", "example-celebration"),
        ("re-engagement", "example-re-engagement"),
    ] {
        assert_eq!(json["flows"][flow]["campaign"], name, "{flow}: {json}");
        assert!(json["flows"][flow]["lift"].is_object(), "{flow}: {json}");
    }
    // Each other flow's section, and the send-time habit, in the text.
    for section in [
        "Birthday and anniversary flow (campaign example-celebration):",
        "Re-engagement flow (never opened an email: re-permission, sunset sooner; campaign example-re-engagement):",
        "best hour (campaign sending.best_hour = on):",
    ] {
        assert!(text.contains(section), "{section} missing: {text}");
    }
}

#[test]
fn simulate_runs_the_flows_listed_and_refuses_a_list_naming_a_missing_or_repeated_flow() {
    let dir = scratch("flows");
    let o = simulate(
        "150",
        "30",
        &["--flows", "win-back,celebration", "--out", s(&dir)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Birthday and anniversary flow"), "{text}");
    assert!(
        !text.contains("At-risk flow") && !text.contains("Re-engagement flow"),
        "{text}"
    );
    for (list, says) in [
        ("win-back,birthday", "`birthday`, which is no flow"),
        ("win-back,at-risk,at-risk", "`at-risk` twice"),
    ] {
        let o = simulate("10", "1", &["--flows", list]);
        assert_eq!(o.status.code(), Some(2), "{list}");
        assert!(stderr(&o).contains(says), "{list}: {}", stderr(&o));
    }
}

#[test]
fn the_same_seed_gives_the_same_simulation() {
    let dir = scratch("seed");
    let run = |sub: &str| {
        let o = simulate("150", "30", &["--seed", "7", "--out", s(&dir.join(sub))]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .filter(|l| {
                !l.starts_with("elapsed")
                    && !l.starts_with("Simulated")
                    && !l.starts_with("Report:")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(run("a"), run("b"));
}

#[test]
fn import_reports_a_bad_row_by_line_number_and_imports_the_rest() {
    let dir = scratch("import");
    let mut text = ORDERS.to_string();
    text.push_str("c-bad,b@example.com,not-a-date,10.00,EUR,,,,,\n");
    text.push_str("c-last,l@example.com,2026-01-02,10.00,EUR,,,,,\n");
    let csv = write_orders(&dir, &text);
    let store = dir.join("store.json");
    let o = import(&csv, &store, "2026-03-01");
    assert!(
        stderr(&o).contains("orders.csv:9: skipped: ordered_at 'not-a-date'"),
        "{}",
        stderr(&o)
    );
    let out = stdout(&o);
    assert!(
        out.contains("Imported 8 orders of 4 customers (9 rows read, 1 skipped)"),
        "{out}"
    );
    // What was imported is there for plan.
    let plan = winback(&["plan", "--at", "2026-03-01", "--store", s(&store), "--json"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["customers"].as_array().unwrap().len(), 4);
    // Printed as the scan decides them, in the order of the customer ids.
    let ids: Vec<&str> = plan["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
}

#[test]
fn import_and_plan_count_the_addresses_kept_out_before_the_first_send_and_why() {
    let dir = scratch("hygiene");
    let csv = write_orders(
        &dir,
        "customer_id,email,ordered_at,amount\n\
         c-ann,ann@example.com,2025-06-01,10\n\
         c-info,info@example.com,2025-06-01,10\n\
         c-sales,Sales+eu@example.com,2025-06-01,10\n\
         c-temp,t@yopmail.com,2025-06-01,10\n\
         c-nodot,a@b,2025-06-01,10\n",
    );
    let store = dir.join("store.json");
    let o = import(&csv, &store, "2026-03-01");
    let out = stdout(&o);
    assert!(
        out.contains("1 row(s) with an email that is not an address (skipped); customers imported but never emailed: disposable_domain 1, role_address 2"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("orders.csv:6: skipped: email:"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("a@b"),
        "addresses stay out of messages"
    );

    let text = stdout(&winback(&[
        "plan",
        "--at",
        "2026-03-01",
        "--store",
        s(&store),
    ]));
    assert!(text.contains("kept out by role_address: 2"), "{text}");
    assert!(text.contains("kept out by disposable_domain: 1"), "{text}");
    assert!(
        text.contains("Addresses kept out before the first send (any state): disposable_domain 1, role_address 2"),
        "{text}"
    );
    let json = winback(&["plan", "--at", "2026-03-01", "--orders", s(&csv), "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(plan["addresses_kept_out"]["role_address"], 2);
    assert_eq!(plan["addresses_kept_out"]["disposable_domain"], 1);
    let ann = customer(&plan["customers"], "c-ann");
    assert_eq!(ann["decision"], "enroll");
    assert!(ann["address_kept_out"].is_null());
}

#[test]
fn plan_names_the_rule_that_let_each_customer_in_or_kept_them_out() {
    let dir = scratch("plan");
    let csv = write_orders(&dir, ORDERS);
    let o = winback(&["plan", "--at", "2026-03-01", "--orders", s(&csv)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {text}"))
            .to_string()
    };
    assert!(
        line("c-weekly").contains("enroll") && line("c-weekly").contains("eligible"),
        "{text}"
    );
    assert!(line("c-weekly").contains("P(active) 0."), "{text}");
    assert!(line("c-weekly").contains("next order expected"), "{text}");
    assert!(
        line("c-recent").contains("wait") && line("c-recent").contains("not_lapsed"),
        "{text}"
    );
    assert!(text.contains("would be enrolled"), "{text}");
    let json = winback(&["plan", "--at", "2026-03-01", "--orders", s(&csv), "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let weekly = customer(&plan["customers"], "c-weekly");
    assert_eq!(weekly["decision"], "enroll");
    assert!(weekly["variant"].is_string());
    let p = weekly["p_active"].as_f64().unwrap();
    assert!((0.0..0.3).contains(&p), "{p}");
    assert!(weekly["expected_next_order_at"].is_string());
    assert!(weekly["predicted_value"].is_string());
}

#[test]
fn preview_renders_every_step_locale_and_reward_kind() {
    let dir = scratch("preview");
    let o = winback(&["preview", "--out", s(&dir)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Win-back: 3 steps with rewards × 6 kinds × 5 locales, the 2 steps after the survey × 6
    // answers × 5 locales; at-risk: 2 steps without a reward × 5 locales, the last × 6 kinds
    // × 5 locales and (after the survey) × 6 answers × 5 locales; the "we fixed it" email × 5;
    // the fewer-emails email with and without a reward × 5; the birthday and anniversary flow:
    // 1 step × 6 kinds × 5 locales; the re-engagement flow: 1 step without a reward × 5 locales.
    assert!(stdout(&o).contains("Rendered 270 emails"), "{}", stdout(&o));
    for (locale, words) in [
        ("en", "Do you still want to hear from"),
        ("sv", "Vill du fortfarande höra från"),
        ("da", "Vil du stadig høre fra"),
        ("pl", "Czy nadal chcesz"),
        ("pt", "Ainda quer receber"),
    ] {
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("step1-reconfirm.{locale}.")) && n.ends_with(".txt"))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let t = std::fs::read_to_string(dir.join(&names[0])).unwrap();
        assert!(t.contains(words), "{t}");
    }
    for (locale, words) in [
        ("en", "Happy birthday"),
        ("sv", "Grattis på födelsedagen"),
        ("da", "Tillykke med fødselsdagen"),
        ("pl", "Wszystkiego najlepszego"),
        ("pt", "Feliz aniversário"),
    ] {
        let b =
            std::fs::read_to_string(dir.join(format!("step1-celebrate.{locale}.amount_off.txt")))
                .unwrap();
        assert!(b.contains(words) && b.contains("WB-"), "{b}");
    }
    for locale in ["en", "sv", "da", "pl", "pt"] {
        for stem in ["step1-checkin", "step2-tips", "step3-nudge"] {
            let any = std::fs::read_dir(&dir).unwrap().any(|f| {
                let name = f.unwrap().file_name().to_string_lossy().into_owned();
                name.starts_with(&format!("{stem}.{locale}.")) && name.ends_with(".txt")
            });
            assert!(any, "{stem} in {locale}");
        }
    }
    for locale in ["en", "sv", "da", "pl", "pt"] {
        let fixed =
            std::fs::read_to_string(dir.join(format!("step1-fixed.{locale}.resolved-quality.txt")))
                .unwrap();
        assert!(fixed.contains("Our new roaster is in"), "{fixed}");
        // The fewer-emails email offers "unsubscribe" only, and a code only when it carries one.
        for row in ["amount_off", "none"] {
            let fewer =
                std::fs::read_to_string(dir.join(format!("step3-rarely.{locale}.{row}.txt")))
                    .unwrap();
            assert!(!fewer.contains("offer=fewer"), "{fewer}");
            assert!(fewer.contains("unsubscribe?t="), "{fewer}");
            assert_eq!(fewer.contains("WB-"), row == "amount_off", "{fewer}");
        }
    }
    // After the survey, each answer shapes the copy and the reward, in every locale.
    let pl = std::fs::read_to_string(dir.join("step2-missing.pl.reason-hard_to_understand.txt"))
        .unwrap();
    assert!(pl.contains("konsultac"), "{pl}");
    let en =
        std::fs::read_to_string(dir.join("step3-goodbye.en.reason-bad_experience.txt")).unwrap();
    assert!(en.contains("We're sorry"), "{en}");
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(index.contains("step1-offer.sv.amount_off.html"));
    let sv = std::fs::read_to_string(dir.join("step1-offer.sv.percent_off.txt")).unwrap();
    assert!(sv.starts_with("Subject: "));
}

#[test]
fn preview_of_a_broken_campaign_fails_with_a_message() {
    let dir = scratch("broken");
    let campaign = dir.join("campaign");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/campaigns/example"),
        &campaign,
    );
    let offer = campaign.join("templates/en/offer.html");
    let text = std::fs::read_to_string(&offer).unwrap();
    std::fs::write(
        &offer,
        format!("{text}\n{{{{ no_such_variable.deeper }}}} {{% if %}}"),
    )
    .unwrap();
    let o = winback(&[
        "preview",
        "--campaign",
        s(&campaign),
        "--out",
        s(&dir.join("out")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.starts_with("error: campaign"), "{err}");
    assert!(
        err.contains("offer"),
        "the message names the template: {err}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn an_unknown_flag_is_refused_with_a_non_zero_exit() {
    let o = winback(&["simulate", "--customerz", "10"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("--customerz"), "{}", stderr(&o));
}

#[test]
fn a_bad_date_is_refused_with_the_flag_named() {
    let o = winback(&["plan", "--at", "next tuesday", "--orders", "whatever.csv"]);
    assert_refused(&o, "'next tuesday' is not a date for --at");
}

#[test]
fn an_unreadable_file_is_named_in_the_error() {
    let o = winback(&[
        "import",
        "/no/such/orders.csv",
        "--store",
        "/tmp/unused.json",
    ]);
    assert_refused(&o, "cannot read /no/such/orders.csv");
    let o = winback(&["report", "--store", "/no/such/store.json"]);
    assert_refused(&o, "/no/such/store.json");
}

#[test]
fn a_csv_without_its_header_is_refused_and_says_what_the_header_must_hold() {
    let dir = scratch("header");
    let csv = write_orders(&dir, "c1,a@example.com,2026-01-01,10\n");
    let o = winback(&["import", s(&csv), "--store", s(&dir.join("s.json"))]);
    assert_refused(&o, "the header line lacks");
}

#[test]
fn a_bad_behaviour_model_is_refused_with_the_key_named() {
    let dir = scratch("behaviour");
    let model = dir.join("b.toml");
    let text = include_str!("../behaviour.toml")
        .replace("click_given_open = 0.40", "click_given_open = 4.0");
    std::fs::write(&model, text).unwrap();
    let o = simulate("10", "1", &["--behaviour", s(&model), "--out", s(&dir)]);
    assert_refused(&o, "email.click_given_open");
}

#[test]
fn resolve_frees_the_customers_paused_for_a_reason_in_a_store_snapshot() {
    let dir = scratch("resolve");
    let orders = write_orders(&dir, ORDERS);
    let store = dir.join("store.json");
    import(&orders, &store, "2026-03-01");
    // c-weekly told us "quality" (as the survey would tag them).
    let mut snap: serde_json::Value = read_json(&store);
    for p in snap["profiles"].as_array_mut().unwrap() {
        if p["customer_id"] == "c-weekly" {
            p["tags"] = serde_json::json!(["reason:quality"]);
        }
    }
    std::fs::write(&store, snap.to_string()).unwrap();

    let resolve = |note: &str| {
        winback(&[
            "resolve",
            "quality",
            "--note",
            note,
            "--store",
            s(&store),
            "--at",
            "2026-03-02",
        ])
    };
    let o = resolve("Our new roaster is in.");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Resolved quality: 1 customer(s)"),
        "{}",
        stdout(&o)
    );
    let snap: serde_json::Value = read_json(&store);
    let weekly = customer(&snap["profiles"], "c-weekly");
    assert_eq!(weekly["resolved_reasons"], serde_json::json!(["quality"]));
    assert_eq!(
        weekly["resolution_notes"]["quality"],
        "Our new roaster is in."
    );
    // Once is enough; a bad reason or an empty note is refused with what to change.
    let o = resolve("again");
    assert!(stdout(&o).contains("Resolved quality: 0 customer(s)"));
    let o = winback(&["resolve", "cheap", "--note", "x", "--store", s(&store)]);
    assert_refused(&o, "unknown reason 'cheap'");
    let o = winback(&["resolve", "quality", "--note", " ", "--store", s(&store)]);
    assert_refused(&o, "--note: note is empty");
}

#[test]
fn follow_up_close_closes_a_simulated_detractors_follow_up_in_a_store_snapshot() {
    let dir = scratch("follow-up");
    let store = dir.join("store.json");
    let o = simulate(
        "400",
        "60",
        &["--out", s(&dir.join("r")), "--save-store", s(&store)],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let told: usize = stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix("Follow-ups: the team was told about "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the follow-up line");
    assert!(told > 0, "{}", stdout(&o));

    let snap: serde_json::Value = read_json(&store);
    let open: Vec<String> = snap["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["follow_up"].is_object() && p["follow_up"]["closed_at"].is_null())
        .map(|p| p["customer_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        open.len(),
        told,
        "one open follow-up per customer told about"
    );
    let id = &open[0];
    let o = winback(&[
        "follow-up",
        "close",
        id,
        "--store",
        s(&store),
        "--at",
        "2026-03-20",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("Closed the follow-up on customer {id}")));
    let o = winback(&["follow-up", "close", id, "--store", s(&store)]);
    assert!(stdout(&o).contains("closed already"), "{}", stdout(&o));
    let o = winback(&[
        "follow-up",
        "close",
        "no-such-customer",
        "--store",
        s(&store),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-customer"), "{}", stderr(&o));
}
