//! Email templates: compiling them, checking them against the [`EmailContext`] at load, and
//! rendering them.
//!
//! Templates are named by their path inside the campaign (`templates/sv/offer.html`), so every
//! error names the file. `{% extends "_layout.html" %}` and `{% include "_survey.html" %}` are
//! resolved next to the template that uses them.

use std::collections::BTreeSet;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use super::email::{empty_sample, full_sample, EmailContext};
use super::error::CampaignError;
use crate::domain::reward::RewardKind;
use crate::domain::survey::Reason;

/// The three files of a step, in the order they are checked and rendered.
pub(crate) const PARTS: [&str; 3] = ["subject", "html", "txt"];

/// The path of one part of a step's email in one locale.
pub(crate) fn template_path(locale: &str, step: &str, part: &str) -> String {
    format!("templates/{locale}/{step}.{part}")
}

fn is_template_file(path: &str) -> bool {
    path.starts_with("templates/")
        && PARTS
            .iter()
            .any(|ext| path.rsplit_once('.').is_some_and(|(_, e)| e == *ext))
}

/// An environment with the product's settings: strict undefined, HTML escaping for `.html`
/// only, includes resolved relative to the including template.
pub(crate) fn environment() -> Environment<'static> {
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
    env.set_path_join_callback(|name, parent| {
        if name.starts_with("templates/") {
            return name.to_string().into();
        }
        match parent.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{name}").into(),
            None => name.to_string().into(),
        }
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

/// Compiles every template file; a syntax error names the file and line.
pub(crate) fn compile<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Environment<'static>, CampaignError> {
    let mut env = environment();
    for (path, source) in files {
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
    Ok(env)
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

/// Checks that every step has its three files in every locale and that no template uses a
/// variable emails do not have ([`check_renders`] then renders them).
pub(crate) fn check(
    env: &Environment<'static>,
    locales: &[String],
    steps: &[String],
) -> Result<(), CampaignError> {
    for locale in locales {
        for step in steps {
            for part in PARTS {
                let file = template_path(locale, step, part);
                if env.get_template(&file).is_err() {
                    return Err(CampaignError::MissingTemplate {
                        file,
                        step: step.clone(),
                    });
                }
            }
        }
    }

    let sample = Value::from_serialize(full_sample("en", RewardKind::AmountOff));
    let globals: BTreeSet<String> = env.globals().map(|(name, _)| name.to_string()).collect();

    for (name, template) in env.templates() {
        let source = template.source();
        for path in template.undeclared_variables(true) {
            let top = path.split('.').next().unwrap_or_default();
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

/// Renders every step in every locale with every reward kind, survey answer and kind of
/// inactivity, and with an empty sample: a branch that fails to render, or an empty subject, is
/// refused naming its file. About 1,900 renders for the shipped campaign (some 20 ms), so
/// campaigns compiled into the binaries go through it in the test suite rather than at every
/// cold start (see [`super::Campaign::embedded`]).
pub(crate) fn check_renders(
    env: &Environment<'static>,
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
                let file = template_path(locale, step, part);
                for ctx in &contexts {
                    let out = render(env, &file, ctx).map_err(|e| {
                        let cause = innermost(&e);
                        CampaignError::TemplateRender {
                            file: cause.name().unwrap_or(&file).to_string(),
                            line: cause.line(),
                            detail: detail(cause),
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

/// Renders one template with a context.
pub(crate) fn render(
    env: &Environment<'static>,
    name: &str,
    ctx: &EmailContext,
) -> Result<String, minijinja::Error> {
    env.get_template(name)?.render(ctx)
}
