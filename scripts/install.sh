#!/bin/sh
# Installs a released orchestrator binary, with its shell completions and man pages:
#
#   curl -fsSL https://github.com/OWNER/orchestrator/releases/latest/download/install.sh | sh
#   sh install.sh [--version X.Y.Z] [--to DIR] [--repo OWNER/REPO] [--base-url URL]
#                 [--target TRIPLE] [--share DIR] [--no-completions] [--no-man]
#
# It picks the release asset for this OS and architecture (Linux: the static musl build, which
# runs on any distribution), downloads it and its .sha256 file, and installs nothing unless the
# checksum matches. Then: the binary into --to (default ~/.local/bin), completions for bash, zsh
# and fish and the man pages under --share (default ${XDG_DATA_HOME:-~/.local/share}).
#
#   --version   a release (X.Y.Z or vX.Y.Z); default: the latest
#   --repo      the GitHub repository of the releases (the published script knows its own)
#   --base-url  where releases are, instead of https://github.com/REPO/releases (a mirror, GitHub
#               Enterprise Server): assets are read from BASE/download/vX.Y.Z/ASSET, or from
#               BASE/latest/download/ASSET for the latest
# Environment: ORCHESTRATOR_VERSION, ORCHESTRATOR_INSTALL_DIR, ORCHESTRATOR_REPOSITORY,
# ORCHESTRATOR_BASE_URL set the same defaults.
set -eu

# Set by the release workflow in the copy attached to each release.
default_repository=

version=${ORCHESTRATOR_VERSION:-latest}
to=${ORCHESTRATOR_INSTALL_DIR:-${HOME:?HOME is not set}/.local/bin}
repo=${ORCHESTRATOR_REPOSITORY:-$default_repository}
base=${ORCHESTRATOR_BASE_URL:-}
target=
share=${XDG_DATA_HOME:-$HOME/.local/share}
completions=yes
man=yes

say() { printf 'orchestrator install: %s\n' "$*"; }
die() { printf 'orchestrator install: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --version) [ $# -ge 2 ] || die "--version needs a value"; version=$2; shift 2 ;;
    --to) [ $# -ge 2 ] || die "--to needs a folder"; to=$2; shift 2 ;;
    --repo) [ $# -ge 2 ] || die "--repo needs OWNER/REPO"; repo=$2; shift 2 ;;
    --base-url) [ $# -ge 2 ] || die "--base-url needs a URL"; base=$2; shift 2 ;;
    --target) [ $# -ge 2 ] || die "--target needs a target triple"; target=$2; shift 2 ;;
    --share) [ $# -ge 2 ] || die "--share needs a folder"; share=$2; shift 2 ;;
    --no-completions) completions=no; shift ;;
    --no-man) man=no; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

case "$version" in
  latest) ;;
  v*) version=${version#v} ;;
esac
if [ "$version" != latest ]; then
  printf '%s\n' "$version" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$' \
    || die "version '$version' is not X.Y.Z or latest"
fi

if [ -z "$base" ]; then
  [ -n "$repo" ] || die "which repository are the releases in? pass --repo OWNER/REPO (or use the install.sh attached to a release)"
  printf '%s\n' "$repo" | grep -Eq '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$' || die "--repo must be OWNER/REPO, got '$repo'"
  base="https://github.com/$repo/releases"
fi
base=${base%/}

if [ -z "$target" ]; then
  os=$(uname -s)
  arch=$(uname -m)
  case "$os/$arch" in
    Linux/x86_64|Linux/amd64) target=x86_64-unknown-linux-musl ;;
    Linux/aarch64|Linux/arm64) target=aarch64-unknown-linux-musl ;;
    Darwin/arm64|Darwin/aarch64) target=aarch64-apple-darwin ;;
    Darwin/x86_64) target=x86_64-apple-darwin ;;
    *) die "no release build for $os on $arch (Linux and macOS on x86_64 or ARM64); build from source: cargo install --locked --git <repository>" ;;
  esac
fi
case "$target" in
  x86_64-unknown-linux-musl|aarch64-unknown-linux-musl|x86_64-unknown-linux-gnu|aarch64-unknown-linux-gnu|aarch64-apple-darwin|x86_64-apple-darwin) ;;
  *) die "no release build for target '$target'" ;;
esac

asset="orchestrator-$target.tar.gz"
if [ "$version" = latest ]; then url="$base/latest/download/$asset"; else url="$base/download/v$version/$asset"; fi

fetch() { # URL FILE
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --proto '=https,http' --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    die "neither curl nor wget is installed"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d ' ' -f 1
  else die "neither sha256sum nor shasum is installed: cannot check the download"; fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

say "downloading $url"
fetch "$url" "$tmp/$asset" || die "cannot download $url"
fetch "$url.sha256" "$tmp/$asset.sha256" || die "cannot download $url.sha256 to check the download against"
expected=$(cut -d ' ' -f 1 < "$tmp/$asset.sha256" | tr -d '[:space:]')
actual=$(sha256_of "$tmp/$asset")
printf '%s\n' "$expected" | grep -Eq '^[0-9a-f]{64}$' || die "$url.sha256 holds no sha256 checksum"
[ "$expected" = "$actual" ] || die "checksum mismatch for $asset: expected $expected, got $actual; nothing was installed"
say "checksum ok ($actual)"

mkdir "$tmp/x"
tar -xzf "$tmp/$asset" -C "$tmp/x" || die "$asset is not a readable archive"
# Only regular files and folders: a symlink (or device, FIFO) in the archive would point at
# something the checksum never covered, outside the archive.
odd=$(find "$tmp/x" ! -type f ! -type d -print | head -n 1)
[ -z "$odd" ] || die "$asset holds a symlink or special file (${odd#"$tmp/x/"}); nothing was installed"
[ -f "$tmp/x/orchestrator" ] || die "$asset holds no 'orchestrator' binary"
chmod 0755 "$tmp/x/orchestrator"
got=$("$tmp/x/orchestrator" --version 2>/dev/null) || die "the downloaded binary does not run on this machine ($target)"

mkdir -p "$to"
cp "$tmp/x/orchestrator" "$to/.orchestrator.new.$$"
mv -f "$to/.orchestrator.new.$$" "$to/orchestrator"
say "installed $got as $to/orchestrator"

put() { # SOURCE DEST
  mkdir -p "$(dirname "$2")" && cp "$1" "$2.new.$$" && mv -f "$2.new.$$" "$2"
}

if [ "$completions" = yes ]; then
  c="$tmp/x/completions"
  if [ ! -d "$c" ]; then
    mkdir -p "$c"
    for shell in bash zsh fish; do "$to/orchestrator" completions "$shell" --dir "$c" >/dev/null; done
  fi
  put "$c/orchestrator.bash" "$share/bash-completion/completions/orchestrator"
  put "$c/_orchestrator" "$share/zsh/site-functions/_orchestrator"
  put "$c/orchestrator.fish" "${XDG_CONFIG_HOME:-$HOME/.config}/fish/completions/orchestrator.fish"
  say "completions: bash ($share/bash-completion/completions), zsh ($share/zsh/site-functions; add it to \$fpath), fish"
fi
if [ "$man" = yes ]; then
  m="$tmp/x/man"
  if [ ! -d "$m" ]; then mkdir -p "$m"; "$to/orchestrator" man --dir "$m" >/dev/null; fi
  for page in "$m"/*.1; do put "$page" "$share/man/man1/$(basename "$page")"; done
  say "man pages: $share/man/man1 (man orchestrator)"
fi

case ":${PATH:-}:" in
  *":$to:"*) ;;
  *) say "note: $to is not on your PATH; add it: export PATH=\"$to:\$PATH\"" ;;
esac
