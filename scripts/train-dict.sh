#!/usr/bin/env bash
# Trains the zstd dictionary that storage compresses segments with
# (storage/dict/vN.zdict) on segment-shaped samples of the benchmark's
# generator, with zstd's own trainer (Debian's zstd package), which
# compressed better here than klauspost's BuildZstdDict. A new dictionary
# gets a new N and id in storage/segment.go; old segments keep theirs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-storage/dict/v1.zdict}
command -v zstd >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq zstd >/dev/null; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
go run ./cmd/zipq-bench -dict-samples "$dir"
zstd -q --train "$dir"/*.pb --maxdict=65536 --dictID=1 -o "$out"
echo "train-dict: wrote $out ($(stat -c %s "$out") bytes)"
