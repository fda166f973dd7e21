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

# C libraries ccdeck links, from Debian: the dashboard's libncursesw, the run index's libsqlite3.
#   required_lib HEADER PACKAGE "what it is for"
required_lib() {
  [ -e "$1" ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ccdeck: installing $2 ($3)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" pkg-config; } >&2 \
      || { echo "ccdeck: error: could not install $2" >&2; exit 2; }
  else
    echo "ccdeck: error: $2 is missing (sudo apt-get install $2)" >&2
    exit 2
  fi
}
required_lib /usr/include/ncursesw/curses.h libncurses-dev "the dashboard's terminal library"
required_lib /usr/include/sqlite3.h libsqlite3-dev "the run index's database"

# Helpers ccdeck uses when they are there, installed where they are missing (Debian, as root).
# Best effort: without one, the feature that needs it says so and the rest still works.
#   optional_tool COMMAND PACKAGE "what it is for" "what happens without it"
optional_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$(uname -s)" = Linux ] || return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ccdeck: installing $2 ($3)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; } >&2 \
      || echo "ccdeck: warning: could not install $2; $4" >&2
  else
    echo "ccdeck: note: $2 is missing, so $4 (sudo apt-get install $2)" >&2
  fi
}

# Local mode (`--mode local`) sandboxes the host's claude with bubblewrap: no container engine needed.
optional_tool bwrap bubblewrap "local mode's sandbox" "local mode cannot run"
# What each run changed in its workspace is worked out with git (a snapshot at the start, a diff at the end).
optional_tool git git "to show what each run changed" "runs cannot record what they changed"
