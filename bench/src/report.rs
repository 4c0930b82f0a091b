//! Figures, their targets, and the generated `BENCHMARKS.md`.

use std::fmt::Write as _;

/// Notes of the report, each under the name of the benchmark it explains (or `general`).
pub type Notes = Vec<(&'static str, String)>;

/// What a figure is held to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

/// One measured number.
#[derive(Debug, Clone)]
pub struct Figure {
    pub bench: &'static str,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Option<Target>,
}

impl Figure {
    /// A figure without a target (context for the others).
    pub fn info(
        bench: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Figure {
        Figure {
            bench,
            name: name.into(),
            value,
            unit,
            target: None,
        }
    }

    /// A figure held to `target`.
    pub fn held(
        bench: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: Target,
    ) -> Figure {
        Figure {
            target: Some(target),
            ..Figure::info(bench, name, value, unit)
        }
    }

    /// `Some(true)` when the target is met.
    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| match t {
            Target::AtLeast(x) => self.value >= x,
            Target::AtMost(x) => self.value <= x,
        })
    }

    fn target_text(&self) -> String {
        match self.target {
            None => String::new(),
            Some(Target::AtLeast(x)) => format!("≥ {} {}", number(x), self.unit),
            Some(Target::AtMost(x)) => format!("≤ {} {}", number(x), self.unit),
        }
    }

    fn verdict(&self) -> String {
        match (self.met(), self.target) {
            (None, _) | (_, None) => String::new(),
            (Some(true), _) => "pass".into(),
            (Some(false), Some(Target::AtLeast(x))) => {
                format!("**miss** ({:.0}% of target)", 100.0 * self.value / x)
            }
            (Some(false), Some(Target::AtMost(x))) => {
                format!("**miss** ({:.2}× the limit)", self.value / x)
            }
        }
    }

    /// One console line.
    pub fn line(&self) -> String {
        let mut s = format!(
            "  {:<58} {:>14} {}",
            self.name,
            number(self.value),
            self.unit
        );
        if self.target.is_some() {
            let _ = write!(
                s,
                "   target {}: {}",
                self.target_text(),
                self.verdict().replace("**", "")
            );
        }
        s
    }
}

/// Where one benchmark puts its figures, each under the benchmark's name.
pub struct Figures<'a> {
    bench: &'static str,
    out: &'a mut Vec<Figure>,
}

impl<'a> Figures<'a> {
    pub fn new(bench: &'static str, out: &'a mut Vec<Figure>) -> Figures<'a> {
        Figures { bench, out }
    }

    /// Adds a figure without a target.
    pub fn info(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        self.out.push(Figure::info(self.bench, name, value, unit));
    }

    /// Adds a figure held to `target`.
    pub fn held(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: Target,
    ) {
        self.out
            .push(Figure::held(self.bench, name, value, unit, target));
    }
}

/// A number with sensible precision and thousands separators.
pub fn number(x: f64) -> String {
    if x.is_nan() {
        return "n/a".into();
    }
    let abs = x.abs();
    let text = if abs >= 1000.0 {
        format!("{x:.0}")
    } else if abs >= 100.0 {
        format!("{x:.1}")
    } else if abs >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    };
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('\u{202f}');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// The machine the figures come from.
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub rustc: String,
    pub os: String,
}

impl Machine {
    /// Reads `/proc/cpuinfo`, the core count and `rustc -V`.
    pub fn detect() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let rustc = std::process::Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            rustc,
            os,
        }
    }
}

/// Writes the Markdown report: machine, every figure with target and verdict, then the notes.
pub fn markdown(machine: &Machine, figures: &[Figure], notes: &Notes) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `infra/bench` (the `winback-bench` binary, release profile). Figures, not \
         tests: nothing here fails a build. Ratios are taken inside one run on one machine.\n"
    );
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| | |\n| --- | --- |");
    let _ = writeln!(md, "| cores (`nproc`) | {} |", machine.cores);
    let _ = writeln!(md, "| CPU | {} |", machine.cpu);
    let _ = writeln!(md, "| OS | {} |", machine.os);
    let _ = writeln!(md, "| Rust | {} |", machine.rustc);
    let _ = writeln!(md, "| date | {} |\n", chrono::Utc::now().format("%Y-%m-%d"));
    let held: Vec<&Figure> = figures.iter().filter(|f| f.target.is_some()).collect();
    let missed = held.iter().filter(|f| f.met() == Some(false)).count();
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(md, "{}\n", targets_met(held.len() - missed, held.len()));
    let _ = writeln!(
        md,
        "| benchmark | figure | value | target | result |\n| --- | --- | --- | --- | --- |"
    );
    for f in &held {
        let _ = writeln!(md, "{}", summary_row(f));
    }
    for b in benches(figures) {
        md.push_str(&section(b, figures, notes));
    }
    for (_, note) in notes.iter().filter(|(nb, _)| *nb == "general") {
        let _ = writeln!(md, "\n{note}");
    }
    md
}

/// The benchmarks of `figures`, in the order of their first figure.
fn benches(figures: &[Figure]) -> Vec<&'static str> {
    let mut benches: Vec<&'static str> = Vec::new();
    for f in figures {
        if !benches.contains(&f.bench) {
            benches.push(f.bench);
        }
    }
    benches
}

/// The summary's first line.
fn targets_met(met: usize, held: usize) -> String {
    format!(
        "{met} of {held} targets met{}.",
        if met < held {
            "; the misses are explained under their benchmark"
        } else {
            ""
        }
    )
}

/// A held figure's row of the summary.
fn summary_row(f: &Figure) -> String {
    format!(
        "| {} | {} | {} {} | {} | {} |",
        f.bench,
        f.name,
        number(f.value),
        f.unit,
        f.target_text(),
        f.verdict()
    )
}

/// Benchmark `b`'s section: its heading, its figures and its notes, starting with a blank line.
fn section(b: &str, figures: &[Figure], notes: &Notes) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "\n## {b}\n");
    let _ = writeln!(
        md,
        "| figure | value | target | result |\n| --- | --- | --- | --- |"
    );
    for f in figures.iter().filter(|f| f.bench == b) {
        let _ = writeln!(
            md,
            "| {} | {} {} | {} | {} |",
            f.name,
            number(f.value),
            f.unit,
            f.target_text(),
            f.verdict()
        );
    }
    for (_, note) in notes.iter().filter(|(nb, _)| *nb == b) {
        let _ = writeln!(md, "\n{note}");
    }
    md
}

/// `old` (a report [`markdown`] wrote) with the sections of the benchmarks in `figures` and their
/// rows of the summary replaced by these figures and notes (which say the date they were taken),
/// the count of targets met taken again over the summary's rows, and everything else as it was:
/// what one benchmark run with `--markdown` writes. `None` when `old` is no such report.
pub fn replace_sections(
    old: &str,
    figures: &[Figure],
    notes: &Notes,
    date: &str,
) -> Option<String> {
    let mut md = old.to_string();
    for b in benches(figures) {
        // The summary: this benchmark's rows replaced where they were (or added at the end).
        let summary = md.find("\n## Summary\n")? + 1;
        let table = summary + md[summary..].find("\n| benchmark |")? + 1;
        let table_end = md[table..].find("\n\n").map_or(md.len(), |e| table + e + 1);
        let mut rows: Vec<String> = md[table..table_end].lines().map(String::from).collect();
        let prefix = format!("| {b} |");
        let at = rows
            .iter()
            .position(|r| r.starts_with(&prefix))
            .unwrap_or(rows.len());
        rows.retain(|r| !r.starts_with(&prefix));
        let fresh = figures
            .iter()
            .filter(|f| f.bench == b && f.target.is_some())
            .map(summary_row);
        rows.splice(at..at, fresh);
        let body = rows.get(2..)?;
        let met = body.iter().filter(|r| r.ends_with("| pass |")).count();
        let mut summary_text = format!("## Summary\n\n{}\n\n", targets_met(met, body.len()));
        for r in &rows {
            summary_text.push_str(r);
            summary_text.push('\n');
        }
        md.replace_range(summary..table_end, &summary_text);
        // The section itself, where it was (or before the notes that close the report).
        let mut text = section(b, figures, notes);
        let _ = writeln!(
            text,
            "\nThis section: `infra/bench {}` on {date}; the date under Machine is that of the whole run.",
            if b == "cold start" { "coldstart" } else { b }
        );
        let heading = format!("\n\n## {b}\n");
        // `text` starts with the line end before its heading and ends with a line end.
        match md.find(&heading) {
            Some(found) => {
                let start = found + 1;
                let end = md[start + 1..]
                    .find("\n\n## ")
                    .map_or(md.len(), |e| start + 1 + e);
                md.replace_range(start..end, text.trim_end_matches('\n'));
            }
            None => {
                let at = md.find("\n\n## Reproduce").map_or(md.len(), |at| at + 1);
                md.insert_str(at, &text);
            }
        }
    }
    Some(md)
}

/// Sections of `BENCHMARKS.md` written by other benchmarks (`infra/bench uplift`), which
/// `winback-bench all` carries over from the file it replaces.
pub const CARRIED: [&str; 1] = ["## uplift\n"];

/// `new` with each [`CARRIED`] section of `old` put back before `## Reproduce`.
pub fn carry_sections(old: &str, mut new: String) -> String {
    for heading in CARRIED {
        let Some(start) = old.find(heading) else {
            continue;
        };
        let end = old[start + 1..]
            .find("\n## ")
            .map_or(old.len(), |e| start + 1 + e + 1);
        let at = new.find("## Reproduce").unwrap_or(new.len());
        new.insert_str(at, &old[start..end]);
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uplift_section_survives_a_rewrite_of_the_other_figures() {
        let old =
            "# Benchmarks\n\n## domain\nold\n\n## uplift\n\n| arm | qini |\n\n## Reproduce\nx\n";
        let new = "# Benchmarks\n\n## domain\nnew\n\n## Reproduce\nx\n".to_string();
        assert_eq!(
            carry_sections(old, new),
            "# Benchmarks\n\n## domain\nnew\n\n## uplift\n\n| arm | qini |\n\n## Reproduce\nx\n"
        );
        let none = "# Benchmarks\n\n## Reproduce\n".to_string();
        assert_eq!(carry_sections("# Benchmarks\n", none.clone()), none);
    }

    fn machine() -> Machine {
        Machine {
            cores: 2,
            cpu: "cpu".into(),
            rustc: "rustc".into(),
            os: "os".into(),
        }
    }

    #[test]
    fn one_benchmark_rewrites_its_section_and_summary_rows_and_nothing_else() {
        let figures = vec![
            Figure::held("domain", "rate", 5.0, "/s", Target::AtLeast(1.0)),
            Figure::held("sender", "writes", 2.0, "writes", Target::AtMost(3.0)),
            Figure::info("sender", "size", 9.0, "KiB"),
            Figure::held("webhook", "ratio", 1.0, "×", Target::AtMost(1.1)),
        ];
        let notes: Notes = vec![
            ("sender", "Old sender note.".into()),
            ("general", "## Reproduce\n\nrun it".into()),
        ];
        let old = markdown(&machine(), &figures, &notes);
        assert!(old.contains("3 of 3 targets met."), "{old}");
        // This run: a new held figure, one missed, a new note.
        let sender = vec![
            Figure::held("sender", "writes", 4.0, "writes", Target::AtMost(3.0)),
            Figure::info("sender", "size", 9.5, "KiB"),
            Figure::held(
                "sender",
                "calls per code",
                1.0,
                "calls",
                Target::AtMost(1.0),
            ),
        ];
        let new_notes: Notes = vec![("sender", "New sender note.".into())];
        let new = replace_sections(&old, &sender, &new_notes, "2026-12-08").unwrap();
        let mut whole = figures.clone();
        whole.splice(1..3, sender.iter().cloned());
        let expected = markdown(&machine(), &whole, &[new_notes, notes[1..].to_vec()].concat())
            .replace(
                "New sender note.\n",
                "New sender note.\n\nThis section: `infra/bench sender` on 2026-12-08; the date under Machine is that of the whole run.\n",
            );
        assert_eq!(new, expected);
        assert!(new.contains("3 of 4 targets met; the misses"), "{new}");
        assert_eq!(
            replace_sections("# Other\n", &sender, &Notes::new(), "d"),
            None
        );
        // A benchmark the report did not have yet: its section goes before the closing notes.
        let without = markdown(&machine(), &figures[..1], &notes[1..].to_vec());
        let added = replace_sections(&without, &sender, &Notes::new(), "d").unwrap();
        assert!(
            added.contains(
                "| sender | calls per code | 1.00 calls | ≤ 1.00 calls | pass |\n\n## domain"
            ),
            "{added}"
        );
        assert!(
            added.contains("that of the whole run.\n\n## Reproduce\n\nrun it\n"),
            "{added}"
        );
    }
}
