#!/usr/bin/env python3
"""Speed and memory goals of orchestrator, as ratios against baselines run in this same process.

1. 500 no-op agents (`true`) in one parallel phase with max_parallel_agents: 2, against
   `xargs -P 2` running the same 500 commands (each through `sh -c`, as orchestrator runs them;
   xargs exec'ing `true` directly is shown too). Goal: ratio <= 1.2. The same run as on a GitHub
   runner (GITHUB_ACTIONS=true: outputs, summary, a log group per agent) is shown beside it.
2. Scale: one parallel phase of 500, 2,000 and 5,000 no-op agents, 2 workers. For each, the
   peak RSS of the orchestrator (goals: <= 30 MiB at 500, <= 60 MiB at 5,000), and at 500 and
   5,000 the wall time against `xargs -P 2 sh -c true` run interleaved with it (goal: <= 1.2 at
   both). The time per agent at 5,000 against that at 500 (goal: <= 1.15, linear). CPU time
   (user + system, the orchestrator and its agents, from wait4) is shown beside wall time: on a
   shared machine it moves less with the load of others.
3. Peak memory (max RSS of the orchestrator and its descendants, from wait4) while one agent
   prints 1 GiB. Goal: < 30 MiB.
4. `validate` of a workflow of 2,000 and of 20,000 phases whose agent has a prompt template:
   the time per phase at 20,000 against that at 2,000 (goal: <= 1.5, linear) and 20,000 phases
   under 2 s. (Measured 2026-12-01 on the 2-core development machine: 0.03 s and 0.30 s.)
5. The timeline after a run of 500 and of 2,000 agents: `run status --timeline`, `run report` and
   `run report --html` against `run status`; the HTML report's per-agent time at 2,000 against 500
   (goal: <= 1.5, linear).

Where the orchestrator's time per agent went (2026-12-01, this 2-core VM, release build, one
phase of 5,000 `true` agents; `perf stat -i` counts the orchestrator's own thread only,
`strace -c` its system calls, `perf record -i --call-graph dwarf` the split):

  before (main at 9a8d8da)           own CPU 0.37 ms/agent; peak RSS 1.36 GiB at 5,000
    memory: every agent's task held its own copy of the phase (its 5,000 agent names), spawned
      all at once: 5,000 x 5,000 strings.
    per agent, system calls: 3.5 openat, 5 write, 11 read, 9.5 close, 6 epoll_ctl (pipes and
      pidfd, added and removed), 6 prlimit64 (glibc checks each posix_spawn file action), 8.5
      statx, 2 pipe2, 1 clone3 (vfork), 1 pidfd_open, 1 wait4; in the child, 128 rt_sigaction
      (glibc's posix_spawn resets every handler) before exec.
    own CPU split: spawning 14% (clone3 7.5%, copying the environment 6.4%), the group stamp
      (/proc/<pid>/stat and boot_id read in small chunks, per agent) 11%, metrics rewritten
      every second (O(agents) each: O(agents^2) over a phase) 12%, the transcript file created
      8%, the journal append 5%, config and start 9%; the runtime is tokio's current-thread.
    spawning is already posix_spawn (clone3 CLONE_VM|CLONE_VFORK; no pre_exec closure forces a
      fork); the child's 128 rt_sigaction are glibc's reset of every handler.

  after                               own CPU ~0.31 ms/agent at 500 and at 5,000; peak RSS
                                      15 MiB at 500, 21-25 at 2,000, 41-58 at 5,000
    tasks spawned as slots free up, sharing one Arc<Phase>; the leader's start time from
      CLOCK_BOOTTIME read around the spawn (same tick: no /proc read), boot_id read once;
      metrics refreshed at most once a second and once per 100x their last cost; Prometheus
      samples written in place. Left per agent: spawn ~15% (clone3 9%, environment copy 7%),
      transcript file ~8%, journal ~5%, metrics ~3%, the rest tokio, pipes, pidfd, epoll.
    The wall-time ratios on this shared VM (load average 1-8 during the runs) ranged 1.16-1.49
      at 500 and 0.74-2.01 at 5,000; CPU ratios 1.14-1.36 and 1.06-1.32.

  session 5 (main at 2346080; measured with helpers' builds paused or SCHED_IDLE)
                                      own CPU 0.26-0.29 ms/agent at 500 and at 5,000
    Where the wall time went, 500 agents (perf sched, perf record): ~45 ms of serial work with
      one core idle (start ~18 ms: config, state, engine; end ~27 ms: records), the rest agents.
      Per agent, 20 statx + 12 readlink + mkdir resolved the transcripts' folder again and the
      LLM records folder of every agent; 13 env_remove per spawn for variables not even set.
    Changed: the transcripts' folder opened once, each transcript by name in it (openat +
      /proc/self/fd check: 3 system calls per agent instead of ~35); records folder only for LLM
      agents; only set runner variables removed; start --force reads only the old run id; the
      version check skips the document; templates' folders resolved once; JUnit tails read
      through one folder handle; JUnit beside the metrics at the end; the state, metrics and
      JUnit streamed to their files (redacted on the way); the phase-start metrics and a
      non-gated phase's end records written by one ordered writer task while the run goes on.
    Result (release, medians of 7 interleaved runs; the range over three invocations):
      500: wall 1.24-1.35x xargs, CPU 1.07-1.27x, RSS 15.5 MiB; serial part now ~13 ms + ~14 ms.
      5,000: wall 1.21-1.48x, CPU 1.02-1.22x, RSS 45-52 MiB; per agent 5,000 vs 500: 1.10-1.11.
    Left per agent (5,000, share of the orchestrator's thread): the transcript file's creation
      ~20% (ext4 inode), spawning ~25% (clone3, std's environment capture ~7%), journal ~6%, the
      display ~5%; in each child glibc's 128 rt_sigaction. The 1.2x wall goal is within reach
      on an idle machine but not met reliably: xargs itself moved 225-265 ms (500) and
      2,277-2,807 ms (5,000) between invocations.

  session 6 (main at 2b5e518 against a84967d; same-window A/B, interleaved rounds)
    Where the wall time still went: not CPU but idle cores. /proc/stat over a 5,000-agent run:
      ~1,100 ms of core idle time against ~470 ms for xargs; perf sched showed the runtime's
      thread, woken by an exiting agent's pipes and pidfd (not "sync" wake-ups), queued behind
      the agent on the other core while the freed core idled for up to the 0.5 ms migration cost
      (483 ms of its 898 ms wake-up delay had the other core idle). Exit to next start: 163 us
      median, xargs 83 us (woken by wait4, a sync wake-up, on the core the child left).
    Changed: shell agents start on launcher threads that wait in waitid(WNOWAIT) and hand their
      slot straight to the next agent in line (executor::launcher); the environment is copied
      once; at the run's end the sweep, the state's save and the records run at once; a
      non-gated phase's save beside its records; the config's positions index waited for only
      when needed; the default prompts folder listed once (1,500 lookups -> 4 at 500 agents);
      transcript tails read with pread.
    Result (launcher alone, 2b5e518): core idle ~560 ms per 5,000-agent run; wall 1.27x -> 1.13x
      xargs at 5,000 (8 rounds), 1.22x -> 1.17x at 500 (30 rounds). The later commits were
      measured only by their parts (validate of 500 agents 6.0-7.3 -> 4.9-5.5 ms; syscall
      counts); the machine was loaded by a helper's builds for the rest of the session.
    Serial work left at 500 agents: start ~11 ms (exec, config, state, engine), end ~12 ms
      (metrics ~5-7 ms beside JUnit ~7 ms, which reads every transcript's tail).

  session 8 (main at b80d357; idle VM)
    Start: 500: wall 1.25x, CPU 1.15x, 17.4 MiB; 5,000: wall 1.21x, CPU 1.14x, 48.7 MiB; per
      agent 5,000 vs 500: 0.96. (Session 7 at 78cde26: 1.06-1.22 at 500, 1.10-1.17 at 5,000 over
      seven invocations; the machine's speed moved xargs between 253 and 321 ms.)
    The orchestrator's thread (`perf stat --no-inherit`): 77-93 ms for 500 agents, 1.9 context
      switches per agent. Per agent it makes: readlink (folder check) + openat + statx (the
      transcript), 2 journal writes, 2 transcript writes + close, 2 x (fcntl F_GETFL/F_SETFL +
      epoll_ctl add/del + close) for the pipes, 2 reads (EOF), 2 progress lines, 2-3 epoll_wait.
    The largest part (`perf record --call-graph fp`, frame pointers): creating the transcript,
      about a third of that thread: this VM's ext4 runs without a journal, so allocating an
      inode scans past recently deleted ones (find_inode_bit -> recently_deleted), and the
      directory's htree lookup at times reads a block from disk. The same binary with the
      project on tmpfs against ext4 (20 interleaved rounds, 500 agents): 1.14x against 1.26x
      xargs, ~35 ms (~70 us per agent) for the file system alone. xargs creates no file.
    Tried and dropped: mimalloc as the global allocator (347 against 348 ms; peak RSS 16.9 ->
      46.7 MiB); more agents prepared ahead (2x, 4x, 8x the workers: 1.171, 1.164, 1.158, noise:
      the line is rarely empty when a slot frees).
    Tried and reverted: saving a phase's end in the run's loop, and not at all when the run's
      end follows (one fsync'd state write fewer: 1.204x -> 1.197x, 30 rounds, within noise).
      A review found the phase's end printed before it was on disk: a kill at that moment lost
      the phase's status, and a resume ran an agent its failed sequential phase had skipped.
      A test now holds "printed means saved".
    Serial work: start 9-17 ms before the first agent's exec, end 9-14 ms after the last exit
      (sched tracepoints, 500 agents).
    Why invocations differ: on an ext4 without a journal (this VM's), a new inode is not taken
      from inodes freed in the last 30-60 s, and every allocation walks past them. Creating 500
      empty files took 84 us each, and 200-290 us each for the next minute after 400 files had
      been replaced by rename (Python, same folder). Each run replaces ~14 files (state, metrics,
      reports: atomic rename), so back-to-back runs slow each other's transcripts down; xargs
      creates none. On a loop-mounted ext4 with a journal the loop device cost more than it
      saved (1.29x and 1.23x, a slower hour of the VM: xargs 297 ms).
    How much that is: the same build writing transcripts to /dev/null instead (a throwaway
      build, same process, right after ~100,000 files had been deleted on this disk): 500:
      1.34x -> 1.17x (20 rounds); 5,000: 1.22x -> 1.13x (5 rounds). Each run's own ~14 atomic
      replacements count too: back-to-back runs leave hundreds of recently freed inodes for
      the next transcripts to walk past.
    End of session 8 (f1bcc0f, with the save since reverted; idle, the machine slower than at
      the start: xargs 295 ms at 500, 2,958 ms at 5,000): 500: 1.22x wall, 1.15x CPU, 17.3 MiB; 5,000: 1.19x wall, 1.15x CPU,
      54.0 MiB; per agent 5,000 vs 500: 0.98. The wall-time goal is still missed at 500.

  Session 9 (2026-12-02, the same VM; A/B: two builds and xargs interleaved in one process):
    Serial work, timed inside the binary (500 agents): main to first spawn 6-8 ms (config 2.5-3.8,
      state created 0.9, phase start saved 0.6-1.0, workspace snapshot 0.4); last agent to exit
      10-13 ms (phase end saved 2.3-4.2 ms, of which the fsync 0.5-1.9 and the folder's fsync
      0.3-0.9; the run's end 4.5-6 ms, JUnit with its 500 transcript tails the longest).
    Tried and reverted: not watching a new agent's pipes for its first 50 ms, the task waiting
      for its exit alone and then reading the pipes without blocking. A quick agent cost one
      wake-up of the runtime's thread instead of about two, and no poller registration (4
      fcntl, 4 epoll_ctl and 2 reads fewer); its context switches at 500 agents went from
      950-1,120 to 680-710, and the wall time against xargs from 1.180x to 1.149x at 500 (21
      rounds) and from 1.175x to 1.140x at 5,000 (7 rounds). A review as a misbehaving agent
      found what that costs: stdout and stderr of those 50 ms came out in the wrong order in
      the transcript (all of stdout first), an agent printing more than a pipe holds (64 KiB)
      stalled for the rest of the 50 ms (100 agents printing 109 KB each: 0.2 s -> 2.7 s), a
      timeout under 50 ms killed such an agent, and another agent reading the pipes through
      /proc had 50 ms to steal from instead of microseconds. A test now holds the order of the
      two streams; the one that ran agents leaving output in their pipes at exit is kept.
    Kept: the agent's pipes stay open until its exit is reported. The launcher thread makes the
      pipes just before the spawn and holds a copy of each write end (close-on-exec) until it
      has reported the exit, together with the next agent's start: the runtime's thread is
      woken once for both, then lets go of the copies and reads the pipes to their end without
      sleeping. Output is read as it comes, as before. Context switches of that thread at 500:
      964-975 -> 693-727; wall 1.194x -> 1.168x (500, 21 rounds), 1.182x -> 1.176x (5,000, 5
      rounds). A review ran it out of descriptors when the pipes were made while agents waited
      in line (six each, for the agents prepared ahead); now they are made at the spawn, and
      the held copies take at most a 32nd of the open-files limit.
    Kept: the last phase's end saved with the run's end (its line printed after that save), and
      a phase's reports and the metrics written in two lanes (the run's end no longer waits for
      the phase's reports before its metrics). The end after the last agent: 10-13 -> 8-11 ms;
      JUnit (500 tails, 5.5-7.5 ms) is now its longest part, the four writers share two cores.
    All of it against the session's start, A/B, 21 rounds at 500: 1.186x -> 1.162x (xargs
      260 ms). bench.py --scale 500,5000 --scale-runs 15 on the same build, three invocations
      (idle): 500: 1.21x, 1.19x, 1.20x (314/260, 327/274, 304/253 ms; the last over 1.2
      unrounded); 5,000: 1.20x, 1.17x, 1.17x; CPU 1.09-1.12x; 17.4-17.5 and 52.9-53.8 MiB; per
      agent 0.96-0.99. Its 500-agent runs follow 5,000-agent ones: 293 against 288 ms when they
      follow 500-agent runs (xargs 246 ms, 8 rounds).
    Where the runtime's thread goes now (perf, frame pointers, 500 agents, a project whose
      transcripts folder holds 74,500 files): creating the transcript 22% (openat 18%: the
      directory's htree lookup of the new name 9.6%, of which reading directory blocks back
      from disk 5.9% -- this VM's kdamond reclaims them between runs; the inode 3.6%), the
      readlink of the folder's place check 3.4%, the journal 6%, waiting in epoll 10%.
    Tried and dropped: read buffers and the transcript's buffer below glibc's 1 KiB
      large-request size (malloc_consolidate was 3% of the thread): within noise (1.180x against
      1.197x).

  Session 10 (2026-12-02, the same VM):
    Where the cores idled (`perf sched`, 500 agents): 43 ms of 2 x 322 ms (xargs: 1 ms), 16 ms
      of it in the first 40 ms and the rest spread over the run in gaps of ~130 us. In the gaps
      a launcher thread whose agent had exited found the line empty: it waited for the runtime's
      thread (busy with another agent's records, or queued behind a shell on the other core) to
      prepare the next agent. With one spare agent per worker two quick exits emptied it.
    Kept: up to seven prepared agents per worker in line (at most 64, and a 16th of the
      open-files limit: each holds its transcript open). A/B, 21 rounds at 500: 1.174x ->
      1.123x (1.199x -> 1.149x in a second window; 32 per worker: 1.158x). Session 8 had tried
      2x-8x when a launcher still reported each exit at once: 1.171x-1.158x.
    bench.py --scale 500,5000 --scale-runs 15, four invocations (idle; xargs 247-261 ms at 500):
      500: 1.15x, 1.17x, 1.17x, 1.17x; 5,000: 1.13x, 1.15x, 1.16x, 1.13x; CPU 1.10-1.13x;
      17.3-17.5 and 50.9-54.3 MiB; per agent 0.97-0.99.
    A review of that: a retry waited behind every prepared agent (an agent's time 1.0 -> 4.0 s),
      and a phase running beside a large parallel one behind all of its (3.7 -> 15.3 s). The
      line now has a head per phase: phases take turns, each in its own order, a retry goes
      first. A/B at 500, 21 rounds: 1.165x (before the line) -> 1.125x (the line) and 1.128x
      (with turns). Three invocations of the above on that build (xargs 242-256 ms): 500:
      1.14x, 1.15x, 1.15x; 5,000: 1.15x, 1.10x, 1.12x; CPU 1.08-1.11x; 17.3-17.4 and
      52.1-53.5 MiB; per agent 0.97-1.00.
    Two more reviews: slots freed in the runtime (LLM agents', or kept until leftover processes
      were stopped) now keep to the turns too, each phase has one place of its own among the
      prepared (at most 64 phases), and a transcript is checked as its attempt starts (same
      file at its name, folder in place: fstat, fstatat and readlink). At the end of the
      session (25aa93a), three invocations (xargs 249-259 ms): 500: 1.18x, 1.17x, 1.15x;
      5,000: 1.16x, 1.12x, 1.10x; CPU 1.07-1.11x; 17.4-17.5 and 52.0-53.1 MiB; per agent
      0.96-0.97. A/B against the build before those checks: 1.142x -> 1.123x (21 rounds; the
      machine's drift between windows is larger than their cost).
    Tried and dropped: the runtime's thread at SCHED_IDLE, so that a core running only it
      counts as idle when a new agent or a woken launcher is placed: 1.181x -> 1.156x, but
      timers, Ctrl-C and output would wait behind CPU-bound agents (an idle-class thread gets
      ~0.3% of a busy core), and threads it starts would inherit the class.
    Left: the cores still idle ~12% of a run under perf sched, mostly where a vfork child was
      placed on the core the runtime's thread was leaving busy, and the idle core could not take
      it (the shell is "cache hot" for 0.5 ms); the runtime's thread costs ~130 us per agent, a
      quarter of it creating the transcript (on this VM's journal-less ext4 each new inode
      skips the inodes freed in the last 30 s: every run atomically replaces ~15 files);
      main to first spawn 6-7 ms (config 2.4, two fsync'd state saves 1.5-2.5), last exit to
      process exit 7-9 ms (the run's end save with its fsync 1.7-3.8).

Usage: bench/bench.py [--runs N] [--agents N] [--gib G] [--scale 500,2000,5000] [--scale-runs N]
                      [--bin PATH] [--only noop,scale,memory,validate,timeline]
       (builds the release binary first, unless --bin names one)
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "orchestrator")


def timed(cmd, **kw):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def measured(cmd, input=None, env=None):
    """Wall seconds, CPU seconds (user + system of the process and its waited-for descendants)
    and peak RSS in MiB of one run of `cmd`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    if input is not None:
        proc.stdin.write(input)
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{cmd[0]} failed with status {status}")
    # Linux reports KiB, macOS bytes.
    rss = usage.ru_maxrss / 1024 if sys.platform.startswith("linux") else usage.ru_maxrss / 1024**2
    return wall, usage.ru_utime + usage.ru_stime, rss


def project(agents, phase_extra, settings=""):
    d = tempfile.mkdtemp(prefix="orch-bench-")
    os.makedirs(os.path.join(d, ".claude"))
    lines = ["orchestrator:", "  max_parallel_agents: 2", settings, "agents:"]
    for name, command in agents:
        lines += [f"  {name}:", "    entrypoints:", f"      default: {command!r}"]
    lines += ["phases:", "  - name: bench", "    agents: [" + ", ".join(n for n, _ in agents) + "]", phase_extra]
    with open(os.path.join(d, ".claude", "config.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return d


def bench_noop(runs, n):
    d = project([(f"a{i}", "true") for i in range(n)], "    parallel: true")
    commands = ("true\n" * n).encode()
    runner = tempfile.mkdtemp(prefix="orch-bench-runner-")
    # As on a GitHub runner: outputs, job summary, annotations and a log group per agent.
    on_runner = {**os.environ, "CI": "1", "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": os.path.join(runner, "out"),
                 "GITHUB_STEP_SUMMARY": os.path.join(runner, "summary.md")}
    ours, via_sh, direct, gh = [], [], [], []
    for _ in range(runs):
        ours.append(timed([BIN, "-C", d, "run", "start", "--force"], env={**os.environ, "CI": "1"}))
        gh.append(timed([BIN, "-C", d, "run", "start", "--force"], env=on_runner))
        via_sh.append(timed(["xargs", "-P", "2", "-I", "CMD", "sh", "-c", "CMD"], input=commands))
        direct.append(timed(["xargs", "-P", "2", "-n", "1", "true"], input=("x\n" * n).encode()))
    o, s, x = statistics.median(ours), statistics.median(via_sh), statistics.median(direct)
    print(f"{n} no-op agents, 2 at a time (median of {runs} runs):")
    print(f"  orchestrator run start          {o * 1000:8.1f} ms")
    print(f"  xargs -P 2 sh -c <command>      {s * 1000:8.1f} ms   ratio {o / s:.2f}  (goal <= 1.2)")
    print(f"  xargs -P 2 true (no shell)      {x * 1000:8.1f} ms   ratio {o / x:.2f}")
    g = statistics.median(gh)
    print(f"  the same on a GitHub runner     {g * 1000:8.1f} ms   ratio {g / s:.2f}  ({g / o:.2f}x the plain run)")
    return o / s


def bench_scale(runs, counts):
    """Peak RSS, wall and CPU time of one parallel phase of n no-op agents, against xargs."""
    env = {**os.environ, "CI": "1"}
    setups = {n: (project([(f"a{i}", "true") for i in range(n)], "    parallel: true"), ("true\n" * n).encode())
              for n in counts}
    ours, base = {n: [] for n in counts}, {n: [] for n in counts}
    for i in range(runs):
        # Every count in every round, and each count's pair interleaved, alternating which goes first:
        # all of them see the same load, so drift in the machine's speed over the minutes of the bench
        # cancels out of both the ratios against xargs and the time per agent across counts.
        for n, (d, commands) in setups.items():
            pair = [lambda: ours[n].append(measured([BIN, "-C", d, "run", "start", "--force"], env=env)),
                    lambda: base[n].append(measured(["xargs", "-P", "2", "-I", "CMD", "sh", "-c", "CMD"],
                                                    input=commands))]
            for f in (pair if i % 2 == 0 else pair[::-1]):
                f()
    med = lambda xs, k: statistics.median(x[k] for x in xs)
    rows = {n: {"wall": med(ours[n], 0), "cpu": med(ours[n], 1), "rss": max(x[2] for x in ours[n]),
                "xwall": med(base[n], 0), "xcpu": med(base[n], 1)} for n in counts}
    print(f"one parallel phase of n no-op agents, 2 workers, against xargs -P 2 sh -c true "
          f"(medians of {runs} interleaved runs):")
    print("      n   wall (ms)  xargs (ms)  ratio   CPU (ms)  xargs CPU  ratio   peak RSS")
    for n, r in rows.items():
        print(f"  {n:5d}  {r['wall'] * 1000:9.0f}  {r['xwall'] * 1000:10.0f}  {r['wall'] / r['xwall']:5.2f}"
              f"  {r['cpu'] * 1000:9.0f}  {r['xcpu'] * 1000:9.0f}  {r['cpu'] / r['xcpu']:5.2f}  {r['rss']:6.1f} MiB")
    lo, hi = min(counts), max(counts)
    per_agent = (rows[hi]["wall"] / hi) / (rows[lo]["wall"] / lo)
    x_per_agent = (rows[hi]["xwall"] / hi) / (rows[lo]["xwall"] / lo)
    print(f"  time per agent at {hi} against {lo}: {per_agent:.2f} (goal <= 1.15; xargs: {x_per_agent:.2f})")
    goals = [f"peak RSS at {n} <= {limit} MiB" for n, limit in ((500, 30), (5000, 60)) if n in rows]
    goals += [f"wall ratio at {n} <= 1.2" for n in (500, 5000) if n in rows]
    print("  goals: " + "; ".join(goals))
    ok = all(rows[n]["rss"] <= limit for n, limit in ((500, 30), (5000, 60)) if n in rows)
    ok &= all(rows[n]["wall"] / rows[n]["xwall"] <= 1.2 for n in (500, 5000) if n in rows)
    return ok and per_agent <= 1.15


def bench_memory(gib):
    size = int(gib * 1024**3)
    d = project([("loud", f"yes 'a line of agent output, repeated over and over' | head -c {size}")], "")
    start = time.perf_counter()
    proc = subprocess.Popen([BIN, "-C", d, "run", "start"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "CI": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"the memory run failed with status {status}")
    # Linux reports KiB, macOS bytes.
    peak_mib = usage.ru_maxrss / 1024 if sys.platform.startswith("linux") else usage.ru_maxrss / 1024**2
    logs = os.path.join(d, ".claude", "logs", "agents")
    written = sum(os.path.getsize(os.path.join(logs, f)) for f in os.listdir(logs))
    print(f"one agent printing {gib:g} GiB ({written / 1024**3:.2f} GiB reached the transcript in {elapsed:.1f} s):")
    print(f"  peak RSS (orchestrator and descendants)  {peak_mib:6.1f} MiB   (goal < 30 MiB)")
    return peak_mib


def bench_validate():
    times = {}
    for n in (2000, 20000):
        d = tempfile.mkdtemp(prefix="orch-bench-")
        os.makedirs(os.path.join(d, ".claude", "prompts"))
        lines = ["agents:", "  a:", "    entrypoints: {default: \"true\"}", "phases:"]
        lines += [f"  - {{name: p{i}, agents: [a]}}" for i in range(n)]
        with open(os.path.join(d, ".claude", "config.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(d, ".claude", "prompts", "a.md"), "w") as f:
            f.write("Phase {{ phase.name }} of {{ phases | length }}\n")
        times[n] = min(timed([BIN, "-C", d, "validate"]) for _ in range(3))
    per = (times[20000] / 20000) / (times[2000] / 2000)
    print("validate with a prompt template (best of 3):")
    print(f"  2,000 phases  {times[2000]:6.2f} s")
    print(f"  20,000 phases {times[20000]:6.2f} s   per-phase ratio {per:.2f}  (goals: <= 1.5, under 2 s)")
    return per, times[20000]


def bench_timeline(sizes=(500, 2000)):
    """`run status --timeline`, `run report` and `run report --html` after a run of N agents,
    against plain `run status` on the same state; per-agent time of the HTML report at the larger
    size against the smaller (goal: <= 1.5, linear)."""
    html = {}
    for n in sizes:
        d = project([(f"a{i}", "true") for i in range(n)], "    parallel: true")
        subprocess.run([BIN, "-C", d, "run", "start"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env={**os.environ, "CI": "1"})
        best = lambda *args: min(timed([BIN, "-C", d, "run", *args]) for _ in range(3))
        status = best("status")
        rows = [("run status --timeline", best("status", "--timeline")), ("run report", best("report")),
                ("run report --html", best("report", "--html"))]
        html[n] = rows[2][1]
        print(f"after a run of {n} agents (best of 3):")
        print(f"  run status                      {status * 1000:8.1f} ms")
        for name, t in rows:
            print(f"  {name:<31} {t * 1000:8.1f} ms   ratio {t / status:.2f} to run status")
    small, large = sizes
    per = (html[large] / large) / (html[small] / small)
    print(f"  HTML report per-agent time, {large} against {small} agents: ratio {per:.2f}  (goal <= 1.5, linear)")
    return per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--scale", default="500,2000,5000", help="agent counts of the scale bench")
    ap.add_argument("--scale-runs", type=int, default=3)
    ap.add_argument("--bin", help="measure this binary instead of building target/release/orchestrator")
    ap.add_argument("--only", default="noop,scale,memory,validate,timeline")
    args = ap.parse_args()
    global BIN
    if args.bin:
        BIN = os.path.abspath(args.bin)
    else:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    only = set(args.only.split(","))
    ok = True
    if "noop" in only:
        ok &= bench_noop(args.runs, args.agents) <= 1.2
    if "scale" in only:
        ok &= bench_scale(args.scale_runs, [int(n) for n in args.scale.split(",")])
    if "memory" in only:
        ok &= bench_memory(args.gib) < 30
    if "validate" in only:
        per_phase, big = bench_validate()
        ok &= per_phase <= 1.5 and big < 2
    if "timeline" in only:
        ok &= bench_timeline() <= 1.5
    print("goals met" if ok else "goals NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
