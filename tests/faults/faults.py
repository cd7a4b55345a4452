"""A mitmproxy addon that injects faults in front of moto or a Kafka Connect worker, and counts
requests.

Run as a reverse proxy (scripts/lib.sh `start_faults`, `start_connect_faults`):

    mitmdump --mode reverse:http://127.0.0.1:<moto> -s tests/faults/faults.py
    mitmdump --mode reverse:http://127.0.0.1:<worker> -s tests/faults/faults.py

In front of a worker, the target is the connector named in the path (`/connectors/<name>/...`)
and the operation is the method and the path with the name and task id left out:
``POST /connectors/{name}/restart``, ``POST /connectors/{name}/tasks/{id}/restart``.

Requests go to moto unchanged unless a rule matches. Rules and counts are per table or queue
(tests give every table and queue a unique name, so tests running at once never see each
other's faults). The control API lives on the proxy itself:

- ``POST /__faults/rules`` a JSON rule:
  ``{"target": "<table name or queue name>", "operation": "PutItem", "skip": 0, "times": 3,``
  ``"error": "ProvisionedThroughputExceededException" | "status": 503 | "delay_ms": 4000 | "reset": true}``
  ``times`` absent means every matching request; ``skip`` lets that many pass first.
- ``GET /__faults/counts?target=<name>``: ``{"<operation>": n}``, every request that reached the
  proxy for that target, faulted or not, and for Kafka Connect ``{"<operation> 2xx": n}``, those
  answered 2xx.
- ``DELETE /__faults/rules?target=<name>``: forget that target's rules.
"""

import asyncio
import json
import threading
from collections import Counter, defaultdict
from urllib.parse import parse_qs, unquote, urlparse

from mitmproxy import http

# DynamoDB's own error bodies (awsJson1_0), as the service sends them.
ERRORS = {
    "ProvisionedThroughputExceededException": (
        400,
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "ThrottlingException": (
        400,
        "com.amazon.coral.availability#ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    ),
    "RequestLimitExceeded": (
        400,
        "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
        "Throughput exceeds the current throughput limit for your account.",
    ),
    "InternalServerError": (
        500,
        "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "Internal server error",
    ),
    "ServiceUnavailable": (503, "com.amazon.coral.availability#ServiceUnavailableException", "Service Unavailable"),
}


def _connect_path(flow: http.HTTPFlow) -> list[str]:
    """A Kafka Connect path's segments (percent-decoded), or [] for any other request."""
    path = urlparse(flow.request.path).path
    segments = [unquote(s) for s in path.split("/")[1:]]
    return segments if segments and segments[0] == "connectors" and not flow.request.headers.get("x-amz-target") else []


def _target(flow: http.HTTPFlow) -> str:
    """The table, queue or secret a request is about: TableName (or the first table of a batch or
    a transaction), the last segment of QueueUrl, SecretId, or the name prefix ListSecrets
    filters by."""
    connect = _connect_path(flow)
    if connect:
        return connect[1] if len(connect) > 1 else ""
    try:
        body = json.loads(flow.request.get_text() or "{}")
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    if "TableName" in body:
        return str(body["TableName"])
    if isinstance(body.get("RequestItems"), dict) and body["RequestItems"]:  # BatchWriteItem, BatchGetItem
        return str(next(iter(body["RequestItems"])))
    for entry in body.get("TransactItems") or []:  # TransactWriteItems: the first table named
        for part in entry.values() if isinstance(entry, dict) else []:
            if isinstance(part, dict) and "TableName" in part:
                return str(part["TableName"])
    if "QueueUrl" in body:
        return str(body["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
    if "SecretId" in body:  # Secrets Manager: the secret's name
        return str(body["SecretId"])
    for f in body.get("Filters") or []:  # ListSecrets: the name prefix it filters by
        if isinstance(f, dict) and f.get("Key") == "name" and f.get("Values"):
            return str(f["Values"][0])
    return ""


def _operation(flow: http.HTTPFlow) -> str:
    connect = _connect_path(flow)
    if connect:
        shape = ["connectors", "{name}"] + connect[2:]
        if len(shape) > 3 and shape[2] == "tasks":
            shape[3] = "{id}"
        return f"{flow.request.method} /{'/'.join(shape)}"
    target = flow.request.headers.get("x-amz-target", "")
    return target.rsplit(".", 1)[-1] if target else ""


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: dict[str, list[dict]] = defaultdict(list)
        self.counts: dict[str, Counter] = defaultdict(Counter)

    def _control(self, flow: http.HTTPFlow) -> None:
        url = urlparse(flow.request.path)
        target = parse_qs(url.query).get("target", [""])[0]
        answer, status = {}, 200
        with self.lock:
            if url.path == "/__faults/rules" and flow.request.method == "POST":
                try:
                    rule = json.loads(flow.request.get_text())
                    assert isinstance(rule, dict) and rule.get("target"), "a rule needs a target"
                    assert rule.get("error", "ProvisionedThroughputExceededException") in ERRORS, "unknown error"
                except (ValueError, AssertionError) as e:
                    answer, status = {"error": f"bad rule: {e}"}, 400
                else:
                    rule.setdefault("skip", 0)
                    self.rules[rule["target"]].append(rule)
                    answer = rule
            elif url.path == "/__faults/rules" and flow.request.method == "DELETE":
                self.rules.pop(target, None)
            elif url.path == "/__faults/counts":
                answer = dict(self.counts.get(target, {}))
            else:
                answer, status = {"error": f"no control endpoint {flow.request.method} {url.path}"}, 404
        flow.response = http.Response.make(status, json.dumps(answer), {"content-type": "application/json"})

    def _match(self, target: str, operation: str):
        """The first rule that applies to this request, spending one of its skips or times."""
        with self.lock:
            self.counts[target][operation] += 1
            for rule in self.rules.get(target, []):
                if rule.get("operation") not in (None, operation):
                    continue
                if rule["skip"] > 0:
                    rule["skip"] -= 1
                    continue
                if "times" in rule:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                return dict(rule)
        return None

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.path.startswith("/__faults"):
            self._control(flow)
            return
        target = _target(flow)
        if not target:
            return
        rule = self._match(target, _operation(flow))
        if rule is None:
            return
        if "delay_ms" in rule:
            await asyncio.sleep(rule["delay_ms"] / 1000)
            return
        if rule.get("reset"):
            flow.kill()
            return
        if "status" in rule and "error" not in rule:
            flow.response = http.Response.make(rule["status"], b"", {})
            return
        status, kind, message = ERRORS[rule.get("error", "ProvisionedThroughputExceededException")]
        flow.response = http.Response.make(
            status,
            json.dumps({"__type": kind, "message": message}),
            {"content-type": "application/x-amz-json-1.0", "x-amzn-errortype": kind.rsplit("#", 1)[-1]},
        )

    def response(self, flow: http.HTTPFlow) -> None:
        """Counts the answers that took a request (2xx) as ``"<operation> 2xx"`` beside the
        requests, so that a test tells a request made from one that was done (a 409 retried
        three times is four requests and one restart)."""
        # Kafka Connect only: the moto tests compare their counts whole.
        if flow.request.path.startswith("/__faults") or flow.response is None or not _connect_path(flow):
            return
        target = _target(flow)
        if target and 200 <= flow.response.status_code < 300:
            with self.lock:
                self.counts[target][f"{_operation(flow)} 2xx"] += 1


addons = [Faults()]
