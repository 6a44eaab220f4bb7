//! `.claude/artifacts/<phase>_bundle.zip`: the phase's artifacts and a `metadata.json` listing
//! the run, the phase, its agents and each file with its size and sha256. The metadata is
//! redacted, and a file whose name holds a secret is left out (its entry would name it).

use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::executor::Redactor;
use crate::state::{PhaseState, RunState};

pub(crate) fn path(phase: &str) -> String {
    format!(".claude/artifacts/{phase}_bundle.zip")
}

#[derive(Serialize)]
struct Metadata<'a> {
    run_id: &'a str,
    phase: &'a str,
    status: &'a str,
    created_at: String,
    agents: Vec<AgentEntry<'a>>,
    files: Vec<FileEntry>,
}

#[derive(Serialize)]
struct AgentEntry<'a> {
    name: &'a str,
    status: crate::state::AgentStatus,
    artifacts: &'a [String],
}

#[derive(Serialize)]
struct FileEntry {
    path: String,
    size: u64,
    sha256: String,
}

/// Write the bundle for `phase` to `target` (its real location, see `report::confined`);
/// returns how many files it holds.
pub(crate) fn write(
    root: &Path,
    target: &Path,
    state: &RunState,
    phase: &str,
    ps: &PhaseState,
    redactor: &Redactor,
) -> std::io::Result<usize> {
    let mut files: Vec<String> = ps.agents.values().flat_map(|a| a.artifacts.iter().cloned()).collect();
    if let Some(v) = &ps.validation {
        files.extend(v.patterns.iter().flat_map(|p| p.files.iter().cloned()));
    }
    files.sort();
    files.dedup();
    files.retain(|f| root.join(f).is_file() && redactor.find(f.as_bytes()).is_empty());

    let dir = target.parent().expect("bundle path has a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = crate::state::new_temp(dir)?;
    let mut zip = zip::ZipWriter::new(tmp.reopen()?);
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for f in &files {
        zip.start_file(f.as_str(), options).map_err(std::io::Error::other)?;
        let mut src = std::fs::File::open(root.join(f))?;
        let (mut hash, mut size) = (Sha256::new(), 0u64);
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            zip.write_all(&buf[..n])?;
            size += n as u64;
        }
        entries.push(FileEntry {
            path: f.clone(),
            size,
            sha256: hash.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        });
    }
    let meta = Metadata {
        run_id: &state.run_id,
        phase,
        status: ps.status.as_str(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        agents: ps
            .agents
            .iter()
            .map(|(name, a)| AgentEntry { name, status: a.status, artifacts: &a.artifacts })
            .collect(),
        files: entries,
    };
    zip.start_file("metadata.json", options).map_err(std::io::Error::other)?;
    zip.write_all(&redactor.redact(&serde_json::to_vec_pretty(&meta).expect("metadata serializes")))?;
    zip.finish().map_err(std::io::Error::other)?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(files.len())
}
