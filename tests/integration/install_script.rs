//! `scripts/install.sh` against a local server holding release assets packed by
//! `scripts/package.sh` (as release.yml packs them): a good checksum installs the binary,
//! completions and man pages; anything wrong installs nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fake_github::FakeGithub;
use crate::harness::{BIN, Run};
use crate::workflows::repo;

/// The asset the script picks on this machine (Linux: the static build).
fn target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-musl",
        ("linux", "aarch64") => "aarch64-unknown-linux-musl",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        other => panic!("no release target for {other:?}"),
    }
}

/// `scripts/package.sh` run on the binary under test: (archive, its .sha256 file).
pub(crate) fn packaged(dir: &Path, target: &str) -> (Vec<u8>, Vec<u8>) {
    let out =
        Command::new("bash").arg(repo().join("scripts/package.sh")).args([target, BIN]).arg(dir).output().unwrap();
    assert!(out.status.success(), "package.sh: {}", String::from_utf8_lossy(&out.stderr));
    let asset = dir.join(format!("orchestrator-{target}.tar.gz"));
    (std::fs::read(&asset).unwrap(), std::fs::read(asset.with_extension("gz.sha256")).unwrap())
}

struct Machine {
    dir: tempfile::TempDir,
    gh: FakeGithub,
}

impl Machine {
    fn new() -> Machine {
        let m = Machine { dir: tempfile::tempdir().unwrap(), gh: FakeGithub::start("") };
        std::fs::create_dir_all(m.home()).unwrap();
        m
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("tools/bin")
    }

    fn share(&self) -> PathBuf {
        self.home().join(".local/share")
    }

    fn publish(&self, at: &str, asset: Vec<u8>, sha: Vec<u8>) {
        let path = format!("/octo/app/releases/{at}/orchestrator-{}.tar.gz", target());
        self.gh.with(|g| {
            g.files.insert(path.clone(), asset);
            g.files.insert(format!("{path}.sha256"), sha);
        });
    }

    fn install(&self, args: &[&str]) -> Run {
        let out = Command::new("sh")
            .arg(repo().join("scripts/install.sh"))
            .args(["--base-url", &format!("{}/octo/app/releases/", self.gh.server_url)])
            .arg("--to")
            .arg(self.bin())
            .args(args)
            .env("HOME", self.home())
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("ORCHESTRATOR_VERSION")
            .env_remove("ORCHESTRATOR_INSTALL_DIR")
            .env_remove("ORCHESTRATOR_REPOSITORY")
            .env_remove("ORCHESTRATOR_BASE_URL")
            .output()
            .unwrap();
        Run::from_output(out)
    }

    /// Every file under the machine's folders but the server's own.
    fn written(&self) -> Vec<String> {
        let mut files = Vec::new();
        for root in [self.home(), self.dir.path().join("tools")] {
            walk(&root, &mut files);
        }
        files
    }
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() { walk(&p, out) } else { out.push(p.display().to_string()) }
    }
}

#[test]
fn a_good_checksum_installs_the_binary_completions_and_man_pages() {
    let m = Machine::new();
    let (asset, sha) = packaged(&m.dir.path().join("dist"), target());
    m.publish("download/v1.2.3", asset, sha);
    let run = m.install(&["--version", "v1.2.3"]);
    run.code(0).stdout_has("checksum ok").stdout_has("installed orchestrator ");
    assert!(
        m.gh.with(|g| g.downloads.clone())
            == [
                format!("/octo/app/releases/download/v1.2.3/orchestrator-{}.tar.gz", target()),
                format!("/octo/app/releases/download/v1.2.3/orchestrator-{}.tar.gz.sha256", target()),
            ]
    );
    let v = Command::new(m.bin().join("orchestrator")).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), format!("orchestrator {}", env!("CARGO_PKG_VERSION")));
    let bash = m.share().join("bash-completion/completions/orchestrator");
    assert!(std::fs::read_to_string(&bash).unwrap().contains("_orchestrator"));
    assert!(m.share().join("zsh/site-functions/_orchestrator").is_file());
    assert!(m.home().join(".config/fish/completions/orchestrator.fish").is_file());
    let page = m.share().join("man/man1/orchestrator.1");
    assert!(std::fs::read_to_string(&page).unwrap().contains(".TH orchestrator"));
    assert!(m.share().join("man/man1/orchestrator-run-approve.1").is_file());
    // The completions load in bash and complete the installed program's subcommands.
    let script = format!(
        "source '{}'; COMP_WORDS=(orchestrator run ap); COMP_CWORD=2; COMP_LINE='orchestrator run ap'; COMP_POINT=19; _orchestrator orchestrator ap run; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bash.display()
    );
    let out = Command::new("bash").args(["--norc", "-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "approve", "{}", String::from_utf8_lossy(&out.stderr));
    // Not on PATH here: the script says how to add it.
    run.stdout_has(&format!("note: {} is not on your PATH", m.bin().display()));
}

#[test]
fn the_latest_release_is_the_default() {
    let m = Machine::new();
    let (asset, sha) = packaged(&m.dir.path().join("dist"), target());
    m.publish("latest/download", asset, sha);
    m.install(&["--no-completions", "--no-man"]).code(0).stdout_has("checksum ok");
    assert!(m.bin().join("orchestrator").is_file());
    assert!(!m.share().exists(), "--no-completions --no-man write nothing else: {:?}", m.written());
}

#[test]
fn a_bad_checksum_refuses_and_writes_nothing() {
    let m = Machine::new();
    let (asset, sha) = packaged(&m.dir.path().join("dist"), target());
    // One byte of the archive changed on the way; then a checksum file that is not one.
    let mut tampered = asset.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    m.publish("download/v1.2.3", tampered, sha);
    let run = m.install(&["--version", "1.2.3"]);
    run.code(1).stderr_has("checksum mismatch for").stderr_has("nothing was installed");
    assert!(m.written().is_empty(), "{:?}", m.written());

    m.publish("download/v1.2.4", asset.clone(), b"<html>not found</html>\n".to_vec());
    m.install(&["--version", "1.2.4"]).code(1).stderr_has(".sha256 holds no sha256 checksum");
    assert!(m.written().is_empty(), "{:?}", m.written());
}

#[test]
fn a_missing_release_or_bad_arguments_write_nothing() {
    let m = Machine::new();
    m.install(&["--version", "9.9.9"])
        .code(1)
        .stderr_has(&format!("cannot download {}/octo/app/releases/download/v9.9.9/orchestrator-", m.gh.server_url));
    m.install(&["--version", "latest; rm -rf ~"]).code(1).stderr_has("is not X.Y.Z or latest");
    m.install(&["--target", "riscv64gc-unknown-linux-gnu"]).code(1).stderr_has("no release build for target");
    m.install(&["--bogus"]).code(1).stderr_has("unknown option '--bogus'");
    assert!(m.written().is_empty(), "{:?}", m.written());
    // Without a base URL, the repository must be named (and be OWNER/REPO).
    let out = Command::new("sh")
        .arg(repo().join("scripts/install.sh"))
        .env("HOME", m.home())
        .env_remove("ORCHESTRATOR_REPOSITORY")
        .env_remove("ORCHESTRATOR_BASE_URL")
        .output()
        .unwrap();
    Run::from_output(out).code(1).stderr_has("which repository are the releases in? pass --repo OWNER/REPO");
    let out = Command::new("sh")
        .arg(repo().join("scripts/install.sh"))
        .args(["--repo", "../../etc"])
        .env("HOME", m.home())
        .output()
        .unwrap();
    Run::from_output(out).code(1).stderr_has("--repo must be OWNER/REPO");
    assert!(m.written().is_empty(), "{:?}", m.written());
}

#[test]
fn the_release_archive_holds_the_binary_completions_man_pages_and_licence() {
    let dir = tempfile::tempdir().unwrap();
    let (asset, sha) = packaged(dir.path(), "x86_64-unknown-linux-gnu");
    let list = Command::new("tar")
        .arg("-tzf")
        .arg(dir.path().join("orchestrator-x86_64-unknown-linux-gnu.tar.gz"))
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    for f in [
        "./orchestrator",
        "./LICENSE",
        "./README.md",
        "./CHANGELOG.md",
        "./completions/orchestrator.bash",
        "./completions/_orchestrator",
        "./completions/orchestrator.fish",
        "./completions/_orchestrator.ps1",
        "./completions/orchestrator.elv",
        "./man/orchestrator.1",
        "./man/orchestrator-run-start.1",
    ] {
        assert!(list.lines().any(|l| l == f), "{f} not in the archive:\n{list}");
    }
    let sha = String::from_utf8(sha).unwrap();
    assert!(
        sha.ends_with("  orchestrator-x86_64-unknown-linux-gnu.tar.gz\n") && sha.len() == 64 + 2 + 44 + 1,
        "{sha:?}"
    );
    assert!(!asset.is_empty());
}
