//! The workspace an agent runs in: confining reported paths to it, listing the files that match
//! artifact globs, and noticing which files a phase added, modified or removed.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use crate::config::ArtifactPattern;
use crate::state::{ChangeSet, PatternResult, Validation};

/// Folders the orchestrator itself writes; never counted as a phase's changes.
const OWN_OUTPUTS: [&str; 7] = [
    ".claude/logs",
    ".claude/agent_outputs",
    ".claude/consensus",
    ".claude/metrics",
    ".claude/artifacts",
    "backups",
    "reports",
];

/// Resolve a path an agent reported to a normalized path relative to `root`, or say why not.
///
/// `root` must be canonical. Refused: empty paths, paths that climb out with `..`, absolute paths
/// elsewhere, paths that leave through a symlink, and paths that do not exist.
pub fn confine(root: &Path, reported: &str) -> Result<String, String> {
    let reported = reported.trim();
    if reported.is_empty() {
        return Err("empty path".into());
    }
    let raw = Path::new(reported);
    let joined = if raw.is_absolute() { raw.to_path_buf() } else { root.join(raw) };
    // Lexical normalization first, so `a/../../x` is refused even if it does not exist.
    let mut normal = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                if !normal.pop() {
                    return Err("escapes the workspace".into());
                }
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    if !normal.starts_with(root) {
        return Err("escapes the workspace".into());
    }
    let real = match normal.canonicalize() {
        Ok(r) => r,
        Err(_) if normal.symlink_metadata().is_ok() => return Err("is a broken symlink".into()),
        Err(_) => return Err("does not exist".into()),
    };
    if !real.starts_with(root) {
        return Err("resolves outside the workspace through a symlink".into());
    }
    let rel = normal.strip_prefix(root).unwrap_or(&normal);
    if rel.as_os_str().is_empty() {
        return Err("is the workspace itself".into());
    }
    Ok(slash_path(rel))
}

/// A relative path with `/` separators, as reports and globs use.
pub fn slash_path(p: &Path) -> String {
    p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Every file under `root` (relative, `/`-separated), skipping `.git` and the folders in `prune`
/// (not descended into). With `respect_ignores`, `.gitignore` rules apply too (for change
/// detection, where ignored build output is noise).
fn files<'a>(
    root: &'a Path,
    respect_ignores: bool,
    prune: &'a [&'a str],
) -> impl Iterator<Item = (String, std::fs::Metadata)> + 'a {
    let pruned: Vec<PathBuf> = prune.iter().map(|p| root.join(p)).collect();
    ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .git_ignore(respect_ignores)
        .git_exclude(respect_ignores)
        .require_git(false)
        .hidden(false)
        .filter_entry(move |e| e.file_name() != ".git" && !pruned.iter().any(|p| p == e.path()))
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .filter_map(move |e| {
            let rel = e.path().strip_prefix(root).ok()?;
            let meta = e.metadata().ok()?;
            Some((slash_path(rel), meta))
        })
}

/// Check each artifact pattern against the workspace.
pub fn validate(root: &Path, patterns: &[ArtifactPattern]) -> Validation {
    let mut results: Vec<PatternResult> =
        patterns.iter().map(|p| PatternResult { pattern: p.pattern.clone(), files: Vec::new() }).collect();
    if !patterns.is_empty() {
        for (rel, _) in files(root, false, &[]) {
            for (p, r) in patterns.iter().zip(results.iter_mut()) {
                if p.matcher.is_match(&rel) || p.matcher.is_match(format!("./{rel}")) {
                    r.files.push(rel.clone());
                }
            }
        }
    }
    for r in &mut results {
        r.files.sort();
    }
    Validation { passed: results.iter().all(|r| !r.files.is_empty()), patterns: results }
}

/// What the files of a workspace looked like at one moment: size and modification time.
#[derive(Debug, Default)]
pub struct Snapshot {
    files: BTreeMap<String, (u64, Option<SystemTime>)>,
}

impl Snapshot {
    pub fn take(root: &Path, state_file: &Path) -> Snapshot {
        let state = slash_path(state_file);
        let files = files(root, true, &OWN_OUTPUTS)
            .filter(|(rel, _)| !rel.starts_with(&state))
            .map(|(rel, meta)| (rel, (meta.len(), meta.modified().ok())))
            .collect();
        Snapshot { files }
    }

    /// The files added, modified and removed between `self` and `after`.
    pub fn diff(&self, after: &Snapshot) -> ChangeSet {
        let mut changes = ChangeSet::default();
        for (path, meta) in &after.files {
            match self.files.get(path) {
                None => changes.added.push(path.clone()),
                Some(before) if before != meta => changes.modified.push(path.clone()),
                Some(_) => {}
            }
        }
        changes.removed = self.files.keys().filter(|p| !after.files.contains_key(*p)).cloned().collect();
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_refuses_escapes_and_accepts_inside_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("docs")).unwrap();
        std::fs::write(root.join("docs/PLAN.md"), "x").unwrap();
        assert_eq!(confine(&root, "docs/PLAN.md").unwrap(), "docs/PLAN.md");
        assert_eq!(confine(&root, "./docs/../docs/PLAN.md").unwrap(), "docs/PLAN.md");
        assert_eq!(confine(&root, root.join("docs/PLAN.md").to_str().unwrap()).unwrap(), "docs/PLAN.md");
        assert_eq!(confine(&root, "../outside").unwrap_err(), "escapes the workspace");
        assert_eq!(confine(&root, "docs/../../x").unwrap_err(), "escapes the workspace");
        assert_eq!(confine(&root, "/etc/passwd").unwrap_err(), "escapes the workspace");
        assert_eq!(confine(&root, "missing.txt").unwrap_err(), "does not exist");
        std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
        assert_eq!(confine(&root, "etc-link/passwd").unwrap_err(), "resolves outside the workspace through a symlink");
    }

    #[test]
    fn snapshot_diff_sees_added_modified_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("keep"), "a").unwrap();
        std::fs::write(root.join("change"), "a").unwrap();
        std::fs::write(root.join("gone"), "a").unwrap();
        let before = Snapshot::take(root, Path::new(".claude/state.json"));
        std::fs::write(root.join("change"), "abc").unwrap();
        std::fs::remove_file(root.join("gone")).unwrap();
        std::fs::write(root.join("new"), "a").unwrap();
        std::fs::create_dir_all(root.join(".claude/logs")).unwrap();
        std::fs::write(root.join(".claude/logs/x.log"), "a").unwrap();
        let changes = before.diff(&Snapshot::take(root, Path::new(".claude/state.json")));
        assert_eq!(changes.added, ["new"]);
        assert_eq!(changes.modified, ["change"]);
        assert_eq!(changes.removed, ["gone"]);
    }
}
