//! The default project template built into the binary: the repository's own `.claude/` files.

use std::path::{Path, PathBuf};

use chrono::Utc;

/// (path in the workspace, contents)
pub(crate) const FILES: [(&str, &str); 4] = [
    (".claude/config.yaml", include_str!("../.claude/config.yaml")),
    (".claude/intake.yaml", include_str!("../.claude/intake.yaml")),
    (".claude/prompts/planner.md", include_str!("../.claude/prompts/planner.md")),
    (".claude/prompts/documenter.md", include_str!("../.claude/prompts/documenter.md")),
];

/// What writing the template did to one file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    Created(String),
    /// The config was replaced after copying the old one to the given backup.
    Replaced {
        path: String,
        backup: String,
    },
    Unchanged(String),
    /// An existing file (not the config) was left as it was.
    Kept(String),
}

/// Write `files` (the default template's, or a starter of `quickstart --type`) into `root` with
/// project name `name`. An existing config is first copied to `backups/config_<timestamp>.yaml`;
/// other existing files are kept.
pub(crate) fn write_files(root: &Path, name: &str, files: &[(&str, &str)]) -> std::io::Result<Vec<Written>> {
    let mut done = Vec::new();
    for &(rel, contents) in files {
        let contents = if rel == ".claude/intake.yaml" { with_name(contents, name) } else { contents.to_owned() };
        let path = root.join(rel);
        match std::fs::read(&path) {
            Ok(existing) if existing == contents.as_bytes() => done.push(Written::Unchanged(rel.to_owned())),
            Ok(existing) if rel == ".claude/config.yaml" => {
                let backup = backup_path(root);
                crate::state::write_atomic(&root.join(&backup), &existing)?;
                crate::state::write_atomic(&path, contents.as_bytes())?;
                done.push(Written::Replaced { path: rel.to_owned(), backup: backup.display().to_string() });
            }
            Ok(_) => done.push(Written::Kept(rel.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::state::write_atomic(&path, contents.as_bytes())?;
                done.push(Written::Created(rel.to_owned()));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn backup_path(root: &Path) -> PathBuf {
    let stamp = Utc::now().format("%Y%m%d_%H%M%S").to_string();
    let mut candidate = PathBuf::from(format!("backups/config_{stamp}.yaml"));
    let mut n = 2;
    while root.join(&candidate).exists() {
        candidate = PathBuf::from(format!("backups/config_{stamp}_{n}.yaml"));
        n += 1;
    }
    candidate
}

/// The intake with its `name:` line set to `name` (quoted as YAML needs).
fn with_name(intake: &str, name: &str) -> String {
    let quoted = serde_yaml::to_string(name).unwrap_or_else(|_| format!("{name:?}\n"));
    intake
        .lines()
        .map(|l| if l.starts_with("name:") { format!("name: {}", quoted.trim_end()) } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_template_is_a_valid_workflow() {
        let wf = crate::config::parse(Path::new("."), Path::new(".claude/config.yaml"), FILES[0].1).unwrap();
        assert!(wf.phases.iter().any(|p| p.requires_consensus));
    }

    #[test]
    fn name_is_quoted_when_needed() {
        assert!(with_name("name: x\ntype: y\n", "a: b").starts_with("name: 'a: b'\ntype: y"));
    }

    #[test]
    fn existing_config_is_backed_up_before_it_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
        std::fs::write(dir.path().join(".claude/config.yaml"), "mine").unwrap();
        let done = write_files(dir.path(), "demo", &FILES).unwrap();
        let Written::Replaced { backup, .. } = &done[0] else { panic!("{done:?}") };
        assert_eq!(std::fs::read_to_string(dir.path().join(backup)).unwrap(), "mine");
    }
}
