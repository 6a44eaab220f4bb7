//! The changes for the terminal (`run diff`): a header per file and its diff, coloured when
//! colours are on (a terminal, no NO_COLOR, no `--no-color`); plain in pipes and files. Every
//! line is an agent's text: redacted, then printed through `runner_log::neutralize` (no escape
//! sequence of a file reaches the terminal, no line can issue a runner's workflow command).

use console::style;

use super::{Bounds, FileDiff};
use crate::executor::Redactor;
use crate::runner_log::neutralize;

/// The diffs as terminal text.
pub(crate) fn render(diffs: &[FileDiff], bounds: Bounds, color: bool, redactor: &Redactor) -> String {
    let paint = |text: String, f: fn(console::StyledObject<String>) -> console::StyledObject<String>| {
        if color { f(style(text)).force_styling(true).to_string() } else { text }
    };
    let mut out = String::new();
    let mut used = 0;
    for (i, d) in diffs.iter().enumerate() {
        if used > bounds.total {
            out.push_str(&format!("… and {} more changed file(s), not shown\n", diffs.len() - i));
            break;
        }
        let path = neutralize(&redactor.redact_str(&d.path)).into_owned();
        out.push_str(&paint(format!("━━ {path} ({})", d.describe()), |s| s.bold()));
        out.push('\n');
        let (shown, cut) = d.shown(bounds);
        for line in shown {
            let line = neutralize(&redactor.redact_str(line)).into_owned();
            used += line.len() + 1;
            let painted = match line.as_bytes().first() {
                _ if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff ") => {
                    paint(line, |s| s.bold())
                }
                Some(b'+') => paint(line, |s| s.green()),
                Some(b'-') => paint(line, |s| s.red()),
                Some(b'@') => paint(line, |s| s.cyan()),
                _ => line,
            };
            out.push_str(&painted);
            out.push('\n');
        }
        match d.kind {
            "binary" => out.push_str("(binary file)\n"),
            "removed" => out.push_str("(removed)\n"),
            "not a regular file" => out.push_str("(not a regular file: not shown)\n"),
            _ => {}
        }
        if cut > 0 {
            out.push_str(&paint(format!("… {cut} more lines"), |s| s.dim()));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(lines: &[&str]) -> FileDiff {
        FileDiff {
            path: "src/a.rs".into(),
            kind: "diff",
            lines: "3 → 3 lines".into(),
            text: lines.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    const B: Bounds = Bounds { lines_per_file: 100, total: 100_000 };

    #[test]
    fn colours_only_when_asked_and_by_line_kind() {
        let d = [diff(&["@@ -1,3 +1,3 @@", " same", "-old", "+new"])];
        let plain = render(&d, B, false, &Redactor::default());
        assert_eq!(plain, "━━ src/a.rs (diff, 3 → 3 lines)\n@@ -1,3 +1,3 @@\n same\n-old\n+new\n\n");
        let colored = render(&d, B, true, &Redactor::default());
        assert!(colored.contains("\x1b[32m+new\x1b[0m"), "{colored:?}");
        assert!(colored.contains("\x1b[31m-old\x1b[0m"), "{colored:?}");
        assert!(colored.contains("\x1b[36m@@ -1,3 +1,3 @@\x1b[0m"), "{colored:?}");
    }

    #[test]
    fn a_files_escape_sequences_and_workflow_commands_are_shown_not_obeyed() {
        let d = [diff(&["+\x1b]0;pwned\x07title", "::error::fake", "+\x1b[2Jclear"])];
        let out = render(&d, B, false, &Redactor::default());
        assert!(!out.contains('\x1b'), "{out:?}");
        assert!(out.contains("\\::error::fake"), "{out}");
    }
}
