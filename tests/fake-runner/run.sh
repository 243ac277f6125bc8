#!/usr/bin/env bash
# A stand-in for the GitHub Actions runner's run.sh (actions/runner), for tests. It prints the
# runner's own console lines (README.md beside it) and takes orders from a test through the
# FIFO _fake/control, one per line:
#   job NAME         -> "<ts>: Running job: NAME"
#   finish RESULT    -> "<ts>: Job NAME completed with result: RESULT"; an ephemeral runner
#                       then exits 0, as the real one does after its one job
#   crash CODE       -> exits with CODE at once
#   hang             -> ignores SIGINT from now on (so only SIGKILL stops it)
# SIGINT (Ctrl-C, what miglet sends to stop it) -> "Exiting..." and exit 0.
#   run.sh [--jitconfig BASE64]
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
FAKE=$DIR/_fake
mkdir -p "$FAKE"
echo "run.sh $*" >>"$FAKE/invocations.log"
ephemeral=false
if [[ ${1:-} == --jitconfig ]]; then
  [[ -n ${2:-} ]] || { echo "Error: --jitconfig needs a value"; exit 1; }
  ephemeral=true  # JIT runners are always ephemeral
elif [[ ! -f $DIR/.runner ]]; then
  echo "Not configured. Run config.(sh/cmd) to configure the runner."
  exit 2
else
  grep -q '"ephemeral":true' "$DIR/.runner" && ephemeral=true
fi

ts() { date -u '+%Y-%m-%d %H:%M:%SZ'; }
[[ -p $FAKE/control ]] || mkfifo "$FAKE/control"
rm -f "$FAKE/hang"

echo "√ Connected to GitHub"
echo
echo "Current runner version: '2.321.0'"
echo "$(ts): Listening for Jobs"
echo $$ >"$FAKE/run.pid"

# The orders are read by a background child, so that this shell sits in `wait`, which a
# trapped SIGINT interrupts (a blocked `read` would not be, and a read with a timeout can lose
# a partly read line). A background child of a non-interactive shell ignores SIGINT, so only
# this shell reacts to it.
(
  exec 3<>"$FAKE/control"  # read-write: opening never blocks and reads never see EOF
  job=""
  while read -r cmd arg <&3; do
    case $cmd in
      job) job=$arg; echo "$(ts): Running job: $job" ;;
      finish)
        echo "$(ts): Job $job completed with result: $arg"
        job=""
        if [[ $ephemeral == true ]]; then
          echo "$(ts): Runner execution has been finished, exiting because it is an ephemeral runner."
          exit 0
        fi
        ;;
      crash) echo "An error occurred: simulated crash"; exit "${arg:-1}" ;;
      hang) touch "$FAKE/hang" ;;
    esac
  done
) &
reader=$!

on_int() {
  [[ -e $FAKE/hang ]] && return  # told to hang: only SIGKILL stops it now
  echo "Exiting..."
  kill "$reader" 2>/dev/null
  exit 0
}
trap on_int INT
while true; do
  wait "$reader"
  rc=$?
  # wait returns >128 when a trapped signal interrupted it; the child is then still running.
  if kill -0 "$reader" 2>/dev/null; then continue; fi
  exit "$rc"
done
