//! Adversarial review of issue #15's code: per-file diffs (`src/review/`) and the release
//! install script. A file the state recorded may be swapped (by a later agent, a PR push) for a
//! symlink or a FIFO before it is shown; a release archive may hold symlinks.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::fake_github::FakeGithub;
use crate::harness::{Project, run_with_deadline};
use crate::workflows::repo;

fn git(p: &Project, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(p.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A gated phase that adds `added.md` and rewrites the committed `notes.txt`; stopped at its gate.
fn gated() -> Project {
    let p = Project::nested();
    p.write(
        ".claude/config.yaml",
        "agents:\n  editor:\n    entrypoints:\n      default: >-\n        printf 'one\\nTWO\\n' > notes.txt &&\n        printf 'hi\\n' > added.md &&\n        echo 'ARTIFACTS: notes.txt, added.md'\nphases:\n  - name: edit\n    agents: [editor]\n    requires_consensus: true\n",
    );
    p.write(".claude/intake.yaml", "name: review\n");
    p.write("notes.txt", "one\ntwo\n");
    git(&p, &["init", "-q"]);
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "base"]);
    p.run(&["run", "start"]).code(4);
    p
}

#[test]
fn run_diff_does_not_follow_a_swapped_in_symlink_out_of_the_workspace() {
    let p = gated();
    let secret = p.outside().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-CONTENT\n").unwrap();
    for name in ["added.md", "notes.txt"] {
        std::fs::remove_file(p.path(name)).unwrap();
        std::os::unix::fs::symlink(&secret, p.path(name)).unwrap();
    }
    let out = p.run(&["run", "diff", "edit"]);
    assert!(!out.stdout.contains("TOP-SECRET"), "{}", out.stdout);
    assert!(!out.stderr.contains("TOP-SECRET"), "{}", out.stderr);
    out.code(0).stdout_has("━━ added.md (not a regular file").stdout_has("━━ notes.txt (not a regular file");
}

#[test]
fn run_diff_does_not_hang_on_a_swapped_in_fifo() {
    let p = gated();
    std::fs::remove_file(p.path("added.md")).unwrap();
    nix::unistd::mkfifo(&p.path("added.md"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let out = run_with_deadline(p.command(&["run", "diff", "edit"]), Duration::from_secs(30));
    let out = out.expect("`run diff` hung on a FIFO");
    out.code(0).stdout_has("━━ added.md (not a regular file").stdout_has("(not a regular file: not shown)");
}

/// A release archive whose `orchestrator` is a symlink to a file of the user's (outside the
/// archive): its checksum matches, but what it points at was never verified.
#[test]
fn install_sh_refuses_an_archive_whose_binary_is_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // A user's private file, executable-looking so `--version` would "work" if it were run.
    let private = dir.path().join("private.sh");
    std::fs::write(&private, "#!/bin/sh\necho orchestrator 6.6.6\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pack = dir.path().join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    std::os::unix::fs::symlink(&private, pack.join("orchestrator")).unwrap();
    let target = match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    };
    let asset = dir.path().join("a.tar.gz");
    let ok = Command::new("tar").arg("-czf").arg(&asset).arg("-C").arg(&pack).arg("orchestrator").status().unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(&asset).unwrap();
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let sha = format!("{hex}  orchestrator-{target}.tar.gz\n");
    let gh = FakeGithub::start("");
    let path = format!("/o/r/releases/download/v1.0.0/orchestrator-{target}.tar.gz");
    gh.with(|g| {
        g.files.insert(path.clone(), bytes);
        g.files.insert(format!("{path}.sha256"), sha.into_bytes());
    });
    let bin = dir.path().join("bin");
    let out = Command::new("sh")
        .arg(repo().join("scripts/install.sh"))
        .args(["--base-url", &format!("{}/o/r/releases", gh.server_url), "--version", "1.0.0"])
        .args(["--target", target, "--no-completions", "--no-man", "--to"])
        .arg(&bin)
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "installed a symlinked binary: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("symlink") || stderr.contains("link"), "{stderr}");
    assert!(!bin.join("orchestrator").exists(), "installed");
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "install.sh changed the mode of a file outside its folders");
}

/// The action's installer, given the same kind of archive: the symlink's target (a file on the
/// runner the checksum never covered) is not installed as the binary.
#[test]
fn action_install_refuses_an_archive_whose_binary_is_a_symlink() {
    use crate::action_install::{publish, target};
    let dir = tempfile::tempdir().unwrap();
    let planted = dir.path().join("planted.sh");
    std::fs::write(&planted, "#!/bin/sh\necho orchestrator 6.6.6\n").unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::os::unix::fs::symlink(&planted, stage.join("orchestrator")).unwrap();
    let asset = dir.path().join("a.tar.gz");
    let ok = Command::new("tar").arg("-czf").arg(&asset).arg("-C").arg(&stage).arg("orchestrator").status().unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(&asset).unwrap();
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let gh = FakeGithub::start("abc");
    publish(&gh, "7.1.0", bytes, format!("{hex}  orchestrator-{}.tar.gz\n", target()).into_bytes());
    let cache = dir.path().join("tool_cache");
    std::fs::write(dir.path().join("output"), "").unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("action/install.sh"))
        .current_dir(dir.path())
        .env("ACTION_PATH", repo())
        .env("INPUT_VERSION", "7.1.0")
        .env("GITHUB_SERVER_URL", &gh.server_url)
        .env("RELEASE_REPOSITORY", "octo/app")
        .env("RUNNER_TOOL_CACHE", &cache)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env("GITHUB_OUTPUT", dir.path().join("output"))
        .env("GITHUB_PATH", dir.path().join("path"))
        // No cargo: a refusal must not fall back to a build either.
        .env("PATH", "/usr/bin:/bin");
    for var in ["RUNNER_OS", "RUNNER_ARCH", "GITHUB_ACTION_REPOSITORY", "GITHUB_ACTION_REF", "GITHUB_REPOSITORY"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "installed a symlinked binary: {stdout}");
    assert!(stderr.contains("symlink"), "{stderr}");
    assert!(!stdout.contains("6.6.6"), "{stdout}");
    let bin = cache.join(format!("orchestrator/7.1.0/{}/orchestrator", target()));
    assert!(!bin.exists(), "installed {}", bin.display());
}
