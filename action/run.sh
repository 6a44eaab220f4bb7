#!/usr/bin/env bash
# Runs one orchestrator command for the composite action (action.yml). Inputs arrive as
# environment variables, never spliced into the script, so no input can inject shell code.
#
# Exit status: the command's, except that stopping at an approval gate (4) is a success: the
# step's `awaiting-approval` output says the run waits, and a later workflow run resumes it.
set -uo pipefail

err() { echo "::error title=orchestrator action::$*"; exit 2; }

bin=${ORCHESTRATOR_BIN:-orchestrator}
# Split the command as a shell would split words and quotes, without expanding anything:
# xargs understands '…', "…" and backslashes, and runs nothing but printf.
words=()
[ -n "${INPUT_COMMAND//[[:space:]]/}" ] || err "the 'command' input is empty (for example: run start, run resume, run phase)"
if ! split=$(printf '%s' "${INPUT_COMMAND:-}" | xargs printf '%s\0' 2>&1 | tr '\0' '\036'); then
  err "the 'command' input has an unmatched quote: ${INPUT_COMMAND}"
fi
while IFS= read -r -d $'\036' w; do words+=("$w"); done <<< "$split"
[ ${#words[@]} -gt 0 ] || err "the 'command' input is empty (for example: run start, run resume, run phase)"

args=(--config "${INPUT_CONFIG:-.claude/config.yaml}" "${words[@]}")
sub="${words[0]} ${words[1]:-}"

if [ -n "${INPUT_PHASE:-}" ]; then
  case "$sub" in
    "run phase") args+=("$INPUT_PHASE") ;;
    "run start") args+=(--phase "$INPUT_PHASE") ;;
    "run approve"|"run reject"|"run retry"|"run rollback"|"run diff") args+=(--phase "$INPUT_PHASE") ;;
    *) err "the 'phase' input applies to run start, phase, approve, reject, retry, rollback and diff, not to '${words[*]}'" ;;
  esac
fi

runs_agents=false
case "$sub" in "run start"|"run next"|"run phase"|"run resume"|"run approve"|"run retry") runs_agents=true ;; esac

case "${INPUT_DRY_RUN:-false}" in
  true) if $runs_agents; then args+=(--dry-run); else err "'dry-run: true' applies to commands that run agents, not to '${words[*]}'"; fi ;;
  false) ;;
  *) err "the 'dry-run' input must be true or false, got '${INPUT_DRY_RUN}'" ;;
esac

case "${INPUT_WAIT:-}" in
  "") ;;
  event|poll) if $runs_agents; then args+=(--wait "$INPUT_WAIT"); fi ;;
  *) err "the 'wait' input must be event, poll or empty (the config's consensus.wait), got '${INPUT_WAIT}'" ;;
esac

cd "${INPUT_WORKING_DIRECTORY:-.}" || err "working-directory '${INPUT_WORKING_DIRECTORY}' does not exist"
printf 'orchestrator'; printf ' %q' "${args[@]}"; echo
"$bin" "${args[@]}"
code=$?
if [ "$code" -eq 4 ]; then
  echo "the run waits at an approval gate (awaiting-approval=true)"
  exit 0
fi
exit "$code"
