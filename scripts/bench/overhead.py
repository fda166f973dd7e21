"""What the run-overhead benchmarks share: running ccdeck with its trace on (to split its wall
time into the engine's and its own), and printing both medians, their difference and ratio,
the median of the paired differences (each ccdeck run against the bare run beside it),
ccdeck's own time, and a last line of JSON for scripts/bench/fixed-cost.

ccdeck's own time is its wall time less the time its engine's commands and API calls took on
the run's path (`CCDECK_TRACE=1` ends a run with `| engine N ms in K calls`): what ccdeck
itself adds, free of the engine's noise, which on a small machine moves a difference of two
medians by 10-20 ms from one sitting to the next.

`BENCH_RAW=FILE` appends every run's wall time (and ccdeck's own time) to FILE, a JSON line per
variant, for a closer look at the spread than the summary gives."""
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A token of the right shape: the scripted model accepts anything, ccdeck checks the shape.
TOKEN = "sk-ant-oat01-BENCHMARK" + "x" * 80


def model_server(*extra):
    """Starts the scripted model (write_and_bash: Write, Bash, final text): (process, its port)."""
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/Fixtures/model_server.py"),
                               "--scenario", "write_and_bash", "--port", "0", *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return server, int(server.stdout.readline().split()[1])


def agent_environment(port, **extra):
    """This environment, plus what Claude Code needs to talk to the scripted model at `port`."""
    return dict(os.environ, CLAUDE_CODE_OAUTH_TOKEN=TOKEN, ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}",
                CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", CLAUDE_CODE_MAX_RETRIES="0", **extra)


ENGINE = re.compile(rb"\| engine ([0-9.]+) ms in [0-9]+ calls")


def run_ccdeck(cmd, env, **kwargs):
    """Runs ccdeck traced: (wall seconds, exit status, its own seconds or None)."""
    start = time.perf_counter()
    r = subprocess.run(cmd, env=dict(env, CCDECK_TRACE="1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    wall = time.perf_counter() - start
    m = ENGINE.search(r.stderr)
    return wall, r.returncode, (wall - float(m.group(1)) / 1000) if m else None


def alternate(runs, kinds, what):
    """Runs every kind `runs` times, each round in turn, the order reversed every other round so
    that drift falls on every kind alike. A kind is `fn(i) -> (seconds, exit status, own
    seconds or None)`; a run that fails ends the benchmark. Returns ({kind: [seconds]},
    {kind: [own seconds or None]})."""
    times = {k: [] for k in kinds}
    own = {k: [] for k in kinds}
    for i in range(runs):
        for k in (list(kinds) if i % 2 == 0 else list(reversed(kinds))):
            took, rc, mine = kinds[k](i)
            if rc != 0:
                sys.exit(f"{what}: {k} run {i} exited {rc}")
            times[k].append(took)
            own[k].append(mine)
    return times, own


def interval(ours, bare, rounds=2000):
    """A 95% bootstrap interval of the difference of medians: how far this sitting's figure may
    be from the machine's, given the spread of the runs themselves."""
    rng = random.Random(15)
    diffs = sorted(statistics.median(rng.choices(ours, k=len(ours))) - statistics.median(rng.choices(bare, k=len(bare)))
                   for _ in range(rounds))
    return diffs[int(0.025 * rounds)], diffs[int(0.975 * rounds) - 1]


def report(variant, ours_name, bare_name, ours, bare, own=None):
    def fmt(xs):
        return f"median {statistics.median(xs):.3f}s  mean {statistics.mean(xs):.3f}s  min {min(xs):.3f}s  max {max(xs):.3f}s"

    m_ours, m_bare = statistics.median(ours), statistics.median(bare)
    paired = statistics.median([a - b for a, b in zip(ours, bare)])
    own = [x for x in (own or []) if x is not None]
    print(f"{variant}: {len(ours)} runs each, alternating, after one warm-up each")
    print(f"  {ours_name:<44} {fmt(ours)}")
    print(f"  {bare_name:<44} {fmt(bare)}")
    low, high = interval(ours, bare)
    print(f"  difference of medians {1000 * (m_ours - m_bare):+.0f} ms (95% bootstrap interval {1000 * low:+.0f} to "
          f"{1000 * high:+.0f} ms), ratio {m_ours / m_bare:.3f}x, median paired difference {1000 * paired:+.0f} ms  "
          f"(target: at most +20 ms)")
    if own:
        print(f"  ccdeck's own time (wall less its engine calls): median {1000 * statistics.median(own):.1f} ms, "
              f"max {1000 * max(own):.1f} ms")
    if os.environ.get("BENCH_RAW"):
        with open(os.environ["BENCH_RAW"], "a") as f:
            f.write(json.dumps({"variant": variant, "ccdeck": ours, "bare": bare, "own": own}) + "\n")
    print("RESULT " + json.dumps({"variant": variant, "runs": len(ours), "ccdeck": m_ours, "bare": m_bare,
                                  "paired": paired, "own": statistics.median(own) if own else None,
                                  "low": low, "high": high}))
