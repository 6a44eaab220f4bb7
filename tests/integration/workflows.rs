//! The action and the workflows under `.github/` pass actionlint and GitHub's JSON schemas (the
//! tools are installed by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Run;

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run a test tool, failing with how to install it when it is missing.
#[track_caller]
pub(crate) fn tool(name: &str, args: &[&str], dir: &Path) -> Run {
    let out = Command::new(name)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{name}` ({e}); `.ci/run` installs it (PyPI)"));
    Run::from_output(out)
}

fn workflows() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

#[test]
fn workflows_pass_actionlint() {
    let files = workflows();
    assert!(files.len() >= 3, "{files:?}");
    let mut args = vec!["-no-color"];
    args.extend(files.iter().map(String::as_str));
    tool("actionlint", &args, &repo()).code(0);
}

#[test]
fn action_and_workflows_match_githubs_schemas() {
    let files = workflows();
    let mut args = vec!["--builtin-schema", "vendor.github-workflows"];
    args.extend(files.iter().map(String::as_str));
    tool("check-jsonschema", &args, &repo()).code(0).stdout_has("ok -- validation done");
    tool("check-jsonschema", &["--builtin-schema", "vendor.github-actions", "action.yml"], &repo())
        .code(0)
        .stdout_has("ok -- validation done");
}

#[test]
fn actionlint_can_fail() {
    // The check above means something: a broken workflow is caught.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    let bad = dir.path().join(".github/workflows/bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n",
    )
    .unwrap();
    let run = tool("actionlint", &["-no-color", bad.to_str().unwrap()], dir.path());
    assert_ne!(run.code, 0, "{}", run.stdout);
}

#[test]
fn action_scripts_are_valid_bash() {
    for script in ["action/install.sh", "action/run.sh"] {
        tool("bash", &["-n", script], &repo()).code(0);
    }
}

#[test]
fn the_documented_workflow_passes_actionlint() {
    let readme = std::fs::read_to_string(repo().join("docs/action.md")).unwrap();
    let section = readme.split("## Use in GitHub Actions").nth(1).expect("docs/action.md has the section");
    let yaml = section.split("```yaml\n").nth(1).and_then(|s| s.split("```").next()).expect("a yaml block");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::write(dir.path().join(".github/workflows/orchestrate.yml"), yaml).unwrap();
    tool("actionlint", &["-no-color", ".github/workflows/orchestrate.yml"], dir.path()).code(0);
}
