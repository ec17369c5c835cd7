#!/usr/bin/env bash
# Print the bin directory of a Go toolchain new enough for the native build.
#
#   export PATH="$(scripts/ensure-go.sh):$PATH"
#
# Uses the `go` on PATH when it is >= LAB_GO_VERSION's minor release; otherwise
# fetches the official toolchain module golang.org/toolchain (what GOTOOLCHAIN
# downloads) from the Go module proxy into the cache, once. Debian's golang-go
# (1.19 on bookworm) is too old for the pinned components.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want="$(sed -n 's/^LAB_GO_VERSION=//p' "$ROOT/.env")"
cache="${LAB_CACHE_DIR:-$HOME/.cache/ml-obs-lab}"
min="${want%.*}.0"

if command -v go >/dev/null 2>&1; then
  have="$(go env GOVERSION 2>/dev/null || true)"; have="${have#go}"; have="${have%%[-+ ]*}"
  if [[ -n "$have" && "$(printf '%s\n%s\n' "$min" "$have" | sort -V | head -n1)" == "$min" ]]; then
    dirname "$(command -v go)"; exit 0
  fi
fi

dest="$cache/go-$want"
if [[ ! -x "$dest/bin/go" ]]; then
  arch="$(uname -m)"; case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
  url="${GOPROXY_URL:-https://proxy.golang.org}/golang.org/toolchain/@v/v0.0.1-go$want.linux-$arch.zip"
  echo "ensure-go: fetching Go $want from the Go module proxy" >&2
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  curl -fsSL --retry 3 -o "$tmp/go.zip" "$url" || { echo "ensure-go: could not download $url" >&2; exit 1; }
  (cd "$tmp" && unzip -q go.zip)
  mkdir -p "$cache"
  rm -rf "$dest"
  mv "$tmp/golang.org/toolchain@v0.0.1-go$want.linux-$arch" "$dest"
  chmod +x "$dest/bin/"* "$dest/pkg/tool/"*/* 2>/dev/null || true
fi
echo "$dest/bin"
