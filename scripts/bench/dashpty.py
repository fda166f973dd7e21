"""Shared by scripts/bench/dashboard-*: run `ccdeck dashboard` on a pseudo-terminal and follow
what it draws. Not a script; imported by the benchmarks next to it (python3 stdlib only).

- `Dashboard` forks the binary on a new pty (120x40 by default; the caller's env sets TERM),
  reads everything it writes, logs each read with the screen rows it changed, and feeds it
  to `VT`, a minimal terminal emulator (just the sequences ncurses sends for xterm-256color:
  cursor moves and erases; attributes are ignored).
- `complete()` is the "first complete frame" test: the five pane titles are on screen and
  the last row (the footer) ends with "q quit".
- `seed_state()` makes a private XDG_STATE_HOME holding a few finished runs, each the real
  recording Tests/Fixtures/stream-write_and_bash.jsonl plus a record.json in RunStore's format.
"""
import datetime
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import sys
import termios
import time
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CCDECK = os.path.join(ROOT, ".build/release/ccdeck")
FIXTURE = os.path.join(ROOT, "Tests/Fixtures/stream-write_and_bash.jsonl")
TOKEN = "sk-ant-oat01-" + "x" * 80
TITLES = ("Runs", "Output", "Backends", "Token", "Orphans")


def require_ccdeck(name):
    if not os.access(CCDECK, os.X_OK):
        sys.exit(f"{name}: {CCDECK} not found: build it first (scripts/ccdeck --version)")


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def seed_state(state_home, runs=4):
    """A private state directory with `runs` finished runs (alternating succeeded/failed)."""
    now = time.time()
    for i in range(runs):
        created = now - 3600 * (i + 1)
        t = time.gmtime(created)
        rid = time.strftime("%Y%m%d-%H%M%S", t) + f"-{0xbe00 + i:04x}"
        d = os.path.join(state_home, "ccdeck", "runs", rid)
        os.makedirs(d, mode=0o700)
        shutil.copyfile(FIXTURE, os.path.join(d, "output.jsonl"))
        ok = i % 2 == 0
        record = {
            "id": rid, "mode": "docker" if i % 3 else "podman", "image": "ccdeck-runner:latest",
            "container": f"ccdeck-{rid}", "workspace": os.path.join(d, "workspace"), "workspaceIsTemporary": True,
            "prompt": "Write hello.txt and run bash.", "keep": False,
            "createdAt": iso(created), "endedAt": iso(created + 4.2),
            "state": "succeeded" if ok else "failed",
            "phases": {"imageReady": iso(created + 0.05), "containerStarted": iso(created + 0.4),
                       "firstEvent": iso(created + 1.1), "result": iso(created + 4.0), "cleanupDone": iso(created + 4.2)},
            "reason": None if ok else "the agent's result was an error (is_error: true)",
            "turns": 3, "costUSD": 0.074928, "exitStatus": 0 if ok else 1,
            "tokenSource": "$CLAUDE_CODE_OAUTH_TOKEN", "driverPID": 1, "host": os.uname().nodename,
        }
        with open(os.path.join(d, "record.json"), "w") as f:
            json.dump({k: v for k, v in record.items() if v is not None}, f, indent=2, sort_keys=True)
    return state_home


def credentials(config_dir, expires_in):
    """`config_dir/.credentials.json` (use it as CLAUDE_CONFIG_DIR) whose access token is TOKEN,
    expiring in `expires_in` s: a token from the environment equal to it gets its expiry."""
    os.makedirs(config_dir, exist_ok=True)
    creds = {"claudeAiOauth": {"accessToken": TOKEN, "refreshToken": "r", "scopes": ["user:inference"],
                               "subscriptionType": "max", "expiresAt": int((time.time() + expires_in) * 1000)}}
    with open(os.path.join(config_dir, ".credentials.json"), "w") as f:
        json.dump(creds, f)


class VT:
    """Just enough of a VT100/xterm to know which characters are on screen."""
    CSI = re.compile(rb"\x1b\[([?>=]?)([0-9;]*)([ -/]*)([@-~])")

    def __init__(self, cols, rows):
        self.cols, self.rows = cols, rows
        self.grid = [[" "] * cols for _ in range(rows)]
        self.x = self.y = 0
        self.pending = b""
        self.last = " "

    def text(self):
        return "\n".join("".join(r) for r in self.grid)

    def row(self, y):
        return "".join(self.grid[y]).rstrip()

    def put(self, ch):
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if self.x + w > self.cols:
            self.x = self.cols - w
        self.grid[self.y][self.x] = ch
        if w == 2 and self.x + 1 < self.cols:
            self.grid[self.y][self.x + 1] = ""
        self.x = min(self.cols - 1, self.x + w)
        self.last = ch

    def feed(self, data):
        data = self.pending + data
        self.pending = b""
        i = 0
        while i < len(data):
            b = data[i]
            if b == 0x1B:
                if i + 1 >= len(data):
                    self.pending = data[i:]
                    return
                nxt = data[i + 1]
                if nxt == ord("["):
                    m = self.CSI.match(data, i)
                    if not m:
                        if len(data) - i < 32:
                            self.pending = data[i:]
                            return
                        i += 2
                        continue
                    self.csi(m.group(1), m.group(2), m.group(4))
                    i = m.end()
                elif nxt == ord("]"):
                    # OSC (the window title): up to BEL or ESC \\, drawn nowhere.
                    end = min([j for j in (data.find(b"\x07", i), data.find(b"\x1b\\", i)) if j >= 0], default=-1)
                    if end < 0:
                        self.pending = data[i:]
                        return
                    i = end + (1 if data[end] == 0x07 else 2)
                elif nxt in b"()*+":
                    i += 3
                else:
                    i += 2
                continue
            if b < 0x20:
                if b == 0x0D:
                    self.x = 0
                elif b == 0x0A:
                    self.y = min(self.rows - 1, self.y + 1)
                elif b == 0x08:
                    self.x = max(0, self.x - 1)
                i += 1
                continue
            n = 1 if b < 0x80 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            if i + n > len(data):
                self.pending = data[i:]
                return
            self.put(data[i:i + n].decode("utf-8", "replace"))
            i += n

    def csi(self, private, params, final):
        if private:
            return
        p = [int(v) if v else 0 for v in params.decode().split(";")] if params else []
        a = p[0] if p else 0
        f = chr(final[0])
        if f in "Hf":
            self.y = min(self.rows - 1, max(1, a) - 1)
            self.x = min(self.cols - 1, max(1, p[1] if len(p) > 1 else 1) - 1)
        elif f == "G":
            self.x = min(self.cols - 1, max(1, a) - 1)
        elif f == "d":
            self.y = min(self.rows - 1, max(1, a) - 1)
        elif f == "A":
            self.y = max(0, self.y - max(1, a))
        elif f == "B":
            self.y = min(self.rows - 1, self.y + max(1, a))
        elif f == "C":
            self.x = min(self.cols - 1, self.x + max(1, a))
        elif f == "D":
            self.x = max(0, self.x - max(1, a))
        elif f == "J":
            rows = range(self.rows) if a == 2 else range(self.y + 1, self.rows) if a == 0 else range(0, self.y)
            for y in rows:
                self.grid[y] = [" "] * self.cols
            if a == 0:
                self.grid[self.y][self.x:] = [" "] * (self.cols - self.x)
        elif f == "K":
            if a == 0:
                self.grid[self.y][self.x:] = [" "] * (self.cols - self.x)
            elif a == 1:
                self.grid[self.y][:self.x + 1] = [" "] * (self.x + 1)
            else:
                self.grid[self.y] = [" "] * self.cols
        elif f == "X":
            n = max(1, a)
            self.grid[self.y][self.x:self.x + n] = [" "] * len(self.grid[self.y][self.x:self.x + n])
        elif f == "b":
            for _ in range(max(1, a)):
                self.put(self.last)


class Dashboard:
    """`ccdeck dashboard` on a fresh pty; `pump` reads what it writes into `vt` and `log`."""

    def __init__(self, env, cols=120, rows=40, args=("dashboard",)):
        self.vt = VT(cols, rows)
        # Every read: (seconds since fork, bytes, {row: (before, after)} for the rows it changed).
        self.log = []
        self.start = time.monotonic()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execve(CCDECK, [CCDECK, *args], env)
            finally:
                os._exit(127)
        self.status = None

    def pump(self, timeout):
        """Reads for up to `timeout` s, returning as soon as something arrived; False at EOF."""
        r, _, _ = select.select([self.fd], [], [], max(0, timeout))
        if not r:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        before = [self.vt.row(y) for y in range(self.vt.rows)]
        self.vt.feed(data)
        changed = {y: (before[y], self.vt.row(y)) for y in range(self.vt.rows) if self.vt.row(y) != before[y]}
        self.log.append((time.monotonic() - self.start, data, changed))
        return True

    def complete(self):
        screen = self.vt.text()
        return all(t in screen for t in TITLES) and self.vt.row(self.vt.rows - 1).endswith("q quit")

    def wait_complete(self, timeout=10):
        """Seconds from fork to the first time the screen is complete, or None."""
        deadline = self.start + timeout
        while time.monotonic() < deadline:
            if not self.pump(deadline - time.monotonic()):
                return None
            if self.complete():
                return time.monotonic() - self.start
        return None

    def wait_quiet(self, quiet=1.0, timeout=30, ignore=lambda changed: False):
        """Reads until nothing has arrived for `quiet` s, not counting bursts for which
        `ignore(changed rows)` is true (a countdown ticking); False if that never happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            relevant = [t for t, _, changed in self.bursts() if not ignore(changed)]
            silent = time.monotonic() - self.start - (relevant[-1] if relevant else 0)
            if silent >= quiet:
                return True
            self.pump(min(quiet - silent, deadline - time.monotonic()))
        return False

    def bursts(self, since=0, gap=0.05):
        """The reads from log[since:] grouped into bursts (reads less than `gap` s apart: one
        frame often takes several write(2) calls): (start s, bytes, {row: (before, after)})."""
        out = []
        for t, data, changed in self.log[since:]:
            if out and t - out[-1][3] < gap:
                start, b, c, _ = out[-1]
                merged = dict(c)
                for y, (before, after) in changed.items():
                    merged[y] = (c[y][0] if y in c else before, after)
                out[-1] = (start, b + data, merged, t)
            else:
                out.append((t, data, dict(changed), t))
        return [(start, b, {y: ba for y, ba in c.items() if ba[0] != ba[1]}) for start, b, c, _ in out]

    def cpu_seconds(self):
        """utime + stime of the ccdeck process (all its threads), from /proc/PID/stat; 10 ms steps."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def thread_ns(self):
        """{thread id: on-CPU nanoseconds} from /proc/PID/task/*/schedstat (finer than stat's ticks)."""
        out = {}
        for task in os.listdir(f"/proc/{self.pid}/task"):
            try:
                out[task] = int(open(f"/proc/{self.pid}/task/{task}/schedstat").read().split()[0])
            except (OSError, IndexError, ValueError):
                pass
        return out

    def finish(self, how="q", timeout=5):
        """Sends `q` (or SIGTERM with how="term") and returns the exit status, killing it if it hangs."""
        if how == "q":
            os.write(self.fd, b"q")
        else:
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                break
            self.pump(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = "hung (killed)"
        os.close(self.fd)
        return self.status
