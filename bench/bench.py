#!/usr/bin/env python3
"""Speed and memory goals of orchestrator, as ratios against baselines run in this same process.

1. 500 no-op agents (`true`) in one parallel phase with max_parallel_agents: 2, against
   `xargs -P 2` running the same 500 commands (each through `sh -c`, as orchestrator runs them;
   xargs exec'ing `true` directly is shown too). Goal: ratio <= 1.2. The same run as on a GitHub
   runner (GITHUB_ACTIONS=true: outputs, summary, a log group per agent) is shown beside it.
2. Peak memory (max RSS of the orchestrator and its descendants, from wait4) while one agent
   prints 1 GiB. Goal: < 30 MiB.
3. `validate` of a workflow of 2,000 and of 20,000 phases whose agent has a prompt template:
   the time per phase at 20,000 against that at 2,000 (goal: <= 1.5, linear) and 20,000 phases
   under 2 s. (Measured 2026-12-01 on the 2-core development machine: 0.03 s and 0.30 s.)
4. The timeline after a run of 500 and of 2,000 agents: `run status --timeline`, `run report` and
   `run report --html` against `run status`; the HTML report's per-agent time at 2,000 against 500
   (goal: <= 1.5, linear).

Usage: bench/bench.py [--runs N] [--agents N] [--gib G]   (builds the release binary first)
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
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    ratio = bench_noop(args.runs, args.agents)
    peak = bench_memory(args.gib)
    per_phase, big = bench_validate()
    timeline = bench_timeline()
    ok = ratio <= 1.2 and peak < 30 and per_phase <= 1.5 and big < 2 and timeline <= 1.5
    print("goals met" if ok else "goals NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
