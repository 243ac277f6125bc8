#!/usr/bin/env bash
# A stand-in for the GitHub Actions runner's config.sh (actions/runner), for tests: same
# arguments, same console lines, same exit codes as far as miglet relies on them. It talks to
# no GitHub. See README.md beside it for where the lines come from.
#   config.sh --url URL --token TOKEN [--name N] [--labels a,b] [--runnergroup G]
#             [--unattended] [--replace] [--ephemeral]
#   config.sh remove --token TOKEN
# The token "bad-token" is refused the way GitHub refuses an expired registration token.
# Every invocation is appended to _fake/invocations.log (tests check arguments there).
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR/_fake"
echo "config.sh $*" >>"$DIR/_fake/invocations.log"

banner() {
  cat <<'B'

--------------------------------------------------------------------------------
|        ____ _ _   _   _       _          _        _   _                      |
|       / ___(_) |_| | | |_   _| |__      / \   ___| |_(_) ___  _ __  ___      |
|      | |  _| | __| |_| | | | | '_ \    / _ \ / __| __| |/ _ \| '_ \/ __|     |
|      | |_| | | |_|  _  | |_| | |_) |  / ___ \ (__| |_| | (_) | | | \__ \     |
|       \____|_|\__|_| |_|\__,_|_.__/  /_/   \_\___|\__|_|\___/|_| |_|___/     |
|                                                                              |
|                       Self-hosted runner registration                        |
|                                                                              |
--------------------------------------------------------------------------------
B
}

if [[ ${1:-} == remove ]]; then
  shift
  token=""
  while (($#)); do case $1 in --token) token=$2; shift 2 ;; *) shift ;; esac; done
  banner
  echo
  echo "# Runner removal"
  echo
  if [[ -z $token || $token == bad-token ]]; then
    echo "Failed: Removing runner from the server"
    echo "Response status code does not indicate success: 404 (Not Found)."
    exit 1
  fi
  echo "√ Runner removed successfully"
  rm -f "$DIR/.runner" "$DIR/.credentials"
  echo "√ Removed .credentials"
  echo "√ Removed .runner"
  exit 0
fi

url="" token="" name=$(hostname) labels="" group="Default" ephemeral=false
while (($#)); do
  case $1 in
    --url) url=$2; shift 2 ;;
    --token) token=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    --runnergroup) group=$2; shift 2 ;;
    --ephemeral) ephemeral=true; shift ;;
    --unattended|--replace|--disableupdate) shift ;;
    *) echo "Unrecognized command-line input arguments: '$1'. For usage refer to: .\\config.cmd --help or ./config.sh --help"; exit 1 ;;
  esac
done
banner
echo
echo "# Authentication"
echo
if [[ -z $url || -z $token ]]; then
  echo "Invalid configuration provided for url. Terminating unattended configuration."
  exit 1
fi
if [[ $token == bad-token ]]; then
  echo "Http response code: NotFound from 'POST https://api.github.com/actions/runner-registration'"
  echo "{\"message\":\"Not Found\",\"documentation_url\":\"https://docs.github.com/rest\"}"
  echo "Response status code does not indicate success: 404 (Not Found)."
  exit 1
fi
echo
echo "√ Connected to GitHub"
echo
echo "# Runner Registration"
echo
echo
echo "√ Runner successfully added"
echo "√ Runner connection is good"
echo
echo "# Runner settings"
echo
echo
echo "√ Settings Saved."
echo
printf '{"agentName":"%s","labels":"%s","runnerGroup":"%s","ephemeral":%s,"gitHubUrl":"%s"}\n' \
  "$name" "$labels" "$group" "$ephemeral" "$url" >"$DIR/.runner"
echo "token-for-$name" >"$DIR/.credentials"
exit 0
