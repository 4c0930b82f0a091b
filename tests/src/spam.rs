//! SpamAssassin's verdict on a message, with its local rules only: Debian's `spamassassin`
//! (installed by `infra/local/stack.sh install`), run as `spamassassin -L -t` (no network tests,
//! test mode: the message comes back with the score and the rules that fired).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where SpamAssassin is: `WINBACK_SPAMASSASSIN` (the local stack's env file sets it), else
/// `spamassassin` on `PATH`. Fails (never skips) with how to install it.
pub fn spamassassin_path() -> PathBuf {
    if let Ok(p) = std::env::var("WINBACK_SPAMASSASSIN") {
        if !p.trim().is_empty() {
            return PathBuf::from(p.trim());
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("spamassassin");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "SpamAssassin is needed to score the weekly report email and was not found: \
         `infra/local/stack.sh install` installs Debian's package `spamassassin` (infra/test runs \
         it), or set WINBACK_SPAMASSASSIN to the spamassassin script"
    )
}

/// What SpamAssassin made of a message.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The score (`X-Spam-Status: ..., score=1.2 ...`).
    pub score: f64,
    /// The rules that fired, with their points, as its report lists them.
    pub report: String,
}

/// Scores `mime` with SpamAssassin's local rules.
pub fn score(mime: &[u8]) -> Verdict {
    let mut child = Command::new(spamassassin_path())
        .args(["-L", "-t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spamassassin starts");
    child
        .stdin
        .take()
        .expect("its stdin")
        .write_all(mime)
        .expect("the message is handed to spamassassin");
    let out = child.wait_with_output().expect("spamassassin finishes");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let score = text
        .lines()
        .find(|l| l.starts_with("X-Spam-Status:"))
        .and_then(|l| l.split("score=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "spamassassin gave no score (status {}): {}\n{text}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    // The report: from its table's heading to the end of the block.
    let report = text
        .split_once(" pts rule name")
        .map(|(_, rest)| {
            rest.lines()
                .take_while(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    Verdict { score, report }
}
