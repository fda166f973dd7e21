#!/usr/bin/env python3
"""Stand-in for Docker Sandboxes' two CLIs, for ccdeck's tests (Docker Desktop cannot run here).

Installed as the Docker CLI plugin `docker-sandbox` (docker runs it as `docker-sandbox sandbox
ARGS`) and as an `sbx` executable. It follows the documented contract (docs/backend-clis.md,
../shared/reference/backends.md, Mode B): the subcommands and flags ccdeck uses, `ls --json`
shapes (with the drift users report for sbx: daemon start-up lines before the JSON, no `id`),
cobra's error for an unknown flag, and `sbx rm` refusing without `--force` when it cannot ask.

A sandbox is a long-lived container on the test harness's real Docker engine, labelled
`ccdeck-standin.sandbox=NAME`, the workspace bind-mounted at the same absolute path, the host
network (where the stand-in credential proxy listens). Like the real sandboxes it holds no
credential: its CLAUDE_CODE_OAUTH_TOKEN is the placeholder `proxy-managed`, and the proxy
(standin_proxy.py) puts the real token on the agent's requests.

Environment: STANDIN_SANDBOX_TEMPLATE (the image a sandbox starts from), DOCKER_HOST.
"""
import json
import os
import time
import subprocess
import sys

LABEL = "ccdeck-standin.sandbox"
CLI_LABEL = "ccdeck-standin.cli"


def fail(msg, code=1):
    sys.stderr.write(msg + "\n")
    sys.exit(code)


def docker(*args, capture=True, check=False):
    return subprocess.run(["docker", *args], capture_output=capture, text=True, check=check)


def parse(args, flags_with_value, bool_flags, cli):
    """cobra-like parsing: known flags anywhere before the positionals; `--` ends flags."""
    opts, pos = {}, []
    i = 0
    while i < len(args):
        a = args[i]
        if pos and cli == "exec-stop":  # after the sandbox name, the rest is the command
            pos.extend(args[i:])
            break
        if a == "--":
            pos.extend(args[i + 1:])
            break
        if a.startswith("-") and not a.startswith("--") and len(a) > 2 and all(f"-{c}" in bool_flags for c in a[1:]):
            for c in a[1:]:  # combined short flags, as cobra takes them: -it
                opts[f"-{c}"] = True
            i += 1
            continue
        if a.startswith("-") and a != "-":
            name, _, inline = a.partition("=")
            if name in bool_flags:
                opts[name] = True
            elif name in flags_with_value:
                if inline:
                    value = inline
                else:
                    i += 1
                    if i >= len(args):
                        fail(f"flag needs an argument: {name}")
                    value = args[i]
                opts.setdefault(name, []).append(value)
            else:
                fail(f"unknown flag: {name}" if name.startswith("--") else f"unknown shorthand flag: '{name[1:2]}' in {a}")
        else:
            pos.append(a)
        i += 1
    return opts, pos


def container(name):
    return "standin-" + name


def sandboxes(cli):
    out = docker("ps", "-a", "--filter", f"label={LABEL}", "--filter", f"label={CLI_LABEL}={cli}",
                 "--format", "{{json .}}").stdout
    items = []
    for line in out.splitlines():
        c = json.loads(line)
        labels = dict(kv.split("=", 1) for kv in c.get("Labels", "").split(",") if "=" in kv)
        items.append({"name": labels.get(LABEL, ""), "status": "running" if c.get("State") == "running" else "stopped",
                      "workspace": labels.get("ccdeck-standin.workspace", ""), "created": c.get("CreatedAt", "")})
    return items


def create(cli, args):
    value_flags = {"--name", "-t", "--template"} | ({"--cpus", "-m", "--memory", "--branch", "--kit"} if cli == "sbx" else set())
    opts, pos = parse(args, value_flags, {"-q", "--quiet", "--load-local-template"}, "create")
    if len(pos) < 2:
        fail("accepts 2 arg(s): AGENT WORKSPACE" if cli == "docker" else "requires AGENT and PATH")
    agent, workspace = pos[0], os.path.abspath(pos[1])
    name = (opts.get("--name") or [f"{agent}-{os.path.basename(workspace)}"])[0]
    if cli == "sbx" and "_" in name:
        fail(f"invalid sandbox name {name!r}: only letters, digits, '-', '.' and '+'")
    if docker("inspect", container(name)).returncode == 0:
        fail(f"sandbox {name} already exists")
    template = (opts.get("-t") or opts.get("--template") or [os.environ.get("STANDIN_SANDBOX_TEMPLATE", "")])[0]
    r = docker("run", "-d", "--name", container(name), "--label", f"{LABEL}={name}", "--label", f"{CLI_LABEL}={cli}",
               "--label", f"ccdeck-standin.workspace={workspace}", "--network", "host",
               "-v", f"{workspace}:{workspace}", "-w", workspace, "-e", "CLAUDE_CODE_OAUTH_TOKEN=proxy-managed",
               "--entrypoint", "/bin/sh", template, "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done")
    if r.returncode != 0:
        fail(f"failed to create sandbox: {r.stderr.strip()}")
    print(name)


def exec_(cli, args):
    opts, pos = parse(args, {"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--detach-keys"},
                      {"-d", "--detach", "-i", "--interactive", "-t", "--tty", "--privileged"}, "exec-stop")
    if len(pos) < 2:
        fail("requires at least 2 arg(s): SANDBOX COMMAND")
    name, command = pos[0], pos[1:]
    if os.environ.get("STANDIN_SANDBOX_EXEC_HANGS"):
        time.sleep(3600)  # an exec that never starts the command, as a wedged VM would
    if docker("inspect", container(name)).returncode != 0:
        fail(f"ERROR: no sandbox named '{name}'" if cli == "sbx" else f"sandbox {name} not found")
    if cli == "sbx":
        docker("start", container(name))  # sbx exec starts a stopped sandbox first
    argv = ["docker", "exec"]
    for flag in ("-i", "--interactive", "-t", "--tty", "-d", "--detach"):
        if opts.get(flag):
            argv.append(flag)
    for kv in opts.get("-e", []) + opts.get("--env", []):
        argv += ["-e", kv]
    for w in opts.get("-w", []) + opts.get("--workdir", []):
        argv += ["-w", w]
    for u in opts.get("-u", []) + opts.get("--user", []):
        argv += ["-u", u]
    os.execvp("docker", argv + [container(name)] + command)


def ls(cli, args):
    opts, pos = parse(args, set(), {"--json", "-q", "--quiet"}, "ls")
    items = sandboxes(cli)
    if opts.get("-q") or opts.get("--quiet"):
        for s in items:
            print(s["name"])
        return
    if opts.get("--json"):
        if cli == "docker":
            print(json.dumps({"vms": [{"name": s["name"], "agent": "claude", "status": s["status"],
                                       "socket_path": f"/run/sandboxes/{s['name']}.sock", "sandbox_count": 1,
                                       "workspaces": [s["workspace"]]} for s in items]}))
        else:
            # The drift users report: daemon start-up lines first on stdout, and no `id`.
            print("Starting sandboxd daemon...")
            print("sandboxd is ready")
            print(json.dumps({"sandboxes": [{"name": s["name"], "agent": "claude", "status": s["status"],
                                             "workspaces": [s["workspace"]], "created_at": s["created"],
                                             "last_used_at": s["created"], "ports": []} for s in items]}, indent=2))
        return
    print("NAME\tAGENT\tSTATUS\tWORKSPACE")
    for s in items:
        print(f"{s['name']}\tclaude\t{s['status']}\t{s['workspace']}")


def rm(cli, args):
    opts, pos = parse(args, set(), {"-f", "--force", "--all"}, "rm")
    if not pos:
        fail("requires at least 1 arg(s)")
    if cli == "sbx" and not (opts.get("-f") or opts.get("--force")):
        fail("refusing to remove without confirmation: no terminal to ask (use --force)")
    code = 0
    for name in pos:
        r = docker("rm", "-f", container(name))
        if r.returncode != 0 or "No such container" in r.stderr:
            sys.stderr.write((f"ERROR: no sandbox named '{name}'" if cli == "sbx" else f"sandbox {name} not found") + "\n")
            code = 1
        else:
            print(name)
    sys.exit(code)


def stop(cli, args):
    opts, pos = parse(args, set(), set(), "stop")
    for name in pos:
        if docker("stop", "-t", "1", container(name)).returncode != 0:
            fail(f"ERROR: no sandbox named '{name}'" if cli == "sbx" else f"sandbox {name} not found")


def main():
    prog = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    if prog.startswith("docker-sandbox") or (args and args[0] in ("docker-cli-plugin-metadata", "sandbox")):
        if args and args[0] == "docker-cli-plugin-metadata":
            print(json.dumps({"SchemaVersion": "0.1.0", "Vendor": "ccdeck tests (stand-in)", "Version": "v0.7.1",
                              "ShortDescription": "Docker Sandboxes (stand-in)"}))
            return
        cli, args = "docker", args[1:]
    else:
        cli = "sbx"
    if not args:
        fail("usage: sandbox COMMAND")
    command, rest = args[0], args[1:]
    if command == "version":
        print("github.com/docker/sandboxes/cli-plugin v0.7.1 0123abc" if cli == "docker" else "sbx version v0.43.0 (stand-in)")
    elif command == "create":
        create(cli, rest)
    elif command == "exec":
        exec_(cli, rest)
    elif command == "ls":
        ls(cli, rest)
    elif command == "rm":
        rm(cli, rest)
    elif command == "stop":
        stop(cli, rest)
    else:
        fail(f"unknown command \"{command}\" for \"{'docker sandbox' if cli == 'docker' else 'sbx'}\"")


if __name__ == "__main__":
    main()
