//! Email templates: compiling them, checking them against the [`EmailContext`] at load, and
//! rendering them.
//!
//! Templates are named by their path inside the campaign (`templates/sv/offer.html`), so every
//! error names the file. A template is looked for in the locale's folder first, then in
//! `templates/` itself, where templates shared by every locale live: `{% extends "_layout.html" %}`
//! in `templates/sv/offer.html` takes `templates/sv/_layout.html` if the campaign has one, else
//! `templates/_layout.html`. Each locale's words for the shared templates come from its
//! `templates/<locale>/strings.toml`, which templates see as `t`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use super::email::{empty_sample, full_sample, EmailContext};
use super::error::CampaignError;
use crate::domain::reward::RewardKind;
use crate::domain::survey::Reason;

/// The three files of a step, in the order they are checked and rendered.
pub(crate) const PARTS: [&str; 3] = ["subject", "html", "txt"];

/// The name of a locale's strings table, in its folder.
pub(crate) const STRINGS_FILE: &str = "strings.toml";

/// The name templates see a locale's strings table by.
const STRINGS_VAR: &str = "t";

/// The path of a template shared by every locale without its own.
fn shared_path(file: &str) -> String {
    format!("templates/{file}")
}

fn is_template_file(path: &str) -> bool {
    path.starts_with("templates/")
        && PARTS
            .iter()
            .any(|ext| path.rsplit_once('.').is_some_and(|(_, e)| e == *ext))
}

/// The locale of a `templates/<locale>/strings.toml` path.
fn strings_locale(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("templates/")?;
    let (locale, file) = rest.split_once('/')?;
    (file == STRINGS_FILE && !locale.is_empty()).then_some(locale)
}

/// Where a template is: in a locale's folder (`templates/<locale>/…`), or shared
/// (`templates/<file>`).
enum Place<'a> {
    Locale(&'a str),
    Shared(&'a str),
}

fn place(name: &str) -> Option<Place<'_>> {
    let rest = name.strip_prefix("templates/")?;
    Some(match rest.split_once('/') {
        Some((locale, _)) => Place::Locale(locale),
        None => Place::Shared(rest),
    })
}

/// An environment with the product's settings: strict undefined, HTML escaping for `.html`
/// only, includes resolved next to the including template, else among the shared ones
/// (`names` are the campaign's templates).
fn environment(names: Arc<BTreeSet<String>>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // minijinja's own HTML escaping also writes `/` as `&#x2f;`: strings are escaped here with
    // `html-escape`'s quoted-attribute rules instead (`&`, `<`, `>`, `"`, `'`), leaving `/`
    // alone so links stay plain in `href`s (click tracking rewrites them) while customer data
    // is still neutralized. Other values take minijinja's formatter.
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe() {
            if let Some(text) = value.as_str() {
                out.write_str(&html_escape::encode_quoted_attribute(text))?;
                return Ok(());
            }
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_filter("capfirst", capfirst);
    env.add_filter("fill", fill);
    env.set_path_join_callback(move |name, parent| {
        if name.starts_with("templates/") {
            return name.to_string().into();
        }
        let Some((dir, _)) = parent.rsplit_once('/') else {
            return name.to_string().into();
        };
        let beside = format!("{dir}/{name}");
        let shared = shared_path(name);
        if !names.contains(&beside) && names.contains(&shared) {
            return shared.into();
        }
        beside.into()
    });
    env
}

/// Upper-cases the first letter only (`capitalize` would lower-case the rest, product names too).
fn capfirst(s: String) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => s,
    }
}

/// Fills a text's `{name}` placeholders with the values given by name:
/// `{{ t.visit|fill(shop_name=shop_name) }}`. A text may leave a value out (a translation that
/// does not need it); a placeholder no value is given for is an error naming it.
fn fill(text: String, values: Kwargs) -> Result<String, minijinja::Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let name = &after[..close];
        let value: Value = values.get(name).map_err(|_| {
            let given: Vec<&str> = values.args().collect();
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "the text {text:?} has `{{{name}}}`, but here it can use only: {}",
                    given.join(", ")
                ),
            )
        })?;
        out.push_str(&value.to_string());
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    // Values a text leaves out are fine: mark them all used.
    for name in values.args().collect::<Vec<_>>() {
        let _: Value = values.get(name)?;
    }
    Ok(out)
}

/// A campaign's compiled templates and each locale's strings table.
#[derive(Debug, Clone)]
pub(crate) struct Templates {
    env: Environment<'static>,
    /// The names of the templates in `env`.
    names: Arc<BTreeSet<String>>,
    /// `templates/<locale>/strings.toml` by locale, as templates see it (`t`).
    strings: BTreeMap<String, Value>,
}

impl Templates {
    /// Compiles every template file and reads every strings table; a syntax error names the
    /// file and line.
    pub(crate) fn compile<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<Templates, CampaignError> {
        let names: Arc<BTreeSet<String>> = Arc::new(
            files
                .clone()
                .into_iter()
                .filter(|(path, _)| is_template_file(path))
                .map(|(path, _)| path.to_string())
                .collect(),
        );
        let mut env = environment(Arc::clone(&names));
        let mut strings = BTreeMap::new();
        for (path, source) in files {
            if let Some(locale) = strings_locale(path) {
                let table: toml::Table =
                    toml::from_str(source).map_err(|source| CampaignError::Toml {
                        file: path.to_string(),
                        source,
                    })?;
                strings.insert(locale.to_string(), Value::from_serialize(&table));
                continue;
            }
            if !is_template_file(path) {
                continue;
            }
            env.add_template_owned(path.to_string(), source.to_string())
                .map_err(|e| CampaignError::TemplateSyntax {
                    file: e.name().unwrap_or(path).to_string(),
                    line: e.line(),
                    detail: detail(&e),
                    source: e,
                })?;
        }
        Ok(Templates {
            env,
            names,
            strings,
        })
    }

    /// The template a locale uses for `file` (`offer.html`): its own, else the shared one, else
    /// (when neither exists) the path of its own.
    pub(crate) fn locate(&self, locale: &str, file: &str) -> String {
        let own = format!("templates/{locale}/{file}");
        let shared = shared_path(file);
        if !self.names.contains(&own) && self.names.contains(&shared) {
            shared
        } else {
            own
        }
    }

    /// The file of one part of a step's email in one locale.
    fn step_file(&self, locale: &str, step: &str, part: &str) -> String {
        self.locate(locale, &format!("{step}.{part}"))
    }

    /// The locales whose emails use template `name`: its folder's, or for a shared template
    /// every locale without its own.
    fn users<'l>(&self, name: &str, locales: &'l [String]) -> Vec<&'l str> {
        match place(name) {
            Some(Place::Locale(locale)) => locales
                .iter()
                .filter(|l| l.as_str() == locale)
                .map(String::as_str)
                .collect(),
            Some(Place::Shared(file)) => locales
                .iter()
                .filter(|l| self.locate(l, file) == name)
                .map(String::as_str)
                .collect(),
            None => Vec::new(),
        }
    }

    /// A locale's strings table, empty when it has none.
    fn strings_of(&self, locale: &str) -> Value {
        self.strings
            .get(locale)
            .cloned()
            .unwrap_or_else(|| Value::from_serialize(BTreeMap::<String, String>::new()))
    }

    /// Renders one part of a step's email in one locale.
    pub(crate) fn render(
        &self,
        locale: &str,
        step: &str,
        part: &str,
        ctx: &EmailContext,
    ) -> Result<String, minijinja::Error> {
        let file = self.step_file(locale, step, part);
        let ctx = minijinja::context! {
            t => self.strings_of(locale),
            ..Value::from_serialize(ctx)
        };
        self.env.get_template(&file)?.render(ctx)
    }
}

/// A minijinja error's message without its location (the caller names the file).
pub(crate) fn detail(e: &minijinja::Error) -> String {
    match (e.kind(), e.detail()) {
        (ErrorKind::SyntaxError, Some(d)) => d.to_string(),
        (kind, Some(d)) => format!("{kind}: {d}"),
        (kind, None) => kind.to_string(),
    }
}

/// The error that started it all: an error inside an included or extended template is wrapped
/// by the including one, and the innermost one names the right file and line.
pub(crate) fn innermost(e: &minijinja::Error) -> &minijinja::Error {
    let mut current = e;
    let mut next = std::error::Error::source(current);
    while let Some(source) = next {
        if let Some(inner) = source.downcast_ref::<minijinja::Error>() {
            current = inner;
        }
        next = source.source();
    }
    current
}

/// Names templates may use that are not context fields.
const BUILTIN_NAMES: [&str; 7] = [
    "loop", "super", "self", "caller", "varargs", "kwargs", "none",
];

impl Templates {
    /// Checks that every step has its three files in every locale (its own or shared), that no
    /// template uses a variable emails do not have, and that every locale's strings table has
    /// the strings its templates use ([`Templates::check_renders`] then renders them).
    pub(crate) fn check(&self, locales: &[String], steps: &[String]) -> Result<(), CampaignError> {
        for locale in locales {
            for step in steps {
                for part in PARTS {
                    let file = self.step_file(locale, step, part);
                    if !self.names.contains(&file) {
                        return Err(CampaignError::MissingTemplate {
                            file,
                            step: step.clone(),
                        });
                    }
                }
            }
        }

        let sample = Value::from_serialize(full_sample("en", RewardKind::AmountOff));
        let globals: BTreeSet<String> = self
            .env
            .globals()
            .map(|(name, _)| name.to_string())
            .collect();

        // In order of name, so the first mistake reported is always the same one.
        let mut templates: Vec<_> = self.env.templates().collect();
        templates.sort_by_key(|(name, _)| *name);
        for (name, template) in templates {
            let source = template.source();
            for path in template.undeclared_variables(true) {
                let top = path.split('.').next().unwrap_or_default();
                if top == STRINGS_VAR {
                    self.check_strings(name, source, &path, locales)?;
                    continue;
                }
                if globals.contains(top) || BUILTIN_NAMES.contains(&top) {
                    continue;
                }
                if let Some((unknown, available)) = unknown_prefix(&sample, &path) {
                    return Err(CampaignError::UnknownVariable {
                        file: name.to_string(),
                        line: line_of(source, unknown.rsplit('.').next().unwrap_or(&unknown)),
                        variable: unknown,
                        available,
                    });
                }
            }
        }

        Ok(())
    }

    /// A string template `name` uses (`t.nps_note`) is in the strings table of every locale
    /// whose emails use the template.
    fn check_strings(
        &self,
        name: &str,
        source: &str,
        path: &str,
        locales: &[String],
    ) -> Result<(), CampaignError> {
        let Some((_, key)) = path.split_once('.') else {
            return Ok(());
        };
        for locale in self.users(name, locales) {
            if let Some((unknown, available)) = unknown_prefix(&self.strings_of(locale), key) {
                return Err(CampaignError::MissingString {
                    file: format!("templates/{locale}/{STRINGS_FILE}"),
                    key: unknown.clone(),
                    template: name.to_string(),
                    line: line_of(source, unknown.rsplit('.').next().unwrap_or(&unknown)),
                    available: if available.is_empty() {
                        "none".into()
                    } else {
                        available
                    },
                });
            }
        }
        Ok(())
    }

    /// Renders every step in every locale with every reward kind, survey answer and kind of
    /// inactivity, and with an empty sample: a branch that fails to render, or an empty subject,
    /// is refused naming its file (and, for a shared template, the locale). About 1,900 renders
    /// for the shipped campaign (some 20 ms), so campaigns compiled into the binaries go through
    /// it in the test suite rather than at every cold start (see [`super::Campaign::embedded`]).
    pub(crate) fn check_renders(
        &self,
        locales: &[String],
        steps: &[String],
    ) -> Result<(), CampaignError> {
        for locale in locales {
            let mut contexts: Vec<EmailContext> = RewardKind::ALL
                .into_iter()
                .map(|kind| full_sample(locale, kind))
                .collect();
            contexts.push(empty_sample(locale));
            // Every answer's branch renders (a step after the survey speaks to the reason).
            contexts.extend(Reason::ALL.into_iter().map(|r| EmailContext {
                reason: Some(r.as_str().to_string()),
                ..full_sample(locale, RewardKind::AmountOff)
            }));
            // Every kind of inactivity's branch renders too.
            contexts.extend(
                crate::domain::engagement::Segment::ALL
                    .into_iter()
                    .map(|s| EmailContext {
                        segment: Some(s.as_str().to_string()),
                        ..full_sample(locale, RewardKind::AmountOff)
                    }),
            );
            for (i, step) in steps.iter().enumerate() {
                for ctx in &mut contexts {
                    ctx.step = u8::try_from(i + 1).unwrap_or(u8::MAX);
                    ctx.total_steps = u8::try_from(steps.len()).unwrap_or(u8::MAX);
                }
                for part in PARTS {
                    let file = self.step_file(locale, step, part);
                    for ctx in &contexts {
                        let out = self.render(locale, step, part, ctx).map_err(|e| {
                            let cause = innermost(&e);
                            let file = cause.name().unwrap_or(&file).to_string();
                            let mut detail = detail(cause);
                            if matches!(place(&file), Some(Place::Shared(_))) {
                                detail.push_str(&format!(" (in locale `{locale}`)"));
                            }
                            CampaignError::TemplateRender {
                                file,
                                line: cause.line(),
                                detail,
                                source: e,
                            }
                        })?;
                        if part == "subject" && out.trim().is_empty() {
                            return Err(CampaignError::TemplateRender {
                                file,
                                line: None,
                                detail: "the subject is empty".into(),
                                source: minijinja::Error::new(
                                    ErrorKind::InvalidOperation,
                                    "empty subject",
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The shortest prefix of a dotted path the sample does not have (`reward.cdoe`), or `None` when
/// the sample has it or it leads into a value that is not a map.
fn unknown_prefix(sample: &Value, path: &str) -> Option<(String, String)> {
    let mut current = sample.clone();
    let mut walked = String::new();
    for segment in path.split('.') {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(segment);
        if current.kind() != ValueKind::Map {
            return None;
        }
        match current.get_attr(segment) {
            Ok(v) if !v.is_undefined() => current = v,
            _ => return Some((walked, keys(&current))),
        }
    }
    None
}

/// The keys of a map value, comma-separated.
fn keys(map: &Value) -> String {
    map.try_iter()
        .map(|keys| keys.map(|k| k.to_string()).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// The first line (1-based) on which `ident` appears as a whole word.
fn line_of(source: &str, ident: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    source
        .lines()
        .position(|line| {
            line.match_indices(ident).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + ident.len()..].chars().next();
                !before.is_some_and(is_word) && !after.is_some_and(is_word)
            })
        })
        .map(|i| i + 1)
}
