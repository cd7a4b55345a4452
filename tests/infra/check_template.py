"""Checks infra/template.yaml against the code and the sample events (run by scripts/test, with
moto started): every Lambda binary has a function in the template and the reverse, each
function's IAM policy grants exactly the AWS actions its code calls, and every EventBridge rule of the template delivers the matching files of events/ and only those, through
moto's EventBridge to an SQS queue."""
import glob
import json
import os
import re
import sys
import tomllib
import uuid

import boto3
import yaml

from checks import Checks

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
ACCOUNT, REGION = "123456789012", os.environ.get("AWS_REGION", "us-east-1")
# The names of the deployment the samples of events/ come from (Service=connector, as the old
# service's names: the samples keep the names they were recorded with).
VALUES = {"Project": "mako", "Service": "connector", "Stage": "main", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
ATTS = {("ConnectCluster", "Arn"): f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/mako-connector-main-connect"}

check = Checks("template")


def granted(function):
    """Every action the function's inline policies grant."""
    return {a for p in function["Properties"].get("Policies", []) if isinstance(p, dict)
            for st in p.get("Statement", []) for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}


def resolve(v):
    """The template's intrinsics with the sample events' account, region and names."""
    if isinstance(v, dict) and "Fn::Sub" in v:
        s = v["Fn::Sub"]
        for k, val in VALUES.items():
            s = s.replace("${" + k + "}", val)
        return s
    if isinstance(v, dict) and "Fn::GetAtt" in v:
        return ATTS[tuple(v["Fn::GetAtt"])]
    if isinstance(v, dict):
        return {k: resolve(x) for k, x in v.items()}
    if isinstance(v, list):
        return [resolve(x) for x in v]
    return v


template = yaml.safe_load(open(os.path.join(ROOT, "infra/template.yaml")))
resources = template["Resources"]
functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
in_template = {r["Metadata"]["BuildProperties"]["Binary"] for r in functions.values()}
cargo = tomllib.load(open(os.path.join(ROOT, "functions/lambdas/Cargo.toml"), "rb"))
binaries = {b["name"] for b in cargo["bin"]}
check(in_template == binaries, f"binaries without a function: {binaries - in_template}; functions without a binary: {in_template - binaries}")
for name, r in functions.items():
    check(r["Metadata"].get("BuildMethod") == "rust-cargolambda", f"{name} is not built with rust-cargolambda")
sinks = [r for r in functions.values() if r["Metadata"]["BuildProperties"]["Binary"].startswith("sink")]
check(all(r["Properties"]["Timeout"] < 50 for r in sinks), "a sink function's timeout is not below the connector's 50 s")

# Every alarm of the template is in the catalogue (by the end of its name), so alarmState knows it.
# The catalogue's `direct` alarms watch the alerting path itself: CloudWatch publishes them straight
# to the topic (ALARM and OK), and alarmState leaves them alone. Every other alarm has no action:
# alarmState turns it into an alert with its runbook.
catalogue = json.load(open(os.path.join(ROOT, "alarms/catalogue.json")))
TOPIC = [{"Ref": "AlertsTopic"}]
direct_ids = set()
for name, r in resources.items():
    if r["Type"] == "AWS::CloudWatch::Alarm":
        alarm_name = resolve(r["Properties"]["AlarmName"])
        entry = next((a for a in catalogue["alarms"] if alarm_name.endswith(a["alarmNameSuffix"])), None)
        check(entry is not None, f"alarm {alarm_name} ({name}) is not in alarms/catalogue.json")
        p = r["Properties"]
        if entry and entry["direct"]:
            direct_ids.add(entry["id"])
            check(p.get("AlarmActions") == TOPIC and p.get("OKActions") == TOPIC,
                  f"alarm {name} ({entry['id']}) must publish ALARM and OK straight to the alerts topic")
        else:
            check(not p.get("AlarmActions") and not p.get("OKActions"),
                  f"alarm {name} has actions: it goes through alarmState, a direct action would alert twice")
for must in ["monitor-heartbeat", "monitor-state-unavailable", "alerting-errors", "events-dead-letters"]:
    check(must in direct_ids, f"no alarm of the template is {must}, which must not depend on alarmState")
# Each alerting function (one that publishes to the alerts topic: an EventBridge target, the
# monitor, verifySinks) has its errors alarm.
alerting = {name for name, r in functions.items() if "sns:Publish" in granted(r)}
watched = {r["Properties"]["Dimensions"][0]["Value"].get("Ref") for r in resources.values()
           if r["Type"] == "AWS::CloudWatch::Alarm" and resolve(r["Properties"]["AlarmName"]).endswith("-alerting-errors")}
check(alerting == watched, f"alerting functions {sorted(alerting)}, errors alarms on {sorted(watched)}")

# The metrics the code emits (EMF lines: `("Name", Unit::...)`), in the stack's namespace.
EMITTED = set()
for f in glob.glob(os.path.join(ROOT, "functions/*/src/**/*.rs"), recursive=True):
    EMITTED |= set(re.findall(r'\("([A-Z][A-Za-z]+)",\s*Unit::', open(f).read()))
NAMESPACE = "mako-connector-main"


def project_metrics_of_alarms():
    for name, r in resources.items():
        if r["Type"] == "AWS::CloudWatch::Alarm" and resolve(r["Properties"].get("Namespace")) == NAMESPACE:
            yield name, r["Properties"]["MetricName"]


for name, metric in project_metrics_of_alarms():
    check(metric in EMITTED, f"alarm {name} watches {metric}, which the code never emits ({sorted(EMITTED)})")

# The dashboard: every widget's metric (explicit, or a SEARCH's MetricName) in the stack's namespace
# is one the code emits; AWS namespaces name resources of the stack.
dashboards = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
check(len(dashboards) == 1, "the template has one dashboard")
body_text = dashboards[0]["Properties"]["DashboardBody"]["Fn::Sub"]
for k, val in {**VALUES, "ConnectCluster": "mako-connector-main-connect"}.items():
    body_text = body_text.replace("${" + k + "}", val)
for ref in re.findall(r"\$\{([A-Za-z]+)(?:\.[A-Za-z]+)?\}", body_text):
    check(ref in resources, f"the dashboard names {ref}, which is not a resource of the template")
body = json.loads(re.sub(r"\$\{[A-Za-z:.]+\}", "x", body_text))
dashboard_metrics = []
for widget in body["widgets"]:
    for m in widget["properties"].get("metrics", []):
        if isinstance(m[0], dict):
            e = m[0]["expression"]
            ns = re.search(r'\{"?([^",}]+)"?', e).group(1)
            dashboard_metrics.append((ns, re.search(r'MetricName="([A-Za-z]+)"', e).group(1), widget["properties"]["title"]))
        else:
            dashboard_metrics.append((m[0], m[1], widget["properties"]["title"]))
for ns, metric, title in dashboard_metrics:
    if ns == NAMESPACE:
        check(metric in EMITTED, f"dashboard widget {title!r} shows {metric}, which the code never emits")
    else:
        check(ns.startswith("AWS/"), f"dashboard widget {title!r} reads namespace {ns}, neither the stack's nor AWS's")
shown = {m for ns, m, _ in dashboard_metrics if ns == NAMESPACE}
check(EMITTED <= shown, f"metrics the code emits and the dashboard does not show: {sorted(EMITTED - shown)}")


# Every name the stack gives fits its service's limit with the longest Project, Service and Stage
# the parameters allow (a name over the limit fails mid-create, after other resources exist).
LONGEST = {k: "x" * template["Parameters"][k]["MaxLength"] for k in ("Project", "Service", "Stage")}
NAME_LIMITS = {  # (resource type, property): the service's limit
    ("AWS::Serverless::Function", "FunctionName"): 64, ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    ("AWS::SQS::Queue", "QueueName"): 80, ("AWS::Serverless::StateMachine", "Name"): 80,
    ("AWS::ECS::Cluster", "ClusterName"): 255, ("AWS::SNS::Topic", "TopicName"): 256,
    ("AWS::CloudWatch::Alarm", "AlarmName"): 255, ("AWS::CloudWatch::Dashboard", "DashboardName"): 255,
    ("AWS::SecretsManager::Secret", "Name"): 512, ("AWS::ECS::TaskDefinition", "Family"): 255,
}


def longest(v):
    if isinstance(v, dict) and "Fn::Sub" in v and isinstance(v["Fn::Sub"], str):
        text = v["Fn::Sub"]
        for k, val in {**VALUES, **LONGEST}.items():
            text = text.replace("${" + k + "}", val)
        return text
    return v if isinstance(v, str) else None


names_checked = 0
for logical, r in resources.items():
    for (kind, prop), limit in NAME_LIMITS.items():
        if r["Type"] == kind and prop in r.get("Properties", {}):
            name = longest(r["Properties"][prop])
            names_checked += 1
            check(name is not None and len(name) <= limit, f"{logical}.{prop} is {len(name or '')} long at most ({name}), over {limit}")
    # Schedules' rule names: 64.
    for event in r.get("Properties", {}).get("Events", {}).values():
        if event["Type"] == "Schedule" and "Name" in event["Properties"]:
            name = longest(event["Properties"]["Name"])
            names_checked += 1
            check(len(name) <= 64, f"{logical}'s schedule rule name is {len(name)} long at most ({name}), over 64")
    # The repository: the name plus '-' and a stack id (36).
    if r["Type"] == "AWS::ECR::Repository":
        base = longest(r["Properties"]["RepositoryName"]["Fn::Join"][1][0])
        check(len(base) + 1 + 36 <= 256, f"{logical}'s name is over 256 at most")
check(names_checked >= 40, f"only {names_checked} names were checked against their limits")
for k in ("Project", "Service", "Stage"):
    check(template["Parameters"][k].get("AllowedPattern") == "[a-z][a-z0-9-]*", f"{k} allows more than lowercase names")
# The licence is read when a connector is applied, never resolved into a config at deploy (a
# rotation would reach no connector until an unrelated update).
for logical, r in resources.items():
    if r["Type"] == "AWS::SecretsManager::Secret" and "SecretString" in r["Properties"]:
        text = json.dumps(r["Properties"]["SecretString"])
        check("{{resolve:" not in text and "confluent.license" not in text,
              f"{logical} puts the licence into the config at deploy")
check(template["Parameters"]["Service"]["Default"] != "connector",
      "the default Service is the old service's: a default deploy collides with it")


# A connector's health alarm counts no data (a worker that is down reports nothing) as unhealthy,
# not OK; alarmState records it under the monitor's worker-unreachable incident instead of paging.
health = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
          and r["Properties"].get("MetricName") in ("TasksHealthy", "ConnectorHealthy")]
check(len(health) == 2 and all(p.get("TreatMissingData") == "breaching" for p in health),
      f"connector-unhealthy alarms and their missing data: {[(resolve(p['AlarmName']), p.get('TreatMissingData')) for p in health]}")


# A service principal gets the key or the topic only for this account's own resources (the
# confused deputy: another account's alarm cannot use them).
for logical, r in resources.items():
    doc = r["Properties"].get("KeyPolicy") if r["Type"] == "AWS::KMS::Key" else \
        r["Properties"].get("PolicyDocument") if r["Type"] == "AWS::SNS::TopicPolicy" else None
    for st in (doc or {}).get("Statement", []):
        if "Service" in st.get("Principal", {}):
            cond = json.dumps(st.get("Condition", {}))
            check("aws:SourceAccount" in cond and "aws:SourceArn" in cond,
                  f"{logical} statement {st.get('Sid')} grants {st['Principal']['Service']} without aws:SourceAccount and aws:SourceArn")


# Parameter rules, evaluated for consistent and inconsistent parameters (CloudFormation rejects a
# stack at validation when an applicable rule's assertion is false).
def rule_value(expr, params):
    if isinstance(expr, dict):
        (fn, args), = expr.items()
        if fn == "Ref":
            return params[args]
        if fn == "Fn::Equals":
            return rule_value(args[0], params) == rule_value(args[1], params)
        if fn == "Fn::Not":
            return not rule_value(args[0], params)
        if fn == "Fn::Or":
            return any(rule_value(a, params) for a in args)
        if fn == "Fn::And":
            return all(rule_value(a, params) for a in args)
        if fn == "Fn::EachMemberEquals":
            return all(v == rule_value(args[1], params) for v in rule_value(args[0], params))
        raise ValueError(f"rule function {fn} is not evaluated here")
    return expr


def rules_hold(params):
    broken = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not rule_value(rule["RuleCondition"], params):
            continue
        broken += [name for a in rule["Assertions"] if not rule_value(a["Assert"], params)]
    return broken


DEFAULTS = {k: p.get("Default") for k, p in template["Parameters"].items()}
for over, ok in [({"VpcEndpointS3": "create", "PrivateRouteTableIds": [""]}, False),
                 ({"VpcEndpointDynamoDb": "create", "PrivateRouteTableIds": ["rtb-1", "rtb-2"]}, True),
                 ({"VpcEndpointDynamoDb": "none", "VpcEndpointS3": "existing", "PrivateRouteTableIds": [""]}, True),
                 ({"AlertEmail": "", "AlertHttpsEndpoint": ""}, False),
                 ({"AlertEmail": "", "AlertHttpsEndpoint": "", "AlertSubscriptions": "none"}, True),
                 ({"AlertEmail": "oncall@example.org"}, True)]:
    params = {**DEFAULTS, "PrivateRouteTableIds": [""], "AlertEmail": "oncall@example.org", **over}
    broken = rules_hold(params)
    check((not broken) == ok, f"parameters {over}: rules broken {broken}, expected {'none' if ok else 'some'}")

# A VPC that already has an interface endpoint with private DNS for a service refuses a second one
# (moto does not): no endpoint is created unless its own parameter says create, and none says so
# by default, so a default deploy into the shared VPC (or a second stage) creates none.
for logical, r in resources.items():
    if r["Type"] != "AWS::EC2::VPCEndpoint":
        continue
    cond = template["Conditions"].get(r.get("Condition", ""), {})
    param = cond.get("Fn::Equals", [{}])[0].get("Ref") if "Fn::Equals" in cond else None
    check(param is not None and cond["Fn::Equals"][1] == "create",
          f"endpoint {logical} is not created by a parameter of its own set to create: condition {cond}")
    if param:
        check(template["Parameters"][param]["Default"] != "create", f"endpoint {logical} is created by default ({param})")
        service = resolve(r["Properties"]["ServiceName"]).rsplit(f"{REGION}.", 1)[-1]
        check(service in template["Parameters"][param]["Description"], f"{param} does not name the service {service}")

# IAM least privilege, read from the code: each binary's handler module, the modules it uses, the
# adapters those import, and the AWS operations the adapters call give the actions the function
# needs; its policy must grant exactly those (KMS with SNS: the topic is encrypted).
OP_ACTIONS = {
    "put_item": {"dynamodb:PutItem"}, "delete_item": {"dynamodb:DeleteItem"}, "query": {"dynamodb:Query"},
    "get_item": {"dynamodb:GetItem"}, "update_item": {"dynamodb:UpdateItem"}, "scan": {"dynamodb:Scan"},
    "send_message": {"sqs:SendMessage"}, "publish": {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"},
    "list_tasks": {"ecs:ListTasks"}, "describe_tasks": {"ecs:DescribeTasks"},
    "get_secret_value": {"secretsmanager:GetSecretValue"}, "list_secrets": {"secretsmanager:ListSecrets"},
    "put_object": {"s3:PutObject"}, "batch_get_item": {"dynamodb:BatchGetItem"},
}
# Not here, on purpose: the dead-letter adapter's reading side (receive_message, delete_message,
# change_message_visibility, get_object, delete_object) is connectorctl's, run with the
# operator's credentials; no function calls it.
# A transaction is authorised item by item.
TRANSACT_ITEMS = {"Put": "dynamodb:PutItem", "Delete": "dynamodb:DeleteItem", "ConditionCheck": "dynamodb:ConditionCheckItem", "Update": "dynamodb:UpdateItem"}


def source(path):
    return open(os.path.join(ROOT, path)).read()


def adapter_actions(module, seen=None):
    seen = seen if seen is not None else set()
    if module in seen or not os.path.exists(os.path.join(ROOT, f"functions/adapters/src/{module}.rs")):
        return set()
    seen.add(module)
    text = source(f"functions/adapters/src/{module}.rs")
    actions = set()
    # An adapter module that builds others (`deployed`: the monitor as deployed) needs theirs.
    for other in set(re.findall(r"crate::([a-z_]+)", text)):
        actions |= adapter_actions(other, seen)
    for op in re.findall(r"\.([a-z_]+)\(\)\s*\n?\s*\.", text):
        actions |= OP_ACTIONS.get(op, set())
    if ".transact_write_items()" in text:
        actions |= {a for item, a in TRANSACT_ITEMS.items() if f"{item}::builder()" in text}
    return actions


def module_actions(module, seen=None):
    seen = seen if seen is not None else set()
    if module in seen:
        return set()
    seen.add(module)
    text = source(f"functions/lambdas/src/{module}.rs")
    actions = set()
    for adapter in set(re.findall(r"connector_adapters::([a-z_]+)", text)):
        actions |= adapter_actions(adapter)
    for other in set(re.findall(r"crate::([a-z_]+)", text)):
        if os.path.exists(os.path.join(ROOT, f"functions/lambdas/src/{other}.rs")):
            actions |= module_actions(other, seen)
    return actions


# Actions IAM cannot scope to a resource (`Resource: "*"` is the only form); ECS's are scoped to the
# cluster by a condition instead.
UNSCOPED = {"secretsmanager:ListSecrets"}
SCOPED_BY_CONDITION = {"ecs:ListTasks", "ecs:DescribeTasks"}


def statements(function):
    """(statement, its actions) of the function's inline policies (managed policy names aside)."""
    for policy in function["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            acts = statement["Action"]
            yield statement, [acts] if isinstance(acts, str) else acts


def wildcard_problems(function):
    """Actions granted on every resource without a reason to."""
    return [action for statement, actions in statements(function) if statement.get("Resource") == "*"
            for action in actions
            if action not in UNSCOPED
            and not (action in SCOPED_BY_CONDITION and "ecs:cluster" in json.dumps(statement.get("Condition", {})))]


# Adapter methods an entry point does not use, where the type-level reading above over-counts:
# createConnector reads one named secret (ConnectorConfigs::get), the REST credentials are one
# named secret too, and none of these lists secrets.
NEVER_CALLED = {b: {"secretsmanager:ListSecrets"} for b in ("createConnector", "checkIfConnectIsReady", "deleteConnector")}
# verifySinks looks a window's keys up (BatchGetItem); the scan beside it is connectorctl verify's.
NEVER_CALLED["verifySinks"] = {"dynamodb:Scan"}

# The adapter types by module (`EcsTaskDiscovery` -> ecs), for entry points that share a module.
ADAPTER_TYPES = {t: os.path.basename(f)[:-3] for f in glob.glob(os.path.join(ROOT, "functions/adapters/src/*.rs"))
                 for t in re.findall(r"pub struct ([A-Za-z]+)", open(f).read())}


def entry_actions(module, function):
    """The actions of one entry point (`control::main::find_task_ip`): the adapters its body builds."""
    text = source(f"functions/lambdas/src/{module}.rs")
    start = text.index(f"fn {function}(")
    end = text.find("\n    pub async fn ", start + 1)
    body = text[start:end if end > 0 else len(text)]
    actions = set()
    for typ in set(re.findall(r"([A-Z][A-Za-z]+)::new", body)):
        if typ in ADAPTER_TYPES:
            actions |= adapter_actions(ADAPTER_TYPES[typ])
    # An SDK client an adapter module re-exports (`secrets::Client`, for the REST credentials).
    for module in set(re.findall(r"connector_adapters::([a-z_]+)::Client::new", body)):
        actions |= adapter_actions(module)
    return actions


bins = {b["name"]: b["path"] for b in cargo["bin"]}
for name, r in functions.items():
    binary = r["Metadata"]["BuildProperties"]["Binary"]
    bin_source = source(os.path.join("functions/lambdas", bins[binary]))
    needed = set()
    entries = set(re.findall(r"connector_lambdas::([a-z_]+)::main::([a-z_]+)", bin_source))
    for module, function in entries:
        needed |= entry_actions(module, function)
    if not entries:
        for module in set(re.findall(r"connector_lambdas::([a-z_]+)", bin_source)):
            needed |= module_actions(module)
    needed -= NEVER_CALLED.get(binary, set())
    have = granted(r)
    check(needed == have, f"{name}: policy grants {sorted(have - needed)} it never calls and lacks {sorted(needed - have)}")
    check(not wildcard_problems(r), f"{name}: {wildcard_problems(r)} granted on every resource")
    # A function in the private subnets reaches each service it calls through a VPC endpoint
    # (KMS is called by SNS itself, not by the function).
    if "VpcConfig" in r["Properties"]:
        endpoints = {resolve(e["Properties"]["ServiceName"]).rsplit(".", 1)[-1]
                     for e in resources.values() if e["Type"] == "AWS::EC2::VPCEndpoint"}
        services = {a.split(":")[0] for a in needed} - {"kms"}
        check(services <= endpoints, f"{name} runs in the VPC and calls {sorted(services - endpoints)} without a VPC endpoint")

events = boto3.client("events")
sqs = boto3.client("sqs")
# (function, files that must be delivered, files that must not)
# The samples EventBridge carries (an alarm action's direct payload has no envelope: it does not
# go through a rule).
def bridged(pattern):
    return [f for f in glob.glob(os.path.join(ROOT, pattern)) if "detail-type" in json.load(open(f))]


expected = {
    "EcsTaskState": ([f for f in bridged("events/ecs/*.json") if "other-cluster" not in f],
                     bridged("events/ecs/*other-cluster.json") + bridged("events/alarm/*.json")),
    "AlarmState": ([f for f in bridged("events/alarm/*.json") if "unknown-alarm" not in f],
                   bridged("events/alarm/unknown-alarm.json") + bridged("events/ecs/*.json")),
}
for fname, (deliver, skip) in expected.items():
    rules = [e for e in functions[fname]["Properties"]["Events"].values() if e["Type"] == "EventBridgeRule"]
    check(len(rules) == 1, f"{fname} has one EventBridge rule")
    pattern = resolve(rules[0]["Properties"]["Pattern"])
    bus = f"check-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName=bus)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=bus, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=bus, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    for f in deliver + skip:
        e = json.load(open(f))
        events.put_events(Entries=[{"EventBusName": bus, "Source": e["source"], "DetailType": e["detail-type"],
                                    "Detail": json.dumps(e["detail"]), "Resources": e.get("resources", [])}])
    got = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    check(len(got) == len(deliver), f"{fname}: {len(got)} events delivered, expected {len(deliver)} ({[os.path.basename(f) for f in deliver]})")

check.finish()
