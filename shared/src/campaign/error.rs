//! What goes wrong loading a campaign or rendering its emails. Every message names the file, the
//! key or template, and what to change.

use std::path::PathBuf;

/// A campaign that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// `CAMPAIGNS` names an unknown, missing or repeated flow.
    #[error(transparent)]
    Flows(#[from] super::flows::FlowListError),
    /// `CAMPAIGN` names neither a directory nor a campaign shipped in the binary.
    #[error("there is no campaign named `{name}`: use one of {available}, or a path to a campaign directory")]
    UnknownCampaign { name: String, available: String },
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `campaign.toml` is not valid TOML or does not fit the campaign's shape (unknown key,
    /// wrong type, missing key). The cause names the key and line.
    #[error("{file}: {source}")]
    Toml {
        file: String,
        #[source]
        source: toml::de::Error,
    },
    /// A value in `campaign.toml` breaks a rule.
    #[error("{file}: {key} {problem}")]
    Invalid {
        file: String,
        key: String,
        problem: String,
    },
    /// A locale lacks a file one of the steps needs.
    #[error("{file} is missing: step `{step}` needs {step}.subject, {step}.html and {step}.txt in every locale listed in `locales` (a file in templates/ itself serves every locale without its own)")]
    MissingTemplate { file: String, step: String },
    /// A template does not parse.
    #[error("{file}: syntax error{}: {detail}", line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    TemplateSyntax {
        file: String,
        line: Option<usize>,
        detail: String,
        #[source]
        source: minijinja::Error,
    },
    /// A template uses a variable emails do not have.
    #[error("{file}: unknown variable `{variable}`{}; use one of: {available}", line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    UnknownVariable {
        file: String,
        variable: String,
        line: Option<usize>,
        available: String,
    },
    /// A template uses a string (`t.nps_note`) a locale's strings table does not have.
    #[error("{file} has no `{key}`, which {template} uses{}; add it (it has: {available})", line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    MissingString {
        file: String,
        key: String,
        template: String,
        line: Option<usize>,
        available: String,
    },
    /// A template parses but fails to render with a sample email.
    #[error("{file}: cannot render a sample email{}: {detail}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    TemplateRender {
        file: String,
        line: Option<usize>,
        detail: String,
        #[source]
        source: minijinja::Error,
    },
}

/// An email that cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The step number is not in the campaign.
    #[error("campaign `{campaign}` has steps 1 to {steps}, not step {step}")]
    UnknownStep {
        campaign: String,
        step: u8,
        steps: usize,
    },
    /// The template failed with this context (for example a variable it needs is missing).
    #[error("{template}: {detail}")]
    Template {
        template: String,
        detail: String,
        #[source]
        source: minijinja::Error,
    },
}
