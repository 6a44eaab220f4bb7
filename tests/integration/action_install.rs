//! `action/install.sh`: the release asset for this OS and architecture, checked against its
//! checksum, kept in the tool cache; a build from source when there is no asset.

use std::path::Path;
use std::process::Command;

use crate::fake_github::FakeGithub;
use crate::harness::{BIN, Run};
use crate::workflows::repo;

pub(crate) fn target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-gnu",
        ("linux", "aarch64") => "aarch64-unknown-linux-gnu",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        other => panic!("no release target for {other:?}"),
    }
}

pub(crate) fn own_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// A release asset holding the binary under test, and its `.sha256` file, as release.yml makes them.
pub(crate) fn release_asset(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(BIN, stage.join("orchestrator")).unwrap();
    let asset = format!("orchestrator-{}.tar.gz", target());
    let ok = Command::new("tar").arg("-czf").arg(dir.join(&asset)).arg("-C").arg(&stage).arg("orchestrator").status();
    assert!(ok.unwrap().success());
    let sum = Command::new("sh")
        .arg("-c")
        .arg(format!("sha256sum {asset} 2>/dev/null || shasum -a 256 {asset}"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(sum.status.success());
    (std::fs::read(dir.join(&asset)).unwrap(), sum.stdout)
}

/// Serve a release of octo/app at `version` from the fake.
pub(crate) fn publish(gh: &FakeGithub, version: &str, asset: Vec<u8>, sha: Vec<u8>) {
    let base = format!("/octo/app/releases/download/v{version}/orchestrator-{}.tar.gz", target());
    gh.with(|g| {
        g.files.insert(base.clone(), asset);
        g.files.insert(format!("{base}.sha256"), sha);
    });
}

struct Install {
    dir: tempfile::TempDir,
}

impl Install {
    fn new() -> Install {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("output"), "").unwrap();
        Install { dir }
    }

    fn run(&self, gh: &FakeGithub, action_path: &Path, version: &str) -> Run {
        self.run_with(gh, action_path, version, &[("RELEASE_REPOSITORY", "octo/app")])
    }

    /// The install step with only `env` telling it where the action came from.
    fn run_with(&self, gh: &FakeGithub, action_path: &Path, version: &str, env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("action/install.sh"))
            .current_dir(self.dir.path())
            .env("ACTION_PATH", action_path)
            .env("INPUT_VERSION", version)
            .env("GITHUB_SERVER_URL", &gh.server_url)
            .env("RUNNER_TOOL_CACHE", self.dir.path().join("tool_cache"))
            .env("CARGO_TARGET_DIR", self.dir.path().join("target"))
            .env("GITHUB_OUTPUT", self.dir.path().join("output"))
            .env("GITHUB_PATH", self.dir.path().join("path"));
        for var in [
            "RUNNER_OS",
            "RUNNER_ARCH",
            "RELEASE_REPOSITORY",
            "GITHUB_ACTION_REPOSITORY",
            "GITHUB_ACTION_REF",
            "GITHUB_REPOSITORY",
            "GITHUB_WORKSPACE",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd.envs(env.iter().copied()).output().unwrap();
        Run::from_output(out)
    }

    fn outputs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output")).unwrap()
    }

    fn installed(&self, version: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("tool_cache/orchestrator/{version}/{}/orchestrator", target()))
    }
}

#[test]
fn installs_the_release_asset_after_checking_its_checksum_then_reuses_it() {
    let gh = FakeGithub::start("abc");
    let i = Install::new();
    let (asset, sha) = release_asset(i.dir.path());
    let version = own_version();
    publish(&gh, &version, asset, sha);

    let run = i.run(&gh, &repo(), "");
    run.code(0).stdout_has("checksum ok");
    let bin = i.installed(&version);
    assert!(i.outputs().contains(&format!("path={}\n", bin.display())), "{}", i.outputs());
    assert!(i.outputs().contains("source=release\n"));
    assert_eq!(
        std::fs::read_to_string(i.dir.path().join("path")).unwrap().trim(),
        bin.parent().unwrap().display().to_string()
    );
    let v = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), format!("orchestrator {version}"));
    assert_eq!(gh.with(|g| g.downloads.len()), 2, "the asset and its checksum");

    // The next job finds it in the (cached) tool folder and downloads nothing.
    i.run(&gh, &repo(), &format!("v{version}")).code(0);
    assert!(i.outputs().contains("source=cache\n"), "{}", i.outputs());
    assert_eq!(gh.with(|g| g.downloads.len()), 2);
}

#[test]
fn a_checksum_mismatch_installs_nothing() {
    let gh = FakeGithub::start("abc");
    let i = Install::new();
    let (asset, _) = release_asset(i.dir.path());
    let wrong = format!("{}  orchestrator-{}.tar.gz\n", "0".repeat(64), target()).into_bytes();
    publish(&gh, "7.0.0", asset, wrong);
    let run = i.run(&gh, &repo(), "7.0.0");
    run.code(1).stderr_has("checksum mismatch").stderr_has("not installing it");
    assert!(!i.installed("7.0.0").exists());
    assert!(!run.stdout.contains("building"), "a bad checksum never falls back to a build: {}", run.stdout);
}

#[test]
fn without_a_release_asset_it_builds_the_actions_source() {
    let gh = FakeGithub::start("abc");
    let i = Install::new();
    // A stand-in for the action's source: a real crate, built for real by cargo.
    let src = i.dir.path().join("action-src");
    std::fs::create_dir_all(src.join("src")).unwrap();
    std::fs::write(
        src.join("Cargo.toml"),
        "[package]\nname = \"orchestrator\"\nversion = \"9.9.9\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(src.join("src/main.rs"), "fn main() { println!(\"orchestrator 9.9.9 (from source)\"); }\n").unwrap();
    assert!(
        Command::new("cargo").args(["generate-lockfile", "--offline"]).current_dir(&src).status().unwrap().success()
    );

    let run = i.run(&gh, &src, "");
    run.code(0).stdout_has("no release asset at").stdout_has("falling back to building from source");
    assert!(i.outputs().contains("source=build\n"), "{}", i.outputs());
    let v = Command::new(i.installed("9.9.9")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "orchestrator 9.9.9 (from source)");
}

#[test]
fn a_bad_version_is_refused() {
    let gh = FakeGithub::start("abc");
    let i = Install::new();
    i.run(&gh, &repo(), "latest; rm -rf /").code(1).stderr_has("is not a release version (X.Y.Z), 'source', or empty");
    assert_eq!(gh.with(|g| g.downloads.len()), 0);
}

/// A copy of the action's files at `dir` (what the runner downloads for `uses: OWNER/REPO@REF`).
fn action_copy(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(repo().join("Cargo.toml"), dir.join("Cargo.toml")).unwrap();
    dir.to_path_buf()
}

#[test]
fn with_the_runners_action_variables_empty_the_release_comes_from_the_actions_folder() {
    // actions/runner#2525: inside a composite action `github.action_repository` and
    // GITHUB_ACTION_REPOSITORY can be empty. The runner still puts the action at
    // <work>/_actions/OWNER/REPO/REF; the workflow's own repository is someone else's.
    let gh = FakeGithub::start("abc");
    let i = Install::new();
    let (asset, sha) = release_asset(i.dir.path());
    let version = own_version();
    publish(&gh, &version, asset, sha);
    let action = action_copy(&i.dir.path().join("runner/_work/_actions/octo/app/v0"));
    let workspace = i.dir.path().join("runner/_work/project/project");
    std::fs::create_dir_all(&workspace).unwrap();

    let run = i.run_with(
        &gh,
        &action,
        "",
        &[
            ("RELEASE_REPOSITORY", ""),
            ("GITHUB_ACTION_REPOSITORY", ""),
            ("GITHUB_ACTION_REF", ""),
            ("GITHUB_REPOSITORY", "someone/project"),
            ("GITHUB_WORKSPACE", workspace.to_str().unwrap()),
        ],
    );
    run.code(0)
        .stdout_has("checksum ok")
        .stdout_has("release repository: octo/app (action ref v0), from the action's folder");
    assert!(i.outputs().contains("source=release\nrepository=octo/app\nref=v0\n"), "{}", i.outputs());
    let downloads = gh.with(|g| g.downloads.clone());
    assert!(
        downloads.iter().all(|d| d.starts_with(&format!("/octo/app/releases/download/v{version}/"))),
        "{downloads:?}"
    );
    assert!(!downloads.iter().any(|d| d.contains("someone/project")));
}

#[test]
fn the_runners_action_variables_win_when_they_are_set() {
    let gh = FakeGithub::start("abc");
    let i = Install::new();
    let (asset, sha) = release_asset(i.dir.path());
    let version = own_version();
    publish(&gh, &version, asset, sha);
    // A folder that says nothing about the action's origin: the variables decide.
    let action = action_copy(&i.dir.path().join("somewhere/else"));
    for env in [
        [("RELEASE_REPOSITORY", "octo/app"), ("GITHUB_ACTION_REPOSITORY", ""), ("GITHUB_ACTION_REF", "v0.1.0")],
        [("RELEASE_REPOSITORY", ""), ("GITHUB_ACTION_REPOSITORY", "octo/app"), ("GITHUB_ACTION_REF", "v0.1.0")],
    ] {
        let i = Install::new();
        let mut env = env.to_vec();
        env.push(("GITHUB_REPOSITORY", "someone/project"));
        i.run_with(&gh, &action, "", &env)
            .code(0)
            .stdout_has("release repository: octo/app (action ref v0.1.0), from the runner's action variables");
        assert!(i.outputs().contains("source=release\nrepository=octo/app\nref=v0.1.0\n"), "{}", i.outputs());
    }
    // A value that is not OWNER/REPO is not a repository.
    let i = Install::new();
    let run = i.run_with(
        &gh,
        &action_copy(&i.dir.path().join("runner/_work/_actions/octo/app/main")),
        "",
        &[("GITHUB_ACTION_REPOSITORY", "../../evil"), ("GITHUB_REPOSITORY", "someone/project")],
    );
    run.code(0).stdout_has("release repository: octo/app (action ref main), from the action's folder");
}

#[test]
fn a_local_action_downloads_from_the_workflows_repository_or_its_checkouts_origin() {
    let gh = FakeGithub::start("abc");
    let (asset, sha) = release_asset(tempfile::tempdir().unwrap().path());
    let version = own_version();
    publish(&gh, &version, asset.clone(), sha.clone());
    let base = format!("/tools/orchestrator/releases/download/v{version}/orchestrator-{}.tar.gz", target());
    gh.with(|g| {
        g.files.insert(base.clone(), asset);
        g.files.insert(format!("{base}.sha256"), sha);
    });

    // `uses: ./` in octo/app itself: the action is the workspace.
    let i = Install::new();
    let workspace = action_copy(&i.dir.path().join("work/app/app"));
    i.run_with(
        &gh,
        &workspace,
        "",
        &[("GITHUB_REPOSITORY", "octo/app"), ("GITHUB_WORKSPACE", workspace.to_str().unwrap())],
    )
    .code(0)
    .stdout_has("release repository: octo/app, from a local action in the workflow's repository");

    // `uses: ./tools/orchestrator` after checking out tools/orchestrator there: its origin says.
    let i = Install::new();
    let workspace = i.dir.path().join("work/app/app");
    let action = action_copy(&workspace.join("tools/orchestrator"));
    let git = |args: &[&str]| assert!(Command::new("git").args(args).current_dir(&action).status().unwrap().success());
    git(&["init", "-q"]);
    git(&["remote", "add", "origin", &format!("{}/tools/orchestrator.git", gh.server_url)]);
    i.run_with(
        &gh,
        &action,
        "",
        &[("GITHUB_REPOSITORY", "octo/app"), ("GITHUB_WORKSPACE", workspace.to_str().unwrap())],
    )
    .code(0)
    .stdout_has("release repository: tools/orchestrator, from the action checkout's origin remote");
    assert!(gh.with(|g| g.downloads.iter().any(|d| d.starts_with("/tools/orchestrator/"))));
}

#[test]
fn an_action_of_unknown_origin_never_downloads_from_the_users_repository() {
    let gh = FakeGithub::start("abc");
    let i = Install::new();
    let (asset, sha) = release_asset(i.dir.path());
    // Even when the user's repository has a release that looks right, it is not the action's.
    publish(&gh, "9.9.9", asset, sha);
    let src = i.dir.path().join("elsewhere/action-src");
    std::fs::create_dir_all(src.join("src")).unwrap();
    std::fs::write(
        src.join("Cargo.toml"),
        "[package]\nname = \"orchestrator\"\nversion = \"9.9.9\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(src.join("src/main.rs"), "fn main() { println!(\"orchestrator 9.9.9 (from source)\"); }\n").unwrap();
    assert!(
        Command::new("cargo").args(["generate-lockfile", "--offline"]).current_dir(&src).status().unwrap().success()
    );
    let run = i.run_with(&gh, &src, "", &[("GITHUB_ACTION_REPOSITORY", ""), ("GITHUB_REPOSITORY", "octo/app")]);
    run.code(0).stdout_has("::warning title=orchestrator install::cannot tell which repository this action comes from");
    assert!(i.outputs().contains("source=build\nrepository=\n"), "{}", i.outputs());
    assert_eq!(gh.with(|g| g.downloads.len()), 0, "nothing downloaded from the user's repository");

    // With `repository` in the action's Cargo.toml, that is where its releases are.
    let i = Install::new();
    let (asset, sha) = release_asset(i.dir.path());
    let base = format!("/octo/app/releases/download/v9.9.9/orchestrator-{}.tar.gz", target());
    gh.with(|g| {
        g.files.insert(base.clone(), asset);
        g.files.insert(format!("{base}.sha256"), sha);
    });
    let manifest = std::fs::read_to_string(src.join("Cargo.toml"))
        .unwrap()
        .replace("edition = \"2021\"\n", &format!("edition = \"2021\"\nrepository = \"{}/octo/app\"\n", gh.server_url));
    std::fs::write(src.join("Cargo.toml"), manifest).unwrap();
    i.run_with(&gh, &src, "", &[("GITHUB_REPOSITORY", "someone/project")])
        .code(0)
        .stdout_has("release repository: octo/app, from the action's Cargo.toml");
}
