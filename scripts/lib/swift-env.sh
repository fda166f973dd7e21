# Sourced by the scripts: finds the Swift toolchain and the C libraries ccdeck builds against.
# shellcheck shell=bash

if ! command -v swift >/dev/null 2>&1; then
  for dir in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
    [ -x "$dir/swift" ] && export PATH="$dir:$PATH" && break
  done
fi
if ! command -v swift >/dev/null 2>&1; then
  echo "ccdeck: error: no Swift toolchain found (need Swift 6.0 or later on PATH; see swift.org/install)" >&2
  exit 2
fi

# The dashboard links libncursesw: its headers come from Debian's libncurses-dev.
if [ ! -e /usr/include/ncursesw/curses.h ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ccdeck: installing libncurses-dev (the dashboard's terminal library)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libncurses-dev pkg-config; } >&2 \
      || { echo "ccdeck: error: could not install libncurses-dev" >&2; exit 2; }
  else
    echo "ccdeck: error: libncurses-dev is missing (sudo apt-get install libncurses-dev)" >&2
    exit 2
  fi
fi

# Local mode (`--mode local`) sandboxes the host's claude with bubblewrap: no container engine
# needed. Best effort: without it, local mode says it cannot run and the others still work.
if ! command -v bwrap >/dev/null 2>&1 && [ "$(uname -s)" = Linux ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ccdeck: installing bubblewrap (local mode's sandbox)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } >&2 \
      || echo "ccdeck: warning: could not install bubblewrap; local mode will say it cannot run" >&2
  else
    echo "ccdeck: note: bubblewrap is missing, so local mode cannot run (sudo apt-get install bubblewrap)" >&2
  fi
fi

# What each run changed in its workspace is worked out with git (a snapshot at the start, a
# diff at the end). Best effort: without it, runs record that their changes are not known.
if ! command -v git >/dev/null 2>&1 && [ "$(uname -s)" = Linux ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ccdeck: installing git (to show what each run changed)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git; } >&2 \
      || echo "ccdeck: warning: could not install git; runs will not record what they changed" >&2
  else
    echo "ccdeck: note: git is missing, so runs cannot record what they changed (sudo apt-get install git)" >&2
  fi
fi
