//! The CLI's HTML pages (the report, the preview index, the backtest), rendered by minijinja
//! with HTML auto-escaping: the one escaping path for every value a page shows. Charts are
//! passed as safe strings (SVG that `plotters` drew).

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        for (name, source) in [
            (
                "preview_index.html",
                include_str!("../templates/preview_index.html"),
            ),
            ("backtest.html", include_str!("../templates/backtest.html")),
            ("uplift.html", include_str!("../templates/uplift.html")),
        ] {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("the CLI's template {name} does not parse: {e}"));
        }
        env
    })
}

/// Renders page `name` (`preview_index.html`, `backtest.html`, `uplift.html`) with `ctx`.
/// The templates are part of the binary and the values plain data, so a failure is a bug.
pub fn render(name: &str, ctx: impl Serialize) -> String {
    environment()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| panic!("rendering the CLI's page {name}: {e:#}"))
}

/// Writes `page` as `<dir>/index.html`, creating `dir`; returns the file's path.
pub fn write_index(
    dir: &std::path::Path,
    page: &str,
) -> crate::error::CliResult<std::path::PathBuf> {
    use crate::error::CliError;
    std::fs::create_dir_all(dir).map_err(CliError::io("create", dir))?;
    let path = dir.join("index.html");
    std::fs::write(&path, page).map_err(CliError::io("write", &path))?;
    Ok(path)
}

/// Markup that goes into a page as it is (an SVG chart drawn by `plotters`).
pub fn safe(markup: String) -> minijinja::Value {
    minijinja::Value::from_safe_string(markup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_safe_markup_is_not() {
        let page = render(
            "backtest.html",
            minijinja::context! { chart => safe("<svg></svg>".into()), figures => "a < b & \"c\"" },
        );
        assert!(page.contains("<svg></svg>"), "{page}");
        assert!(page.contains("a &lt; b &amp; &quot;c&quot;"), "{page}");
    }
}
