//! The GitHub Actions runner's workflow-command processing, simulated on captured output: which
//! commands would it act on? Modelled on actions/runner (`ActionCommand.TryParseV2`/`TryParse`,
//! `ActionCommandManager.TryProcessCommand`):
//!
//! - lines end at `\n`, `\r\n` and a bare `\r` (.NET `ReadLine`);
//! - `::name props::data`: the line with leading Unicode whitespace trimmed starts with `::`;
//! - `##[name props]data`: the legacy form, found anywhere in a line;
//! - names are compared case-insensitively against the registered commands;
//! - `::stop-commands::TOKEN` ignores every command until one named TOKEN (`::TOKEN::` or
//!   `##[TOKEN]`).
//!
//! The runner compares with .NET's culture-sensitive `StartsWith`/`IndexOf`, which on Linux (ICU)
//! skip ignorable characters (controls, zero-width and format characters). The `linguistic`
//! mode models that by removing them from each line before parsing.

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Processed {
    pub name: String,
    pub props: String,
    pub data: String,
}

const REGISTERED: [&str; 14] = [
    "add-mask",
    "add-matcher",
    "remove-matcher",
    "debug",
    "notice",
    "warning",
    "error",
    "group",
    "endgroup",
    "echo",
    "set-output",
    "set-env",
    "add-path",
    "save-state",
];

/// Characters ICU collation ignores, as far as this model goes: controls other than the
/// whitespace ones, and default-ignorable / format characters.
fn ignorable(c: char) -> bool {
    (c.is_control() && !c.is_whitespace())
        || matches!(c as u32, 0x00AD | 0x034F | 0x061C | 0x180B..=0x180F | 0x200B..=0x200F | 0x202A..=0x202E
            | 0x2060..=0x206F | 0xFE00..=0xFE0F | 0xFEFF | 0xE0000..=0xE0FFF)
}

fn lines(log: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = log;
    while let Some(i) = rest.find(['\r', '\n']) {
        out.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn parse(line: &str, registered: &[String]) -> Option<Processed> {
    let known = |name: &str| registered.iter().any(|r| r.eq_ignore_ascii_case(name));
    let split = |info: &str| match info.split_once(' ') {
        Some((n, p)) => (n.to_owned(), p.to_owned()),
        None => (info.to_owned(), String::new()),
    };
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("::")
        && let Some(end) = rest.find("::")
    {
        let (name, props) = split(&rest[..end]);
        if known(&name) {
            return Some(Processed { name, props, data: rest[end + 2..].to_owned() });
        }
    }
    let start = line.find("##[")?;
    let rest = &line[start + 3..];
    let end = rest.find(']')?;
    let (name, props) = split(&rest[..end]);
    known(&name).then(|| Processed { name, props, data: rest[end + 1..].to_owned() })
}

/// The commands the runner would act on in `log`, in order (`stop-commands` and the resuming
/// token included).
pub(crate) fn processed(log: &str, linguistic: bool) -> Vec<Processed> {
    let mut registered: Vec<String> = REGISTERED.iter().map(|s| s.to_string()).collect();
    registered.push("stop-commands".into());
    let mut stop: Option<String> = None;
    let mut out = Vec::new();
    for line in lines(log) {
        let line: String = if linguistic { line.chars().filter(|c| !ignorable(*c)).collect() } else { line.into() };
        let Some(cmd) = parse(&line, &registered) else { continue };
        match &stop {
            Some(token) if cmd.name.eq_ignore_ascii_case(token) => {
                registered.retain(|r| r != token);
                stop = None;
                out.push(cmd);
            }
            Some(_) => {}
            None if cmd.name.eq_ignore_ascii_case("stop-commands") => {
                registered.push(cmd.data.clone());
                stop = Some(cmd.data.clone());
                out.push(cmd);
            }
            None => out.push(cmd),
        }
    }
    out
}

/// The processed commands of a step's output for every way the runner could interleave its
/// two streams (one after the other, either way round) and both comparison modes.
pub(crate) fn processed_every_way(stdout: &str, stderr: &str) -> Vec<Vec<Processed>> {
    let mut all = Vec::new();
    for linguistic in [false, true] {
        for log in [format!("{stdout}{stderr}"), format!("{stderr}{stdout}"), stdout.to_owned(), stderr.to_owned()] {
            all.push(processed(&log, linguistic));
        }
    }
    all
}

#[test]
fn the_model_processes_what_the_runner_does() {
    let log = "  ::add-mask::x\nplain\r::error title=t::boom\r\n##[warning]w\n::unknown::u\n::stop-commands::tok\n::error::hidden\n::TOK::\n::endgroup::\n";
    let got: Vec<String> = processed(log, false).iter().map(|c| format!("{}|{}|{}", c.name, c.props, c.data)).collect();
    assert_eq!(got, ["add-mask||x", "error|title=t|boom", "warning||w", "stop-commands||tok", "TOK||", "endgroup||"]);
    // A zero-width space hides a command only from an ordinal comparison.
    assert!(processed("\u{200B}::error::x\n", false).is_empty());
    assert_eq!(processed("\u{200B}::error::x\n", true).len(), 1);
    assert_eq!(processed("#\u{200B}#[error]x\n", true).len(), 1);
}
