//! The execute bits of a job's output files, carried across workflow artifacts.
//!
//! `actions/upload-artifact` keeps no file modes (its zip has none; GitHub: "File permissions
//! are not maintained during artifact upload"), so a script an agent built and marked
//! executable in one job of the jobs layout (`ci generate --jobs`) would reach the next job
//! without its execute bit. A job on a runner therefore records, in [`MANIFEST`] beside its
//! records, the permission bits of the executable files a later `run merge` copies from it
//! ([`record`]); the merge reads that manifest from each part ([`read`]) and gives each file it
//! copies the execute bits recorded for it ([`Modes::execute_bits`]).
//!
//! The manifest arrives in another job's upload, which that job's agents could have written:
//! it is read only as a regular file reached without symlinks, bounded in size, and entry by
//! entry (a bad entry is named and ignored, a bad manifest is named and ignored as a whole).
//! An entry never chooses a file: it is only looked up for a file the merge copies anyway
//! (one the part's state lists, copied confined to the workspace), and only the execute bits of
//! its mode are applied, through the handle the copy wrote, never setuid, setgid or sticky.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use crate::workspace::{Confinement, Refused};

/// Where a job records its files' modes, relative to the workspace.
pub(crate) const MANIFEST: &str = ".claude/file_modes.json";
/// The format written, and the only one read.
const VERSION: u64 = 1;
/// A manifest larger than this is not read (5,000 agents' outputs take a few hundred KiB).
const MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Bad entries named one by one, before the rest are counted.
const MAX_NAMED: usize = 5;

/// Record the permission bits of the executable files among `files` (relative to `root`, as
/// the run state lists them) in [`MANIFEST`]. A file reached through a symlink, or not a plain
/// file, is left out: the merge would not copy it. Returns how many were recorded.
pub(crate) fn record<'a>(root: &Path, files: impl IntoIterator<Item = &'a str>) -> Result<usize, Refused> {
    use std::os::unix::fs::PermissionsExt;
    let ws = Confinement::new(root);
    let mut modes = BTreeMap::new();
    for rel in files {
        let Ok(real) = ws.exact(rel) else { continue };
        let Ok(meta) = real.symlink_metadata() else { continue };
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o111 != 0 {
            modes.insert(rel.to_owned(), format!("{mode:o}"));
        }
    }
    let n = modes.len();
    let doc = serde_json::json!({ "version": VERSION, "modes": modes });
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    ws.write(MANIFEST, &bytes)?;
    Ok(n)
}

/// The execute bits a part recorded, by path.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Modes(BTreeMap<String, u32>);

impl Modes {
    /// The execute bits (within `0o111`) recorded for `rel`; 0 when none are.
    pub(crate) fn execute_bits(&self, rel: &str) -> u32 {
        self.0.get(rel).copied().unwrap_or(0)
    }
}

/// The manifest of the job folder `dir`: its modes, and a warning per thing ignored (the whole
/// manifest when it cannot be used, else each bad entry). No manifest: no modes, no warning.
pub(crate) fn read(dir: &Path) -> (Modes, Vec<String>) {
    match read_bytes(dir) {
        Ok(None) => (Modes::default(), Vec::new()),
        Ok(Some(bytes)) => parse(&bytes),
        Err(why) => (Modes::default(), vec![format!("ignoring `{MANIFEST}`: it {why}")]),
    }
}

fn read_bytes(dir: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = dir.canonicalize().map_err(|e| format!("cannot be found: {e}"))?;
    let real = match Confinement::new(&dir).exact(MANIFEST) {
        Ok(real) => real,
        Err(Refused::Missing) => return Ok(None),
        Err(why) => return Err(why.to_string()),
    };
    // Without following a final symlink, and without waiting on a FIFO for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(&real)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a plain file".into());
    }
    if meta.len() > MAX_BYTES {
        return Err(format!("is larger than {} MiB", MAX_BYTES / 1024 / 1024));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!("is larger than {} MiB", MAX_BYTES / 1024 / 1024));
    }
    Ok(Some(bytes))
}

/// Read entry by entry: the document is untyped JSON, so one bad entry costs only itself.
fn parse(bytes: &[u8]) -> (Modes, Vec<String>) {
    let whole = |why: String| (Modes::default(), vec![format!("ignoring `{MANIFEST}`: {why}")]);
    let doc: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(doc) => doc,
        Err(e) => return whole(format!("it is not valid JSON ({e})")),
    };
    match doc.get("version") {
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => return whole(format!("its version is {}, expected {VERSION}", short(&v.to_string()))),
        None => return whole(format!("it has no `version` (expected {VERSION})")),
    }
    let Some(entries) = doc.get("modes").and_then(|m| m.as_object()) else {
        return whole("its `modes` is not an object of paths and octal modes".into());
    };
    let mut modes = BTreeMap::new();
    let mut bad = Vec::new();
    for (rel, mode) in entries {
        match entry(rel, mode) {
            Ok(bits) => {
                modes.insert(rel.clone(), bits);
            }
            Err(why) => bad.push(format!("ignoring the entry `{}` of `{MANIFEST}`: {why}", short(rel))),
        }
    }
    if bad.len() > MAX_NAMED {
        let more = bad.len() - MAX_NAMED;
        bad.truncate(MAX_NAMED);
        bad.push(format!("ignoring {more} more bad entr{} of `{MANIFEST}`", if more == 1 { "y" } else { "ies" }));
    }
    (Modes(modes), bad)
}

/// One entry: a relative path without `..` (what a state may list), and an octal mode of
/// permission bits only. Returns its execute bits.
fn entry(rel: &str, mode: &serde_json::Value) -> Result<u32, String> {
    let clean = !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.chars().any(char::is_control)
        && rel.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if !clean {
        return Err("not a relative path inside the workspace".into());
    }
    let Some(text) = mode.as_str() else {
        return Err(format!("its mode {} is not an octal string like \"755\"", short(&mode.to_string())));
    };
    let bits = match text {
        t if (1..=4).contains(&t.len()) && t.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
            u32::from_str_radix(t, 8).map_err(|e| e.to_string())?
        }
        _ => return Err(format!("its mode `{}` is not an octal string like \"755\"", short(text))),
    };
    if bits & !0o777 != 0 {
        return Err(format!("its mode {bits:o} has setuid, setgid or sticky bits, which are never restored"));
    }
    Ok(bits & 0o111)
}

/// At most 80 characters of untrusted text, for a warning (neutralized where it is printed).
fn short(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn manifest(dir: &Path, text: &str) {
        std::fs::create_dir_all(dir.join(".claude")).unwrap();
        std::fs::write(dir.join(MANIFEST), text).unwrap();
    }

    #[test]
    fn executables_are_recorded_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        for (rel, mode) in [("src/run.sh", 0o755), ("src/own.sh", 0o700), ("src/data.txt", 0o644)] {
            std::fs::write(root.join(rel), "x").unwrap();
            std::fs::set_permissions(root.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::os::unix::fs::symlink("run.sh", root.join("src/link.sh")).unwrap();
        std::fs::create_dir_all(root.join("bin.d")).unwrap();
        let files = ["src/run.sh", "src/own.sh", "src/data.txt", "src/link.sh", "bin.d", "missing.sh"];
        assert_eq!(record(root, files).unwrap(), 2);
        let text = std::fs::read_to_string(root.join(MANIFEST)).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"version": 1, "modes": {"src/own.sh": "700", "src/run.sh": "755"}})
        );
        let (modes, warnings) = read(root);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(modes.execute_bits("src/run.sh"), 0o111);
        assert_eq!(modes.execute_bits("src/own.sh"), 0o100);
        assert_eq!(modes.execute_bits("src/data.txt"), 0);
        assert_eq!(modes.execute_bits("src/link.sh"), 0, "a symlink is not recorded");
    }

    #[test]
    fn no_manifest_is_no_modes_and_no_warning() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), (Modes::default(), vec![]));
    }

    #[test]
    fn hostile_entries_are_ignored_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        manifest(
            dir.path(),
            r#"{"version": 1, "modes": {
                "ok.sh": "0755", "user.sh": "744",
                "../outside.sh": "755", "/etc/passwd": "777", "a/../../b": "755", "": "755", "a//b": "755",
                "suid.sh": "4755", "sticky.sh": "1777", "text.sh": "rwx", "number.sh": 493, "long.sh": "00755"
            }}"#,
        );
        let (modes, warnings) = read(dir.path());
        assert_eq!(modes, Modes([("ok.sh".to_owned(), 0o111), ("user.sh".to_owned(), 0o100)].into_iter().collect()));
        assert_eq!(warnings.len(), MAX_NAMED + 1, "{warnings:#?}");
        assert!(warnings.last().unwrap().contains("ignoring 5 more bad entries"), "{warnings:#?}");
        let all = warnings.join("\n");
        assert!(all.contains("`../outside.sh`") && all.contains("not a relative path inside the workspace"), "{all}");
    }

    #[test]
    fn setuid_and_bad_modes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        manifest(dir.path(), r#"{"version": 1, "modes": {"suid.sh": "4755", "n.sh": 493, "x.sh": "9"}}"#);
        let (modes, warnings) = read(dir.path());
        assert_eq!(modes, Modes::default());
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings.iter().any(|w| w.contains("`n.sh`") && w.contains("mode 493 is not an octal string")));
        assert!(warnings.iter().any(|w| w.contains("`suid.sh`") && w.contains("setuid, setgid or sticky")));
        assert!(warnings.iter().any(|w| w.contains("`x.sh`") && w.contains("mode `9`")));
    }

    #[test]
    fn a_bad_manifest_is_ignored_whole() {
        for (text, expected) in [
            ("not json", "not valid JSON"),
            (r#"{"modes": {}}"#, "has no `version`"),
            (r#"{"version": 2, "modes": {"a.sh": "755"}}"#, "version is 2, expected 1"),
            (r#"{"version": "1", "modes": {"a.sh": "755"}}"#, "version is \"1\""),
            (r#"{"version": 1, "modes": ["a.sh"]}"#, "`modes` is not an object"),
            ("[1, 2]", "has no `version`"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            manifest(dir.path(), text);
            let (modes, warnings) = read(dir.path());
            assert_eq!(modes, Modes::default(), "{text}");
            assert_eq!(warnings.len(), 1, "{text}: {warnings:?}");
            assert!(warnings[0].contains(expected), "{text}: {warnings:?}");
        }
    }

    #[test]
    fn a_manifest_that_is_no_plain_file_is_not_read() {
        // A symlink to a manifest elsewhere, a folder, a FIFO (never waited on), one too large,
        // and a `.claude` that is itself a link.
        let elsewhere = tempfile::tempdir().unwrap();
        manifest(elsewhere.path(), r#"{"version": 1, "modes": {"a.sh": "755"}}"#);
        let link = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(link.path().join(".claude")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join(MANIFEST), link.path().join(MANIFEST)).unwrap();
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(folder.path().join(MANIFEST)).unwrap();
        let fifo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fifo.path().join(".claude")).unwrap();
        nix::unistd::mkfifo(&fifo.path().join(MANIFEST), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let large = tempfile::tempdir().unwrap();
        manifest(large.path(), "");
        std::fs::File::options().write(true).open(large.path().join(MANIFEST)).unwrap().set_len(MAX_BYTES + 1).unwrap();
        let dir_link = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join(".claude"), dir_link.path().join(".claude")).unwrap();
        for (dir, expected) in [
            (&link, "symlink"),
            (&folder, "not a plain file"),
            (&fifo, "not a plain file"),
            (&large, "larger than 16 MiB"),
            (&dir_link, "symlink"),
        ] {
            let (modes, warnings) = read(dir.path());
            assert_eq!(modes, Modes::default(), "{expected}");
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].contains(expected), "{warnings:?}");
        }
    }

    #[test]
    fn recording_never_writes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("target"), "keep").unwrap();
        std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("target"), dir.path().join(MANIFEST)).unwrap();
        assert!(record(dir.path(), ["a.sh"]).is_err());
        assert_eq!(std::fs::read_to_string(outside.path().join("target")).unwrap(), "keep");
    }
}
