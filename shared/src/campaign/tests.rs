use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::email::{empty_sample, full_sample};
use super::*;
use crate::domain::reward::RewardKind;

fn example() -> &'static Campaign {
    testing::example()
}

/// A copy of the shipped example campaign in a fresh directory, removed on drop.
struct TempCampaign {
    dir: PathBuf,
}

impl TempCampaign {
    fn example() -> TempCampaign {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "winback-campaign-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        for (path, contents) in embedded::EXAMPLE {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, contents).unwrap();
        }
        TempCampaign { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    fn edit(&self, relative: &str, from: &str, to: &str) -> &TempCampaign {
        let path = self.path(relative);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{relative} does not contain {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        self
    }

    fn load_error(&self) -> String {
        match Campaign::load_dir(&self.dir) {
            Ok(_) => panic!("the broken campaign loaded"),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for TempCampaign {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "expected {part:?} in the error, got: {message}"
        );
    }
}

#[test]
fn the_shipped_example_loads_from_the_binary_and_from_its_directory() {
    let c = example();
    assert_eq!(c.config().name, "example");
    assert_eq!(c.config().steps.len(), 3);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/example");
    let from_disk = Campaign::load_dir(&dir).unwrap();
    assert_eq!(from_disk.config(), c.config());
}

/// The functions load shipped campaigns without rendering every branch (a cold start would spend
/// some 20 ms on it): this test is where they are rendered.
#[test]
fn every_shipped_campaign_renders_every_branch() {
    for name in embedded::NAMES {
        let files = embedded::campaign(name).unwrap();
        let full = Campaign::from_files(files.iter().copied())
            .unwrap_or_else(|e| panic!("shipped campaign {name}: {e}"));
        assert_eq!(full.config(), Campaign::embedded(name).unwrap().config());
    }
}

#[test]
fn every_file_of_the_example_directory_is_compiled_into_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/example");
    let mut on_disk = vec!["campaign.toml".to_string()];
    read_tree(&root.join("templates"), "templates", &mut Vec::new()).unwrap();
    let mut stack = vec![root.join("templates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(&root).unwrap();
                on_disk.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    for file in &on_disk {
        let embedded = embedded::EXAMPLE.iter().find(|(p, _)| p == file);
        let contents = std::fs::read_to_string(root.join(file)).unwrap();
        assert_eq!(
            embedded.map(|(_, c)| *c),
            Some(contents.as_str()),
            "{file} is not embedded (add it to campaign::embedded::EXAMPLE)"
        );
    }
    assert_eq!(on_disk.len(), embedded::EXAMPLE.len());
}

#[test]
fn an_unknown_embedded_campaign_lists_the_available_ones() {
    let e = Campaign::embedded("winter-sale").unwrap_err().to_string();
    assert_mentions(&e, &["winter-sale", "example"]);
    let e = Campaign::open("no/such/dir").unwrap_err().to_string();
    assert_mentions(&e, &["no/such/dir", "example"]);
}

#[test]
fn every_step_locale_and_reward_kind_renders_with_code_expiry_and_unsubscribe_link() {
    let c = example();
    for locale in &c.config().locales {
        for kind in RewardKind::ALL {
            for step in 1..=3u8 {
                let mut ctx = full_sample(locale, kind);
                ctx.step = step;
                let reward = ctx.reward.clone().unwrap();
                let email = c.render_email(step, locale, &ctx).unwrap();
                for (part, body) in [("html", &email.html), ("text", &email.text)] {
                    let what = format!("{locale} step {step} {kind:?} {part}");
                    assert!(body.contains(&reward.code), "{what}: no code");
                    assert!(body.contains(&reward.expires_on), "{what}: no expiry");
                    assert!(
                        body.contains(&ctx.unsubscribe_url),
                        "{what}: no unsubscribe"
                    );
                    assert!(
                        body.contains(&ctx.fewer_emails_url),
                        "{what}: no fewer emails"
                    );
                    assert!(body.contains("Alex"), "{what}: no first name");
                }
                assert!(!email.subject.is_empty() && !email.subject.contains('\n'));
                assert_eq!(email.subject, email.subject.trim());
            }
        }
    }
}

#[test]
fn the_offer_carries_the_survey_and_the_follow_up_the_nps_row() {
    let c = example();
    let ctx = full_sample("en", RewardKind::AmountOff);
    let offer = c.render_email(1, "en", &ctx).unwrap();
    for link in &ctx.survey {
        assert!(offer.html.contains(&link.url) && offer.text.contains(&link.url));
    }
    assert!(offer.html.contains("It got too expensive"));
    assert!(offer.html.contains("Ethiopia Yirgacheffe 500 g"));
    assert!(offer.html.contains(&ctx.customer_since));
    let mut no_survey = ctx.clone();
    no_survey.survey.clear();
    let missing = c.render_email(2, "en", &no_survey).unwrap();
    for link in &ctx.nps {
        assert!(missing.html.contains(&link.url) && missing.text.contains(&link.url));
    }
    assert!(!missing.html.contains("It got too expensive"));
    let goodbye = c.render_email(3, "en", &no_survey).unwrap();
    assert!(goodbye
        .html
        .contains("Keep me subscribed, with fewer emails"));
}

#[test]
fn every_locale_names_what_the_customer_bought_most_and_since_when_they_are_a_customer() {
    let c = example();
    for locale in &c.config().locales {
        let mut ctx = full_sample(locale, RewardKind::AmountOff);
        ctx.last_product = Some("Mug".into());
        ctx.favourite_product = Some("Espresso blend 1 kg".into());
        let tips = c.render_template("tips", locale, &ctx).unwrap();
        let offer = c.render_email(1, locale, &ctx).unwrap();
        for body in [&tips.html, &tips.text] {
            assert!(body.contains("Espresso blend 1 kg"), "{locale}: {body}");
        }
        for body in [&offer.html, &offer.text] {
            assert!(body.contains(&ctx.customer_since), "{locale}: {body}");
        }
    }
}

#[test]
fn a_customer_without_name_product_or_reward_still_gets_a_graceful_email() {
    let c = example();
    for locale in &c.config().locales {
        for step in 1..=3u8 {
            let ctx = empty_sample(locale);
            let email = c.render_email(step, locale, &ctx).unwrap();
            assert!(!email.html.contains("WB-"), "{locale} {step}");
            assert!(email.text.contains(&ctx.unsubscribe_url));
            assert!(
                !email.subject.starts_with(','),
                "{locale} {step}: {}",
                email.subject
            );
        }
    }
    let en = c.render_email(1, "en", &empty_sample("en")).unwrap();
    assert!(en.html.contains("Hi there,"));
}

#[test]
fn html_escapes_customer_data_and_text_does_not() {
    let c = example();
    let mut ctx = full_sample("en", RewardKind::AmountOff);
    ctx.first_name = Some("<b>Tom & Jerry</b>".into());
    let email = c.render_email(1, "en", &ctx).unwrap();
    assert!(email.html.contains("&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"));
    assert!(!email.html.contains("<b>Tom"));
    assert!(email.text.contains("<b>Tom & Jerry</b>"));
    assert!(email
        .subject
        .starts_with("Sample copy <b>Tom & Jerry</b>, here's"));
    // Quotes too (a value may land in an attribute); `/` stays plain for links.
    ctx.first_name = Some("O'Hara \"Tom\" a/b".into());
    let email = c.render_email(1, "en", &ctx).unwrap();
    assert!(email.html.contains("O&#x27;Hara &quot;Tom&quot; a/b"));
}

#[test]
fn locales_fall_back_to_their_language_then_to_the_default() {
    let c = example();
    assert_eq!(c.locale_for(Some("pt-BR")), "pt");
    assert_eq!(c.locale_for(Some("sv_SE")), "sv");
    assert_eq!(c.locale_for(Some("DA")), "da");
    assert_eq!(c.locale_for(Some("fr")), "en");
    assert_eq!(c.locale_for(None), "en");
    let ctx = full_sample("pt", RewardKind::AmountOff);
    let email = c.render_email(1, "pt-BR", &ctx).unwrap();
    assert!(email.html.contains("lang=\"pt\""));
    let email = c
        .render_email(1, "fr", &full_sample("en", RewardKind::AmountOff))
        .unwrap();
    assert!(email.html.contains("lang=\"en\""));
}

#[test]
fn rendering_a_step_the_campaign_does_not_have_is_an_error() {
    let ctx = full_sample("en", RewardKind::AmountOff);
    for step in [0, 4] {
        let e = example().render_email(step, "en", &ctx).unwrap_err();
        assert!(matches!(e, RenderError::UnknownStep { .. }), "{e}");
    }
}

#[test]
fn a_missing_template_file_is_named() {
    let t = TempCampaign::example();
    std::fs::remove_file(t.path("templates/sv/missing.txt")).unwrap();
    let e = t.load_error();
    assert_mentions(&e, &["templates/sv/missing.txt", "missing"]);
}

#[test]
fn an_undefined_variable_is_named_with_its_template() {
    let t = TempCampaign::example();
    t.edit(
        "templates/sv/offer.html",
        "{% block content %}",
        "{% block content %}\n{{ frist_name }}",
    );
    let e = t.load_error();
    assert_mentions(
        &e,
        &[
            "templates/sv/offer.html",
            "unknown variable `frist_name`",
            "line 4",
            "first_name",
        ],
    );
}

#[test]
fn a_branch_that_renders_an_empty_subject_is_refused_from_a_folder() {
    // Only the empty sample (no first name) reaches the broken branch: loading renders them all.
    let t = TempCampaign::example();
    t.edit(
        "templates/pl/goodbye.subject",
        "{% else %}To{% endif %} nasz ostatni e-mail w tej sprawie",
        "{% else %}{% endif %}{% if first_name %} nasz ostatni e-mail w tej sprawie{% endif %}",
    );
    let e = t.load_error();
    assert_mentions(
        &e,
        &["templates/pl/goodbye.subject", "the subject is empty"],
    );
}

#[test]
fn an_unknown_field_of_the_reward_is_named() {
    let t = TempCampaign::example();
    t.edit(
        "templates/_layout.txt",
        "{{ reward.code }}",
        "{{ reward.cdoe }}",
    );
    let e = t.load_error();
    assert_mentions(
        &e,
        &[
            "templates/_layout.txt",
            "`reward.cdoe`",
            "line 10",
            "code, kind",
        ],
    );
}

#[test]
fn a_render_failure_inside_an_included_template_names_that_template() {
    let t = TempCampaign::example();
    t.edit(
        "templates/_survey_links.html",
        "{{ t.reasons[link.reason] }}",
        "{{ t.reasons[link.reason] | shout }}",
    );
    let e = t.load_error();
    assert_mentions(
        &e,
        &[
            "templates/_survey_links.html",
            "line 4",
            "unknown filter",
            "shout",
            "in locale `en`",
        ],
    );
}

#[test]
fn a_locale_without_its_own_layout_uses_the_shared_one_and_its_own_wins() {
    let t = TempCampaign::example();
    let sv = full_sample("sv", RewardKind::AmountOff);
    let shared = Campaign::load_dir(&t.dir).unwrap();
    let email = shared.render_email(2, "sv", &sv).unwrap();
    // The shared layout and NPS partial, in Swedish from templates/sv/strings.toml.
    assert!(email.html.contains("<html lang=\"sv\">"), "{}", email.html);
    assert!(email.html.contains("Avsluta prenumeration"));
    assert!(email
        .html
        .contains("Hur troligt är det att du skulle rekommendera Sample Shop"));
    assert!(email.text.contains("Teamet på Sample Shop"));

    // Swedish gets its own layout and NPS partial; the other locales keep the shared ones.
    let own_layout = std::fs::read_to_string(t.path("templates/_layout.html"))
        .unwrap()
        .replace("<body ", "<body data-layout=\"sv\" ");
    std::fs::write(t.path("templates/sv/_layout.html"), own_layout).unwrap();
    std::fs::write(
        t.path("templates/sv/_nps.html"),
        "{% if nps %}<tr><td>Betygsätt oss: {% for link in nps %}{{ link.score }} {% endfor %}</td></tr>{% endif %}\n",
    )
    .unwrap();
    let own = Campaign::load_dir(&t.dir).unwrap();
    let email = own.render_email(2, "sv", &sv).unwrap();
    assert!(email.html.contains("data-layout=\"sv\""), "{}", email.html);
    assert!(email.html.contains("Betygsätt oss: 0 1 2"));
    assert!(!email.html.contains("Hur troligt"));
    assert!(email.html.contains("Avsluta prenumeration"));
    let en = own
        .render_email(2, "en", &full_sample("en", RewardKind::AmountOff))
        .unwrap();
    assert!(!en.html.contains("data-layout"));
    assert!(en
        .html
        .contains("How likely are you to recommend Sample Shop to a friend?"));
}

#[test]
fn a_string_a_locale_lacks_is_named_with_the_template_that_uses_it() {
    let t = TempCampaign::example();
    let strings = std::fs::read_to_string(t.path("templates/da/strings.toml")).unwrap();
    let without_note: String = strings
        .lines()
        .filter(|l| !l.starts_with("nps_note"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(t.path("templates/da/strings.toml"), &without_note).unwrap();
    assert_mentions(
        &t.load_error(),
        &[
            "templates/da/strings.toml has no `nps_note`",
            "templates/_nps.html uses on line 13",
            "nps_low",
        ],
    );
    // A locale with its own NPS partials needs none of the shared ones' strings.
    std::fs::write(
        t.path("templates/da/_nps.html"),
        "{% if nps %}<tr><td>{% for link in nps %}{{ link.score }} {% endfor %}</td></tr>{% endif %}\n",
    )
    .unwrap();
    std::fs::write(
        t.path("templates/da/_nps.txt"),
        "{% if nps %}{% for link in nps %}{{ link.score }}: {{ link.url }}\n{% endfor %}{% endif %}\n",
    )
    .unwrap();
    Campaign::load_dir(&t.dir).unwrap();
}

#[test]
fn a_placeholder_the_template_does_not_fill_is_named_with_the_locale() {
    let t = TempCampaign::example();
    t.edit(
        "templates/pl/strings.toml",
        "Zespół {shop_name}",
        "Zespół {shop}",
    );
    assert_mentions(
        &t.load_error(),
        &[
            "templates/_layout.",
            "`{shop}`",
            "can use only: shop_name",
            "in locale `pl`",
        ],
    );
}

#[test]
fn a_broken_strings_table_is_named() {
    let t = TempCampaign::example();
    t.edit("templates/pt/strings.toml", "lang = \"pt\"", "lang = pt");
    assert_mentions(&t.load_error(), &["templates/pt/strings.toml", "line"]);
}

#[test]
fn a_template_syntax_error_gives_file_and_line() {
    let t = TempCampaign::example();
    t.edit("templates/pl/goodbye.subject", "{% endif %}", "{% endfi %}");
    let e = t.load_error();
    assert_mentions(
        &e,
        &["templates/pl/goodbye.subject", "syntax error", "line 1"],
    );
}

#[test]
fn an_unknown_toml_key_is_named_with_its_line() {
    let t = TempCampaign::example();
    t.edit("campaign.toml", "multiplier = 2.0", "multiplyer = 2.0");
    let e = t.load_error();
    assert_mentions(&e, &["campaign.toml", "multiplyer", "line"]);
}

#[test]
fn targeting_defaults_to_the_rules_and_a_bad_share_is_named() {
    let t = TempCampaign::example();
    // The shipped example targets by uplift, waiting for 500 finished enrollments per group.
    let c = Campaign::load_dir(&t.dir).unwrap();
    assert_eq!(
        c.config().targeting.mode,
        crate::domain::targeting::Mode::Uplift
    );
    assert_eq!(c.config().targeting.min_enrollments, 500);
    // Without a [targeting] section, the rules decide.
    let path = t.path("campaign.toml");
    let shipped = std::fs::read_to_string(&path).unwrap();
    let start = shipped.find("\n[targeting]\n").unwrap();
    let end = start + shipped[start..].find("\n\n").unwrap();
    let text = format!("{}{}", &shipped[..start], &shipped[end..]);
    std::fs::write(&path, &text).unwrap();
    let c = Campaign::load_dir(&t.dir).unwrap();
    assert_eq!(
        c.config().targeting.mode,
        crate::domain::targeting::Mode::Rules
    );
    let with =
        |section: &str| std::fs::write(&path, format!("{text}\n[targeting]\n{section}")).unwrap();
    with("mode = \"uplift\"\nmargin = 0.4\n");
    let c = Campaign::load_dir(&t.dir).unwrap();
    assert_eq!(
        c.config().targeting.mode,
        crate::domain::targeting::Mode::Uplift
    );
    assert_eq!(c.config().targeting.margin, 0.4);
    with("mode = \"uplift\"\nexploration = 1.5\n");
    assert_mentions(
        &t.load_error(),
        &["targeting.exploration", "between 0 and 1"],
    );
    with("mode = \"always\"\n");
    assert_mentions(&t.load_error(), &["always"]);
}

#[test]
fn an_invalid_reward_spec_is_named() {
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        "[rewards.by_reason.forgot]\nkind = \"multi_order\"\nvalue = \"5.00\"\norders = 5",
        "[rewards.by_reason.forgot]\nkind = \"multi_order\"\nvalue = \"5.00\"\norders = 40",
    );
    let e = t.load_error();
    assert_mentions(&e, &["campaign.toml", "rewards.by_reason.forgot", "orders"]);
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        "reward = { kind = \"percent_off\", value = \"15\"",
        "reward = { kind = \"percent_off\", value = \"150\"",
    );
    assert_mentions(
        &t.load_error(),
        &["experiment.variants[2].reward", "between 1 and 100"],
    );
}

#[test]
fn more_steps_than_allowed_is_refused() {
    let t = TempCampaign::example();
    t.edit("campaign.toml", "max_steps = 3", "max_steps = 2");
    assert_mentions(
        &t.load_error(),
        &["campaign.toml", "steps", "max_steps is 2"],
    );
}

#[test]
fn a_sequence_and_sunset_longer_than_the_attribution_window_is_refused() {
    // 0 + 5 + 7 days of steps and 14 of sunset wait: 26 days fit in 30, not in 25.
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        "attribution_days = 30",
        "attribution_days = 25",
    );
    assert_mentions(
        &t.load_error(),
        &["sending.attribution_days", "26 days", "at least 26"],
    );
    // A timing variant that stretches the sequence past the window is refused too.
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        "name = \"percent-15\"",
        "name = \"percent-15\"\ndelay_factor = 1.5",
    );
    assert_mentions(
        &t.load_error(),
        &["sending.attribution_days", "percent-15", "32 days"],
    );
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        "still_with_us = [\"subscription_renewed\"]",
        "still_with_us = [\"order\"]",
    );
    assert_mentions(&t.load_error(), &["sending.still_with_us[1]"]);
}

#[test]
fn an_at_risk_reward_before_the_last_step_is_refused() {
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        "template = \"checkin\"\ndelay_days = 0",
        "template = \"checkin\"\ndelay_days = 0\nreward = true",
    );
    assert_mentions(
        &t.load_error(),
        &["at_risk.steps[1].reward", "only the last at-risk step"],
    );
}

#[test]
fn a_negative_delay_names_the_step() {
    let t = TempCampaign::example();
    t.edit("campaign.toml", "delay_days = 5", "delay_days = -1");
    assert_mentions(
        &t.load_error(),
        &["campaign.toml: steps[2].delay_days must be ≥ 0"],
    );
}

#[test]
fn a_default_locale_outside_the_locales_is_refused() {
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        "default_locale = \"en\"",
        "default_locale = \"fr\"",
    );
    assert_mentions(
        &t.load_error(),
        &["campaign.toml", "default_locale", "\"fr\""],
    );
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        "locales = [\"en\", \"sv\"",
        "locales = [\"en\", \"Swedish\"",
    );
    assert_mentions(
        &t.load_error(),
        &["locales[1]", "\"Swedish\" is not a locale"],
    );
}

#[test]
fn a_locale_without_templates_is_refused() {
    let t = TempCampaign::example();
    t.edit("campaign.toml", "\"pt\"]", "\"pt\", \"fi\"]");
    assert_mentions(&t.load_error(), &["templates/fi/offer.subject is missing"]);
}

#[test]
fn a_flow_priority_naming_no_flow_or_one_twice_is_refused() {
    let line = "priority = [\"re-engagement\", \"win-back\", \"at-risk\", \"celebration\"]";
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        line,
        "priority = [\"birthday\", \"win-back\"]",
    );
    assert_mentions(
        &t.load_error(),
        &[
            "campaign.toml",
            "flows.priority",
            "`birthday`, which is no flow",
        ],
    );
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        line,
        "priority = [\"celebration\", \"win-back\", \"celebration\"]",
    );
    assert_mentions(&t.load_error(), &["flows.priority", "`celebration` twice"]);
    // A partial list is fine: the others follow in the default order.
    let t = TempCampaign::example();
    t.edit("campaign.toml", line, "priority = [\"celebration\"]");
    let c = Campaign::load_dir(&t.dir).unwrap();
    assert_eq!(
        c.config().flow_priority(),
        vec![crate::domain::sequence::Flow::Celebration]
    );
}

#[test]
fn a_bad_time_zone_is_refused() {
    let t = TempCampaign::example();
    t.edit("campaign.toml", "Europe/Stockholm", "Europe/Stokholm");
    assert_mentions(
        &t.load_error(),
        &[
            "campaign.toml: default_time_zone",
            "Europe/Stokholm",
            "IANA",
        ],
    );
}

#[test]
fn each_rule_of_the_campaign_file_names_its_key() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "name = \"example\"",
            "name = \"Example Campaign\"",
            &["name", "lowercase"],
        ),
        (
            "currency = \"EUR\"",
            "currency = \"euro\"",
            &["currency", "3-letter"],
        ),
        (
            "currency = \"EUR\"",
            "currency = \"EUR\"\nexchange_rates = { SEK = 0 }",
            &["exchange_rates.SEK", "positive number", "in EUR"],
        ),
        (
            "currency = \"EUR\"",
            "currency = \"EUR\"\nexchange_rates = { sek = 0.087 }",
            &["exchange_rates.sek", "3-letter"],
        ),
        (
            "shop_url = \"https://shop.example.com\"",
            "shop_url = \"shop\"",
            &["shop_url", "not a URL"],
        ),
        (
            "platform = \"shopify\"",
            "platform = \"generic\"",
            &["checkout.url", "{code}"],
        ),
        (
            "platform = \"shopify\"",
            "platform = \"generic\"\nurl = \"promo:{code}\"",
            &["checkout.url", "http"],
        ),
        (
            "quiet_hours_start = 21",
            "quiet_hours_start = 24",
            &["sending.quiet_hours_start", "0 to 23"],
        ),
        (
            "min_days = 21",
            "min_days = 90",
            &["lapse.default_days", "between"],
        ),
        (
            "multiplier = 2.0",
            "multiplier = 0.0",
            &["lapse.multiplier", "> 0"],
        ),
        (
            "prior_weight = 2",
            "prior_weight = -1",
            &["lapse.prior_weight", "≥ 0"],
        ),
        (
            "holdout_percent = 10",
            "holdout_percent = 60",
            &["experiment.holdout_percent", "0 to 50"],
        ),
        (
            "name = \"amount-10\"",
            "name = \"holdout\"",
            &["experiment.variants[1].name", "holdout"],
        ),
        (
            "name = \"amount-10\"",
            "name = \"percent-15\"",
            &["experiment.variants[2].name", "unique"],
        ),
        (
            "weight = 1",
            "weight = 0",
            &["experiment.variants[1].weight", "more than 0"],
        ),
        (
            "name = \"percent-15\"",
            "name = \"percent-15\"\nno_reward = true",
            &[
                "experiment.variants[2].no_reward",
                "cannot also set `reward`",
            ],
        ),
        (
            "program_holdout = 0.05",
            "program_holdout = 0.5",
            &["experiment.program_holdout", "under 0.5", "0.5"],
        ),
        (
            "program_holdout = 0.05",
            "program_holdout = -0.01",
            &["experiment.program_holdout", "from 0"],
        ),
        (
            "# promote = \"percent-15\"",
            "promote = \"percent-20\"",
            &["experiment.promote", "percent-20", "amount-10, percent-15"],
        ),
        (
            "validity_days = 14\n\n[rewards.by_reason.too_expensive]",
            "validity_days = 0\n\n[rewards.by_reason.too_expensive]",
            &["rewards.default", "validity_days"],
        ),
    ];
    for (from, to, parts) in cases {
        let t = TempCampaign::example();
        t.edit("campaign.toml", from, to);
        let e = t.load_error();
        assert!(e.starts_with("campaign.toml: "), "{e}");
        assert_mentions(&e, parts);
    }
}

#[test]
fn a_path_opens_a_directory_and_a_name_opens_a_shipped_campaign() {
    let t = TempCampaign::example();
    t.edit(
        "campaign.toml",
        "name = \"example\"",
        "name = \"spring-sale\"",
    );
    let from_dir = Campaign::open(t.dir.to_str().unwrap()).unwrap();
    assert_eq!(from_dir.config().name, "spring-sale");
    assert_eq!(Campaign::open("example").unwrap().config().name, "example");
}

#[test]
fn a_campaign_directory_without_a_campaign_file_says_so() {
    let t = TempCampaign::example();
    std::fs::remove_file(t.path("campaign.toml")).unwrap();
    assert_mentions(&t.load_error(), &["campaign.toml"]);
}
