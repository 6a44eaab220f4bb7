//! The intake (`.claude/intake.yaml`): what the run is about. It becomes `project` (and `intake`)
//! in the prompt templates.

use std::path::Path;

use crate::diagnostic::Diagnostic;

pub(crate) const DEFAULT_INTAKE: &str = ".claude/intake.yaml";

/// Load the intake at `rel` under `root`. `explicit` says the user named it: then a missing file
/// is an error; otherwise a missing default intake is an empty one.
pub(crate) fn load(root: &Path, rel: &Path, explicit: bool) -> Result<serde_json::Value, Diagnostic> {
    let source = match crate::text_file::read(&root.join(rel)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(serde_json::json!({})),
        Err(e) => return Err(Diagnostic::new(format!("cannot read intake: {e}"), rel)),
    };
    let value: serde_yaml::Value = match serde_yaml::from_str(&source) {
        Ok(v) => v,
        Err(e) => return Err(crate::config::serde_diagnostic(&e, rel, &source)),
    };
    let value =
        match value {
            serde_yaml::Value::Null => return Ok(serde_json::json!({})),
            v @ serde_yaml::Value::Mapping(_) => v,
            _ => {
                return Err(Diagnostic::new("the intake must be a mapping (name, type, goals, constraints, …)", rel)
                    .at(&source, Some(crate::diagnostic::Pos { line: 1, col: 1 }), 1));
            }
        };
    serde_json::to_value(&value).map_err(|e| {
        Diagnostic::new(format!("the intake cannot be used as template context: {e}"), rel)
            .help("keys must be strings and values plain YAML (no tags)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_default_intake_is_empty_but_missing_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), Path::new(DEFAULT_INTAKE), false).unwrap(), serde_json::json!({}));
        assert!(load(dir.path(), Path::new("nope.yaml"), true).unwrap_err().to_string().contains("cannot read intake"));
    }

    #[test]
    fn intake_must_be_a_mapping() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("i.yaml"), "- a\n- b\n").unwrap();
        let err = load(dir.path(), Path::new("i.yaml"), true).unwrap_err().to_string();
        assert!(err.contains("must be a mapping") && err.contains("i.yaml:1:1"), "{err}");
    }
}
