//! What a phase changed, file by file, as reviewers see it: the same per-file diffs in the pull
//! request's gate comment (collapsible), in REQUEST.md (a `diff` block per file) and in the
//! terminal (`run diff`, coloured). The files are agents' work: the Markdown forms put them in
//! fences through `markup`, the terminal form through `runner_log::neutralize`; every form is
//! bounded in lines per file and in size.

pub(crate) mod markdown;
pub(crate) mod terminal;

use std::path::Path;

use crate::state::RunState;

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileDiff {
    /// The path the state recorded (relative to the workspace).
    pub path: String,
    /// `diff` (against the checked-out commit), `new file`, `new version` (no commit to compare
    /// with: the whole file), `binary`, `removed` or `not a regular file` (a symlink, FIFO or
    /// folder now: not read).
    pub kind: &'static str,
    /// The state's line counts, `+3 lines` / `4 → 6 lines`, or empty.
    pub lines: String,
    /// The diff's lines (empty for binary and removed files).
    pub text: Vec<String>,
}

/// Bytes of a file read to show it: past this, the rest is cut (and said so).
const READ_LIMIT: u64 = 1 << 20;

/// The change of `path` in the workspace at `root`.
fn diff_of(root: &Path, path: &str, added: bool) -> (&'static str, Vec<String>) {
    use std::io::Read as _;
    let mut file = Vec::new();
    // The state recorded a regular file, but what is there now may have been swapped for a
    // symlink out of the workspace or a FIFO (a later agent, a push): only a regular file, reached
    // through no symlink, is read or diffed.
    let Some(f) = open_regular(root, path) else { return ("not a regular file", Vec::new()) };
    let _ = f.take(READ_LIMIT).read_to_end(&mut file);
    if file.iter().take(8192).any(|b| *b == 0) {
        return ("binary", Vec::new());
    }
    if !added {
        // Read-only git: the change against the checked-out commit, where there is one. The
        // path is literal (a file named `:(glob)*` is that file, not a pattern).
        // Not with a diff driver, hook or monitor an agent configured (see `git_cmd`).
        let out = crate::git_cmd::command(root)
            .args([
                "--literal-pathspecs",
                "diff",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "-U3",
                "HEAD",
                "--",
                path,
            ])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(out) = out
            && out.status.success()
            && !out.stdout.is_empty()
        {
            return ("diff", String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect());
        }
    }
    let text = String::from_utf8_lossy(&file);
    (if added { "new file" } else { "new version" }, text.lines().map(|l| format!("+{l}")).collect())
}

/// `path` under `root`, opened for reading if it is a relative path inside `root` whose every
/// component is a plain name, no component is a symlink and the file is regular; else `None`.
fn open_regular(root: &Path, path: &str) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::path::Component;
    let rel = Path::new(path);
    if path.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        if at.symlink_metadata().ok()?.file_type().is_symlink() {
            return None;
        }
    }
    // O_NOFOLLOW and O_NONBLOCK: a symlink or FIFO swapped in since the check is not followed or
    // waited on.
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(flags.bits()).open(&at).ok()?;
    f.metadata().ok()?.is_file().then_some(f)
}

/// The files `phase` changed in the run of `state`, added first, then modified, then removed.
/// It reads files and runs git: called from async code, use [`phase_diffs_blocking`].
pub(crate) fn phase_diffs(root: &Path, state: &RunState, phase: &str) -> Vec<FileDiff> {
    match state.phases.get(phase).and_then(|p| p.changes.as_ref()) {
        Some(changes) => diffs_of(root, changes),
        None => Vec::new(),
    }
}

/// [`phase_diffs`] on a blocking thread, off the runtime's.
pub(crate) async fn phase_diffs_blocking(root: &Path, state: &RunState, phase: &str) -> Vec<FileDiff> {
    let Some(changes) = state.phases.get(phase).and_then(|p| p.changes.clone()) else { return Vec::new() };
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || diffs_of(&root, &changes)).await.unwrap_or_default()
}

fn diffs_of(root: &Path, changes: &crate::state::ChangeSet) -> Vec<FileDiff> {
    let mut out = Vec::new();
    for (path, added) in changes.added.iter().map(|f| (f, true)).chain(changes.modified.iter().map(|f| (f, false))) {
        let (kind, text) = diff_of(root, path, added);
        out.push(FileDiff { path: path.clone(), kind, lines: changes.describe_lines(path), text });
    }
    for path in &changes.removed {
        out.push(FileDiff {
            path: path.clone(),
            kind: "removed",
            lines: changes.describe_lines(path),
            text: Vec::new(),
        });
    }
    out
}

/// REQUEST.md's section: every changed file's diff under a heading, bounded (300 lines a file,
/// 100 KB in all); the rest is in the workspace and `run diff`.
pub(crate) fn request_section(files: &[FileDiff], phase: &str) -> String {
    let bounds = Bounds { lines_per_file: 300, total: 100_000 };
    let elsewhere = format!("see the workspace, or `orchestrator run diff {phase}`");
    markdown::section(files, bounds, markdown::Layout::Headings, &elsewhere)
}

/// Limits on what is shown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Lines shown per file; the rest is counted.
    pub lines_per_file: usize,
    /// Bytes for all files together; files past it are counted.
    pub total: usize,
}

impl FileDiff {
    /// `(path) (kind, lines)` wording shared by every form.
    pub(crate) fn describe(&self) -> String {
        if self.lines.is_empty() { self.kind.to_owned() } else { format!("{}, {}", self.kind, self.lines) }
    }

    /// The lines shown under `bounds`, and how many were left out.
    pub(crate) fn shown(&self, bounds: Bounds) -> (&[String], usize) {
        let n = self.text.len().min(bounds.lines_per_file);
        (&self.text[..n], self.text.len() - n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(root: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@e", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(root)
            .output()
            .unwrap();
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    }

    fn state_with(changes: serde_json::Value) -> RunState {
        let mut ps = crate::state::PhaseState::pending();
        ps.changes = Some(serde_json::from_value(changes).unwrap());
        RunState::for_test("r1", [("build".to_owned(), ps)].into())
    }

    #[test]
    fn a_modified_file_is_diffed_against_the_commit_and_a_new_one_shown_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        git(root, &["init", "-q"]);
        std::fs::write(root.join("a.txt"), "one\ntwo\n").unwrap();
        git(root, &["add", "a.txt"]);
        git(root, &["commit", "-q", "-m", "a"]);
        std::fs::write(root.join("a.txt"), "one\n2\n").unwrap();
        std::fs::write(root.join(":(glob)*"), "literal\n").unwrap();
        std::fs::write(root.join("bin"), b"\0\x01").unwrap();
        let state = state_with(serde_json::json!({
            "added": [":(glob)*", "bin"], "modified": ["a.txt"], "removed": ["gone.txt"]
        }));
        let diffs = phase_diffs(root, &state, "build");
        let kinds: Vec<(&str, &str)> = diffs.iter().map(|d| (d.path.as_str(), d.kind)).collect();
        assert_eq!(kinds, [(":(glob)*", "new file"), ("bin", "binary"), ("a.txt", "diff"), ("gone.txt", "removed")]);
        assert_eq!(diffs[0].text, ["+literal"]);
        assert!(
            diffs[2].text.contains(&"-two".to_owned()) && diffs[2].text.contains(&"+2".to_owned()),
            "{:?}",
            diffs[2]
        );
        assert!(diffs[1].text.is_empty() && diffs[3].text.is_empty());
    }

    #[test]
    fn only_regular_files_reached_through_no_symlink_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(dir.path().join("secret"), "SECRET\n").unwrap();
        std::fs::write(root.join("real/ok.txt"), "fine\n").unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        for path in ["up/secret", "link", "fifo", "../secret", "real/../../secret", "/etc/passwd", "", "real"] {
            let (kind, text) = diff_of(&root, path, true);
            assert_eq!((kind, text.len()), ("not a regular file", 0), "{path}");
        }
        assert_eq!(diff_of(&root, "real/ok.txt", true), ("new file", vec!["+fine".to_owned()]));
    }

    #[test]
    fn bounds_cut_lines_and_count_them() {
        let d = FileDiff { path: "x".into(), kind: "new file", lines: String::new(), text: vec!["+a".into(); 10] };
        let (shown, cut) = d.shown(Bounds { lines_per_file: 3, total: 100 });
        assert_eq!((shown.len(), cut), (3, 7));
    }
}
