#!/usr/bin/env bash
# Packs a built orchestrator binary as a release asset, as release.yml publishes it:
#
#   scripts/package.sh TARGET BINARY OUTDIR
#
# writes OUTDIR/orchestrator-TARGET.tar.gz and OUTDIR/orchestrator-TARGET.tar.gz.sha256. The
# archive holds, at its top level: orchestrator, README.md, LICENSE, CHANGELOG.md,
# completions/ (bash, zsh, fish, PowerShell, Elvish; written by the binary itself) and man/
# (orchestrator.1 and a page per subcommand). The binary must run here (a native build).
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: scripts/package.sh TARGET BINARY OUTDIR" >&2; exit 2; }
target=$1 bin=$2 out=$3
root=$(cd "$(dirname "$0")/.." && pwd)
[[ "$target" =~ ^[a-z0-9_]+-[a-z0-9_]+-[a-z0-9_]+(-[a-z0-9_]+)?$ ]] || { echo "error: '$target' is not a target triple" >&2; exit 2; }
[ -x "$bin" ] || { echo "error: $bin is not an executable binary" >&2; exit 2; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin" "$stage/orchestrator"
cp "$root/README.md" "$root/LICENSE" "$root/CHANGELOG.md" "$stage/"
mkdir "$stage/completions" "$stage/man"
for shell in bash zsh fish powershell elvish; do
  "$stage/orchestrator" completions "$shell" --dir "$stage/completions"
done
"$stage/orchestrator" man --dir "$stage/man"

mkdir -p "$out"
asset="orchestrator-$target.tar.gz"
tar -czf "$out/$asset" -C "$stage" .
cd "$out"
if command -v sha256sum >/dev/null; then sha256sum "$asset" > "$asset.sha256"; else shasum -a 256 "$asset" > "$asset.sha256"; fi
cat "$asset.sha256"
