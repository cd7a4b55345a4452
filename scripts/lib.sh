# Shared by scripts/test, scripts/demo and scripts/moto: where things live, the tool venv, and
# starting/stopping background services so that everything started is stopped, also on failure.
# Source it; it does not run anything by itself.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-tools"
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"

# A persistent target dir outside the checkout, so a fresh clone (CI) does not rebuild the AWS
# SDK from nothing. Falls back to ./target where the cache dir cannot be written.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/connector/target"
  if mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ]; then
    export CARGO_TARGET_DIR="$cache"
  else
    export CARGO_TARGET_DIR="$ROOT/target"
  fi
fi

# The target dir is shared between checkouts (a CI clone, a developer's tree). Registry crates
# are the same in all of them, but cargo names this workspace's own artifacts the same in every
# checkout and trusts file times: after another checkout built them, a file edited here before
# that build looks older than the artifact and is not recompiled. So when the last builder was
# another checkout, drop this workspace's artifacts (not the AWS SDK's) first.
claim_target_dir() {
  local marker="$CARGO_TARGET_DIR/.connector-checkout"
  if [ -f "$marker" ] && [ "$(cat "$marker")" != "$ROOT" ]; then
    say "the build cache was last used by $(cat "$marker"); rebuilding this workspace's crates"
    (cd "$ROOT" && cargo clean --quiet -p connector-core -p connector-adapters -p connector-lambdas -p connectorctl -p connector-tests)
  fi
  mkdir -p "$CARGO_TARGET_DIR" && echo "$ROOT" > "$marker"
}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The venv with moto and cargo-lambda; reinstalled when the requirements file changes.
ensure_tools() {
  local req="$ROOT/scripts/requirements-tools.txt" stamp="$VENV/.requirements"
  if [ ! -x "$VENV/bin/moto_server" ] || ! cmp -s "$req" "$stamp"; then
    say "installing moto and cargo-lambda into $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" || die "pip install failed"
    cp "$req" "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

# tool_venv NAME: a venv .venv-NAME with scripts/requirements-NAME.txt, reinstalled on change.
tool_venv() {
  local venv="$ROOT/.venv-$1" req="$ROOT/scripts/requirements-$1.txt"
  if [ ! -f "$venv/.requirements" ] || ! cmp -s "$req" "$venv/.requirements"; then
    say "installing $1 into $venv"
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" \
      || die "pip install of $1 failed"
    cp "$req" "$venv/.requirements"
  fi
}

# `sam validate --lint`, offline: a region set, no telemetry.
sam_validate() {
  tool_venv sam
  SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" "$ROOT/.venv-sam/bin/sam" validate --lint -t "$1"
}

# checkov without its downloads (this machine reaches no vendor API); skips are in the template.
checkov_scan() {
  tool_venv checkov
  "$ROOT/.venv-checkov/bin/checkov" -f "$1" --skip-download --compact --quiet
}

# PIDs of what this script started, stopped by stop_all (installed as an EXIT trap).
# Kept when lib.sh is sourced again (a generated start file does), so nothing started is forgotten.
declare -p STARTED_PIDS > /dev/null 2>&1 || STARTED_PIDS=()
stop_all() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    # Each service runs in its own process group: stop the group (cargo lambda's children too).
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  STARTED_PIDS=()
}

# start_bg NAME CMD...: runs CMD in its own process group, output appended to .run/NAME.log (a
# service started again keeps the history of its earlier life, e.g. of the failure it restarts after).
start_bg() {
  local name="$1"; shift
  printf '=== %s: started %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >> "$RUN_DIR/$name.log"
  setsid "$@" >> "$RUN_DIR/$name.log" 2>&1 < /dev/null &
  STARTED_PIDS+=("$!")
  echo "$!" > "$RUN_DIR/$name.pid"
}

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http NAME URL SECONDS: waits until URL answers (any HTTP status), showing progress.
wait_http() {
  local name="$1" url="$2" secs="$3" i
  printf '    waiting for %s at %s ' "$name" "$url" >&2
  for i in $(seq $((secs * 5))); do
    if curl -s -o /dev/null --max-time 2 "$url"; then printf ' up\n' >&2; return 0; fi
    [ $((i % 5)) -eq 0 ] && printf '.' >&2
    sleep 0.2
  done
  printf ' gave up after %ss; last lines of its log:\n' "$secs" >&2
  tail -20 "$RUN_DIR/$name.log" >&2
  return 1
}

# Starts moto on a free loopback port and exports the standard AWS environment for it.
start_moto() {
  local port; port="$(free_port)"
  say "starting moto on 127.0.0.1:$port"
  start_bg moto "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
  wait_http moto "http://127.0.0.1:$port/moto-api/" 30 || die "moto did not start"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  # moto's SQS queue URLs use this account id.
  export MOTO_ACCOUNT_ID=123456789012
}

# Starts the fault-injecting proxy (mitmproxy, reverse mode, tests/faults/faults.py) in front of
# moto on a free loopback port and exports FAULTS_URL; after start_moto.
start_faults() {
  tool_venv faults
  local port; port="$(free_port)"
  say "starting the fault proxy on 127.0.0.1:$port (in front of moto)"
  start_bg faults "$ROOT/.venv-faults/bin/mitmdump" --mode "reverse:$AWS_ENDPOINT_URL" \
    --listen-host 127.0.0.1 --listen-port "$port" --set confdir="$RUN_DIR/mitmproxy" \
    -q -s "$ROOT/tests/faults/faults.py"
  wait_http faults "http://127.0.0.1:$port/__faults/counts?target=" 30 || die "the fault proxy did not start"
  export FAULTS_URL="http://127.0.0.1:$port"
}

# Toxiproxy, for faults at the TCP level (a connection that stays open and answers nothing,
# latency, resets): built from its Go module into .tools/ once (about 20 s), then started on a
# free loopback port; its API's URL goes to TOXIPROXY_URL. `toxiproxy_proxy` adds a proxy to it.
TOXIPROXY_VERSION=v2.5.0
start_toxiproxy() {
  local bin="$ROOT/.tools/toxiproxy-$TOXIPROXY_VERSION"
  if [ ! -x "$bin" ]; then
    command -v go > /dev/null || die "Toxiproxy is built with Go, and go is not on PATH"
    say "building Toxiproxy $TOXIPROXY_VERSION into .tools/ (go install)"
    mkdir -p "$ROOT/.tools/gobin"
    GOBIN="$ROOT/.tools/gobin" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" \
      || die "go install of Toxiproxy $TOXIPROXY_VERSION failed"
    mv "$ROOT/.tools/gobin/server" "$bin"
  fi
  local port; port="$(free_port)"
  say "starting Toxiproxy on 127.0.0.1:$port"
  start_bg toxiproxy "$bin" -host 127.0.0.1 -port "$port"
  wait_http toxiproxy "http://127.0.0.1:$port/version" 30 || die "Toxiproxy did not start"
  export TOXIPROXY_URL="http://127.0.0.1:$port"
}

# toxiproxy_proxy NAME LISTEN UPSTREAM: a proxy in Toxiproxy from LISTEN to UPSTREAM (host:port).
toxiproxy_proxy() {
  curl -sf --max-time 5 -X POST "$TOXIPROXY_URL/proxies" -o /dev/null \
    -d "{\"name\": \"$1\", \"listen\": \"$2\", \"upstream\": \"$3\", \"enabled\": true}" \
    || die "Toxiproxy refused the proxy $1 ($2 -> $3)"
}

# stop_named NAME...: stops the services whose pid start_bg wrote to .run/NAME.pid (one started
# again by another process than this script, which STARTED_PIDS does not know).
stop_named() {
  local name pid
  for name in "$@"; do
    [ -f "$RUN_DIR/$name.pid" ] || continue
    pid="$(cat "$RUN_DIR/$name.pid")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$RUN_DIR/$name.pid"
  done
}

# The same proxy in front of the Kafka Connect worker at $CONNECT_URL (slow or failing REST
# calls on a real worker): exports CONNECT_FAULTS_URL.
# start_connect_faults [NAME UPSTREAM]: a fault proxy in front of a Kafka Connect worker
# (CONNECT_URL unless given); its URL goes to CONNECT_FAULTS_URL. Each Connect cluster the tests
# run against needs its own: a test that talks to the worker through the proxy and directly must
# reach the same cluster both ways.
start_connect_faults() {
  local name="${1:-connect-faults}" upstream="${2:-$CONNECT_URL}"
  tool_venv faults
  local port; port="$(free_port)"
  say "starting the fault proxy on 127.0.0.1:$port (in front of Kafka Connect at $upstream)"
  start_bg "$name" "$ROOT/.venv-faults/bin/mitmdump" --mode "reverse:$upstream" \
    --listen-host 127.0.0.1 --listen-port "$port" --set confdir="$RUN_DIR/mitmproxy-$name" \
    -q -s "$ROOT/tests/faults/faults.py"
  wait_http "$name" "http://127.0.0.1:$port/__faults/counts?target=" 30 || die "the Connect fault proxy did not start"
  export CONNECT_FAULTS_URL="http://127.0.0.1:$port"
}

# The Lambda binaries exactly as `cargo lambda watch` runs them: it starts a function with
# `cargo run --bin NAME` in the workspace root, which resolves features for every workspace member
# (unlike `cargo build -p connector-lambdas`). Building this variant up front is what keeps a
# compile out of every test's time budget.
build_lambda_binaries() {
  (cd "$ROOT" && cargo build --workspace --bins --quiet)
}

# start_lambda_watch NAME PORT [VAR=VALUE...]: serves the Lambda binaries over the Invoke API
# with the given environment (the functions read their configuration from it). No hot reload:
# files written during a run must not restart a function mid-test.
start_lambda_watch() {
  local name="$1" port="$2"; shift 2
  start_bg "$name" env "$@" cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$port"
  wait_http "$name" "http://127.0.0.1:$port/" 120 || die "cargo lambda watch did not start"
}

# warm_lambda NAME PORT FUNCTION...: invokes each function once with an empty batch (`[]`: the
# sinks store nothing, the control functions reject it), so that every function process is
# started, and any build `cargo run` still wants is done, before a test's clock starts. Any
# answer from the function counts; none within the limit stops the run, naming the function.
warm_lambda() {
  local name="$1" port="$2" fn code started; shift 2
  for fn in "$@"; do
    started=$SECONDS
    code="$(curl -s -o "$RUN_DIR/$name-warm-$fn.json" -w '%{http_code}' --max-time 900 \
      -X POST -H 'Content-Type: application/json' -d '[]' \
      "http://127.0.0.1:$port/2015-03-31/functions/$fn/invocations")" || code=000
    case "$code" in
      200|500) printf '    %s: %s answered %s in %ss\n' "$name" "$fn" "$code" $((SECONDS - started)) >&2 ;;
      *) tail -30 "$RUN_DIR/$name.log" >&2
         die "$name: $fn gave no answer to its warm-up invoke within 900 s (HTTP $code); its log is above" ;;
    esac
  done
}

# Makes moto's ECS usable for discovery tests: tasks stay RUNNING until stopped (by default moto
# advances a task's status on every read), and RunTask gets a subnet and security group that
# exist in moto's default VPC. Exports TEST_SUBNET and TEST_SG.
moto_ecs_setup() {
  curl -sf -X POST "$AWS_ENDPOINT_URL/moto-api/state-manager/set-transition" \
    -d '{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}' >/dev/null \
    || die "moto refused the ECS state transition setting"
  local auth='Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x'
  TEST_SUBNET="$(curl -s "$AWS_ENDPOINT_URL/" -H "$auth" -d 'Action=DescribeSubnets&Version=2016-11-15' \
    | grep -o '<subnetId>[^<]*' | head -1 | cut -d'>' -f2)"
  TEST_SG="$(curl -s "$AWS_ENDPOINT_URL/" -H "$auth" -d 'Action=DescribeSecurityGroups&Version=2016-11-15' \
    | grep -o '<groupId>[^<]*' | head -1 | cut -d'>' -f2)"
  [ -n "$TEST_SUBNET" ] && [ -n "$TEST_SG" ] || die "no default subnet or security group in moto"
  export TEST_SUBNET TEST_SG
}
