//! Reading an agent's transcript back: the tail shown in the runner's log groups, in JUnit and
//! in the HTML report.
//!
//! The path comes from a run state, which is input (a state file, another job's upload, a
//! carried state), and the file itself is in the workspace, where agents write. So a transcript
//! is read only where the engine writes transcripts (a `.log` file directly in
//! [`DIR`]; never `.env` or any other file a state names), reached without a symlink, opened
//! without following one and without blocking (an agent can replace its transcript by a FIFO,
//! whose open would never return), and only if it is a regular file.
//!
//! The engine writes a transcript through [`open_append`]: at its real location inside the
//! workspace (a folder on the way that is a link out of it, as a pull request can commit, is
//! refused), never through a final symlink.
//!
//! The tail starts at a line start: when the cut falls inside a line, that line's beginning is
//! dropped (or, in one long line, everything up to the first whitespace), so a secret cut in
//! two never shows its second half, which no redaction would recognise.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use crate::workspace::Confinement;

/// The folder of transcripts, relative to the workspace (see `engine::transcript_path`).
pub(crate) const DIR: &str = ".claude/logs/agents/";

/// The end of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    /// From a line start (lossy UTF-8).
    pub text: String,
    /// Bytes of the file before `text`.
    pub skipped: u64,
}

/// Whether `rel` names a file the engine writes transcripts to: `DIR` then one `.log` name.
pub(crate) fn is_transcript_path(rel: &str) -> bool {
    rel.strip_prefix(DIR).is_some_and(|name| {
        name.len() > ".log".len()
            && name.ends_with(".log")
            && !name.contains(['/', '\\'])
            && !name.starts_with('.')
            && !name.chars().any(char::is_control)
    })
}

/// Open the transcript at `rel` under `root` to append to it, creating it and its folders:
/// refused (`PermissionDenied`, saying why) when it would be outside the workspace, in a git
/// folder, reached through a final symlink, or is not a regular file.
pub(crate) fn open_append(root: &Path, rel: &str) -> std::io::Result<File> {
    let refused = |why: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why);
    // The folder's real location, then the file in it by name: a final link is never followed
    // (not even to another file of the workspace, which the transcript would be appended to).
    let (parent, name) = match rel.rsplit_once('/') {
        Some((parent, name)) if !name.is_empty() => (parent, name),
        _ => return Err(refused("is not a file in a folder of the workspace".into())),
    };
    let (dir, _) = Confinement::new(root).writable(parent).map_err(|why| refused(why.to_string()))?;
    std::fs::create_dir_all(&dir)?;
    let real = dir.join(name);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(&real)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == nix::errno::Errno::ELOOP as i32 => refused("is a symlink".into()),
            _ => e,
        })?;
    if !f.metadata()?.is_file() {
        return Err(refused("is not a plain file".into()));
    }
    Ok(f)
}

/// The last (at most) `max` bytes of the transcript at `rel` under `root`, from a line start;
/// `None` if `rel` is not a transcript's path or the file is missing, reached through a symlink,
/// or not a regular file.
pub(crate) fn tail(root: &Path, rel: &str, max: u64) -> Option<Tail> {
    if !is_transcript_path(rel) {
        return None;
    }
    let path = Confinement::new(root).exact(rel).ok()?;
    let mut f: File = OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(&path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let start = meta.len().saturating_sub(max);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf).ok()?;
    let mut from = 0;
    if start > 0 {
        // The first line is cut: drop its beginning; in one long line, up to a whitespace.
        from = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => buf.iter().position(|b| b.is_ascii_whitespace()).map_or(buf.len(), |i| i + 1),
        };
    }
    Some(Tail { text: String::from_utf8_lossy(&buf[from..]).into_owned(), skipped: start + from as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(DIR)).unwrap();
        dir
    }

    #[test]
    fn only_files_in_the_transcripts_folder_are_transcripts() {
        assert!(is_transcript_path(&crate::engine::transcript_path("20260101_120000", "build", "a.b")));
        for bad in [
            ".env",
            "src/main.rs",
            ".claude/logs/agents/",
            ".claude/logs/agents/.log",
            ".claude/logs/agents/x.txt",
            ".claude/logs/agents/sub/x.log",
            ".claude/logs/agents/../../.env.log",
            ".claude/logs/agents/.hidden.log",
            "./.claude/logs/agents/x.log",
            ".claude/logs/agents/x\n.log",
        ] {
            assert!(!is_transcript_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_tail_starts_at_a_line_and_never_shows_half_a_word() {
        let dir = workspace();
        let rel = format!("{DIR}r_p_a.log");
        std::fs::write(dir.path().join(&rel), "first line\nsecond\nthird\n").unwrap();
        assert_eq!(tail(dir.path(), &rel, 10).unwrap(), Tail { text: "third\n".into(), skipped: 18 });
        assert_eq!(tail(dir.path(), &rel, 1000).unwrap().text, "first line\nsecond\nthird\n");
        // One long line cut inside a secret: the secret's end is not shown.
        std::fs::write(dir.path().join(&rel), format!("{} ghp_SECRETVALUE1234 tail end", "x".repeat(100))).unwrap();
        let t = tail(dir.path(), &rel, 20).unwrap();
        assert_eq!(t.text, "tail end");
        std::fs::write(dir.path().join(&rel), "y".repeat(100)).unwrap();
        assert_eq!(tail(dir.path(), &rel, 20).unwrap(), Tail { text: String::new(), skipped: 100 });
        assert_eq!(tail(dir.path(), &format!("{DIR}none.log"), 10), None);
    }

    #[test]
    fn transcripts_are_appended_to_inside_the_workspace_only() {
        let dir = tempfile::tempdir().unwrap();
        let rel = format!("{DIR}r_p_a.log");
        use std::io::Write as _;
        open_append(dir.path(), &rel).unwrap().write_all(b"one\n").unwrap();
        open_append(dir.path(), &rel).unwrap().write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(&rel)).unwrap(), "one\ntwo\n");
        // A final link, even to a file inside: refused, the target untouched.
        std::fs::write(dir.path().join("notes.txt"), "mine\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("notes.txt"), dir.path().join(DIR).join("l.log")).unwrap();
        let e = open_append(dir.path(), &format!("{DIR}l.log")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
        assert_eq!(std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(), "mine\n");
        // The folder a link out of the workspace: refused, nothing written there.
        let other = tempfile::tempdir().unwrap();
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join(".claude")).unwrap();
        std::os::unix::fs::symlink(other.path(), ws.path().join(".claude/logs")).unwrap();
        let e = open_append(ws.path(), &rel).unwrap_err();
        assert!(e.to_string().contains("outside the workspace"), "{e}");
        assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
        // A FIFO is not opened (a blocking open would wait for a reader).
        let fifo = format!("{DIR}fifo.log");
        nix::unistd::mkfifo(&dir.path().join(&fifo), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(open_append(dir.path(), &fifo).is_err());
    }

    #[test]
    fn links_fifos_and_other_files_are_not_read() {
        let dir = workspace();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "OUTSIDE\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(DIR).join("link.log")).unwrap();
        assert_eq!(tail(dir.path(), &format!("{DIR}link.log"), 100), None);
        // A link inside the workspace is not followed either.
        std::fs::write(dir.path().join(".env"), "DOTENV\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join(".env"), dir.path().join(DIR).join("in.log")).unwrap();
        assert_eq!(tail(dir.path(), &format!("{DIR}in.log"), 100), None);
        assert_eq!(tail(dir.path(), ".env", 100), None);
        // A FIFO: refused at once (an open for reading would wait for a writer forever).
        let fifo = dir.path().join(DIR).join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(tail(dir.path(), &format!("{DIR}fifo.log"), 100), None);
        std::fs::create_dir(dir.path().join(DIR).join("dir.log")).unwrap();
        assert_eq!(tail(dir.path(), &format!("{DIR}dir.log"), 100), None);
        // The folder itself a link out of the workspace.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("x.log"), "ELSEWHERE\n").unwrap();
        std::fs::remove_dir_all(dir.path().join(".claude/logs")).unwrap();
        std::fs::create_dir_all(dir.path().join(".claude/logs")).unwrap();
        std::os::unix::fs::symlink(other.path(), dir.path().join(".claude/logs/agents")).unwrap();
        assert_eq!(tail(dir.path(), &format!("{DIR}x.log"), 100), None);
    }
}
