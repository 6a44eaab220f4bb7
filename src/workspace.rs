//! The workspace an agent runs in: confining reported paths to it, listing the files that match
//! artifact globs, and noticing which files a phase added, modified or removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::ArtifactPattern;
use crate::state::{ChangeSet, LineCount, PatternResult, Validation};

mod confine;
pub(crate) use confine::{Confinement, Refused};

/// Folders and files the orchestrator itself writes; never counted as a phase's changes.
const OWN_OUTPUTS: [&str; 9] = [
    ".claude/logs",
    crate::file_modes::MANIFEST,
    ".claude/carried",
    ".claude/agent_outputs",
    ".claude/consensus",
    ".claude/metrics",
    ".claude/artifacts",
    "backups",
    "reports",
];

/// Replace secrets in the files `paths` (relative to `root`) in place; returns the files that held
/// one. Symlinks are not followed: a link's target is not the phase's change.
pub(crate) fn redact_files<'a>(
    root: &Path,
    paths: impl Iterator<Item = &'a String>,
    redactor: &crate::executor::Redactor,
) -> Vec<String> {
    if redactor.is_empty() {
        return Vec::new();
    }
    let mut redacted = Vec::new();
    for rel in paths {
        let path = root.join(rel);
        if !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        if let std::borrow::Cow::Owned(clean) = redactor.redact(&bytes)
            // In place, so the file keeps its mode.
            && std::fs::write(&path, &clean).is_ok()
        {
            redacted.push(rel.clone());
        }
    }
    redacted
}

/// A relative path with `/` separators, as reports and globs use.
pub(crate) fn slash_path(p: &Path) -> String {
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
pub(crate) fn validate(root: &Path, patterns: &[ArtifactPattern]) -> Validation {
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

/// What the files of a workspace looked like at one moment: size, modification time and, for
/// small text files, the number of lines.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    files: BTreeMap<String, FileMeta>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct FileMeta {
    len: u64,
    modified: Option<SystemTime>,
    lines: Option<u64>,
}

/// Files larger than this are not read to count lines.
const COUNT_LINES_UP_TO: u64 = 1024 * 1024;
/// At most this much is read to count lines in one snapshot; past it, counts are unknown.
const COUNT_LINES_BUDGET: u64 = 64 * 1024 * 1024;

/// The number of lines in `path` if it is a small text file.
fn count_lines(path: &Path, len: u64) -> Option<u64> {
    if len > COUNT_LINES_UP_TO {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return None; // binary
    }
    let newlines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
    Some(newlines + u64::from(!bytes.is_empty() && !bytes.ends_with(b"\n")))
}

impl Snapshot {
    /// Take a snapshot of `root`, honouring `.gitignore` and skipping the orchestrator's own
    /// outputs and state. With `with_lines`, small text files have their lines counted.
    pub(crate) fn take(root: &Path, state_file: &Path, with_lines: bool) -> Snapshot {
        let state = slash_path(state_file);
        let mut budget = if with_lines { COUNT_LINES_BUDGET } else { 0 };
        let files = files(root, true, &OWN_OUTPUTS)
            .filter(|(rel, _)| !rel.starts_with(&state))
            .map(|(rel, meta)| {
                let len = meta.len();
                let lines = if len <= budget && len <= COUNT_LINES_UP_TO {
                    budget -= len;
                    count_lines(&root.join(&rel), len)
                } else {
                    None
                };
                (rel, FileMeta { len, modified: meta.modified().ok(), lines })
            })
            .collect();
        Snapshot { files }
    }

    /// Every file with its size in bytes.
    pub(crate) fn sizes(&self) -> impl Iterator<Item = (&str, u64)> {
        self.files.iter().map(|(p, m)| (p.as_str(), m.len))
    }

    /// The files added, modified and removed between `self` and `after`, with line counts
    /// (files in `after` are counted now, under `root`).
    pub(crate) fn diff(&self, after: &Snapshot, root: &Path) -> ChangeSet {
        let mut changes = ChangeSet::default();
        let same = |a: &FileMeta, b: &FileMeta| a.len == b.len && a.modified == b.modified;
        for (path, meta) in &after.files {
            let before = self.files.get(path);
            match before {
                None => changes.added.push(path.clone()),
                Some(b) if !same(b, meta) => changes.modified.push(path.clone()),
                Some(_) => continue,
            }
            let lines =
                LineCount { before: before.and_then(|b| b.lines), after: count_lines(&root.join(path), meta.len) };
            if lines.before.is_some() || lines.after.is_some() {
                changes.lines.insert(path.clone(), lines);
            }
        }
        for (path, meta) in &self.files {
            if !after.files.contains_key(path) {
                changes.removed.push(path.clone());
                if let Some(n) = meta.lines {
                    changes.lines.insert(path.clone(), LineCount { before: Some(n), after: None });
                }
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_diff_sees_added_modified_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("keep"), "a").unwrap();
        std::fs::write(root.join("change"), "a").unwrap();
        std::fs::write(root.join("gone"), "a").unwrap();
        let before = Snapshot::take(root, Path::new(".claude/state.json"), true);
        std::fs::write(root.join("change"), "abc").unwrap();
        std::fs::remove_file(root.join("gone")).unwrap();
        std::fs::write(root.join("new"), "a").unwrap();
        std::fs::create_dir_all(root.join(".claude/logs")).unwrap();
        std::fs::write(root.join(".claude/logs/x.log"), "a").unwrap();
        std::fs::write(root.join(crate::file_modes::MANIFEST), "{}").unwrap();
        let changes = before.diff(&Snapshot::take(root, Path::new(".claude/state.json"), false), root);
        assert_eq!(changes.added, ["new"]);
        assert_eq!(changes.modified, ["change"]);
        assert_eq!(changes.removed, ["gone"]);
        assert_eq!(changes.describe_lines("change"), "1 → 1 line");
        assert_eq!(changes.describe_lines("gone"), "−1 line");
    }
}
