//! Prompt templates (`.claude/prompts/<agent>.md`), rendered with minijinja against the run
//! context. Undefined variables are errors that name the template, the line and the variable.

use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Pos, did_you_mean};

/// The template path for `agent`: its `prompt` setting, else `.claude/prompts/<agent>.md`.
pub(crate) fn template_path(agent: &crate::config::Agent) -> PathBuf {
    agent.prompt.clone().unwrap_or_else(|| PathBuf::from(format!(".claude/prompts/{}.md", agent.name)))
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
