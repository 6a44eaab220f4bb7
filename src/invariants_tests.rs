//! ARCHITECTURE.md's invariants, checked on the source: a change that breaks one fails here.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("invariants_tests.rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The code of a file without its `#[cfg(test)]` module (tests may do what the code may not)
/// and without comments.
fn code(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or_default();
        out.push((i + 1, code.to_owned()));
    }
    out
}

fn violations(files: &[PathBuf], bad: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        for (n, line) in code(f) {
            for b in bad {
                if line.contains(b) {
                    found.push(format!("{}:{n}: `{b}` in `{}`", f.display(), line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn the_engine_never_prints() {
    let found = violations(
        &sources(&src().join("engine")),
        &["println!", "eprintln!", "print!(", "eprint!(", "outln!", "errln!", "out!(", "stdout()", "stderr()"],
    );
    assert!(found.is_empty(), "the engine sends events; only app/ and output print:\n{}", found.join("\n"));
}

#[test]
fn only_github_names_octocrab() {
    let github = src().join("github");
    let files: Vec<PathBuf> = sources(&src()).into_iter().filter(|f| !f.starts_with(&github)).collect();
    let found = violations(&files, &["octocrab"]);
    assert!(found.is_empty(), "only github/ may use octocrab:\n{}", found.join("\n"));
}

#[test]
fn nothing_below_lib_exits_or_reads_the_arguments() {
    let files: Vec<PathBuf> =
        sources(&src()).into_iter().filter(|f| !f.ends_with("main.rs") && !f.ends_with("lib.rs")).collect();
    let found = violations(&files, &["std::process::exit", "std::env::args", "process::exit("]);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// While the engine holds the state lock (`let … store = self.store();` to the end of its
/// block) it keeps the state in memory and on disk through the store only: no records, no other
/// file or process I/O, no await (a gate call or a blocking thread would hold every agent).
#[test]
fn no_blocking_work_under_the_state_lock() {
    let bad = [
        "recorder.metrics(",
        "recorder.run(",
        "recorder.phase(",
        "recorder.hygiene(",
        "std::fs::",
        "tokio::fs::",
        "Command::new",
        ".await",
        "spawn_blocking",
        "Snapshot::take",
    ];
    let mut found = Vec::new();
    for f in sources(&src().join("engine")) {
        let lines = code(&f);
        let mut i = 0;
        while i < lines.len() {
            let (n, line) = &lines[i];
            let holds = line.contains("= self.store();") || line.contains("= engine.store();");
            if !holds {
                i += 1;
                continue;
            }
            // The guard lives to the end of the enclosing block: track braces from here.
            let mut depth: i32 = 0;
            let mut j = i + 1;
            while j < lines.len() {
                let (m, l) = &lines[j];
                for b in bad {
                    if l.contains(b) {
                        found.push(format!("{}:{m}: `{b}` while the lock taken at line {n} is held", f.display()));
                    }
                }
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                if depth < 0 || l.contains("drop(store)") {
                    break;
                }
                j += 1;
            }
            i += 1;
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The checks fail when what they look for is there (a check that cannot fail checks nothing).
#[test]
fn the_checks_find_what_they_look_for() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.rs");
    std::fs::write(&f, "fn a() {\n    println!(\"hi\"); // println! in a comment is fine\n}\n#[cfg(test)]\nmod t { fn b() { println!(); } }\n").unwrap();
    let found = violations(std::slice::from_ref(&f), &["println!"]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(":2:"), "{found:?}");
}
