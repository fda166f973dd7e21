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
