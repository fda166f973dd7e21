#!/usr/bin/env python3
"""Stand-in for flyctl, for ccdeck's tests (Fly.io cannot be reached from here).

It implements exactly the subset ccdeck uses, following flyctl's flags and outputs
(docs/backend-clis.md, Mode C): `version`, `auth whoami`, `deploy --build-only --push`,
`secrets import --stage` (NAME=VALUE lines on stdin), `machine run`, `machine list --json`,
`machine stop`, `machine destroy --force`, `logs --machine --json` and `ssh sftp get`.

A machine is a container on the test harness's real Docker engine; the app's secrets are kept
by the stand-in (a 0600 file) and given to machines at start as environment variables, as Fly
does at boot; `--file-local` files are copied in before the machine starts; metadata is kept in
labels and listed under `config.metadata`; logs stream from the container as flyctl's indented
JSON objects; the exit code appears in `events[].request.exit_event` (absent when 0, as in
fly-go). Every argv it receives is appended to $STANDIN_FLY_STATE/argv.log so tests can check
that no token ever passed through one.

Environment: STANDIN_FLY_STATE (its state folder), DOCKER_HOST, and STANDIN_FLY_CAPACITY_FAILS
(how many `machine run`s fail with a capacity error first).
"""
import json
import os
import subprocess
import sys
import time
import uuid

STATE = os.environ.get("STANDIN_FLY_STATE", "/tmp/standin-fly")
LABEL = "standin-fly.app"


def fail(msg, code=1):
    sys.stderr.write("Error: " + msg + "\n")
    sys.exit(code)


def docker(*args, capture=True, stdin=None):
    return subprocess.run(["docker", *args], capture_output=capture, text=True, input=stdin)


def take(args, flag, short=None, many=False):
    """Removes `--flag VALUE` / `--flag=VALUE` (and `-s VALUE`) from args; returns the value(s)."""
    values, rest, i = [], [], 0
    while i < len(args):
        a = args[i]
        names = [flag] + ([short] if short else [])
        if a in names and i + 1 < len(args):
            values.append(args[i + 1])
            i += 2
            continue
        if any(a.startswith(n + "=") for n in names):
            values.append(a.split("=", 1)[1])
            i += 1
            continue
        rest.append(a)
        i += 1
    args[:] = rest
    return values if many else (values[-1] if values else None)


def flag(args, name, short=None):
    found = name in args or (short is not None and short in args)
    args[:] = [a for a in args if a not in (name, short)]
    return found


def no_unknown(args):
    for a in args:
        if a.startswith("-"):
            fail(f"unknown flag: {a}")


def secrets_file(app):
    return os.path.join(STATE, f"secrets-{app}.json")


def load_secrets(app):
    try:
        with open(secrets_file(app)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def machines(app):
    out = docker("ps", "-a", "--filter", f"label={LABEL}={app}", "--format", "{{.ID}}").stdout.split()
    result = []
    for cid in out:
        info = json.loads(docker("inspect", cid).stdout)[0]
        labels = info["Config"]["Labels"] or {}
        meta = {k[len("standin-fly.meta."):]: v for k, v in labels.items() if k.startswith("standin-fly.meta.")}
        st = info["State"]
        state = "started" if st["Running"] else ("stopped" if st.get("FinishedAt", "").startswith("2") else "created")
        events = []
        if not st["Running"] and st.get("FinishedAt", "").startswith("2"):
            exit_event = {"exited_at": st["FinishedAt"]}
            if st["ExitCode"] != 0:
                exit_event["exit_code"] = st["ExitCode"]  # omitempty, as fly-go: a missing code means 0
            events.append({"type": "exit", "status": "stopped", "request": {"exit_event": exit_event}})
        events.append({"type": "start", "status": "started"})
        result.append({"id": labels.get("standin-fly.id", cid[:14]), "name": labels.get("standin-fly.name", ""),
                       "state": state, "region": labels.get("standin-fly.region", "ams"),
                       "instance_id": cid[:26], "created_at": info["Created"][:19] + "Z",
                       "config": {"image": info["Config"]["Image"], "metadata": meta, "env": {}}, "events": events})
    return result


def container_of(app, machine_id):
    cid = docker("ps", "-aq", "--filter", f"label={LABEL}={app}", "--filter", f"label=standin-fly.id={machine_id}").stdout.split()
    if not cid:
        fail(f"machine {machine_id} not found")
    return cid[0]


def main():
    os.makedirs(STATE, exist_ok=True)
    with open(os.path.join(STATE, "argv.log"), "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\n")
    args = sys.argv[1:]
    if not args:
        fail("usage: fly COMMAND")
    cmd = args.pop(0)

    if cmd == "version":
        print("fly v0.3.214 linux/amd64 Commit: standin BuildDate: 2026-11-01T00:00:00Z")
        return
    if cmd == "auth":
        sub = args.pop(0) if args else ""
        if sub == "whoami":
            if os.environ.get("STANDIN_FLY_LOGGED_OUT"):
                fail("no access token available. Please login with 'flyctl auth login'")
            print("tests@ccdeck.example")
            return
        fail(f"unknown command \"{sub}\" for \"fly auth\"")

    app = take(args, "--app", "-a")
    if cmd not in ("version",) and not app:
        fail("the config for your app is missing an app name, add an app field to the fly.toml file or specify with the -a flag")
    if os.environ.get("STANDIN_FLY_NO_APP") == app:
        fail(f"Could not find App \"{app}\"")

    if cmd == "deploy":
        # --build-only --push: build the image and push it to registry.fly.io/APP:LABEL (here: tag it locally).
        label = take(args, "--image-label")
        dockerfile = take(args, "--dockerfile")
        build_only, push = flag(args, "--build-only"), flag(args, "--push")
        context = args[0] if args else "."
        if not (build_only and push and label and dockerfile):
            fail("this stand-in implements `deploy --build-only --push --image-label L --dockerfile F` only")
        tag = f"registry.fly.io/{app}:{label}"
        r = subprocess.run(["docker", "build", "-t", tag, "-f", dockerfile, context])
        if r.returncode != 0:
            fail("failed to build")
        print(f"image: {tag}")
        print(f"image size: 0 B")
        return

    if cmd == "secrets":
        sub = args.pop(0) if args else ""
        if sub == "import":
            stage = flag(args, "--stage")
            no_unknown(args)
            secrets = load_secrets(app)
            for line in sys.stdin.read().splitlines():
                line = line.strip()
                if not line or line.startswith("#") or "=" not in line:
                    continue
                name, value = line.split("=", 1)
                secrets[name] = {"value": value, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            path = secrets_file(app)
            fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(secrets, f)
            os.replace(path + ".tmp", path)
            print("Secrets have been staged, but not set on VMs. Deploy or update machines in this app for the secrets to take effect."
                  if stage else "Secrets are deployed")
            return
        if sub == "list":
            as_json = flag(args, "--json", "-j")
            items = [{"name": k, "digest": format(abs(hash(v["value"])) % (16 ** 16), "016x"), "created_at": v["created_at"]}
                     for k, v in load_secrets(app).items()]
            print(json.dumps(items, indent=2) if as_json else "\n".join(i["name"] for i in items))
            return
        fail(f"unknown command \"{sub}\" for \"fly secrets\"")

    if cmd in ("machine", "machines", "m"):
        sub = args.pop(0) if args else ""
        if sub == "run":
            fails = int(os.environ.get("STANDIN_FLY_CAPACITY_FAILS", "0") or 0)
            counter = os.path.join(STATE, f"capacity-{app}")
            seen = int(open(counter).read()) if os.path.exists(counter) else 0
            if seen < fails:
                with open(counter, "w") as f:
                    f.write(str(seen + 1))
                fail("failed to launch VM: insufficient resources to create new machine in region ams (capacity)")
            name = take(args, "--name", "-n") or f"machine-{uuid.uuid4().hex[:8]}"
            region = take(args, "--region", "-r") or "ams"
            restart = take(args, "--restart")
            metadata = take(args, "--metadata", "-m", many=True)
            env = take(args, "--env", "-e", many=True)
            files = take(args, "--file-local", many=True)
            entrypoint = take(args, "--entrypoint")
            take(args, "--vm-size")
            flag(args, "--detach", "-d")
            flag(args, "--rm")
            if args and args[0].startswith("-"):
                fail(f"unknown flag: {args[0]}")
            if not args:
                fail("an image is required")
            image, command = args[0], [a for a in args[1:] if a != "--"]
            if restart not in (None, "no", "always", "on-failure"):
                fail(f"invalid restart policy {restart}")
            machine_id = uuid.uuid4().hex[:14]
            argv = ["create", "--name", f"standin-fly-{machine_id}", "--label", f"{LABEL}={app}",
                    "--label", f"standin-fly.id={machine_id}", "--label", f"standin-fly.name={name}",
                    "--label", f"standin-fly.region={region}", "--network", "host"]
            for kv in metadata:
                k, _, v = kv.partition("=")
                argv += ["--label", f"standin-fly.meta.{k}={v}"]
            for kv in env:
                argv += ["-e", kv]
            # The app's secrets reach the machine as environment at boot (here: the engine
            # client's environment, passed by name, so no argv carries them).
            secrets = load_secrets(app)
            child_env = dict(os.environ)
            for k, v in secrets.items():
                argv += ["-e", k]
                child_env[k] = v["value"]
            if entrypoint:
                argv += ["--entrypoint", entrypoint.split()[0]]
            argv += [image] + command
            r = subprocess.run(["docker", *argv], capture_output=True, text=True, env=child_env)
            if r.returncode != 0:
                fail(f"failed to launch VM: {r.stderr.strip()}")
            cid = r.stdout.strip()
            if files:
                # Fly writes each file at its path, folders made as needed: copy a tree in.
                import shutil, tempfile
                staging = tempfile.mkdtemp(prefix="standin-fly-files-")
                for spec in files:
                    guest, _, local = spec.partition("=")
                    target = os.path.join(staging, guest.lstrip("/"))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copyfile(local, target)
                    os.chmod(target, 0o644)
                for root, dirs, _ in os.walk(staging):
                    for d in dirs:
                        os.chmod(os.path.join(root, d), 0o755)
                os.chmod(staging, 0o755)
                r = docker("cp", staging + "/.", f"{cid}:/")
                shutil.rmtree(staging, ignore_errors=True)
                if r.returncode != 0:
                    fail(f"failed to write files: {r.stderr.strip()}")
            if docker("start", cid).returncode != 0:
                fail("failed to start VM")
            print(f"Success! A Machine has been successfully launched in app {app}")
            print(f" Machine ID: {machine_id}")
            print(f" State: started")
            return
        if sub == "list":
            as_json = flag(args, "--json", "-j")
            flag(args, "--quiet", "-q")
            no_unknown(args)
            items = machines(app)
            print(json.dumps(items, indent=2) if as_json else "\n".join(m["id"] for m in items))
            return
        if sub == "stop":
            no_unknown([a for a in args if not a.startswith("--signal")])
            for mid in [a for a in args if not a.startswith("-")]:
                docker("stop", "-t", "2", container_of(app, mid))
                print(f"Sending kill signal to machine {mid}...")
            return
        if sub == "destroy":
            force = flag(args, "--force", "-f")
            no_unknown(args)
            for mid in args:
                cid = container_of(app, mid)
                running = docker("inspect", "--format", "{{.State.Running}}", cid).stdout.strip() == "true"
                if running and not force:
                    fail(f"machine {mid} is in a started state. Use --force to destroy it anyway")
                docker("rm", "-f", cid)
                print(f"machine {mid} was found and is currently in a stopped state, destroying...")
            return
        fail(f"unknown command \"{sub}\" for \"fly machine\"")

    if cmd == "logs":
        machine_id = take(args, "--machine", "-m") or take(args, "--instance", "-i")
        as_json = flag(args, "--json", "-j")
        no_tail = flag(args, "--no-tail", "-n")
        no_unknown(args)
        cid = container_of(app, machine_id)
        follow = [] if no_tail else ["-f"]
        proc = subprocess.Popen(["docker", "logs", *follow, cid], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if as_json:
                # flyctl renders each entry indented over several lines (render.JSON).
                entry = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "message": line,
                         "level": "info", "instance": machine_id, "region": "ams", "meta": {"event": {"provider": "app"}}}
                sys.stdout.write(json.dumps(entry, indent=2) + "\n")
            else:
                sys.stdout.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} app[{machine_id}] ams [info] {line}\n")
            sys.stdout.flush()
        return

    if cmd == "ssh":
        sub = args.pop(0) if args else ""
        if sub == "sftp":
            action = args.pop(0) if args else ""
            machine_id = take(args, "--machine")
            if action != "get" or len(args) < 2:
                fail("this stand-in implements `ssh sftp get REMOTE LOCAL` only")
            r = docker("cp", f"{container_of(app, machine_id)}:{args[0]}", args[1])
            if r.returncode != 0:
                fail(f"get {args[0]}: {r.stderr.strip()}")
            print(f"{args[1]}")
            return
        fail(f"unknown command \"{sub}\" for \"fly ssh\"")

    fail(f"unknown command \"{cmd}\" for \"fly\"")


if __name__ == "__main__":
    main()
