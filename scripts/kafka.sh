# Apache Kafka and Kafka Connect on loopback for tests and the demo: fetched from Maven Central
# into .kafka/ (cached), run from .run/kafka/ (fresh each start). Sourced by scripts/kafka,
# scripts/test and scripts/demo after lib.sh; it runs nothing by itself.

KAFKA_HOME="$ROOT/.kafka"
KAFKA_RUN="$RUN_DIR/kafka"
# The oldest Kafka Connect the project supports (what cp-kafka-connect 7.6 ships: no /health),
# fetched by the same pom at another version. Its workers join the 4.x broker.
CONNECT_OLDEST_VERSION=3.6.2
CONNECT_OLDEST_HOME="$ROOT/.kafka-${CONNECT_OLDEST_VERSION%.*}"

# Fetches the artifacts named in tests/kafka/pom.xml, once per change of that file, and builds
# the stand-in Lambda sink connector (tests/lambda-sink) into .kafka/plugins/lambda-sink, once per
# change of its sources.
kafka_fetch() {
  local pom="$ROOT/tests/kafka/pom.xml" stamp="$KAFKA_HOME/.pom"
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka"
  command -v java >/dev/null || die "Java 17+ is needed to run Kafka"
  if ! { [ -d "$KAFKA_HOME/lib" ] && cmp -s "$pom" "$stamp"; }; then
    say "fetching Apache Kafka from Maven Central into $KAFKA_HOME"
    rm -rf "$KAFKA_HOME/lib" "$KAFKA_HOME/plugins" "$KAFKA_HOME/.lambda-sink" "$KAFKA_HOME/entrypoint" "$KAFKA_HOME/.entrypoint"
    mkdir -p "$KAFKA_HOME"
    # Maven 3.8 prints stray terminal codes even with -q -B: its output is kept for failures only.
    mvn -q -B -f "$pom" package > "$KAFKA_HOME/mvn.log" 2>&1 \
      || { cat "$KAFKA_HOME/mvn.log" >&2; die "mvn could not fetch the Kafka artifacts"; }
    cp "$pom" "$stamp"
  fi
  _kafka_build_entrypoint
  local src="$ROOT/tests/lambda-sink" sums
  sums="$(cd "$src" && find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum)"
  if [ -d "$KAFKA_HOME/plugins/lambda-sink" ] && [ "$sums" = "$(cat "$KAFKA_HOME/.lambda-sink" 2>/dev/null)" ]; then
    return 0
  fi
  say "building the stand-in Lambda sink connector into $KAFKA_HOME/plugins/lambda-sink"
  rm -rf "$KAFKA_HOME/plugins/lambda-sink"
  mvn -q -B -f "$src/pom.xml" package > "$KAFKA_HOME/mvn.log" 2>&1 \
    || { cat "$KAFKA_HOME/mvn.log" >&2; die "mvn could not build tests/lambda-sink"; }
  rm -rf "$src/target"
  printf '%s\n' "$sums" > "$KAFKA_HOME/.lambda-sink"
}

# Kafka Connect $CONNECT_OLDEST_VERSION into $CONNECT_OLDEST_HOME (lib/ and plugins/connect-file/),
# once per change of the pom; a worker runs from it when CONNECT_HOME names it.
kafka_fetch_oldest_connect() {
  local pom="$ROOT/tests/kafka/pom.xml" stamp="$CONNECT_OLDEST_HOME/.pom"
  if ! { [ -d "$CONNECT_OLDEST_HOME/lib" ] && cmp -s "$pom" "$stamp"; }; then
    say "fetching Kafka Connect $CONNECT_OLDEST_VERSION from Maven Central into $CONNECT_OLDEST_HOME"
    rm -rf "$CONNECT_OLDEST_HOME"; mkdir -p "$CONNECT_OLDEST_HOME"
    mvn -q -B -f "$pom" -Dkafka.version="$CONNECT_OLDEST_VERSION" -Ddest="$CONNECT_OLDEST_HOME" package \
      > "$CONNECT_OLDEST_HOME/mvn.log" 2>&1 \
      || { cat "$CONNECT_OLDEST_HOME/mvn.log" >&2; die "mvn could not fetch Kafka Connect $CONNECT_OLDEST_VERSION"; }
    cp "$pom" "$stamp"
  fi
}

# The Connect image's entrypoint (infra/connect-image/src), compiled against the Kafka jars into
# $KAFKA_HOME/entrypoint, as the image build does; the harness runs it from there.
_kafka_build_entrypoint() {
  local src="$ROOT/infra/connect-image/src" sums
  sums="$(cd "$src" && find . -type f | LC_ALL=C sort | xargs sha256sum)"
  [ -d "$KAFKA_HOME/entrypoint" ] && [ "$sums" = "$(cat "$KAFKA_HOME/.entrypoint" 2>/dev/null)" ] && return 0
  say "compiling the Connect image's entrypoint into $KAFKA_HOME/entrypoint"
  rm -rf "$KAFKA_HOME/entrypoint"
  javac -encoding UTF-8 -d "$KAFKA_HOME/entrypoint" -cp "$KAFKA_HOME/lib/*" $(find "$src" -name '*.java') \
    || die "javac could not compile infra/connect-image/src"
  printf '%s\n' "$sums" > "$KAFKA_HOME/.entrypoint"
}

_kafka_java() {
  # -Xmx keeps three JVMs within a small machine; the log4j2 config sends logs to stdout.
  java -Xms64m "$@"
}

_kafka_log4j() {
  cat > "$KAFKA_RUN/log4j2.properties" <<'PROPS'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
PROPS
}

# A key pair for the broker's TLS listener, made for this run (valid 2 days), and a truststore
# that trusts it: $KAFKA_RUN/tls/{broker,truststore}.p12, password in $KAFKA_TLS_PASSWORD.
_kafka_tls() {
  local dir="$KAFKA_RUN/tls"; mkdir -p "$dir"
  KAFKA_TLS_PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 2 -dname CN=localhost \
    -ext SAN=ip:127.0.0.1,dns:localhost -keystore "$dir/broker.p12" -storetype PKCS12 \
    -storepass "$KAFKA_TLS_PASSWORD" -keypass "$KAFKA_TLS_PASSWORD" > "$dir/keytool.log" 2>&1 \
    && keytool -exportcert -rfc -alias broker -keystore "$dir/broker.p12" -storepass "$KAFKA_TLS_PASSWORD" \
      -file "$dir/broker.pem" >> "$dir/keytool.log" 2>&1 \
    && keytool -importcert -noprompt -alias broker -file "$dir/broker.pem" -keystore "$dir/truststore.p12" \
      -storetype PKCS12 -storepass "$KAFKA_TLS_PASSWORD" >> "$dir/keytool.log" 2>&1 \
    || { cat "$dir/keytool.log" >&2; die "keytool could not make the broker's TLS key pair"; }
  export KAFKA_TLS_TRUSTSTORE="$dir/truststore.p12" KAFKA_TLS_PASSWORD
}

# kafka_start_broker: a single-node KRaft broker+controller on free loopback ports. Besides its
# plain listener it has a TLS one ($KAFKA_TLS_BOOTSTRAP, as MSK's port 9094), and a DELAYED one
# advertised at $KAFKA_DELAY_PROXY_PORT: a client that bootstraps there goes through the delay
# proxy a test starts on that port (tests/support/proxy.rs).
kafka_start_broker() {
  rm -rf "$KAFKA_RUN"; mkdir -p "$KAFKA_RUN"
  _kafka_log4j
  _kafka_tls
  local bport cport dport pport sport
  bport="$(free_port)"; cport="$(free_port)"; dport="$(free_port)"; pport="$(free_port)"; sport="$(free_port)"
  cat > "$KAFKA_RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport,DELAYED://127.0.0.1:$dport,SSL://127.0.0.1:$sport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport,DELAYED://127.0.0.1:$pport,SSL://127.0.0.1:$sport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,DELAYED:PLAINTEXT,SSL:SSL
listener.name.ssl.ssl.keystore.type=PKCS12
listener.name.ssl.ssl.keystore.location=$KAFKA_RUN/tls/broker.p12
listener.name.ssl.ssl.keystore.password=$KAFKA_TLS_PASSWORD
listener.name.ssl.ssl.key.password=$KAFKA_TLS_PASSWORD
log.dirs=$KAFKA_RUN/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  local cp="$KAFKA_HOME/lib/*" log4j="-Dlog4j2.configurationFile=$KAFKA_RUN/log4j2.properties"
  local id; id="$(_kafka_java "$log4j" -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
  _kafka_java "$log4j" -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$KAFKA_RUN/server.properties" \
    > "$KAFKA_RUN/format.log" 2>&1 || { cat "$KAFKA_RUN/format.log" >&2; die "formatting the KRaft log failed"; }
  say "starting the Kafka broker on 127.0.0.1:$bport"
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$bport"
  export KAFKA_DELAYED_LISTENER="127.0.0.1:$dport" KAFKA_DELAY_PROXY_PORT="$pport" KAFKA_TLS_BOOTSTRAP="127.0.0.1:$sport"
  _kafka_launch_broker
}

# Starts the broker of $KAFKA_RUN/server.properties on its data and waits until it serves. Its log
# is appended to, so a broker started again keeps the history of the one before.
_kafka_launch_broker() {
  local cp="$KAFKA_HOME/lib/*" log4j="-Dlog4j2.configurationFile=$KAFKA_RUN/log4j2.properties" from
  from=$(( $(cat "$KAFKA_RUN/broker.log" 2>/dev/null | wc -l) + 1 ))
  printf '=== %s: broker started\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$KAFKA_RUN/broker.log"
  KAFKA_PIDS=()
  setsid java -Xmx512m "$log4j" -cp "$cp" kafka.Kafka "$KAFKA_RUN/server.properties" \
    >> "$KAFKA_RUN/broker.log" 2>&1 < /dev/null &
  echo "$!" > "$KAFKA_RUN/broker.pid"
  printf '    waiting for the broker ' >&2
  local i
  for i in $(seq 120); do
    if tail -n "+$from" "$KAFKA_RUN/broker.log" | grep -q "Kafka Server started"; then printf ' up\n' >&2; return 0; fi
    kill -0 "$(cat "$KAFKA_RUN/broker.pid")" 2>/dev/null || break
    printf '.' >&2; sleep 0.5
  done
  printf ' failed; last lines of %s:\n' "$KAFKA_RUN/broker.log" >&2; tail -30 "$KAFKA_RUN/broker.log" >&2
  return 1
}

# Stops the broker (SIGTERM: a clean shutdown) and keeps its data, certificates and ports, for
# kafka_restart_broker: a broker outage, as the soak makes one.
kafka_stop_broker() {
  [ -f "$KAFKA_RUN/broker.pid" ] || return 0
  _kafka_kill "$(cat "$KAFKA_RUN/broker.pid")"
  rm -f "$KAFKA_RUN/broker.pid"
}

# Starts the broker kafka_stop_broker stopped, on the same data and ports.
kafka_restart_broker() {
  [ -f "$KAFKA_RUN/server.properties" ] || die "no broker to start again in $KAFKA_RUN (scripts/kafka start first)"
  [ -f "$KAFKA_RUN/broker.pid" ] && kill -0 "$(cat "$KAFKA_RUN/broker.pid")" 2>/dev/null && return 0
  say "starting the Kafka broker again on its data"
  _kafka_launch_broker
}

# kafka_start_worker N [PORT]: Kafka Connect worker N in distributed mode, in the group
# $CONNECT_GROUP (default connect-test; another group is a separate Connect cluster with its own
# storage topics), run from $CONNECT_HOME (default $KAFKA_HOME: another Connect version), reaching
# the broker at $CONNECT_BOOTSTRAP (default $KAFKA_BOOTSTRAP_SERVERS).
kafka_start_worker() {
  local n="$1" port="${2:-}" home="${CONNECT_HOME:-$KAFKA_HOME}"; [ -n "$port" ] || port="$(free_port)"
  local group="${CONNECT_GROUP:-connect-test}" topics="connect" auth=() jaas=() extension=""
  [ "$group" = connect-test ] || topics="$group"
  # CONNECT_BASIC_AUTH=user:password: the REST API with basic authentication, as the image's
  # entrypoint sets it up (BasicAuthSecurityRestExtension, a JAAS file naming a password file).
  if [ -n "${CONNECT_BASIC_AUTH:-}" ]; then
    printf '%s: %s\n' "${CONNECT_BASIC_AUTH%%:*}" "${CONNECT_BASIC_AUTH#*:}" > "$KAFKA_RUN/worker-$n.users"
    printf 'KafkaConnect {\n  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n  file="%s";\n};\n' \
      "$KAFKA_RUN/worker-$n.users" > "$KAFKA_RUN/worker-$n.jaas"
    jaas=("-Djava.security.auth.login.config=$KAFKA_RUN/worker-$n.jaas")
    auth=(-u "$CONNECT_BASIC_AUTH")
    extension="rest.extension.classes=org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"
  fi
  cat > "$KAFKA_RUN/worker-$n.properties" <<PROPS
bootstrap.servers=${CONNECT_BOOTSTRAP:-$KAFKA_BOOTSTRAP_SERVERS}
group.id=$group
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
config.storage.topic=$topics-configs
offset.storage.topic=$topics-offsets
status.storage.topic=$topics-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=5
status.storage.partitions=1
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$port
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$port
plugin.path=$home/plugins
# A departed worker's tasks are reassigned after this delay (default 5 minutes).
scheduled.rebalance.max.delay.ms=10000
$extension
PROPS
  say "starting Kafka Connect worker $n ($(basename "$home")) on http://127.0.0.1:$port"
  # Appended: a worker started again (as ECS would after a kill) keeps its earlier log.
  printf '=== %s: worker %s started\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$n" >> "$KAFKA_RUN/worker-$n.log"
  setsid java -Xmx384m "-Dlog4j2.configurationFile=$KAFKA_RUN/log4j2.properties" "${jaas[@]}" -cp "$home/lib/*" \
    org.apache.kafka.connect.cli.ConnectDistributed "$KAFKA_RUN/worker-$n.properties" \
    >> "$KAFKA_RUN/worker-$n.log" 2>&1 < /dev/null &
  echo "$!" > "$KAFKA_RUN/worker-$n.pid"
  echo "http://127.0.0.1:$port" > "$KAFKA_RUN/worker-$n.url"
  # GET / answers as soon as REST is up; GET /connectors only once the worker joined the group.
  printf '    waiting for worker %s ' "$n" >&2
  local i
  for i in $(seq 240); do
    if curl -sf -o /dev/null --max-time 2 "${auth[@]}" "http://127.0.0.1:$port/connectors"; then printf ' up\n' >&2; return 0; fi
    kill -0 "$(cat "$KAFKA_RUN/worker-$n.pid")" 2>/dev/null || break
    [ $((i % 2)) -eq 0 ] && printf '.' >&2
    sleep 0.5
  done
  printf ' failed; last lines of %s:\n' "$KAFKA_RUN/worker-$n.log" >&2; tail -30 "$KAFKA_RUN/worker-$n.log" >&2
  return 1
}

kafka_stop_worker() {
  local pidfile="$KAFKA_RUN/worker-$1.pid"
  [ -f "$pidfile" ] || return 0
  _kafka_kill "$(cat "$pidfile")"
  rm -f "$pidfile" "$KAFKA_RUN/worker-$1.url"
}

# Kills worker N at once (SIGKILL): no clean shutdown, no last offset commit, as a crash would.
kafka_kill_worker() {
  local pidfile="$KAFKA_RUN/worker-$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile" "$KAFKA_RUN/worker-$1.url"
}

_kafka_kill() {
  local pid="$1"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

# Stops every worker, then the broker (workers first, so they leave the group cleanly).
kafka_stop() {
  local f
  for f in "$KAFKA_RUN"/worker-*.pid; do [ -f "$f" ] && _kafka_kill "$(cat "$f")" && rm -f "$f"; done
  [ -f "$KAFKA_RUN/broker.pid" ] && _kafka_kill "$(cat "$KAFKA_RUN/broker.pid")" && rm -f "$KAFKA_RUN/broker.pid"
  return 0
}

# Starts the broker and worker 1 and exports where they are, for tests and by-hand use.
kafka_start() {
  kafka_fetch
  kafka_start_broker || die "the Kafka broker did not start"
  kafka_start_worker 1 || die "Kafka Connect did not start"
  kafka_export
}

# Exports where the broker and worker 1 are, and writes them to $KAFKA_RUN/env.
kafka_export() {
  export CONNECT_URL; CONNECT_URL="$(cat "$KAFKA_RUN/worker-1.url")"
  export KAFKA_HOME KAFKA_RUN
  cat > "$KAFKA_RUN/env" <<ENV
export KAFKA_HOME=$KAFKA_HOME KAFKA_RUN=$KAFKA_RUN
export KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS CONNECT_URL=$CONNECT_URL
export KAFKA_DELAYED_LISTENER=$KAFKA_DELAYED_LISTENER KAFKA_DELAY_PROXY_PORT=$KAFKA_DELAY_PROXY_PORT
export KAFKA_TLS_BOOTSTRAP=$KAFKA_TLS_BOOTSTRAP KAFKA_TLS_TRUSTSTORE=$KAFKA_TLS_TRUSTSTORE KAFKA_TLS_PASSWORD=$KAFKA_TLS_PASSWORD
ENV
}
