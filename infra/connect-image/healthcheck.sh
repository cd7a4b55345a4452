#!/bin/sh
# The container health check (the image's HEALTHCHECK and the task definition's): healthy when
# the worker's /health answers 200 (Kafka Connect 3.9+), or, on a worker without /health (404),
# when its connector list answers 200. curl, not a second JVM every 30 s.
port="${CONNECT_REST_PORT:-8083}"
status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 15 "http://localhost:$port$1"
}
health="$(status /health)" || exit 1
case "$health" in
  200) exit 0 ;;
  404) [ "$(status /connectors)" = 200 ] ;;
  *) echo "GET /health answered $health" >&2; exit 1 ;;
esac
