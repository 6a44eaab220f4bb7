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
//! The engine writes transcripts through a [`Folder`]: opened once at its real location inside
//! the workspace (a folder on the way that is a link out of it, as a pull request can commit, is
//! refused), then each file by name in it, never through a final symlink.
//!
//! The tail starts at a line start: when the cut falls inside a line, that line's beginning is
//! dropped (or, in one long line, everything up to the first whitespace), so a secret cut in
//! two never shows its second half, which no redaction would recognise.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

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

/// The transcripts' folder, opened once at its real location inside the workspace. Transcripts
/// are then created and read in it by name (`openat`), with no path resolved again per agent,
/// and a folder swapped for a link after it was opened is never followed: the handle is to the
/// folder that was checked.
#[derive(Debug)]
pub(crate) struct Folder {
    dir: OwnedFd,
    /// Where it was when it was opened (absolute, real).
    real: PathBuf,
}

fn refused(why: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, why.into())
}

/// The file name of the transcript at `rel`, if `rel` is a transcript's path.
fn file_name(rel: &str) -> Option<&str> {
    if is_transcript_path(rel) { rel.strip_prefix(DIR) } else { None }
}

impl Folder {
    fn open_dir(real: PathBuf) -> std::io::Result<Folder> {
        let dir = nix::fcntl::open(
            &real,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)?;
        Ok(Folder { dir, real })
    }

    /// The folder to write transcripts in, created if missing: refused (`PermissionDenied`,
    /// saying why) when its real location is outside the workspace or in a git folder.
    pub(crate) fn for_writing(root: &Path) -> std::io::Result<Folder> {
        let (real, _) =
            Confinement::new(root).writable(DIR.trim_end_matches('/')).map_err(|why| refused(why.to_string()))?;
        std::fs::create_dir_all(&real)?;
        Folder::open_dir(real).map_err(|e| match e.raw_os_error() {
            Some(code) if code == Errno::ELOOP as i32 || code == Errno::ENOTDIR as i32 => {
                refused("was replaced by a symlink or a file")
            }
            _ => e,
        })
    }

    /// The folder to read transcripts from: `None` unless it exists, inside the workspace, and is
    /// reached without a symlink.
    pub(crate) fn for_reading(root: &Path) -> Option<Folder> {
        let real = Confinement::new(root).exact(DIR.trim_end_matches('/')).ok()?;
        Folder::open_dir(real).ok()
    }

    /// Whether the folder is still where it was opened (an agent may have moved it away, or
    /// removed it). Linux tells through `/proc`; elsewhere the answer is no, so the caller opens
    /// the folder again, checking its path as on the first open.
    pub(crate) fn in_place(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd as _;
            std::fs::read_link(format!("/proc/self/fd/{}", self.dir.as_raw_fd())).is_ok_and(|now| now == self.real)
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Whether `file` is still the transcript at `rel` in this folder, and the folder still where
    /// it was opened: an agent may have removed, replaced or moved either since it was opened.
    pub(crate) fn holds(&self, rel: &str, file: &File) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let (Some(name), Ok(meta)) = (file_name(rel), file.metadata()) else { return false };
        let Ok(there) = nix::sys::stat::fstatat(&self.dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) else {
            return false;
        };
        // The fields' types differ across platforms (`dev_t` is 32 bits on macOS).
        #[allow(clippy::unnecessary_cast)]
        let same = there.st_dev as u64 == meta.dev() && there.st_ino as u64 == meta.ino();
        same && self.in_place()
    }

    /// Open the transcript at `rel` to append to it, creating it: refused (`PermissionDenied`,
    /// saying why) unless `rel` is a transcript's path, and when the file is a symlink (never
    /// followed, not even to another file of the workspace) or not a regular file (a FIFO is
    /// never waited on).
    pub(crate) fn append(&self, rel: &str) -> std::io::Result<File> {
        let name = file_name(rel).ok_or_else(|| refused("is not a transcript's path"))?;
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_APPEND
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.dir, name, flags, Mode::from_bits_truncate(0o666)).map_err(|e| match e {
            Errno::ELOOP => refused("is a symlink"),
            // A FIFO nobody reads, opened without blocking.
            Errno::ENXIO => refused("is a FIFO, not a plain file"),
            e => std::io::Error::from(e),
        })?;
        let f = File::from(fd);
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(refused("is not a plain file"));
        }
        // An agent can plant a hard link to any file of the user's under a later agent's name.
        if std::os::unix::fs::MetadataExt::nlink(&meta) > 1 {
            return Err(refused("has other hard links, which a write would change too"));
        }
        Ok(f)
    }

    /// The last (at most) `max` bytes of the transcript at `rel`, from a line start; `None` if
    /// `rel` is not a transcript's path or the file is missing, a symlink, or not a regular file.
    pub(crate) fn tail(&self, rel: &str, max: u64) -> Option<Tail> {
        let name = file_name(rel)?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let f = File::from(nix::fcntl::openat(&self.dir, name, flags, Mode::empty()).ok()?);
        let meta = f.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let start = meta.len().saturating_sub(max);
        // Read at the offset (no seek), as much as the size said, without a last read for the end
        // of the file: a tail per agent is read for JUnit and the log groups.
        let mut buf = vec![0u8; usize::try_from(meta.len() - start).ok()?];
        let mut filled = 0;
        while filled < buf.len() {
            match std::os::unix::fs::FileExt::read_at(&f, &mut buf[filled..], start + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        buf.truncate(filled);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(root: &Path, rel: &str, max: u64) -> Option<Tail> {
        Folder::for_reading(root)?.tail(rel, max)
    }

    fn open_append(root: &Path, rel: &str) -> std::io::Result<File> {
        Folder::for_writing(root)?.append(rel)
    }

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
    fn a_folder_holds_a_transcript_until_it_is_removed_replaced_or_moved() {
        let ws = workspace();
        let rel = format!("{DIR}a.log");
        let folder = Folder::for_writing(ws.path()).unwrap();
        let file = folder.append(&rel).unwrap();
        assert!(folder.holds(&rel, &file));
        assert!(!folder.holds(&format!("{DIR}b.log"), &file), "another name");
        std::fs::remove_file(ws.path().join(&rel)).unwrap();
        assert!(!folder.holds(&rel, &file), "removed");
        let file = folder.append(&rel).unwrap();
        std::fs::rename(ws.path().join(&rel), ws.path().join(DIR).join("old.log")).unwrap();
        std::fs::write(ws.path().join(&rel), "").unwrap();
        assert!(!folder.holds(&rel, &file), "replaced");
        let file = folder.append(&rel).unwrap();
        assert!(folder.holds(&rel, &file));
        std::fs::rename(ws.path().join(DIR), ws.path().join(".claude/logs/moved")).unwrap();
        assert!(!folder.holds(&rel, &file), "its folder moved");
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
        // A hard link to a file anywhere (here inside): refused, the file untouched.
        std::fs::hard_link(dir.path().join("notes.txt"), dir.path().join(DIR).join("h.log")).unwrap();
        let e = open_append(dir.path(), &format!("{DIR}h.log")).unwrap_err();
        assert!(e.kind() == std::io::ErrorKind::PermissionDenied && e.to_string().contains("hard links"), "{e}");
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
        let e = open_append(dir.path(), &fifo).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        // Only transcripts' names.
        for bad in [".claude/logs/agents/../x.log", ".claude/logs/agents/sub/x.log", ".claude/config.yaml", "x.log"] {
            let e = open_append(dir.path(), bad).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{bad}: {e}");
        }
    }

    #[test]
    fn a_folder_moved_away_after_it_was_opened_is_no_longer_in_place() {
        let ws = tempfile::tempdir().unwrap();
        let folder = Folder::for_writing(ws.path()).unwrap();
        assert!(folder.in_place() || !cfg!(target_os = "linux"));
        // An agent moves the folder out of the workspace and puts a link in its place.
        let elsewhere = tempfile::tempdir().unwrap();
        let moved = elsewhere.path().join("agents");
        std::fs::rename(ws.path().join(DIR), &moved).unwrap();
        std::os::unix::fs::symlink(&moved, ws.path().join(DIR.trim_end_matches('/'))).unwrap();
        assert!(!folder.in_place());
        // Opening it again follows its path and refuses the link.
        let e = Folder::for_writing(ws.path()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
        assert_eq!(std::fs::read_dir(&moved).unwrap().count(), 0);
        // Removed: not in place either.
        std::fs::remove_file(ws.path().join(DIR.trim_end_matches('/'))).unwrap();
        let folder = Folder::for_writing(ws.path()).unwrap();
        std::fs::remove_dir_all(ws.path().join(".claude")).unwrap();
        assert!(!folder.in_place());
    }

    #[test]
    fn one_folder_reads_many_tails() {
        let dir = workspace();
        for i in 0..3 {
            std::fs::write(dir.path().join(DIR).join(format!("r_p_a{i}.log")), format!("line {i}\n")).unwrap();
        }
        let folder = Folder::for_reading(dir.path()).unwrap();
        for i in 0..3 {
            assert_eq!(folder.tail(&format!("{DIR}r_p_a{i}.log"), 100).unwrap().text, format!("line {i}\n"));
        }
        assert_eq!(folder.tail(".env", 100), None);
        // No folder: nothing to read.
        let empty = tempfile::tempdir().unwrap();
        assert!(Folder::for_reading(empty.path()).is_none());
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
