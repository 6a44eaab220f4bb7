#!/usr/bin/env bash
# Installs the orchestrator binary for the composite action (action.yml).
#
#   version ""      the version in the action's own Cargo.toml (the action and binary match)
#   version X.Y.Z   that release (a leading "v" is accepted)
#   version source  build the action's own source with cargo
#
# A release asset is orchestrator-<target>.tar.gz with orchestrator-<target>.tar.gz.sha256 beside
# it, under $GITHUB_SERVER_URL/<repository>/releases/download/v<version>/. A checksum that does
# not match stops the job; a missing asset (or no network) falls back to building from source.
# The binary lands in <tool cache>/orchestrator/<version>/<target>/, which actions/cache keeps
# between runs; a binary already there is used as it is.
#
# The releases are the action's own repository's, found in this order (inside a composite action
# `github.action_repository` and GITHUB_ACTION_REPOSITORY are often empty: actions/runner#2525):
#   1. RELEASE_REPOSITORY or GITHUB_ACTION_REPOSITORY, when the runner filled them in;
#   2. the action's folder, which the runner names <work>/_actions/OWNER/REPO/REF;
#   3. for a local action (`uses: ./…`), its checkout's `origin` remote on this server, or the
#      workflow's repository when the action is the workspace itself;
#   4. `repository` in the action's own Cargo.toml.
# Nothing found: no download (never the user's repository by guess); a build from source.
#
# Environment: INPUT_VERSION, ACTION_PATH, RELEASE_REPOSITORY, GITHUB_ACTION_REPOSITORY,
# GITHUB_ACTION_REF, GITHUB_REPOSITORY, GITHUB_WORKSPACE, GITHUB_SERVER_URL, RUNNER_TOOL_CACHE,
# RUNNER_OS, RUNNER_ARCH; writes `path`, `version`, `source` (cache, release, build),
# `repository` and `ref` to $GITHUB_OUTPUT and the folder to $GITHUB_PATH.
set -euo pipefail

fail() { echo "::error title=orchestrator install::$*" >&2; exit 1; }

action_path=${ACTION_PATH:?ACTION_PATH is not set}
requested=${INPUT_VERSION:-}
requested=${requested#v}
own_version=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$action_path/Cargo.toml" | head -n 1)
[ -n "$own_version" ] || fail "cannot read the version from $action_path/Cargo.toml"
case "$requested" in
  "") version=$own_version ;;
  source) version="$own_version-source" ;;
  *)
    [[ "$requested" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] \
      || fail "version '$INPUT_VERSION' is not a release version (X.Y.Z), 'source', or empty"
    version=$requested ;;
esac

os=${RUNNER_OS:-$(uname -s)}
arch=${RUNNER_ARCH:-$(uname -m)}
case "$os/$arch" in
  Linux/X64|Linux/x86_64) target=x86_64-unknown-linux-gnu ;;
  Linux/ARM64|Linux/aarch64) target=aarch64-unknown-linux-gnu ;;
  macOS/ARM64|Darwin/arm64) target=aarch64-apple-darwin ;;
  macOS/X64|Darwin/x86_64) target=x86_64-apple-darwin ;;
  *) fail "no orchestrator build for $os on $arch (Linux and macOS on x64 or ARM64 are supported)" ;;
esac

dir="${RUNNER_TOOL_CACHE:-${HOME}/.cache}/orchestrator/$version/$target"
bin="$dir/orchestrator"

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d ' ' -f 1
  else shasum -a 256 "$1" | cut -d ' ' -f 1; fi
}

build_from_source() {
  command -v cargo >/dev/null || fail "no release asset to download and no cargo to build from source; install Rust (e.g. dtolnay/rust-toolchain) or use a released version"
  echo "building orchestrator $own_version from $action_path"
  cargo build --release --locked --manifest-path "$action_path/Cargo.toml"
  local built="${CARGO_TARGET_DIR:-$action_path/target}/release/orchestrator"
  [ -x "$built" ] || fail "cargo finished but $built is missing"
  mkdir -p "$dir"
  cp "$built" "$bin.tmp" && mv "$bin.tmp" "$bin"
}

is_repository() { [[ "$1" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]]; }

# OWNER/REPO of a GitHub URL on $GITHUB_SERVER_URL (https or ssh form), else nothing.
repository_of_url() {
  local url=${1%.git} server=${GITHUB_SERVER_URL:-https://github.com}
  local host=${server#*://}
  host=${host%/}
  local r=""
  case "$url" in
    "${server%/}"/*) r=${url#"${server%/}"/} ;;
    git@"$host":*) r=${url#git@"$host":} ;;
    ssh://git@"$host"/*) r=${url#ssh://git@"$host"/} ;;
  esac
  if is_repository "$r"; then echo "$r"; fi
}

# Sets `repository`, `action_ref` and `found_by`; returns 1 when the action's repository is unknown.
resolve_repository() {
  repository="" action_ref=${GITHUB_ACTION_REF:-} found_by=""
  local candidate
  for candidate in "${RELEASE_REPOSITORY:-}" "${GITHUB_ACTION_REPOSITORY:-}"; do
    if [ -n "$candidate" ] && is_repository "$candidate"; then
      repository=$candidate found_by="the runner's action variables"; return 0
    fi
  done
  local real
  real=$(cd "$action_path" && pwd -P)
  case "$real" in
    */_actions/*/*/*)
      local rest=${real##*/_actions/}
      local owner=${rest%%/*}
      rest=${rest#*/}
      local name=${rest%%/*}
      if is_repository "$owner/$name"; then
        repository="$owner/$name" found_by="the action's folder ($real)"
        [ -n "$action_ref" ] || action_ref=${rest#*/}
        return 0
      fi ;;
  esac
  local remote
  remote=$(git -C "$real" config --get remote.origin.url 2>/dev/null || true)
  if [ -n "$remote" ] && [ -n "$(repository_of_url "$remote")" ]; then
    repository=$(repository_of_url "$remote") found_by="the action checkout's origin remote"; return 0
  fi
  if [ -n "${GITHUB_WORKSPACE:-}" ] && [ -n "${GITHUB_REPOSITORY:-}" ] \
     && [ "$real" = "$(cd "$GITHUB_WORKSPACE" 2>/dev/null && pwd -P)" ] && is_repository "$GITHUB_REPOSITORY"; then
    repository=$GITHUB_REPOSITORY found_by="a local action in the workflow's repository"; return 0
  fi
  local url
  url=$(sed -n 's/^repository = "\([^"]*\)"$/\1/p' "$action_path/Cargo.toml" | head -n 1)
  if [ -n "$url" ] && [ -n "$(repository_of_url "$url")" ]; then
    repository=$(repository_of_url "$url") found_by="the action's Cargo.toml"; return 0
  fi
  return 1
}

# Fetch the release asset; returns 1 when there is none (so the caller builds instead).
download_release() {
  local repo=$repository
  if [ -z "$repo" ]; then
    echo "::warning title=orchestrator install::cannot tell which repository this action comes from (no GITHUB_ACTION_REPOSITORY, the action's folder $action_path is not <work>/_actions/OWNER/REPO/REF, no repository in its Cargo.toml); building from source instead of downloading a release"
    return 1
  fi
  echo "release repository: $repo${action_ref:+ (action ref $action_ref)}, from $found_by"
  local server=${GITHUB_SERVER_URL:-https://github.com}
  local asset="orchestrator-$target.tar.gz"
  local url="${server%/}/$repo/releases/download/v$version/$asset"
  local tmp
  tmp=$(mktemp -d)
  echo "downloading $url"
  if ! curl -fsSL --retry 3 --retry-delay 2 -o "$tmp/$asset" "$url"; then
    echo "no release asset at $url"
    rm -rf "$tmp"
    return 1
  fi
  curl -fsSL --retry 3 --retry-delay 2 -o "$tmp/$asset.sha256" "$url.sha256" \
    || { rm -rf "$tmp"; fail "the release has $asset but no $asset.sha256 to check it against"; }
  local expected actual
  expected=$(cut -d ' ' -f 1 < "$tmp/$asset.sha256" | tr -d '[:space:]')
  actual=$(sha256_of "$tmp/$asset")
  if [ "$expected" != "$actual" ]; then
    rm -rf "$tmp"
    fail "checksum mismatch for $url: expected $expected, got $actual; not installing it"
  fi
  mkdir "$tmp/x"
  tar -xzf "$tmp/$asset" -C "$tmp/x" || { rm -rf "$tmp"; fail "$asset is not a readable archive"; }
  # Only regular files and folders: a symlink (or device, FIFO) in the archive points at
  # something the checksum never covered.
  local odd
  odd=$(find "$tmp/x" ! -type f ! -type d -print | head -n 1)
  [ -z "$odd" ] || { rm -rf "$tmp"; fail "$asset holds a symlink or special file (${odd#"$tmp/x/"}); not installing it"; }
  [ -f "$tmp/x/orchestrator" ] || { rm -rf "$tmp"; fail "$asset holds no 'orchestrator' binary"; }
  mkdir -p "$dir"
  install -m 0755 "$tmp/x/orchestrator" "$bin.tmp" && mv "$bin.tmp" "$bin"
  rm -rf "$tmp"
  echo "checksum ok ($actual)"
}

repository="" action_ref="" found_by=""
resolve_repository || true

if [ "$requested" != source ] && [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  source=cache
  echo "using $bin"
elif [ "$requested" != source ] && download_release; then
  source=release
else
  [ "$requested" = source ] || echo "falling back to building from source"
  build_from_source
  source=build
fi

"$bin" --version
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  { echo "path=$bin"; echo "version=$version"; echo "source=$source"
    echo "repository=$repository"; echo "ref=$action_ref"; } >> "$GITHUB_OUTPUT"
fi
if [ -n "${GITHUB_PATH:-}" ]; then echo "$dir" >> "$GITHUB_PATH"; fi
