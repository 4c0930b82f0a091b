//! The functions' logs: JSON lines on standard output, at the level `RUST_LOG` sets. (What is
//! counted, and logged with it, is [`crate::telemetry`].)

/// Initialises JSON logs for a Lambda function (no personal data is ever logged).
///
/// `RUST_LOG` sets the level: one level (`debug`), or a default and levels per target
/// (`info,aws_smithy_runtime=debug`). Span and field filters are not supported; without a
/// default level (unset, `aws_smithy_runtime=debug`, or a value that does not parse), it is `info`.
pub fn init_logging() {
    use tracing_subscriber::prelude::*;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .without_time()
                .with_target(false)
                .with_filter(log_filter(std::env::var("RUST_LOG").ok().as_deref())),
        )
        .try_init();
}

/// The log filter for a `RUST_LOG` value; `info` for whatever it leaves unset (all of it when
/// the variable is unset or does not parse).
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    // Empty directives dropped: an empty target would match every target, at `trace`.
    let directives: Vec<&str> = rust_log
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let targets = if directives.is_empty() {
        Targets::new()
    } else {
        directives.join(",").parse().unwrap_or_default()
    };
    match targets.default_level() {
        Some(_) => targets,
        None => targets.with_default(LevelFilter::INFO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_sets_the_level_overall_or_per_target_and_falls_back_to_info() {
        use tracing::Level;
        let debug = log_filter(Some("debug"));
        assert!(debug.would_enable("sender", &Level::DEBUG));
        let mixed = log_filter(Some("warn,aws_smithy_runtime=debug"));
        assert!(mixed.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!mixed.would_enable("sender", &Level::INFO));
        assert!(mixed.would_enable("sender", &Level::WARN));
        let only = log_filter(Some("aws_smithy_runtime=debug"));
        assert!(only.would_enable("aws_smithy_runtime", &Level::DEBUG));
        assert!(only.would_enable("sender", &Level::INFO));
        for fallback in [
            None,
            Some("no such level"),
            Some(""),
            Some(" , "),
            Some("sender=loud"),
        ] {
            let f = log_filter(fallback);
            assert!(f.would_enable("sender", &Level::INFO), "{fallback:?}");
            assert!(!f.would_enable("sender", &Level::DEBUG), "{fallback:?}");
        }
    }
}
