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
stopping=0
trap 'stopping=1' INT
[[ -p $FAKE/control ]] || mkfifo "$FAKE/control"
exec 3<>"$FAKE/control"  # read-write: opening never blocks and reads never see EOF

echo "√ Connected to GitHub"
echo
echo "Current runner version: '2.321.0'"
echo "$(ts): Listening for Jobs"
echo $$ >"$FAKE/run.pid"

job=""
while true; do
  if ((stopping)); then
    echo "Exiting..."
    exit 0
  fi
  # bash does not interrupt a blocked `read` for a trapped SIGINT, so read with a timeout and
  # look at the flag between reads.
  if ! read -r -t 0.1 cmd arg <&3; then
    continue
  fi
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
    hang) trap '' INT ;;
  esac
done
