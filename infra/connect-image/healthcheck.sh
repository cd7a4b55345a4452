#!/bin/sh
# The container health check (the image's HEALTHCHECK and the task definition's): healthy when
# the worker's /health answers 200 (Kafka Connect 3.9+), or, on a worker without /health (404),
# when its connector list answers 200. curl, not a second JVM every 30 s. With basic
# authentication on (the entrypoint's REST_AUTH_USERNAME / _PASSWORD, which the check inherits
# from the container), the credentials go to curl on stdin, never on its command line.
port="${CONNECT_REST_PORT:-8083}"
quote() {
  printf '%s' "$1" | sed 's/[\\"]/\\&/g'
}
status() {
  {
    if [ -n "${REST_AUTH_USERNAME:-}" ]; then
      printf 'user = "%s:%s"\n' "$(quote "$REST_AUTH_USERNAME")" "$(quote "${REST_AUTH_PASSWORD:-}")"
    fi
  } | curl -K - -s -o /dev/null -w '%{http_code}' --max-time 15 "http://localhost:$port$1"
}
health="$(status /health)" || exit 1
case "$health" in
  200) exit 0 ;;
  404) [ "$(status /connectors)" = 200 ] ;;
  401 | 403) echo "GET /health answered $health: the worker refused REST_AUTH_USERNAME / REST_AUTH_PASSWORD" >&2; exit 1 ;;
  *) echo "GET /health answered $health" >&2; exit 1 ;;
esac
