"""Prints the Kafka Connect container's environment as infra/template.yaml gives it to ECS, as one
JSON object, with the template's parameters resolved from NAME=VALUE arguments (and their
defaults). tests/connect_image.rs runs the image's entrypoint with exactly this environment.
With --health-check first it prints the container's HealthCheck command instead, and with
--secrets the variables ECS fills from Secrets Manager ({name: valueFrom})."""
import json
import os
import re
import sys

import yaml

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
template = yaml.safe_load(open(os.path.join(ROOT, "infra/template.yaml")))
values = {k: str(p["Default"]) for k, p in template["Parameters"].items() if "Default" in p}
values.update({"AWS::Region": os.environ.get("AWS_REGION", "us-east-1"), "AWS::AccountId": "123456789012",
               "AWS::Partition": "aws"})
args = sys.argv[1:]
mode = args[0] if args[:1] in (["--health-check"], ["--secrets"]) else None
values.update(arg.split("=", 1) for arg in args[mode is not None:])


def resolve(v):
    if isinstance(v, dict) and "Ref" in v:
        return values[v["Ref"]]
    if isinstance(v, dict) and "Fn::Sub" in v:
        return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], v["Fn::Sub"])
    if isinstance(v, str):
        return v
    raise SystemExit(f"container_env.py cannot resolve {v!r} in the container's environment")


containers = template["Resources"]["ConnectTaskDefinition"]["Properties"]["ContainerDefinitions"]
connect = next(c for c in containers if c["Name"] == "kafka-connect")
if mode == "--health-check":
    json.dump(connect["HealthCheck"]["Command"], sys.stdout)
    print()
    sys.exit(0)
if mode == "--secrets":
    json.dump({e["Name"]: resolve(e["ValueFrom"]) for e in connect.get("Secrets", [])}, sys.stdout, indent=1)
    print()
    sys.exit(0)
json.dump({e["Name"]: resolve(e["Value"]) for e in connect["Environment"]}, sys.stdout, indent=1)
print()
