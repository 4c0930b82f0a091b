//! What can go wrong in a command, said so the operator knows what to change.

use std::path::PathBuf;

/// Every error a `winback` command reports. `main` prints it and exits with status 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A date or time on the command line is not one.
    #[error("'{value}' is not a date for {flag}: write 2026-03-01 or 2026-03-01T09:00:00Z")]
    BadDate { flag: &'static str, value: String },
    /// The orders CSV cannot be used at all (as opposed to one bad row).
    #[error("{path}: {reason}")]
    BadCsv { path: PathBuf, reason: String },
    /// Every row of the orders file was bad.
    #[error("{path}: no row could be imported ({skipped} skipped); fix the rows listed above")]
    NothingImported { path: PathBuf, skipped: usize },
    /// The campaign could not be loaded or rendered.
    #[error("campaign {name}: {source}")]
    Campaign {
        name: String,
        #[source]
        source: Box<shared::campaign::CampaignError>,
    },
    /// A template failed to render in the preview.
    #[error(
        "campaign {campaign}, step {step} ({template}), locale {locale}, reward {reward}: {source}"
    )]
    Render {
        campaign: String,
        step: u8,
        template: String,
        locale: String,
        reward: String,
        #[source]
        source: Box<shared::campaign::RenderError>,
    },
    /// The behaviour model file is not valid.
    #[error("behaviour model {path}: {reason}")]
    Behaviour { path: String, reason: String },
    /// A store snapshot could not be read.
    #[error("store snapshot {path}: {reason}; write one with `winback import --store` or `winback simulate --save-store`")]
    Snapshot { path: PathBuf, reason: String },
    /// The command needs a source of customers and none was given.
    #[error("{command} needs one of --orders FILE, --store FILE or --aws")]
    NoSource { command: &'static str },
    /// `--aws` was asked for but something it needs is missing.
    #[error("--aws cannot run: {missing}")]
    AwsMissing { missing: String },
    /// The store refused an operation.
    /// An argument that is not one of the accepted values.
    #[error("{flag}: {reason}")]
    BadArgument { flag: &'static str, reason: String },
    #[error("store: {0}")]
    Store(#[from] shared::ports::StoreError),
    /// The scheduler failed.
    #[error("scheduler: {0}")]
    Scheduler(String),
    /// The simulation reached a state it cannot continue from.
    #[error("simulation: {0}")]
    Simulation(String),
    /// One cell of an input file is not what the command needs.
    #[error("{path}, row {line}, column {column}: {reason}")]
    BadCell {
        path: PathBuf,
        line: u64,
        column: String,
        reason: String,
    },
    /// An uplift model cannot be fitted or used on this input.
    #[error("{path}: {source}")]
    Uplift {
        path: PathBuf,
        #[source]
        source: shared::domain::uplift::UpliftError,
    },
    /// A shop platform's API failed past the import's patience, or refused it.
    #[error("{platform}: page {page} could not be read: {reason}. Run the same command again to resume from this page (state in {resume})", resume = .resume.display())]
    Platform {
        platform: &'static str,
        page: u64,
        reason: String,
        resume: PathBuf,
    },
    /// A report could not be drawn.
    #[error("drawing the {chart} chart: {reason}")]
    Chart { chart: &'static str, reason: String },
}

impl CliError {
    /// An I/O error on `path`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::Io {
            action,
            path,
            source,
        }
    }
}

/// Result of a CLI operation.
pub type CliResult<T> = Result<T, CliError>;
