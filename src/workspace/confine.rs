//! Confining the paths agents name to the workspace.
//!
//! Every check is on the path as written *and* on its real location: each existing ancestor is
//! resolved through its symlinks, so a link checked into the repository (`gitlink -> .git`,
//! `docs -> /etc`) cannot carry a write elsewhere. Refused wherever they are:
//!
//! - anything outside the workspace;
//! - git's folders: a `.git` at any depth (submodules, nested repositories), a folder shaped like a
//!   git directory (`HEAD` beside `objects` or `commondir`: bare repositories, the targets of
//!   `gitdir:` files), and the real git directory of the repository holding the workspace (found
//!   through a `.git` file for worktrees and submodules) — a write there is code execution
//!   (`core.fsmonitor`, hooks);
//! - for writes and reported artifacts, the orchestrator's own files: the state file, its journal
//!   and lock, the config and the agents' prompt templates, `.claude/consensus/` and
//!   `.claude/carried/`.
//!
//! Names are compared case-insensitively, as a case-insensitive file system would.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::slash_path;

/// The workspace with what agents may not touch in it.
#[derive(Debug, Clone)]
pub(crate) struct Confinement {
    /// Canonical.
    root: PathBuf,
    /// Real locations of the git directory (and common directory) of the repository holding the
    /// workspace.
    git_dirs: Vec<PathBuf>,
    /// The orchestrator's files and what they are.
    files: Vec<Protected>,
    /// The orchestrator's folders and what they are.
    dirs: Vec<Protected>,
}

/// One of the orchestrator's files or folders.
#[derive(Debug, Clone)]
struct Protected {
    /// Absolute, lexically normalized.
    lexical: PathBuf,
    /// Where it really is (or would be), resolved when it was named: the links a run finds are
    /// the checkout's; only a shell agent, which can write anything anyway, could add others.
    real: PathBuf,
    what: String,
}

impl Protected {
    fn new(lexical: PathBuf, what: &str) -> Protected {
        let real = real_location(&lexical).unwrap_or_else(|_| lexical.clone());
        Protected { lexical, real, what: what.to_owned() }
    }

    /// As [`Protected::new`], for one of many files in few folders (every agent's template): a
    /// file that does not exist (`missing`: known already, not looked up again) is where its folder
    /// really is, and each folder is resolved once.
    fn in_folder(lexical: PathBuf, what: &str, folders: &mut HashMap<PathBuf, PathBuf>, missing: bool) -> Protected {
        let missing = missing || lexical.symlink_metadata().is_err();
        let (Some(parent), Some(name), true) = (lexical.parent(), lexical.file_name(), missing) else {
            return Protected::new(lexical, what);
        };
        let folder = folders
            .entry(parent.to_path_buf())
            .or_insert_with(|| real_location(parent).unwrap_or_else(|_| parent.to_path_buf()));
        let real = folder.join(name);
        Protected { lexical, real, what: what.to_owned() }
    }
}

/// A path resolved both as written and through its symlinks.
struct Resolved {
    /// Absolute, `.` and `..` resolved lexically, inside the root.
    lexical: PathBuf,
    /// Where it really is: every existing part resolved through its symlinks.
    real: PathBuf,
}

/// Why a path an agent named was refused ("escapes the workspace", "is inside a git folder
/// (`.git`)", …): a phrase that follows the path in a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// Nothing is there (for paths that must exist).
    #[error("does not exist")]
    Missing,
    #[error("{0}")]
    Because(String),
}

impl From<String> for Refused {
    fn from(s: String) -> Self {
        Refused::Because(s)
    }
}

impl From<&str> for Refused {
    fn from(s: &str) -> Self {
        Refused::Because(s.to_owned())
    }
}

/// `path` (relative to `root`, or absolute) with `.` and `..` resolved lexically; refused if it
/// leaves `root`.
fn normalize(root: &Path, path: &str) -> Result<PathBuf, String> {
    if path.contains('\0') {
        return Err("contains a NUL byte".into());
    }
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

/// The real location of `path` (absolute, normalized), which may not exist yet: its deepest
/// existing ancestor resolved through symlinks, then the rest. A broken symlink on the way is an
/// error (writing through it would create its target, wherever that is).
fn real_location(path: &Path) -> Result<PathBuf, String> {
    let mut existing = path;
    let mut rest: Vec<&OsStr> = Vec::new();
    while existing.symlink_metadata().is_err() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return Err("does not exist".into()),
        }
    }
    let mut real = existing.canonicalize().map_err(|_| "is a broken symlink".to_owned())?;
    real.extend(rest.iter().rev());
    Ok(real)
}

fn lower(c: &OsStr) -> String {
    c.to_string_lossy().to_lowercase()
}

fn is_git_name(c: &OsStr) -> bool {
    lower(c) == ".git"
}

/// `path` starts with `prefix`, comparing components case-insensitively.
fn starts_with_ci(path: &Path, prefix: &Path) -> bool {
    let mut p = path.components();
    prefix.components().all(|c| p.next().is_some_and(|d| lower(c.as_os_str()) == lower(d.as_os_str())))
}

fn same_ci(a: &Path, b: &Path) -> bool {
    a.components().count() == b.components().count() && starts_with_ci(a, b)
}

/// Whether `dir` looks like a git directory: `HEAD` beside `objects` (a repository) or beside
/// `commondir` (a worktree's).
fn looks_like_git_dir(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && (dir.join("objects").is_dir() || dir.join("commondir").is_file())
}

/// The git directory a `.git` file points to (`gitdir: …`, relative to the file's folder).
fn gitdir_of_file(dot_git: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dot_git).ok()?;
    let target = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
    let path = Path::new(target);
    Some(if path.is_absolute() { path.to_path_buf() } else { dot_git.parent()?.join(path) })
}

/// The real git directories of the repository holding `root`: its git directory and, for a
/// worktree, the common one.
fn repository_git_dirs(root: &Path) -> Vec<PathBuf> {
    let Some(dot_git) = root.ancestors().map(|d| d.join(".git")).find(|g| g.symlink_metadata().is_ok()) else {
        return Vec::new();
    };
    let git_dir = if dot_git.is_file() { gitdir_of_file(&dot_git) } else { Some(dot_git) };
    let mut dirs = Vec::new();
    if let Some(dir) = git_dir.and_then(|d| d.canonicalize().ok()) {
        if let Some(common) = std::fs::read_to_string(dir.join("commondir")).ok().map(|c| dir.join(c.trim()))
            && let Ok(common) = common.canonicalize()
        {
            dirs.push(common);
        }
        dirs.push(dir);
    }
    dirs
}

impl Confinement {
    /// The workspace at `root` (which should exist: it is resolved through its symlinks), with
    /// git's folders refused and no files of the orchestrator's named yet.
    pub(crate) fn new(root: &Path) -> Confinement {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let git_dirs = repository_git_dirs(&root);
        Confinement { root, git_dirs, files: Vec::new(), dirs: Vec::new() }
    }

    /// The workspace of `wf`: git's folders and the orchestrator's own files refused.
    pub(crate) fn for_workflow(wf: &crate::config::Workflow) -> Confinement {
        let mut c = Confinement::new(&wf.root);
        let state = wf.settings.state_file.display().to_string();
        c.protect_file(&state, "the run's state file; agents may not change the run's state");
        c.protect_file(&format!("{state}.journal"), "the run's state journal; agents may not change the run's state");
        c.protect_file(&format!("{state}.lock"), "the run's lock file");
        c.protect_file(&format!("{state}.github-cache"), "the run's cache of GitHub's answers");
        c.protect_file(crate::file_modes::MANIFEST, "the run's record of its outputs' file modes");
        let config = wf.config_path.display().to_string();
        c.protect_file(&config, "the orchestrator's config; agents may not change the config they run under");
        let mut folders = HashMap::new();
        let listing = crate::prompt::Listing::of(&wf.root);
        for agent in wf.agents.values() {
            // What the next command renders for each agent: part of the config it runs under.
            let template = crate::prompt::template_path(agent).display().to_string();
            let abs = c.absolute(&template);
            c.files.push(Protected::in_folder(
                abs,
                "an agent's prompt template; agents may not change the prompts they run under",
                &mut folders,
                listing.surely_missing(agent),
            ));
        }
        c.protect_dir(".claude/consensus", "the approval gate's folder; agents may not write there");
        c.protect_dir(crate::github::carry::CARRIED_DIR, "the carried run state's folder; agents may not write there");
        c
    }

    /// The canonical workspace root.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn absolute(&self, path: &str) -> PathBuf {
        normalize(&self.root, path).unwrap_or_else(|_| {
            let p = Path::new(path);
            if p.is_absolute() { p.to_path_buf() } else { self.root.join(p) }
        })
    }

    /// Refuse writes to `path` (relative to the workspace, or absolute); `what` completes
    /// "is …" in the refusal.
    pub(crate) fn protect_file(&mut self, path: &str, what: &str) {
        let abs = self.absolute(path);
        self.files.push(Protected::new(abs, what));
    }

    /// Refuse writes anywhere under the folder `path`.
    pub(crate) fn protect_dir(&mut self, path: &str, what: &str) {
        let abs = self.absolute(path);
        self.dirs.push(Protected::new(abs, what));
    }

    fn rel<'p>(&self, p: &'p Path) -> &'p Path {
        p.strip_prefix(&self.root).unwrap_or(p)
    }

    /// Shown in refusals: relative to the workspace when inside it.
    fn show(&self, p: &Path) -> String {
        let rel = self.rel(p);
        if rel.as_os_str().is_empty() { ".".into() } else { slash_path(rel) }
    }

    /// Resolve `wanted`: inside the workspace as written and really. With `must_exist`, a
    /// missing path is refused.
    fn resolve(&self, wanted: &str, must_exist: bool) -> Result<Resolved, Refused> {
        let wanted = wanted.trim();
        if wanted.is_empty() {
            return Err("empty path".into());
        }
        // Lexical first, so `a/../../x` is refused even if it does not exist.
        let lexical = normalize(&self.root, wanted)?;
        if self.rel(&lexical).as_os_str().is_empty() {
            return Err("is the workspace itself".into());
        }
        let real = if must_exist {
            match lexical.canonicalize() {
                Ok(r) => r,
                Err(_) if lexical.symlink_metadata().is_ok() => return Err("is a broken symlink".into()),
                Err(_) => return Err(Refused::Missing),
            }
        } else {
            real_location(&lexical)?
        };
        if !real.starts_with(&self.root) {
            return Err("resolves outside the workspace through a symlink".into());
        }
        if self.rel(&real).as_os_str().is_empty() {
            return Err("resolves to the workspace itself".into());
        }
        Ok(Resolved { lexical, real })
    }

    /// Refuse a path in or into a git directory.
    fn check_git(&self, r: &Resolved) -> Result<(), String> {
        let written = self.rel(&r.lexical);
        if written.components().any(|c| is_git_name(c.as_os_str())) {
            return Err("is inside a git folder (`.git`); agents may not read or write git's files".into());
        }
        let real = self.rel(&r.real);
        let mut at = self.root.clone();
        for c in real.components() {
            at.push(c);
            if is_git_name(c.as_os_str()) || looks_like_git_dir(&at) {
                return Err(format!(
                    "resolves into the git folder `{}` through a symlink; agents may not read or write git's files",
                    self.show(&at)
                ));
            }
        }
        if let Some(dir) = self.git_dirs.iter().find(|d| r.real.starts_with(d)) {
            return Err(format!(
                "resolves into the repository's git folder `{}`; agents may not read or write git's files",
                self.show(dir)
            ));
        }
        Ok(())
    }

    /// Refuse the orchestrator's own files and folders, as written or really.
    fn check_protected(&self, r: &Resolved) -> Result<(), String> {
        for f in &self.files {
            if same_ci(&r.lexical, &f.lexical) || same_ci(&r.real, &f.real) {
                return Err(format!("is {} (`{}`)", f.what, self.show(&f.lexical)));
            }
        }
        for d in &self.dirs {
            if starts_with_ci(&r.lexical, &d.lexical) || starts_with_ci(&r.real, &d.real) {
                return Err(format!("is inside `{}/`, {}", self.show(&d.lexical), d.what));
            }
        }
        Ok(())
    }

    /// A path an agent reported as an artifact: it must exist, be in the workspace, not in git's
    /// folders and not one of the orchestrator's files. Returns it relative to the root, as
    /// written (normalized).
    pub(crate) fn reported(&self, reported: &str) -> Result<String, Refused> {
        let r = self.resolve(reported, true)?;
        self.check_git(&r)?;
        self.check_protected(&r)?;
        Ok(slash_path(self.rel(&r.lexical)))
    }

    /// A path an agent wants to read (or list): it must exist, be in the workspace and not in
    /// git's folders. Returns its real absolute location.
    pub(crate) fn readable(&self, wanted: &str) -> Result<PathBuf, Refused> {
        let r = self.resolve(wanted, true)?;
        self.check_git(&r)?;
        Ok(r.real)
    }

    /// A path that must exist and be reached without any symlink on its way (a file another
    /// job left, to be copied in): in the workspace, not in git's folders. Returns it absolute.
    pub(crate) fn exact(&self, wanted: &str) -> Result<PathBuf, Refused> {
        let r = self.resolve(wanted, true)?;
        self.check_git(&r)?;
        if r.real != r.lexical {
            return Err("is reached through a symlink".into());
        }
        Ok(r.real)
    }

    /// A file an agent (or a merged job) wants to write, which may not exist yet: it must stay in
    /// the workspace as written and through any symlink, and be neither in git's folders nor
    /// one of the orchestrator's files. Returns its real absolute location and the path relative
    /// to the root as written.
    pub(crate) fn writable(&self, wanted: &str) -> Result<(PathBuf, String), Refused> {
        let r = self.resolve(wanted, false)?;
        self.check_git(&r)?;
        self.check_protected(&r)?;
        Ok((r.real.clone(), slash_path(self.rel(&r.lexical))))
    }

    /// Open the file at `wanted` for writing, empty, after the checks of [`writable`]: folders are
    /// created, the file is opened at its real location without following a symlink there (one
    /// swapped in since the check is refused), and a file with other hard links is refused (a
    /// write would change them too). Returns the file and the path relative to the root.
    ///
    /// [`writable`]: Confinement::writable
    pub(crate) fn create(&self, wanted: &str) -> Result<(File, String), Refused> {
        let (real, rel) = self.writable(wanted)?;
        if let Some(dir) = real.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create its folder: {e}"))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            // Never waiting on a FIFO for a reader (an agent can leave one where the tool writes).
            .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
            .open(&real)
            .map_err(|e| match e.raw_os_error() {
                Some(code) if code == nix::errno::Errno::ELOOP as i32 => "is a symlink".to_owned(),
                Some(code) if code == nix::errno::Errno::ENXIO as i32 => "is a FIFO, not a plain file".to_owned(),
                _ => format!("cannot be opened for writing: {e}"),
            })?;
        let meta = file.metadata().map_err(|e| format!("cannot be read: {e}"))?;
        if !meta.is_file() {
            return Err("is not a plain file".into());
        }
        if meta.nlink() > 1 {
            return Err("has other hard links, which a write would change too".into());
        }
        file.set_len(0).map_err(|e| format!("cannot be emptied: {e}"))?;
        Ok((file, rel))
    }

    /// Write `bytes` to `wanted` through [`create`](Confinement::create).
    pub(crate) fn write(&self, wanted: &str, bytes: &[u8]) -> Result<String, Refused> {
        let (mut file, rel) = self.create(wanted)?;
        file.write_all(bytes).map_err(|e| format!("cannot be written: {e}"))?;
        Ok(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn workspace() -> (tempfile::TempDir, Confinement) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git/hooks")).unwrap();
        std::fs::write(dir.path().join(".git/config"), "[core]\n").unwrap();
        let mut c = Confinement::new(dir.path());
        c.protect_file(".claude/orchestrator_state.json", "the run's state file");
        c.protect_file(".claude/config.yaml", "the config");
        c.protect_dir(".claude/consensus", "the gate's folder");
        (dir, c)
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_reader() {
        let (dir, c) = workspace();
        nix::unistd::mkfifo(&dir.path().join("out.txt"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = c.write("out.txt", b"x").unwrap_err().to_string();
        assert_eq!(e, "is a FIFO, not a plain file");
    }

    #[test]
    fn paths_are_confined_to_the_workspace() {
        let (dir, c) = workspace();
        let root = c.root().to_path_buf();
        std::fs::create_dir(root.join("docs")).unwrap();
        std::fs::write(root.join("docs/PLAN.md"), "x").unwrap();
        assert_eq!(c.reported("docs/PLAN.md").unwrap(), "docs/PLAN.md");
        assert_eq!(c.reported("./docs/../docs/PLAN.md").unwrap(), "docs/PLAN.md");
        assert_eq!(c.reported(root.join("docs/PLAN.md").to_str().unwrap()).unwrap(), "docs/PLAN.md");
        assert_eq!(c.reported("../outside").unwrap_err().to_string(), "escapes the workspace");
        assert_eq!(c.reported("docs/../../x").unwrap_err().to_string(), "escapes the workspace");
        assert_eq!(c.reported("/etc/passwd").unwrap_err().to_string(), "escapes the workspace");
        assert_eq!(c.reported("missing.txt").unwrap_err().to_string(), "does not exist");
        assert_eq!(c.writable("a\0b").unwrap_err().to_string(), "contains a NUL byte");
        symlink("/etc", root.join("etc-link")).unwrap();
        assert_eq!(
            c.reported("etc-link/passwd").unwrap_err().to_string(),
            "resolves outside the workspace through a symlink"
        );
        assert_eq!(c.writable("a/b/new.txt").unwrap().1, "a/b/new.txt");
        assert_eq!(c.writable("../x").unwrap_err().to_string(), "escapes the workspace");
        assert_eq!(
            c.writable("etc-link/x.txt").unwrap_err().to_string(),
            "resolves outside the workspace through a symlink"
        );
        symlink("/nonexistent/dangling", root.join("dangling")).unwrap();
        assert_eq!(c.writable("dangling").unwrap_err().to_string(), "is a broken symlink");
        drop(dir);
    }

    #[test]
    fn git_folders_are_refused_however_they_are_reached() {
        let (_dir, c) = workspace();
        let root = c.root().to_path_buf();
        for p in [".git/config", ".git/hooks/pre-commit", ".GIT/config", "sub/.git/config", "a/./.git/x"] {
            assert!(c.writable(p).unwrap_err().to_string().contains("is inside a git folder"), "{p}");
        }
        symlink(".git", root.join("gitlink")).unwrap();
        symlink("gitlink", root.join("chain")).unwrap();
        symlink(".git/config", root.join("config-link")).unwrap();
        for p in ["gitlink/config", "chain/config", "chain/hooks/post-checkout", "config-link"] {
            let e = c.writable(p).unwrap_err().to_string();
            assert!(e.contains("resolves into the git folder `.git` through a symlink"), "{p}: {e}");
            assert!(c.readable(p).is_err(), "{p}");
        }
        assert!(c.readable("gitlink").is_err());
        // A nested repository, and a git directory under another name (what a `gitdir:` file
        // points to).
        std::fs::create_dir_all(root.join("vendor/lib/.git")).unwrap();
        symlink("vendor/lib", root.join("lib")).unwrap();
        assert!(c.writable("lib/.git/config").is_err());
        std::fs::create_dir_all(root.join("modules/x/objects")).unwrap();
        std::fs::write(root.join("modules/x/HEAD"), "ref: refs/heads/main\n").unwrap();
        let e = c.writable("modules/x/config").unwrap_err().to_string();
        assert!(e.contains("`modules/x`"), "{e}");
        assert_eq!(c.writable(".github/workflows/ci.yml").unwrap().1, ".github/workflows/ci.yml");
        assert_eq!(c.writable(".gitignore").unwrap().1, ".gitignore");
    }

    #[test]
    fn the_git_dir_of_a_worktree_is_found_through_its_git_file() {
        let outer = tempfile::tempdir().unwrap();
        let ws = outer.path().join("ws");
        let store = ws.join("store/worktrees/ws");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(ws.join(".git"), "gitdir: store/worktrees/ws\n").unwrap();
        std::fs::write(store.join("commondir"), "../..\n").unwrap();
        let c = Confinement::new(&ws);
        // `store` has no HEAD: only the `.git` file says it is the repository's.
        for p in ["store/config", "store/worktrees/ws/index"] {
            assert!(c.writable(p).unwrap_err().to_string().contains("the repository's git folder"), "{p}");
        }
        assert!(c.writable(".git").unwrap_err().to_string().contains("is inside a git folder"));
    }

    #[test]
    fn the_orchestrators_files_are_refused_for_writes_only() {
        let (_dir, c) = workspace();
        let root = c.root().to_path_buf();
        std::fs::create_dir_all(root.join(".claude")).unwrap();
        std::fs::write(root.join(".claude/config.yaml"), "x").unwrap();
        assert!(
            c.writable(".claude/config.yaml")
                .unwrap_err()
                .to_string()
                .starts_with("is the config (`.claude/config.yaml`)")
        );
        assert!(
            c.writable("./.claude/../.claude/orchestrator_state.json").unwrap_err().to_string().contains("state file")
        );
        assert!(
            c.writable(".claude/consensus/plan/REQUEST.md").unwrap_err().to_string().contains("`.claude/consensus/`")
        );
        symlink(".claude", root.join("cl")).unwrap();
        assert!(c.writable("cl/config.yaml").is_err());
        assert!(c.reported("cl/config.yaml").is_err());
        assert!(c.readable(".claude/config.yaml").is_ok());
        assert!(c.writable(".claude/prompts/x.md").is_ok());
    }

    #[test]
    fn a_workflows_own_files_are_where_its_config_puts_them() {
        let dir = tempfile::tempdir().unwrap();
        let source = "orchestrator:\n  state_file: run/s.json\nagents:\n  a:\n    entrypoints: {default: \"true\"}\n  b:\n    entrypoints: {default: \"true\"}\n    prompt: docs/b-prompt.md\nphases:\n  - name: p\n    agents: [a, b]\n";
        let wf = crate::config::parse(dir.path(), Path::new("ci/orchestrator.yaml"), source).unwrap();
        let c = Confinement::for_workflow(&wf);
        for (path, what) in [
            ("ci/orchestrator.yaml", "the orchestrator's config"),
            ("run/s.json", "the run's state file"),
            ("run/s.json.journal", "the run's state journal"),
            ("run/s.json.lock", "the run's lock file"),
            ("run/s.json.github-cache", "the run's cache of GitHub's answers"),
            (".claude/prompts/a.md", "an agent's prompt template"),
            ("docs/b-prompt.md", "an agent's prompt template"),
            (".claude/carried/p.json", "the carried run state's folder"),
        ] {
            let e = c.writable(path).unwrap_err().to_string();
            assert!(e.contains(what), "{path}: {e}");
        }
        assert!(c.writable(".claude/config.yaml").is_ok(), "not this workflow's config");
        assert!(c.writable(".claude/orchestrator_state.json").is_ok(), "not this workflow's state");
    }

    #[test]
    fn create_refuses_hard_links_and_writes_in_place() {
        let (_dir, c) = workspace();
        let root = c.root().to_path_buf();
        std::fs::write(root.join("a.txt"), "old").unwrap();
        std::fs::hard_link(root.join("a.txt"), root.join("b.txt")).unwrap();
        assert!(c.write("b.txt", b"new").unwrap_err().to_string().contains("hard links"));
        assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "old");
        std::fs::remove_file(root.join("b.txt")).unwrap();
        assert_eq!(c.write("a.txt", b"new").unwrap(), "a.txt");
        assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "new");
        assert_eq!(c.write("d/e/f.txt", b"x").unwrap(), "d/e/f.txt");
        // A symlink inside the workspace to a plain file is written through.
        symlink("a.txt", root.join("to-a")).unwrap();
        assert_eq!(c.write("to-a", b"via").unwrap(), "to-a");
        assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "via");
    }
}
