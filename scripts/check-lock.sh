#!/usr/bin/env bash
# `make check-lock`: requirements.lock is what `make lock` would write from pyproject.toml, and on
# each supported platform it installs as wheels only and lacks nothing. Needs PyPI's metadata
# (uv's cache serves repeats); installs nothing. Usage: scripts/check-lock.sh <uv>
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${1:-.venv/bin/uv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. Current: re-resolving keeps every pin (the lock is its own preference) and adds nothing.
cp requirements.lock "$tmp/lock"
"$uv" pip compile -q pyproject.toml --extra dev --universal --python-version 3.11 --no-sources \
  --custom-compile-command "make lock" -o "$tmp/lock"
if ! diff -u requirements.lock "$tmp/lock" >"$tmp/diff"; then
  cat "$tmp/diff"
  echo "check-lock: requirements.lock is stale for pyproject.toml; run make lock and commit it" >&2
  exit 1
fi

# 2. Per platform: the lock's entries whose markers hold there (--no-deps) must be exactly what a
#    full resolution of them gives (nothing missing), with a wheel for each (--only-binary).
#    macOS: torch 2.15's arm64 wheels are tagged macosx_14_0, so the target is macOS 14.
for platform in x86_64-manylinux_2_28 aarch64-manylinux_2_28 aarch64-apple-darwin; do
  opts=(-q --python-platform "$platform" --python-version 3.11 --only-binary :all: --no-header --no-annotate)
  MACOSX_DEPLOYMENT_TARGET=14.0 "$uv" pip compile "${opts[@]}" --no-deps requirements.lock -o "$tmp/$platform.pinned"
  if ! MACOSX_DEPLOYMENT_TARGET=14.0 "$uv" pip compile "${opts[@]}" requirements.lock -o "$tmp/$platform.resolved"; then
    echo "check-lock: requirements.lock does not install on $platform (above)" >&2
    exit 1
  fi
  if ! diff -u "$tmp/$platform.pinned" "$tmp/$platform.resolved"; then
    echo "check-lock: on $platform the lock lacks the packages marked + above; run make lock" >&2
    exit 1
  fi
  echo "check-lock: $platform, Python 3.11: $(grep -c '==' "$tmp/$platform.pinned") wheels, complete"
done
