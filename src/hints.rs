//! "next:" and "help:" lines name commands to paste. Written as `orchestrator run approve`, they
//! must work as they are from where the user is: so every printed `orchestrator <command>` gets
//! the `-C DIR` and `--config PATH` this invocation was given (or, after `quickstart`, the demo's
//! folder).

use std::borrow::Cow;
use std::path::Path;
use std::sync::RwLock;

static PREFIX: RwLock<String> = RwLock::new(String::new());

/// The words to put after `orchestrator` in printed commands, from where this invocation works.
pub(crate) fn set(directory: Option<&Path>, config: &Path) {
    let mut words = String::new();
    if let Some(dir) = directory {
        words.push_str(&format!(" -C {}", quote(&dir.display().to_string())));
    }
    if config != Path::new(crate::config::DEFAULT_CONFIG) {
        words.push_str(&format!(" --config {}", quote(&config.display().to_string())));
    }
    if let Ok(mut p) = PREFIX.write() {
        *p = words;
    }
}

/// A word as a shell reads it back.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:@,".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

const COMMANDS: [&str; 6] = ["run ", "validate", "init", "quickstart", "ci ", "--help"];

/// `text` with the invocation's `-C`/`--config` after every `orchestrator` that starts a command.
pub(crate) fn localize(text: &str) -> Cow<'_, str> {
    let prefix = PREFIX.read().map(|p| p.clone()).unwrap_or_default();
    if prefix.is_empty() || !text.contains("orchestrator ") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(i) = rest.find("orchestrator ") {
        let before = &rest[..i];
        let after = &rest[i + "orchestrator ".len()..];
        let word_start =
            before.chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '/'));
        out.push_str(before);
        out.push_str("orchestrator");
        if word_start && COMMANDS.iter().any(|c| after.starts_with(c)) {
            out.push_str(&prefix);
        }
        out.push(' ');
        rest = after;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_get_the_invocations_folder_and_config() {
        set(Some(Path::new("my demo")), Path::new("ci/flow.yaml"));
        assert_eq!(
            localize("next: `orchestrator run approve --phase p`, or orchestrator validate"),
            "next: `orchestrator -C 'my demo' --config ci/flow.yaml run approve --phase p`, or orchestrator -C 'my demo' --config ci/flow.yaml validate"
        );
        assert_eq!(localize("orchestrator runs no agents for it"), "orchestrator runs no agents for it");
        set(None, Path::new(crate::config::DEFAULT_CONFIG));
        assert_eq!(localize("orchestrator run resume"), "orchestrator run resume");
    }
}
