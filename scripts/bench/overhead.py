"""What the run-overhead benchmarks print: both medians, their difference and ratio, the median
of the paired differences (each ccdeck run against the bare run beside it), and a last line of
JSON for scripts/bench/fixed-cost."""
import json
import statistics


def report(variant, ours_name, bare_name, ours, bare):
    def fmt(xs):
        return f"median {statistics.median(xs):.3f}s  mean {statistics.mean(xs):.3f}s  min {min(xs):.3f}s  max {max(xs):.3f}s"

    m_ours, m_bare = statistics.median(ours), statistics.median(bare)
    paired = statistics.median([a - b for a, b in zip(ours, bare)])
    print(f"{variant}: {len(ours)} runs each, alternating, after one warm-up each")
    print(f"  {ours_name:<44} {fmt(ours)}")
    print(f"  {bare_name:<44} {fmt(bare)}")
    print(f"  difference of medians {1000 * (m_ours - m_bare):+.0f} ms, ratio {m_ours / m_bare:.3f}x, "
          f"median paired difference {1000 * paired:+.0f} ms  (target: at most +20 ms)")
    print("RESULT " + json.dumps({"variant": variant, "runs": len(ours), "ccdeck": m_ours, "bare": m_bare,
                                  "paired": paired}))
