//! Processes that leave their agent's process group — `setsid`, a shell's job control
//! (`set -m`), a daemon that double-forks — are out of reach of `killpg`. Every agent process
//! carries a mark in its environment, which its descendants inherit wherever they go; the
//! orchestrator finds them by it (Linux: `/proc/<pid>/environ`, readable for the user's own
//! processes; macOS: `ps -E`) and kills them: at once when an attempt times out, is cancelled or leaves its
//! output held open, and for everything else when its phase ends. (A process that clears its
//! environment on purpose escapes this too; contain agents you distrust in a container.)
//!
//! A mark is `<this process's token>/<phase>/<attempt>`: one phase's end never touches another
//! phase's agents, and another orchestrator's agents are never ours.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that carries the mark.
pub(crate) const MARK: &str = "ORCHESTRATOR_AGENT_MARK";

fn token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let mut bytes = [0u8; 8];
        if getrandom::getrandom(&mut bytes).is_err() {
            bytes = (std::process::id() as u64 ^ fastrand::u64(..)).to_le_bytes();
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// The prefix of every mark this process gives.
pub(crate) fn own_prefix() -> String {
    format!("{}/", token())
}

/// The prefix every mark of `phase` in this process starts with.
pub(crate) fn phase_prefix(phase: &str) -> String {
    format!("{}/{phase}/", token())
}

/// A new mark for one attempt of an agent in `phase`.
pub(crate) fn new_mark(phase: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{}{}", phase_prefix(phase), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Kill (SIGKILL) every process of this user whose mark is `mark` or, with `prefix`, starts
/// with it. Returns how many were killed.
pub(crate) fn kill_marked(mark: &str, prefix: bool) -> usize {
    sys::kill_marked(mark, prefix)
}

#[cfg(target_os = "linux")]
mod sys {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    pub(super) fn kill_marked(mark: &str, prefix: bool) -> usize {
        let needle = format!("{}={mark}", super::MARK);
        let me = std::process::id();
        let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
        let mut killed = 0;
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if pid == me {
                continue;
            }
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
            let found = environ
                .split(|b| *b == 0)
                .any(|var| var.starts_with(needle.as_bytes()) && (prefix || var.len() == needle.len()));
            if found && kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        killed
    }
}

/// macOS has no `/proc`: `ps -E` shows each of the user's processes with its environment.
#[cfg(not(target_os = "linux"))]
mod sys {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    pub fn kill_marked(mark: &str, prefix: bool) -> usize {
        let needle = format!("{}={mark}", super::MARK);
        let me = std::process::id();
        let Ok(out) = std::process::Command::new("ps").args(["-E", "-ww", "-x", "-o", "pid=,command="]).output() else {
            return 0;
        };
        let mut killed = 0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let line = line.trim_start();
            let Some((pid, rest)) = line.split_once(' ') else { continue };
            let Ok(pid) = pid.parse::<u32>() else { continue };
            let found = rest.split(' ').any(|w| w.starts_with(&needle) && (prefix || w.len() == needle.len()));
            if pid != me && found && kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        killed
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_marked_process_that_left_its_group_is_found_and_killed() {
        let mark = new_mark("test");
        let mut child =
            std::process::Command::new("setsid").args(["sleep", "30"]).env(MARK, &mark).spawn().expect("setsid sleep");
        let other = new_mark("other");
        let mut bystander = std::process::Command::new("sleep").arg("30").env(MARK, &other).spawn().expect("sleep");
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(kill_marked(&phase_prefix("test"), true), 1);
        assert!(child.wait().is_ok());
        assert!(bystander.try_wait().expect("wait").is_none(), "another phase's process was killed");
        assert_eq!(kill_marked(&other, false), 1);
        let _ = bystander.wait();
    }
}
