//! Secrets do not leave through the tool, plainly or encoded: an agent prints a token from its
//! environment as is, in base64 (at each byte alignment, both alphabets, wrapped), hex (`od`,
//! `xxd -p`), percent-encoded and JSON-escaped, and names a file after another secret; nothing
//! the tool prints, writes or uploads holds any of it.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use crate::actions_runner::on_runner;
use crate::harness::{Project, config};

/// A standard secret variable, with characters that percent- and JSON-encoding change.
const TOKEN: &str = "sk-Test/Secret+Value=0123456789abcdefXYZ";
/// A variable named under `secrets:`.
const DEPLOY: &str = "deploy-key-5ecret-value-xyz";

const LEAKER: &str = r#"T="$OPENAI_API_KEY"; D="$DEPLOY_KEY"
echo "plain: $T and $D"
printf %s "$T" | base64
printf 'x%s' "$T" | base64
printf 'xy%s' "$T" | base64
printf %s "$T" | base64 | tr '+/' '-_' | tr -d '='
printf %s "$T$T$T" | base64
printf %s "$T" | od -An -tx1
printf %s "$T" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; echo
if command -v xxd >/dev/null; then printf %s "$T" | xxd -p; fi
printf %s "$T" | sed 's|/|%2F|g; s|+|%2B|g; s|=|%3D|g'; echo
printf %s "$T" | od -An -tx1 -v | tr -d ' \n' | sed 's/../%&/g'; echo
printf '{"token": "%s"}\n' "$(printf %s "$T" | sed 's|/|\\/|g')"
printf 'x%s' "$D" | base64
touch "leak-$D.txt"; echo "ARTIFACT: leak-$D.txt"
echo "ARTIFACT: ../$D""#;

/// The forms of `secret` that must not appear anywhere (compared with whitespace removed).
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    out.push(hex.to_uppercase());
    out.push(hex);
    for prefix in ["", "x", "xy"] {
        for engine in [STANDARD, URL_SAFE] {
            let encoded = engine.encode(format!("{prefix}{secret}"));
            out.push(encoded[8..24].to_owned());
        }
    }
    out.push(secret.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D"));
    out.push(secret.bytes().map(|b| format!("%{b:02x}")).collect());
    out.push(secret.replace('/', "\\/"));
    out
}

/// The forms of the secrets found in `text`, whitespace ignored.
fn leaks(text: &str) -> Vec<String> {
    let squeezed: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    forms(TOKEN).into_iter().chain(forms(DEPLOY)).filter(|f| squeezed.contains(f.as_str())).collect()
}

#[track_caller]
fn clean(what: &str, text: &str) {
    let found = leaks(text);
    assert!(found.is_empty(), "{what} holds {found:?}:\n{text}");
}

/// Every file under `dir` (recursively), as text.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out
}

fn env() -> [(&'static str, &'static str); 2] {
    [("OPENAI_API_KEY", TOKEN), ("DEPLOY_KEY", DEPLOY)]
}

#[test]
fn a_failing_agent_leaks_no_secret_in_any_encoding() {
    let leaker = format!("{LEAKER}\nexit 1");
    let p = Project::with_config(&config(
        "  retry: {retries: 0}",
        &[("leaker", &leaker)],
        "  - name: build\n    agents: [leaker]\n    artifacts: [\"leak-*.txt\"]\nsecrets: [DEPLOY_KEY]\n",
    ));
    let (run, outputs, summary) = on_runner(&p, &["run", "start"], &env());
    run.code(1);
    // The secrets were masked, then nothing else showed them.
    let masks: Vec<&str> = run.stdout.lines().filter_map(|l| l.strip_prefix("::add-mask::")).collect();
    assert!(masks.contains(&TOKEN) && masks.contains(&DEPLOY), "{masks:?}");
    let after_masks: String =
        run.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n");
    clean("stdout", &after_masks);
    clean("stderr", &run.stderr);
    run.stderr_has("***"); // the failure's tail is shown, redacted
    clean("step outputs", &std::fs::read_to_string(p.path("runner/output")).unwrap());
    assert!(!outputs["upload-paths"].contains("leak-"), "{}", outputs["upload-paths"]);
    clean("job summary", &summary);
    let transcript = files(&p.path(".claude/logs"));
    assert!(!transcript.is_empty());
    for (path, text) in transcript.iter().chain(&files(&p.path(".claude/metrics"))).chain(&files(&p.path("reports"))) {
        clean(path, text);
    }
    assert!(transcript[0].1.contains("plain: *** and ***"), "{}", transcript[0].1);
    assert!(p.read("reports/junit.xml").contains("***"));
    for args in [
        &["run", "status"][..],
        &["run", "status", "--json"],
        &["run", "metrics", "--json"],
        &["run", "metrics", "--prom"],
    ] {
        let mut cmd = p.command(args);
        for (k, v) in env() {
            cmd.env(k, v);
        }
        let out = crate::harness::Run::from_output(cmd.output().unwrap());
        clean(&format!("{args:?}"), &format!("{}{}", out.stdout, out.stderr));
    }
}

#[test]
fn a_gated_phase_publishes_no_secret() {
    let p = Project::with_config(&config(
        "",
        &[("leaker", LEAKER)],
        "  - name: build\n    agents: [leaker]\n    requires_consensus: true\n    artifacts: [\"leak-*.txt\"]\nsecrets: [DEPLOY_KEY]\n",
    ));
    let (run, outputs, summary) = on_runner(&p, &["run", "start"], &env());
    // The sink redacts before it reads `ARTIFACT:` lines: a name holding a secret is refused.
    run.code(4).stderr_has("refused artifact `leak-***.txt`");
    assert!(!outputs["upload-paths"].contains("leak-"), "{}", outputs["upload-paths"]);
    let request = p.read(".claude/consensus/build/REQUEST.md");
    assert!(request.contains("leak-***.txt"), "the changed file is listed, redacted:\n{request}");
    clean("REQUEST.md", &request);
    clean("step outputs", &format!("{outputs:?}"));
    clean("job summary", &summary);
    clean("stdout", &run.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n"));
    clean("stderr", &run.stderr);
    for dir in [".claude/logs", ".claude/metrics", "reports", ".claude/consensus"] {
        for (path, text) in files(&p.path(dir)) {
            clean(&path, &text);
        }
    }
    assert!(p.read("reports/checkpoint_validation_build.md").contains("leak-***.txt"));
    // The bundle leaves out the file whose name holds a secret, and its metadata is redacted.
    let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor n in z.namelist():\n    print(n)\n    print(z.read(n).decode('utf-8', 'replace'))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(p.path(".claude/artifacts/build_bundle.zip"))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bundle = String::from_utf8_lossy(&out.stdout);
    assert!(bundle.contains("metadata.json"), "{bundle}");
    clean("the bundle", &bundle);
}
