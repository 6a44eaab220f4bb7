//! Telling whether a recorded process group is still the one a run started.
//!
//! A killed orchestrator leaves its agents' process groups behind, and the state records their
//! ids (`pgid`) so the next `resume` can kill them. An id alone proves nothing: it may have been
//! reused since, or the state may have been written by someone else (it is input like any
//! other). So the group leader's start time and the machine's boot are recorded with it
//! ([`GroupStamp`]), and a resume kills a group only when it is provably the dead run's:
//!
//! - its id is an ordinary group's (above 1) and not this process's own group, session or pid;
//! - the machine has not restarted since (same boot id);
//! - the leader still runs with exactly the recorded start time, or the leader is gone and every
//!   live process of the group started at or after it (the agent's children; the kernel does not
//!   reuse an id while a group of that id has members).
//!
//! On Linux the start time is field 22 of `/proc/<pid>/stat` (clock ticks after boot) and the
//! boot is `/proc/sys/kernel/random/boot_id`. On macOS they come from `ps -o lstart=` (seconds)
//! and `sysctl -n kern.boottime`. Elsewhere nothing can be recorded, and a resume leaves recorded
//! groups alone.

use nix::errno::Errno;
use nix::sys::signal::killpg;
use nix::unistd::Pid;

use crate::state::GroupStamp;

/// What a resume may do with a recorded group.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Provably the dead run's: kill it.
    Ours,
    /// Nothing of it is left.
    Gone,
    /// Not provably the run's: leave it alone, for this reason.
    NotOurs(String),
}

/// The stamp of the process `pid` (a group leader just spawned), if this system can tell.
pub(crate) fn stamp(pid: i32) -> Option<GroupStamp> {
    Some(GroupStamp { started: sys::started(pid)?, boot_id: sys::boot_id()? })
}

/// The boot clock now, in the unit of the start times in a stamp, where that clock can be read
/// (Linux: `CLOCK_BOOTTIME` in clock ticks, as `/proc/<pid>/stat` counts start times).
pub(crate) fn boot_ticks() -> Option<u64> {
    sys::boot_ticks()
}

/// The stamp of `pid`, a group leader spawned between the readings `before` and `after` of
/// [`boot_ticks`]. The kernel sets a process's start time while creating it, so when both
/// readings fall in one clock tick (nearly always: a tick is 10 ms, a spawn well under one)
/// that tick is its start time, and `/proc` need not be read: that read cost more than anything
/// else the orchestrator does per agent. Otherwise, as [`stamp`].
pub(crate) fn stamp_spawned(pid: i32, before: Option<u64>, after: Option<u64>) -> Option<GroupStamp> {
    match (before, after) {
        (Some(b), Some(a)) if a == b => Some(GroupStamp { started: b, boot_id: sys::boot_id()? }),
        _ => stamp(pid),
    }
}

/// Whether the recorded group `pgid` (with its leader's `stamp`, if one was recorded) is
/// provably the dead run's.
pub(crate) fn verify(pgid: i32, stamp: Option<&GroupStamp>) -> Verdict {
    if pgid <= 1 {
        return Verdict::NotOurs(format!("{pgid} is not the id of an agent's process group"));
    }
    let me = nix::unistd::getpid();
    let own = [Some(me), Some(nix::unistd::getpgrp()), nix::unistd::getsid(None).ok()];
    if own.contains(&Some(Pid::from_raw(pgid))) {
        return Verdict::NotOurs("it is this orchestrator's own process, group or session".into());
    }
    match killpg(Pid::from_raw(pgid), None) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return Verdict::Gone,
        Err(Errno::EPERM) => return Verdict::NotOurs("its processes belong to another user".into()),
        Err(e) => return Verdict::NotOurs(format!("it cannot be checked: {e}")),
    }
    let Some(stamp) = stamp else {
        return Verdict::NotOurs(
            "no start time was recorded with it (a state from an older version or from another system)".into(),
        );
    };
    match sys::boot_id() {
        Some(b) if b == stamp.boot_id => {}
        Some(_) => return Verdict::NotOurs("the machine has restarted since it was recorded".into()),
        None => return Verdict::NotOurs("this system's boot cannot be identified".into()),
    }
    if let Some(started) = sys::started(pgid) {
        return if started == stamp.started {
            Verdict::Ours
        } else {
            Verdict::NotOurs(format!(
                "process {pgid} is not the agent that was recorded (it started at another time): the id was reused"
            ))
        };
    }
    // The leader is gone: the group is the agent's if all that is left of it started after it.
    match sys::members(pgid) {
        Some(starts) if starts.is_empty() => Verdict::Gone,
        Some(starts) if starts.iter().all(|s| *s >= stamp.started) => Verdict::Ours,
        Some(_) => Verdict::NotOurs("some of its processes started before the recorded agent did".into()),
        None => Verdict::NotOurs("its processes cannot be listed on this system".into()),
    }
}

/// The start time in a `/proc/<pid>/stat` line, and the process group and state: the fields after
/// the command name (which may hold spaces and parentheses).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_stat(stat: &str) -> Option<(char, i32, u64)> {
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); pgrp is field 5, starttime field 22.
    let state = fields.first()?.chars().next()?;
    Some((state, fields.get(2)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// A start time as `ps -o lstart=` prints it (`Mon Jun  3 10:00:00 2026`, in the C locale), in
/// seconds; only compared with others read the same way.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn parse_lstart(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let t = chrono::NaiveDateTime::parse_from_str(&words.join(" "), "%a %b %d %H:%M:%S %Y").ok()?;
    u64::try_from(t.and_utc().timestamp()).ok()
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io::Read;

    /// `/proc/<pid>/stat` in one `read` where it fits (it reports no size, so
    /// `read_to_string` would read it in growing chunks): this runs once per agent.
    pub(super) fn read_stat(pid: i32) -> Option<String> {
        let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
        let mut buf = [0u8; 1024];
        let mut len = 0;
        while len < buf.len() {
            match file.read(&mut buf[len..]) {
                Ok(0) => return String::from_utf8(buf[..len].to_vec()).ok(),
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).ok()?;
        String::from_utf8([&buf[..], &rest].concat()).ok()
    }

    pub(super) fn started(pid: i32) -> Option<u64> {
        let stat = read_stat(pid)?;
        super::parse_stat(&stat).filter(|(state, ..)| *state != 'Z').map(|(_, _, start)| start)
    }

    /// `CLOCK_BOOTTIME` in clock ticks, rounded down as the kernel rounds a start time (where a
    /// tick is a whole number of nanoseconds: 10 ms everywhere but a few old architectures).
    pub(super) fn boot_ticks() -> Option<u64> {
        static TICK_NS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        let tick_ns = (*TICK_NS.get_or_init(|| {
            let hz = u64::try_from(nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??).ok()?;
            (hz > 0 && 1_000_000_000 % hz == 0).then(|| 1_000_000_000 / hz)
        }))?;
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
        let ns = u64::try_from(now.tv_sec()).ok()? * 1_000_000_000 + u64::try_from(now.tv_nsec()).ok()?;
        Some(ns / tick_ns)
    }

    /// Read once per process: the boot does not change under a running program.
    pub(super) fn boot_id() -> Option<String> {
        static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        BOOT.get_or_init(|| {
            let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            Some(id.trim().to_owned()).filter(|s| !s.is_empty())
        })
        .clone()
    }

    /// The start times of the live processes of group `pgid`.
    pub(super) fn members(pgid: i32) -> Option<Vec<u64>> {
        let mut starts = Vec::new();
        for entry in std::fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            // A process may end while the list is read: it is no longer a member.
            let Some(stat) = read_stat(pid) else { continue };
            match super::parse_stat(&stat) {
                Some((state, group, start)) if group == pgid && state != 'Z' => starts.push(start),
                Some(_) => {}
                None => return None,
            }
        }
        Some(starts)
    }
}

#[cfg(target_os = "macos")]
mod sys {
    use std::process::Command;

    fn run(cmd: &mut Command) -> Option<String> {
        let out = cmd.env("LC_ALL", "C").output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn started(pid: i32) -> Option<u64> {
        super::parse_lstart(&run(Command::new("ps").args(["-o", "lstart=", "-p", &pid.to_string()]))?)
    }

    /// Start times come from `ps` in seconds of the wall clock: there is no clock to read
    /// instead.
    pub fn boot_ticks() -> Option<u64> {
        None
    }

    pub fn boot_id() -> Option<String> {
        let text = run(Command::new("sysctl").args(["-n", "kern.boottime"]))?;
        Some(text.trim().to_owned()).filter(|s| !s.is_empty())
    }

    /// The start times of the live processes of group `pgid`.
    pub fn members(pgid: i32) -> Option<Vec<u64>> {
        let text = run(Command::new("ps").args(["-A", "-o", "pgid=", "-o", "stat=", "-o", "lstart="]))?;
        let mut starts = Vec::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(group), Some(state)) = (words.next(), words.next()) else { continue };
            if group.parse::<i32>().ok() != Some(pgid) || state.starts_with('Z') {
                continue;
            }
            starts.push(super::parse_lstart(&words.collect::<Vec<_>>().join(" "))?);
        }
        Some(starts)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod sys {
    pub fn started(_pid: i32) -> Option<u64> {
        None
    }

    pub fn boot_id() -> Option<String> {
        None
    }

    pub fn boot_ticks() -> Option<u64> {
        None
    }

    pub fn members(_pgid: i32) -> Option<Vec<u64>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_and_ps_start_times_are_read() {
        let stat = "4242 (a (weird) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(stat), Some(('S', 4240, 987654)));
        assert_eq!(parse_stat("garbage"), None);
        let a = parse_lstart("Mon Jun  3 10:00:00 2024\n").unwrap();
        assert_eq!(parse_lstart("Mon Jun 3 10:00:01 2024"), Some(a + 1));
        assert_eq!(parse_lstart("Thu Dec 12 23:59:59 2024").map(|b| b > a), Some(true));
        assert_eq!(parse_lstart("yesterday"), None);
    }

    #[test]
    fn ids_that_are_not_an_agents_group_are_never_ours() {
        for pgid in [-7, 0, 1] {
            assert!(matches!(verify(pgid, None), Verdict::NotOurs(_)), "{pgid}");
        }
        let own = nix::unistd::getpgrp().as_raw();
        let stamp = stamp(own);
        assert!(matches!(verify(own, stamp.as_ref()), Verdict::NotOurs(why) if why.contains("own")));
        assert!(matches!(verify(std::process::id() as i32, None), Verdict::NotOurs(_)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stat_line_is_read_whole() {
        let me = std::process::id() as i32;
        let whole = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        let read = sys::read_stat(me).unwrap();
        // Everything up to the start time is fixed for a live process.
        assert_eq!(parse_stat(&read), parse_stat(&whole));
        assert_eq!(read.split_whitespace().count(), whole.split_whitespace().count());
        assert_eq!(sys::read_stat(-5), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stamp_from_the_boot_clock_is_the_one_proc_reports() {
        use std::os::unix::process::CommandExt;
        let mut from_clock = 0;
        for _ in 0..50 {
            let before = boot_ticks();
            let mut child = std::process::Command::new("sleep").arg("5").process_group(0).spawn().unwrap();
            let after = boot_ticks();
            let pid = child.id() as i32;
            let read = stamp(pid).expect("a stamp on Linux");
            assert_eq!(stamp_spawned(pid, before, after), Some(read.clone()));
            from_clock += usize::from(before == after);
            // A reading that does not bracket the spawn is not trusted: /proc is read.
            assert_eq!(stamp_spawned(pid, before.map(|b| b.saturating_sub(1)), after), Some(read.clone()));
            assert_eq!(verify(pid, stamp_spawned(pid, before, after).as_ref()), Verdict::Ours);
            child.kill().unwrap();
            child.wait().unwrap();
        }
        assert!(from_clock > 0, "the boot clock never stayed in one tick across a spawn");
    }

    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn a_group_is_ours_only_with_its_leaders_start_time_and_boot() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let pid = child.id() as i32;
        let real = stamp(pid).expect("a stamp on this system");
        assert_eq!(
            verify(pid, None),
            Verdict::NotOurs(
                "no start time was recorded with it (a state from an older version or from another system)".into()
            )
        );
        let later = GroupStamp { started: real.started + 1, ..real.clone() };
        assert!(matches!(verify(pid, Some(&later)), Verdict::NotOurs(why) if why.contains("reused")));
        let rebooted = GroupStamp { boot_id: "another boot".into(), ..real.clone() };
        assert!(matches!(verify(pid, Some(&rebooted)), Verdict::NotOurs(why) if why.contains("restarted")));
        assert_eq!(verify(pid, Some(&real)), Verdict::Ours);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(verify(pid, Some(&real)), Verdict::Gone);
    }
}
