//! Prompt templates (`.claude/prompts/<agent>.md`), rendered with minijinja against the run
//! context. Undefined variables are errors that name the template, the line and the variable.

use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Pos, did_you_mean};

/// Where agents' default templates are.
const DEFAULT_DIR: &str = ".claude/prompts";

/// The template path for `agent`: its `prompt` setting, else `.claude/prompts/<agent>.md`.
pub(crate) fn template_path(agent: &crate::config::Agent) -> PathBuf {
    agent.prompt.clone().unwrap_or_else(|| PathBuf::from(format!("{DEFAULT_DIR}/{}.md", agent.name)))
}

/// The default templates' folder, listed once: then an agent without a template of its own costs
/// no system call (a workflow of 5,000 shell agents looked for 5,000 missing files, three times,
/// before its first agent started). What the listing cannot answer is looked up as before.
pub(crate) struct Listing {
    /// The file names in the folder; `None` when it could not be listed.
    names: Option<std::collections::HashSet<std::ffi::OsString>>,
}

impl Listing {
    pub(crate) fn of(root: &Path) -> Listing {
        let names = match std::fs::read_dir(root.join(DEFAULT_DIR)) {
            Ok(entries) => entries.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>().ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Default::default()),
            Err(_) => None,
        };
        Listing { names }
    }

    /// Whether `agent` surely has no template: a default one that is not in the folder.
    pub(crate) fn surely_missing(&self, agent: &crate::config::Agent) -> bool {
        let Some(names) = &self.names else { return false };
        let path = template_path(agent);
        agent.prompt.is_none()
            && path.parent() == Some(Path::new(DEFAULT_DIR))
            && path.file_name().is_some_and(|name| !names.contains(name))
    }

    /// As [`read_template`] for `agent`'s template.
    pub(crate) fn read(&self, root: &Path, agent: &crate::config::Agent) -> Result<Option<String>, Diagnostic> {
        if self.surely_missing(agent) {
            return Ok(None);
        }
        read_template(root, &template_path(agent), agent.prompt.is_some())
    }
}

/// Read the template at `rel` under `root`. A missing default template means "no prompt"; a
/// missing configured one is an error.
pub(crate) fn read_template(root: &Path, rel: &Path, configured: bool) -> Result<Option<String>, Diagnostic> {
    match crate::text_file::read(&root.join(rel)) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !configured => Ok(None),
        Err(e) => Err(Diagnostic::new(format!("cannot read prompt template: {e}"), rel)),
    }
}

/// Render `source` (read from `file`) with `context`.
pub(crate) fn render(file: &Path, source: &str, context: &Value) -> Result<String, Diagnostic> {
    render_with(file, source, &minijinja::Value::from_serialize(context), || context.clone())
}

/// Render `source` with a context already converted for the template engine; `json` gives the
/// same context as JSON, built only to explain an error.
pub(crate) fn render_with(
    file: &Path,
    source: &str,
    context: &minijinja::Value,
    json: impl FnOnce() -> Value,
) -> Result<String, Diagnostic> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let name = file.display().to_string();
    let tmpl = match env.template_from_named_str(&name, source) {
        Ok(t) => t,
        Err(e) => return Err(template_error(file, source, &e, None)),
    };
    match tmpl.render(context) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == ErrorKind::UndefinedError => {
            let context = &json();
            let missing = tmpl
                .undeclared_variables(true)
                .into_iter()
                .filter(|v| lookup(context, v).is_none())
                .min_by_key(|v| first_use(source, v).map(|p| (p.line, p.col)));
            Err(template_error(file, source, &e, missing.map(|m| (m, context))))
        }
        Err(e) => Err(template_error(file, source, &e, None)),
    }
}

/// The value at dotted `path` in `context`, if there is one.
fn lookup<'a>(context: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(context, |v, key| v.get(key))
}

/// Where `var` first appears in `source` as a whole word.
fn first_use(source: &str, var: &str) -> Option<Pos> {
    for (i, line) in source.lines().enumerate() {
        let mut from = 0;
        while let Some(off) = line[from..].find(var) {
            let start = from + off;
            let end = start + var.len();
            let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
            let before_ok = line[..start].chars().next_back().is_none_or(|c| !word(c));
            let after_ok = line[end..].chars().next().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            if before_ok && after_ok {
                return Some(Pos { line: i + 1, col: line[..start].chars().count() + 1 });
            }
            from = end;
        }
    }
    None
}

fn template_error(file: &Path, source: &str, e: &minijinja::Error, missing: Option<(String, &Value)>) -> Diagnostic {
    if let Some((var, context)) = missing {
        let pos = first_use(source, &var);
        let (parent, leaf) = match var.rsplit_once('.') {
            Some((p, l)) => (lookup(context, p), l),
            None => (Some(context), var.as_str()),
        };
        let keys: Vec<&str> =
            parent.and_then(Value::as_object).map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        let help = did_you_mean(leaf, keys.iter().copied()).unwrap_or_else(|| {
            if keys.is_empty() {
                "this value has no fields".to_owned()
            } else {
                format!("available here: {}", keys.join(", "))
            }
        });
        return Diagnostic::new(format!("undefined variable `{var}` in prompt template"), file)
            .at(source, pos, var.chars().count())
            .help(help);
    }
    let pos = e.line().map(|line| {
        let col = e
            .range()
            .and_then(|r| source.get(..r.start))
            .map(|before| before.rsplit('\n').next().unwrap_or("").chars().count() + 1)
            .unwrap_or(1);
        Pos { line, col }
    });
    let detail = e.detail().map(str::to_owned).unwrap_or_else(|| e.kind().to_string());
    Diagnostic::new(format!("prompt template: {detail}"), file).at(source, pos, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_listing_answers_only_for_default_templates_it_saw_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let config = "agents:\n  has: {entrypoints: {default: \"true\"}}\n  lacks: {entrypoints: {default: \"true\"}}\n  own: {entrypoints: {default: \"true\"}, prompt: elsewhere/own.md}\nphases:\n  - {name: p, agents: [has, lacks, own]}\n";
        let wf = crate::config::parse(root, &root.join(".claude/config.yaml"), config).unwrap();
        // No folder at all: every default template is missing, a configured one is looked up.
        let none = Listing::of(root);
        assert!(none.surely_missing(&wf.agents["has"]) && none.surely_missing(&wf.agents["lacks"]));
        assert!(!none.surely_missing(&wf.agents["own"]));
        assert!(none.read(root, &wf.agents["own"]).is_err(), "a configured template that is missing is an error");
        std::fs::create_dir_all(root.join(".claude/prompts")).unwrap();
        std::fs::write(root.join(".claude/prompts/has.md"), "Hello {{ phase.name }}\n").unwrap();
        let listed = Listing::of(root);
        assert!(!listed.surely_missing(&wf.agents["has"]));
        assert!(listed.surely_missing(&wf.agents["lacks"]));
        assert_eq!(listed.read(root, &wf.agents["has"]).unwrap().as_deref(), Some("Hello {{ phase.name }}\n"));
        assert_eq!(listed.read(root, &wf.agents["lacks"]).unwrap(), None);
    }

    #[test]
    fn renders_nested_values() {
        let out = render(
            Path::new("p.md"),
            "Plan {{ project.name }} ({{ phase.name }})\n",
            &json!({"project": {"name": "demo"}, "phase": {"name": "planning"}}),
        )
        .unwrap();
        assert_eq!(out, "Plan demo (planning)\n");
    }

    #[test]
    fn undefined_variable_names_template_line_and_variable() {
        let src = "# Plan\n\nFor {{ project.nmae }}\n";
        let err =
            render(Path::new(".claude/prompts/planner.md"), src, &json!({"project": {"name": "demo"}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "error: undefined variable `project.nmae` in prompt template\n  --> .claude/prompts/planner.md:3:8\n  |\n3 | For {{ project.nmae }}\n  |        ^^^^^^^^^^^^\nhelp: did you mean `name`?"
        );
    }

    #[test]
    fn guarded_optional_values_are_fine() {
        let out = render(
            Path::new("p.md"),
            "{% if project.extra is defined %}x{% else %}y{% endif %}",
            &json!({"project": {}}),
        )
        .unwrap();
        assert_eq!(out, "y");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = render(Path::new("p.md"), "ok\n{{ project.name\n", &json!({})).unwrap_err();
        assert_eq!(err.pos.map(|p| p.line), Some(2), "{err}");
    }
}
