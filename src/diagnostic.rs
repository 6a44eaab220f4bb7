//! Compiler-style diagnostics for errors in user files (config, intake, templates).
//!
//! A [`Diagnostic`] names the file, line and column, shows the offending source line with a caret
//! under the span, and may carry a `help:` line (usually "did you mean …").

use std::fmt;
use std::path::PathBuf;

/// A position in a source file; `line` and `col` are 1-based, `col` counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

/// An error located in a user file.
#[derive(Debug, Clone)]
pub(crate) struct Diagnostic {
    pub message: String,
    pub file: PathBuf,
    pub pos: Option<Pos>,
    /// Width of the caret underline, in characters (at least 1).
    pub width: usize,
    /// The source line at `pos`, if known.
    pub source_line: Option<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(message: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        Diagnostic { message: message.into(), file: file.into(), pos: None, width: 1, source_line: None, help: None }
    }

    /// Point at `pos` in `source`, underlining `width` characters.
    pub(crate) fn at(mut self, source: &str, pos: Option<Pos>, width: usize) -> Self {
        self.pos = pos;
        self.width = width.max(1);
        self.source_line = pos.and_then(|p| source.lines().nth(p.line.saturating_sub(1)).map(str::to_owned));
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The one place a located error gets its `error:`.
        writeln!(f, "error: {}", self.message)?;
        match self.pos {
            Some(pos) => write!(f, "  --> {}:{}:{}", self.file.display(), pos.line, pos.col)?,
            None => write!(f, "  --> {}", self.file.display())?,
        }
        if let (Some(pos), Some(line)) = (self.pos, &self.source_line) {
            let gutter = pos.line.to_string().len();
            let pad = " ".repeat(gutter);
            let line = line.replace('\t', " ");
            let available = line.chars().count().saturating_sub(pos.col - 1).max(1);
            let width = self.width.min(available);
            write!(
                f,
                "\n{pad} |\n{} | {line}\n{pad} | {}{}",
                pos.line,
                " ".repeat(pos.col.saturating_sub(1)),
                "^".repeat(width)
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\nhelp: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// The candidate closest to `word`, if it is close enough to be a plausible misspelling.
pub(crate) fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// "did you mean `x`?" for the nearest candidate, if any.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    nearest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler() {
        let src = "phases:\n  - name: build\n    agents: [buidler]\n";
        let d = Diagnostic::new("unknown agent `buidler` in phase `build`", ".claude/config.yaml")
            .at(src, Some(Pos { line: 3, col: 14 }), 7)
            .help("did you mean `builder`?");
        assert_eq!(
            d.to_string(),
            "error: unknown agent `buidler` in phase `build`\n  --> .claude/config.yaml:3:14\n  |\n3 |     agents: [buidler]\n  |              ^^^^^^^\nhelp: did you mean `builder`?"
        );
    }

    #[test]
    fn nearest_finds_plausible_misspellings_only() {
        assert_eq!(nearest("buidler", ["builder", "planner"]), Some("builder"));
        assert_eq!(nearest("retires", ["retries", "jitter"]), Some("retries"));
        assert_eq!(nearest("zzz", ["builder", "planner"]), None);
    }
}
