"""Init time of each Lambda binary: from process start to its first poll of the Runtime API
(`GET /2018-06-01/runtime/invocation/next`), against a local Runtime API on loopback.

  init_time.py BIN_DIR [RUNS]

Each binary starts with the environment its function has in the template (names only: no call
is made before the first poll) and is killed once it polls. Prints the median and the slowest
of RUNS starts per binary. Part of scripts/bench, never of scripts/test."""
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

ENV = {
    "sinkSeatoolData": {"TABLE_NAME": "t", "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q"},
    "testConnectors": {"MONITOR_STATE_TABLE": "t", "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:a",
                       "RUNBOOK_BASE_URL": "https://runbooks.example", "CLUSTER": "c", "CONFIG_SECRET_PREFIX": "p/"},
    "alarmState": {"CLUSTER": "c", "MONITOR_STATE_TABLE": "t", "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:a",
                   "RUNBOOK_BASE_URL": "https://runbooks.example"},
    "findTaskIp": {"CLUSTER": "c"},
}
ENV["sinkAppianData"] = ENV["sinkSeatoolData"]
ENV["ecsTaskState"] = ENV["alarmState"]
ENV["checkIfConnectIsReady"] = ENV["createConnector"] = ENV["deleteConnector"] = ENV["findTaskIp"]

polled = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            polled.set()
        # Never answer: the process is killed once it has polled.
        time.sleep(5)

    def log_message(self, *args):
        pass


def main():
    bin_dir, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = {"PATH": os.environ["PATH"], "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_LAMBDA_LOG_STREAM_NAME": "s", "AWS_LAMBDA_LOG_GROUP_NAME": "g"}
    for name, env in ENV.items():
        times = []
        for _ in range(runs):
            polled.clear()
            started = time.perf_counter()
            p = subprocess.Popen([os.path.join(bin_dir, name)], env={**base, **env},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not polled.wait(10):
                p.kill()
                sys.exit(f"{name} did not poll the Runtime API within 10 s")
            times.append((time.perf_counter() - started) * 1000)
            p.kill()
            p.wait()
        print(f"{name:24} init {statistics.median(times):6.1f} ms median, {max(times):6.1f} ms slowest of {runs}")


if __name__ == "__main__":
    main()
