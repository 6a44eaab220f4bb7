//! The tools a model may call. Every path is relative to the workspace and confined to it (see
//! [`Confinement`]: not outside it, not in git's folders, not the orchestrator's own files); a
//! refused path is an error result the model sees, and is reported.

use std::time::Duration;

use serde_json::{Value, json};

use super::ToolDef;
use crate::workspace::{Confinement, slash_path};

/// Largest file `read_file` returns.
const READ_LIMIT: u64 = 256 * 1024;
/// Most entries `list_files` returns.
const LIST_LIMIT: usize = 1000;

pub(crate) fn definitions(allow_commands: bool) -> Vec<ToolDef> {
    let path = json!({"type": "string", "description": "Path relative to the workspace root"});
    let mut tools = vec![
        ToolDef {
            name: "write_file",
            description: "Create or replace a file in the workspace with the given content. Parent folders are created.",
            schema: json!({"type": "object", "properties": {"path": path, "content": {"type": "string"}}, "required": ["path", "content"]}),
        },
        ToolDef {
            name: "read_file",
            description: "Read a text file of the workspace (at most 256 KiB).",
            schema: json!({"type": "object", "properties": {"path": path}, "required": ["path"]}),
        },
        ToolDef {
            name: "list_files",
            description: "List the files under a folder of the workspace (recursively, at most 1000).",
            schema: json!({"type": "object", "properties": {"path": {"type": "string", "description": "Folder relative to the workspace root; default: the root"}}}),
        },
    ];
    if allow_commands {
        tools.push(ToolDef {
            name: "run_command",
            description: "Run a shell command in the workspace and get its exit code and the end of its output.",
            schema: json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
        });
    }
    tools
}

/// What a tool call did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub content: String,
    pub is_error: bool,
    /// The file written, relative to the workspace.
    pub wrote: Option<String>,
    /// A refused path and why.
    pub refused: Option<(String, String)>,
}

fn error(msg: impl Into<String>) -> Outcome {
    Outcome { content: msg.into(), is_error: true, ..Outcome::default() }
}

fn arg<'a>(input: &'a Value, key: &str) -> Result<&'a str, Outcome> {
    input.get(key).and_then(Value::as_str).ok_or_else(|| error(format!("missing string argument `{key}`")))
}

/// Run one file tool (`run_command` is run by the caller, which owns the process supervision).
pub(crate) fn call_file_tool(name: &str, input: &Value, ws: &Confinement) -> Outcome {
    let result = match name {
        "write_file" => write_file(input, ws),
        "read_file" => read_file(input, ws),
        "list_files" => list_files(input, ws),
        other => Err(error(format!("unknown tool `{other}`"))),
    };
    result.unwrap_or_else(|e| e)
}

fn write_file(input: &Value, ws: &Confinement) -> Result<Outcome, Outcome> {
    let path = arg(input, "path")?;
    let content = arg(input, "content")?;
    let rel = ws.write(path, content.as_bytes()).map_err(|reason| Outcome {
        content: format!("refused: `{path}` {reason}; nothing was written"),
        is_error: true,
        refused: Some((path.to_owned(), reason.to_string())),
        ..Outcome::default()
    })?;
    Ok(Outcome { content: format!("wrote {} bytes to {rel}", content.len()), wrote: Some(rel), ..Outcome::default() })
}

fn read_file(input: &Value, ws: &Confinement) -> Result<Outcome, Outcome> {
    let path = arg(input, "path")?;
    let abs = ws.readable(path).map_err(|reason| error(format!("refused: `{path}` {reason}")))?;
    let rel = path.trim();
    let len = std::fs::metadata(&abs).map(|m| m.len()).unwrap_or(0);
    if len > READ_LIMIT {
        return Err(error(format!("`{rel}` is {len} bytes, more than the {READ_LIMIT} this tool returns")));
    }
    let bytes = std::fs::read(&abs).map_err(|e| error(format!("cannot read `{rel}`: {e}")))?;
    Ok(Outcome { content: String::from_utf8_lossy(&bytes).into_owned(), ..Outcome::default() })
}

fn list_files(input: &Value, ws: &Confinement) -> Result<Outcome, Outcome> {
    let path = input.get("path").and_then(Value::as_str).unwrap_or(".");
    let root = ws.root();
    let dir = if matches!(path.trim(), "" | "." | "./") {
        root.to_path_buf()
    } else {
        ws.readable(path).map_err(|reason| error(format!("refused: `{path}` {reason}")))?
    };
    let mut out = Vec::new();
    let walk = ignore::WalkBuilder::new(&dir)
        .hidden(false)
        .filter_entry(|e| !e.file_name().eq_ignore_ascii_case(".git"))
        .build();
    for entry in walk.filter_map(Result::ok).filter(|e| e.file_type().is_some_and(|t| t.is_file())) {
        if out.len() == LIST_LIMIT {
            out.push(format!("… (more than {LIST_LIMIT} files)"));
            break;
        }
        if let Ok(rel) = entry.path().strip_prefix(root) {
            out.push(slash_path(rel));
        }
    }
    out.sort();
    Ok(Outcome { content: if out.is_empty() { "(no files)".into() } else { out.join("\n") }, ..Outcome::default() })
}

/// Seconds left before `deadline`, at least a little.
pub(crate) fn remaining(deadline: tokio::time::Instant) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now()).max(Duration::from_millis(10))
}
