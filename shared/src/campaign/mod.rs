//! Campaigns: the TOML file, its email templates per locale, loading and validation.
//!
//! A campaign is a directory: `campaign.toml` and `templates/<locale>/<step>.{subject,html,txt}`
//! for every step and locale, plus any partials they include. A template a locale's folder does
//! not have is taken from `templates/` itself, shared by every locale (`templates/_layout.html`),
//! with the locale's words from `templates/<locale>/strings.toml`. Loading checks everything at
//! once, so a mistake stops a function at start with a message that names the file, the key or
//! template, and what is wrong, instead of failing on the first customer's email.

pub mod config;
mod email;
mod error;
pub mod flows;
mod locale;
pub use locale::Lang;
mod templates;
mod validate;

use std::path::{Path, PathBuf};

pub use config::CampaignConfig;
pub use email::{EmailContext, NpsLink, RenderedEmail, RewardView, SurveyLink};
pub use error::{CampaignError, RenderError};
pub use locale::{describe_reward, format_date, format_money, format_money_short, months_between};

use templates::{Templates, PARTS, STRINGS_FILE};
use validate::CONFIG_FILE;

/// The environment variable that picks the campaign: a shipped campaign's name or a directory.
pub const CAMPAIGN_ENV: &str = "CAMPAIGN";

/// The campaign used when `CAMPAIGN` is not set.
pub const DEFAULT_CAMPAIGN: &str = "example";

/// A loaded, validated campaign: its configuration and its compiled email templates.
#[derive(Debug, Clone)]
pub struct Campaign {
    config: CampaignConfig,
    templates: Templates,
}

impl Campaign {
    /// A campaign compiled into the binary, by name (`example`).
    pub fn embedded(name: &str) -> Result<Campaign, CampaignError> {
        let files = embedded::campaign(name).ok_or_else(|| CampaignError::UnknownCampaign {
            name: name.to_string(),
            available: embedded::NAMES.join(", "),
        })?;
        // The test suite renders every branch of every shipped campaign
        // (`every_shipped_campaign_renders_every_branch`); at start the structure is checked.
        Campaign::load(files.iter().copied(), Renders::Skip)
    }

    /// A campaign from a directory holding `campaign.toml` and `templates/`.
    pub fn load_dir(path: &Path) -> Result<Campaign, CampaignError> {
        let mut files = Vec::new();
        let config_path = path.join(CONFIG_FILE);
        let toml = std::fs::read_to_string(&config_path).map_err(|source| CampaignError::Io {
            path: config_path,
            source,
        })?;
        files.push((CONFIG_FILE.to_string(), toml));
        let templates = path.join("templates");
        if templates.is_dir() {
            read_tree(&templates, "templates", &mut files)?;
        }
        Campaign::from_files(files.iter().map(|(p, s)| (p.as_str(), s.as_str())))
    }

    /// The campaign `CAMPAIGN` names: a directory if it is a path to one, else a shipped
    /// campaign; `example` when unset. With `CAMPAIGNS` set, only the flows it lists run (see
    /// [`flows`]).
    pub fn from_env() -> Result<Campaign, CampaignError> {
        let value = std::env::var(CAMPAIGN_ENV).unwrap_or_default();
        let value = value.trim();
        let campaign = Campaign::open(if value.is_empty() {
            DEFAULT_CAMPAIGN
        } else {
            value
        })?;
        campaign.with_flows(&std::env::var(flows::CAMPAIGNS_ENV).unwrap_or_default())
    }

    /// The same campaign running only the flows `list` names (comma-separated: `win-back`,
    /// `at-risk`, `re-engagement`, `celebration`); an empty list keeps every flow.
    pub fn with_flows(mut self, list: &str) -> Result<Campaign, CampaignError> {
        self.config = flows::select(self.config, list)?;
        Ok(self)
    }

    /// A directory if `name_or_path` is one, else a shipped campaign of that name.
    pub fn open(name_or_path: &str) -> Result<Campaign, CampaignError> {
        let path = Path::new(name_or_path);
        if path.is_dir() {
            Campaign::load_dir(path)
        } else {
            Campaign::embedded(name_or_path)
        }
    }

    /// A campaign from `(path inside the campaign, contents)` pairs: `campaign.toml` and
    /// `templates/...`. Other files are ignored. Everything is checked, every template rendered
    /// in every branch.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<Campaign, CampaignError> {
        Campaign::load(files, Renders::Check)
    }

    fn load<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
        renders: Renders,
    ) -> Result<Campaign, CampaignError> {
        let toml = files
            .clone()
            .into_iter()
            .find(|(p, _)| *p == CONFIG_FILE)
            .map(|(_, s)| s)
            .ok_or_else(|| CampaignError::Io {
                path: PathBuf::from(CONFIG_FILE),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "every campaign needs a campaign.toml",
                ),
            })?;
        let config: CampaignConfig =
            toml::from_str(toml).map_err(|source| CampaignError::Toml {
                file: CONFIG_FILE.to_string(),
                source,
            })?;
        validate::validate(&config)?;
        let templates = Templates::compile(files)?;
        let mut steps: Vec<String> = config.steps.iter().map(|s| s.template.clone()).collect();
        steps.extend(config.eligibility.resolved_template.clone());
        steps.extend(config.eligibility.fewer_emails_template.clone());
        if let Some(celebration) = &config.celebration {
            steps.extend(celebration.steps.iter().map(|s| s.template.clone()));
        }
        if let Some(flow) = &config.re_engagement {
            steps.extend(flow.steps.iter().map(|s| s.template.clone()));
        }
        if let Some(at_risk) = &config.at_risk {
            steps.extend(at_risk.steps.iter().map(|s| s.template.clone()));
        }
        templates.check(&config.locales, &steps)?;
        if renders == Renders::Check {
            templates.check_renders(&config.locales, &steps)?;
        }
        Ok(Campaign { config, templates })
    }

    /// The campaign file's settings.
    pub fn config(&self) -> &CampaignConfig {
        &self.config
    }

    /// The same campaign with `sending.best_hour` set to `on` (a simulation comparing the best
    /// hour with the campaign's own timing; the setting needs no other check).
    pub fn with_best_hour(mut self, on: bool) -> Campaign {
        self.config.sending.best_hour = on;
        self
    }

    /// The campaign with `[targeting] mode` set to `mode` (`winback simulate --targeting`).
    pub fn with_targeting(mut self, mode: crate::domain::targeting::Mode) -> Campaign {
        self.config.targeting.mode = mode;
        self
    }

    /// The campaign's locale for a customer's: the exact locale (`pt-BR`), else its language
    /// (`pt`), else a locale of the same language, else `default_locale`. Case and `_` vs `-`
    /// do not matter.
    pub fn locale_for(&self, requested: Option<&str>) -> &str {
        let locales = &self.config.locales;
        if let Some(requested) = requested {
            let wanted = requested.trim().replace('_', "-");
            let language = wanted.split('-').next().unwrap_or_default();
            let language_of = |l: &str| l.split('-').next().unwrap_or_default().to_string();
            let found = locales
                .iter()
                .find(|l| l.eq_ignore_ascii_case(&wanted))
                .or_else(|| locales.iter().find(|l| l.eq_ignore_ascii_case(language)))
                .or_else(|| {
                    locales
                        .iter()
                        .find(|l| language_of(l).eq_ignore_ascii_case(language))
                });
            if let Some(l) = found {
                return l;
            }
        }
        &self.config.default_locale
    }

    /// Renders step `step` (1-based) for a customer whose locale is `locale` (falls back as
    /// [`Campaign::locale_for`] says). The subject comes back as one trimmed line.
    pub fn render_email(
        &self,
        step: u8,
        locale: &str,
        ctx: &EmailContext,
    ) -> Result<RenderedEmail, RenderError> {
        let step_config = usize::from(step)
            .checked_sub(1)
            .and_then(|i| self.config.steps.get(i))
            .ok_or_else(|| RenderError::UnknownStep {
                campaign: self.config.name.clone(),
                step,
                steps: self.config.steps.len(),
            })?;
        self.render_template(&step_config.template, locale, ctx)
    }

    /// Renders the email of template `template` (a step's, `resolved_template` or
    /// `fewer_emails_template`) for a customer whose locale is `locale`.
    pub fn render_template(
        &self,
        template: &str,
        locale: &str,
        ctx: &EmailContext,
    ) -> Result<RenderedEmail, RenderError> {
        let locale = self.locale_for(Some(locale));
        let [subject, html, text] = PARTS.map(|part| {
            self.templates
                .render(locale, template, part, ctx)
                .map_err(|e| {
                    let name = self.templates.locate(locale, &format!("{template}.{part}"));
                    let cause = templates::innermost(&e);
                    RenderError::Template {
                        template: cause.name().unwrap_or(&name).to_string(),
                        detail: templates::detail(cause),
                        source: e,
                    }
                })
        });
        Ok(RenderedEmail {
            subject: subject?.split_whitespace().collect::<Vec<_>>().join(" "),
            html: html?,
            text: tidy_text(&text?),
        })
    }
}

/// Plain text as mail clients show it best: no trailing spaces, at most one blank line in a row,
/// one final newline.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Reads every file under `dir` as `(prefix/relative/path, contents)`, `/`-separated.
fn read_tree(
    dir: &Path,
    prefix: &str,
    files: &mut Vec<(String, String)>,
) -> Result<(), CampaignError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CampaignError::Io { path, source }
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = format!("{prefix}/{name}");
        if path.is_dir() {
            read_tree(&path, &relative, files)?;
        } else if templates_file_name(&name) || name == STRINGS_FILE {
            let contents = std::fs::read_to_string(&path).map_err(io(&path))?;
            files.push((relative, contents));
        }
    }
    Ok(())
}

fn templates_file_name(name: &str) -> bool {
    PARTS
        .iter()
        .any(|ext| name.rsplit_once('.').is_some_and(|(_, e)| e == *ext))
}

/// Whether loading renders every template in every branch ([`Templates::check_renders`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Renders {
    Check,
    /// A campaign compiled into the binaries: the test suite rendered it.
    Skip,
}

/// Campaigns shipped inside the binaries, so a Lambda needs no files beside it.
pub mod embedded {
    macro_rules! campaign_files {
        ($dir:literal: $($path:literal),* $(,)?) => {
            &[$(($path, include_str!(concat!("../../campaigns/", $dir, "/", $path)))),*]
        };
    }

    /// Names of the shipped campaigns.
    pub const NAMES: &[&str] = &["example"];

    /// `(relative path, contents)` of every file of the shipped example campaign.
    pub const EXAMPLE: &[(&str, &str)] = campaign_files!("example":
        "campaign.toml",
        "templates/_layout.html", "templates/_layout.txt",
        "templates/_nps.html", "templates/_nps.txt",
        "templates/_survey.html", "templates/_survey.txt", "templates/_survey_links.html",
        "templates/_survey_at_risk.html", "templates/_survey_at_risk.txt",
        "templates/en/strings.toml",
        "templates/en/_reason.html", "templates/en/_reason.txt",
        "templates/en/offer.subject", "templates/en/offer.html", "templates/en/offer.txt",
        "templates/en/missing.subject", "templates/en/missing.html", "templates/en/missing.txt",
        "templates/en/goodbye.subject", "templates/en/goodbye.html", "templates/en/goodbye.txt",
        "templates/en/rarely.subject", "templates/en/rarely.html", "templates/en/rarely.txt",
        "templates/en/fixed.subject", "templates/en/fixed.html", "templates/en/fixed.txt",
        "templates/en/checkin.subject", "templates/en/checkin.html", "templates/en/checkin.txt",
        "templates/en/tips.subject", "templates/en/tips.html", "templates/en/tips.txt",
        "templates/en/nudge.subject", "templates/en/nudge.html", "templates/en/nudge.txt",
        "templates/en/celebrate.subject", "templates/en/celebrate.html", "templates/en/celebrate.txt",
        "templates/en/reconfirm.subject", "templates/en/reconfirm.html", "templates/en/reconfirm.txt",
        "templates/en/_segment.html", "templates/en/_segment.txt",
        "templates/sv/strings.toml",
        "templates/sv/_reason.html", "templates/sv/_reason.txt",
        "templates/sv/offer.subject", "templates/sv/offer.html", "templates/sv/offer.txt",
        "templates/sv/missing.subject", "templates/sv/missing.html", "templates/sv/missing.txt",
        "templates/sv/goodbye.subject", "templates/sv/goodbye.html", "templates/sv/goodbye.txt",
        "templates/sv/rarely.subject", "templates/sv/rarely.html", "templates/sv/rarely.txt",
        "templates/sv/fixed.subject", "templates/sv/fixed.html", "templates/sv/fixed.txt",
        "templates/sv/checkin.subject", "templates/sv/checkin.html", "templates/sv/checkin.txt",
        "templates/sv/tips.subject", "templates/sv/tips.html", "templates/sv/tips.txt",
        "templates/sv/nudge.subject", "templates/sv/nudge.html", "templates/sv/nudge.txt",
        "templates/sv/celebrate.subject", "templates/sv/celebrate.html", "templates/sv/celebrate.txt",
        "templates/sv/reconfirm.subject", "templates/sv/reconfirm.html", "templates/sv/reconfirm.txt",
        "templates/sv/_segment.html", "templates/sv/_segment.txt",
        "templates/da/strings.toml",
        "templates/da/_reason.html", "templates/da/_reason.txt",
        "templates/da/offer.subject", "templates/da/offer.html", "templates/da/offer.txt",
        "templates/da/missing.subject", "templates/da/missing.html", "templates/da/missing.txt",
        "templates/da/goodbye.subject", "templates/da/goodbye.html", "templates/da/goodbye.txt",
        "templates/da/rarely.subject", "templates/da/rarely.html", "templates/da/rarely.txt",
        "templates/da/fixed.subject", "templates/da/fixed.html", "templates/da/fixed.txt",
        "templates/da/checkin.subject", "templates/da/checkin.html", "templates/da/checkin.txt",
        "templates/da/tips.subject", "templates/da/tips.html", "templates/da/tips.txt",
        "templates/da/nudge.subject", "templates/da/nudge.html", "templates/da/nudge.txt",
        "templates/da/celebrate.subject", "templates/da/celebrate.html", "templates/da/celebrate.txt",
        "templates/da/reconfirm.subject", "templates/da/reconfirm.html", "templates/da/reconfirm.txt",
        "templates/da/_segment.html", "templates/da/_segment.txt",
        "templates/pl/strings.toml",
        "templates/pl/_reason.html", "templates/pl/_reason.txt",
        "templates/pl/offer.subject", "templates/pl/offer.html", "templates/pl/offer.txt",
        "templates/pl/missing.subject", "templates/pl/missing.html", "templates/pl/missing.txt",
        "templates/pl/goodbye.subject", "templates/pl/goodbye.html", "templates/pl/goodbye.txt",
        "templates/pl/rarely.subject", "templates/pl/rarely.html", "templates/pl/rarely.txt",
        "templates/pl/fixed.subject", "templates/pl/fixed.html", "templates/pl/fixed.txt",
        "templates/pl/checkin.subject", "templates/pl/checkin.html", "templates/pl/checkin.txt",
        "templates/pl/tips.subject", "templates/pl/tips.html", "templates/pl/tips.txt",
        "templates/pl/nudge.subject", "templates/pl/nudge.html", "templates/pl/nudge.txt",
        "templates/pl/celebrate.subject", "templates/pl/celebrate.html", "templates/pl/celebrate.txt",
        "templates/pl/reconfirm.subject", "templates/pl/reconfirm.html", "templates/pl/reconfirm.txt",
        "templates/pl/_segment.html", "templates/pl/_segment.txt",
        "templates/pt/strings.toml",
        "templates/pt/_reason.html", "templates/pt/_reason.txt",
        "templates/pt/offer.subject", "templates/pt/offer.html", "templates/pt/offer.txt",
        "templates/pt/missing.subject", "templates/pt/missing.html", "templates/pt/missing.txt",
        "templates/pt/goodbye.subject", "templates/pt/goodbye.html", "templates/pt/goodbye.txt",
        "templates/pt/rarely.subject", "templates/pt/rarely.html", "templates/pt/rarely.txt",
        "templates/pt/fixed.subject", "templates/pt/fixed.html", "templates/pt/fixed.txt",
        "templates/pt/checkin.subject", "templates/pt/checkin.html", "templates/pt/checkin.txt",
        "templates/pt/tips.subject", "templates/pt/tips.html", "templates/pt/tips.txt",
        "templates/pt/nudge.subject", "templates/pt/nudge.html", "templates/pt/nudge.txt",
        "templates/pt/celebrate.subject", "templates/pt/celebrate.html", "templates/pt/celebrate.txt",
        "templates/pt/reconfirm.subject", "templates/pt/reconfirm.html", "templates/pt/reconfirm.txt",
        "templates/pt/_segment.html", "templates/pt/_segment.txt",
    );

    /// The files of a shipped campaign.
    pub fn campaign(name: &str) -> Option<&'static [(&'static str, &'static str)]> {
        match name {
            "example" => Some(EXAMPLE),
            _ => None,
        }
    }
}

/// Helpers for tests across the workspace.
pub mod testing {
    use std::sync::OnceLock;

    use super::{Campaign, CampaignConfig};

    /// The shipped example campaign, loaded once.
    pub fn example() -> &'static Campaign {
        static EXAMPLE: OnceLock<Campaign> = OnceLock::new();
        EXAMPLE.get_or_init(|| Campaign::embedded("example").expect("the shipped campaign loads"))
    }

    /// The shipped example campaign's configuration.
    pub fn example_campaign() -> CampaignConfig {
        example().config().clone()
    }
}

#[cfg(test)]
mod tests;
