/// The runner image users build: `node:22-slim` with Claude Code, a non-root `agent`
/// user and onboarding marked done. The repository's `Dockerfile` is this text; a test
/// keeps the two identical, so `ccdeck image build` works from any directory.
public enum RunnerImage {
    public static let defaultTag = "cpm-runner:demo"
    /// The `agent` user's uid and gid inside the image (the node image's uid 1000, renamed).
    public static let agentUID = 1000

    public static let dockerfile = """
        # ccdeck runner image: Claude Code, headless, as a non-root user.
        # Built by `ccdeck image build` (this text is compiled into ccdeck; keep the two equal).
        FROM node:22-slim

        ARG CLAUDE_CODE_VERSION=latest

        # bash for the Bash tool, git and certificates for real work.
        RUN apt-get update \\
         && apt-get install -y --no-install-recommends bash ca-certificates git \\
         && rm -rf /var/lib/apt/lists/*

        RUN npm install -g @anthropic-ai/claude-code@${CLAUDE_CODE_VERSION} \\
         && npm cache clean --force

        # The node image's uid 1000 user becomes `agent`: uid 1000 matches most hosts' first user,
        # so the mounted workspace stays writable without chmod.
        RUN groupmod -n agent node \\
         && usermod -l agent -d /home/agent -m node \\
         && mkdir -p /workspace \\
         && chown agent:agent /workspace

        USER agent
        ENV HOME=/home/agent
        # The interactive UI (what attach shows) ignores CLAUDE_CODE_OAUTH_TOKEN until onboarding is done.
        RUN echo '{"hasCompletedOnboarding": true}' > /home/agent/.claude.json

        WORKDIR /workspace
        ENTRYPOINT ["claude", "-p", "--dangerously-skip-permissions"]

        """

    /// What a system container (Incus) needs from an application image: an init. It brings up
    /// loopback (proxy devices listen there) when `ip` is there, then waits, ending on SIGTERM or
    /// SIGPWR (`incus stop`). `ccdeck image build --runtime incus` adds it as /ccdeck-init.
    public static let incusInit = """
        #!/bin/sh
        # ccdeck's init for system containers: bring up loopback (proxy devices listen there), then wait.
        ip link set lo up 2>/dev/null || true
        trap 'exit 0' TERM INT PWR
        while :; do sleep 3600 & wait $!; done

        """
}
