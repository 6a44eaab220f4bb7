//! A project in a temporary folder and the real `orchestrator` binary run inside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_orchestrator");

pub(crate) struct Project {
    dir: tempfile::TempDir,
    root: PathBuf,
}

/// What a finished command printed and returned.
#[derive(Debug)]
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub(crate) fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Assert the exit code, showing the output if it differs.
    #[track_caller]
    pub(crate) fn code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code, expected,
            "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub(crate) fn stderr_has(&self, needle: &str) -> &Run {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n--- stderr ---\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub(crate) fn stdout_has(&self, needle: &str) -> &Run {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}\n--- stdout ---\n{}", self.stdout);
        self
    }
}

impl Project {
    pub(crate) fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        Project { dir, root }
    }

    /// A project in a folder of its own inside a temporary folder ([`Project::outside`]), so
    /// that a test can see whether anything was written next to the workspace.
    pub(crate) fn nested() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        std::fs::create_dir(&root).expect("workspace folder");
        Project { dir, root }
    }

    /// The temporary folder holding a [`Project::nested`] workspace.
    pub(crate) fn outside(&self) -> &Path {
        self.dir.path()
    }

    /// A project whose `.claude/config.yaml` is `yaml`.
    pub(crate) fn with_config(yaml: &str) -> Project {
        let p = Project::new();
        p.write(".claude/config.yaml", yaml);
        p
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub(crate) fn write(&self, rel: &str, contents: &str) -> &Project {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    pub(crate) fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        self.command_via(BIN, args)
    }

    /// As [`Project::command`], with `program` run in the tool's place (a wrapper that execs it).
    pub(crate) fn command_via(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.root())
            .env("NO_COLOR", "1")
            .env("CI", "1")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GH_TOKEN")
            // The tests may themselves run on GitHub Actions: none of the runner's context leaks in.
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_EVENT_PATH")
            .env_remove("GITHUB_EVENT_NAME")
            .env_remove("GITHUB_WORKSPACE")
            .stdin(Stdio::null());
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().expect("run orchestrator"))
    }

    /// Start the binary in the background with piped output.
    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn orchestrator")
    }

    pub(crate) fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.read(".claude/orchestrator_state.json")).expect("state is JSON")
    }

    /// Every file and folder under the project with its contents, for "nothing changed" checks.
    pub(crate) fn tree(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        tree(self.root())
    }
}

/// Every file and folder under `root` with its contents (symlinks as their targets' paths).
pub(crate) fn tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let kind = e.file_type().unwrap();
            if kind.is_symlink() {
                let target = std::fs::read_link(e.path()).unwrap();
                out.insert(rel, Some(format!("-> {}", target.display()).into_bytes()));
            } else if kind.is_dir() {
                stack.push(e.path());
                out.insert(rel, None);
            } else {
                out.insert(rel, Some(std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

/// Wait until `cond` holds, failing after a generous limit (this waits for events, it does not
/// measure how long they take).
#[track_caller]
pub(crate) fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < until, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` is alive (a zombie counts as dead).
pub(crate) fn alive(pid: i32) -> bool {
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => Command::new("ps")
            .args(["-o", "stat=", "-p", &pid.to_string()])
            .output()
            .map(|o| {
                let s = String::from_utf8_lossy(&o.stdout);
                !s.trim().is_empty() && !s.trim().starts_with('Z')
            })
            .unwrap_or(false),
    }
}

/// Read a pid written by an agent into `rel`.
pub(crate) fn pid_in(p: &Project, rel: &str) -> i32 {
    wait_for(rel, || p.read_opt(rel).is_some_and(|s| s.trim().parse::<i32>().is_ok()));
    p.read(rel).trim().parse().unwrap()
}

impl Project {
    pub(crate) fn read_opt(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path(rel)).ok()
    }
}

/// A config with one phase per `(name, agents, extra phase yaml)` and agents given as
/// `(name, command)`; `settings` goes under `orchestrator:`.
pub(crate) fn config(settings: &str, agents: &[(&str, &str)], phases: &str) -> String {
    let mut s = format!("orchestrator:\n  kill_grace_seconds: 0.5\n{settings}\nagents:\n");
    for (name, command) in agents {
        let quoted = serde_json::to_string(command).unwrap();
        s.push_str(&format!("  {name}:\n    entrypoints:\n      default: {quoted}\n"));
    }
    s.push_str("phases:\n");
    s.push_str(phases);
    s
}

/// Run git in `dir` with a fixed identity; its standard output.
#[track_caller]
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Make `ws` a checkout of branch `feature` whose `origin` is a new bare repository; returns the
/// folder holding it (keep it alive) and the bare repository's path.
pub(crate) fn feature_checkout(ws: &Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "--quiet", "--bare", "origin.git"]);
    let origin = remote.path().join("origin.git");
    git(ws, &["init", "--quiet", "-b", "feature"]);
    git(ws, &["remote", "add", "origin", origin.to_str().unwrap()]);
    (remote, origin)
}

/// Runs `cmd`, killing it if it has not finished within `limit` (a hang detector, not a timing
/// assertion: the limit is far above what a working build needs). `None` if it hung.
pub(crate) fn run_with_deadline(mut cmd: Command, limit: Duration) -> Option<Run> {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Some(Run::from_output(out.unwrap())),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            None
        }
    }
}
