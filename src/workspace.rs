//! The workspace an agent runs in: confining reported paths to it, listing the files that match
//! artifact globs, and noticing which files a phase added, modified or removed.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use crate::config::ArtifactPattern;
use crate::state::{ChangeSet, LineCount, PatternResult, Validation};

/// Folders the orchestrator itself writes; never counted as a phase's changes.
const OWN_OUTPUTS: [&str; 8] = [
    ".claude/logs",
    ".claude/carried",
    ".claude/agent_outputs",
    ".claude/consensus",
    ".claude/metrics",
    ".claude/artifacts",
    "backups",
    "reports",
];

/// `path` (relative to `root`, or absolute) with `.` and `..` resolved lexically; refused if it
/// leaves `root`.
fn normalize(root: &Path, path: &str) -> Result<PathBuf, String> {
    let raw = Path::new(path);
    let joined = if raw.is_absolute() { raw.to_path_buf() } else { root.join(raw) };
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
    if normal.starts_with(root) { Ok(normal) } else { Err("escapes the workspace".into()) }
}

/// Resolve a path an agent reported to a normalized path relative to `root`, or say why not.
///
/// `root` must be canonical. Refused: empty paths, paths that climb out with `..`, absolute paths
/// elsewhere, paths that leave through a symlink, and paths that do not exist.
pub fn confine(root: &Path, reported: &str) -> Result<String, String> {
    let reported = reported.trim();
    if reported.is_empty() {
        return Err("empty path".into());
    }
    // Lexical first, so `a/../../x` is refused even if it does not exist.
    let normal = normalize(root, reported)?;
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

/// Resolve a path an agent wants to write to: it may not exist yet, but it must stay inside
/// `root` (canonical) lexically and through any symlinked folder or file, and not be under `.git`.
/// Returns the absolute path and the path relative to `root`.
pub fn confine_new(root: &Path, wanted: &str) -> Result<(PathBuf, String), String> {
    let wanted = wanted.trim();
    if wanted.is_empty() {
        return Err("empty path".into());
    }
    let normal = normalize(root, wanted)?;
    let rel = normal.strip_prefix(root).map(Path::to_path_buf).unwrap_or_default();
    if rel.as_os_str().is_empty() {
        return Err("is the workspace itself".into());
    }
    if rel.components().next().is_some_and(|c| c.as_os_str() == ".git") {
        return Err("is inside `.git`".into());
    }
    // The deepest part that exists must resolve inside the workspace (symlinked folders, or a
    // symlink at the path itself).
    let mut existing = normal.as_path();
    while existing.symlink_metadata().is_err() {
        existing = existing.parent().unwrap_or(root);
    }
    match existing.canonicalize() {
        Ok(real) if real.starts_with(root) => Ok((normal.clone(), slash_path(&rel))),
        Ok(_) => Err("resolves outside the workspace through a symlink".into()),
        Err(_) => Err("is a broken symlink".into()),
    }
}

/// Replace secrets in the files `paths` (relative to `root`) in place; returns the files that held
/// one. Symlinks are not followed: a link's target is not the phase's change.
pub fn redact_files<'a>(
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

/// What the files of a workspace looked like at one moment: size, modification time and, for
/// small text files, the number of lines.
#[derive(Debug, Default)]
pub struct Snapshot {
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
    pub fn take(root: &Path, state_file: &Path, with_lines: bool) -> Snapshot {
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
    pub fn sizes(&self) -> impl Iterator<Item = (&str, u64)> {
        self.files.iter().map(|(p, m)| (p.as_str(), m.len))
    }

    /// The files added, modified and removed between `self` and `after`, with line counts
    /// (files in `after` are counted now, under `root`).
    pub fn diff(&self, after: &Snapshot, root: &Path) -> ChangeSet {
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
    fn confine_new_allows_new_files_inside_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        assert_eq!(confine_new(&root, "a/b/new.txt").unwrap().1, "a/b/new.txt");
        assert_eq!(confine_new(&root, "../x").unwrap_err(), "escapes the workspace");
        assert_eq!(confine_new(&root, "/tmp/x").unwrap_err(), "escapes the workspace");
        assert_eq!(confine_new(&root, ".git/config").unwrap_err(), "is inside `.git`");
        std::os::unix::fs::symlink("/tmp", root.join("out")).unwrap();
        assert_eq!(confine_new(&root, "out/x.txt").unwrap_err(), "resolves outside the workspace through a symlink");
    }

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
        let changes = before.diff(&Snapshot::take(root, Path::new(".claude/state.json"), false), root);
        assert_eq!(changes.added, ["new"]);
        assert_eq!(changes.modified, ["change"]);
        assert_eq!(changes.removed, ["gone"]);
        assert_eq!(changes.describe_lines("change"), "1 → 1 line");
        assert_eq!(changes.describe_lines("gone"), "−1 line");
    }
}
