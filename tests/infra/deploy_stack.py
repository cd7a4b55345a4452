"""Deploys infra/template.yaml into moto's CloudFormation as a first deploy would, and then runs
the functions with the environment the stack gave them (scripts/test does both halves).

  deploy_stack.py deploy DIR     SAM-translates the template (samtranslator, as `sam deploy`
                                 does), creates the stack, deletes it, creates it again; writes
                                 DIR/stack.json (outputs, names) and DIR/<binary>.env (each
                                 function's environment, read back from moto's Lambda).
  deploy_stack.py exercise DIR   With `cargo lambda watch` serving each function on those
                                 environments (URLs in STACK_WATCH_<binary>, logs in
                                 STACK_LOG_<binary>): the sinks write the stack's tables, the
                                 monitor reads the stack's secrets and writes its state table,
                                 alarmState and ecsTaskState publish to the stack's topic, the
                                 control functions look in the stack's cluster, and every metric
                                 printed matches the namespace and dimensions of the stack's
                                 alarms on it.

Runs with .venv-sam's Python (samtranslator, boto3), against moto at AWS_ENDPOINT_URL."""
import glob
import io
import json
import os
import sys
import time
import urllib.request
import uuid
import zipfile

import boto3
import yaml

from checks import Checks

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REGION = os.environ.get("AWS_REGION", "us-east-1")
check = Checks("stack")


def client(name):
    return boto3.client(name, region_name=REGION)


def translated():
    """The template as `sam deploy` hands it to CloudFormation: code and state machine packaged
    (here: a placeholder zip in moto's S3, the definition inlined), the SAM transform applied."""
    from samtranslator.translator.transform import transform

    t = yaml.safe_load(open(os.path.join(ROOT, "infra/template.yaml")))
    t["Globals"]["Function"]["CodeUri"] = "s3://stack-code/connector.zip"
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in r["Properties"]:
            r["Properties"]["Definition"] = json.load(open(os.path.join(ROOT, "infra", r["Properties"].pop("DefinitionUri"))))

    class Policies:
        def load(self):
            return {n: f"arn:aws:iam::aws:policy/service-role/{n}"
                    for n in ["AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole", "AWSLambdaRole"]}

    out = transform(t, {}, Policies())
    # What CloudFormation does on a stack *deletion* (not a rolled-back create) is what this test
    # exercises; moto only knows `Retain` for it.
    for r in out["Resources"].values():
        if r.get("DeletionPolicy") == "RetainExceptOnCreate":
            r["DeletionPolicy"] = "Retain"
    return out


def network():
    """A VPC with two private subnets and their route table, as the parameters want them."""
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)]
    route_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=route_table, SubnetId=subnet)
    return vpc, subnets, route_table


def old_service(cf, stage, vpc, subnets, route_table):
    """What the stack is deployed beside: the shared VPC's interface endpoints (private DNS on)
    and gateways, and a stand-in of the old TypeScript service under its names
    (`mako-connector-<stage>-…`: functions, their log groups, the cluster, topic and queue)."""
    ec2 = client("ec2")
    for service in ["ecs", "secretsmanager", "sns", "lambda", "logs", "ecr.api", "ecr.dkr", "ssmmessages"]:
        ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.{service}",
                                SubnetIds=subnets, PrivateDnsEnabled=True)
    for service in ["dynamodb", "s3"]:
        ec2.create_vpc_endpoint(VpcEndpointType="Gateway", VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.{service}",
                                RouteTableIds=[route_table])
    old = f"mako-connector-{stage}"
    resources = {"Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}}},
                 "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": f"{old}-connect"}},
                 "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"{old}-alerts"}},
                 "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{old}-sink-dead-letters"}}}
    for fn in ["sinkSeatoolData", "sinkAppianData", "testConnectors", "createConnector"]:
        resources[f"{fn}Logs"] = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": f"/aws/lambda/{old}-{fn}"}}
        resources[fn] = {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": f"{old}-{fn}", "Runtime": "nodejs20.x", "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Code": {"ZipFile": "exports.handler = async () => ({});"}}}
    cf.create_stack(StackName=old, TemplateBody=json.dumps({"Resources": resources}), Capabilities=["CAPABILITY_IAM"])
    status = cf.describe_stacks(StackName=old)["Stacks"][0]["StackStatus"]
    check(status == "CREATE_COMPLETE", f"the old service's stand-in {old}: {status}")
    return old


def preflight(*args):
    """scripts/preflight.py's answer (JSON) and exit code."""
    import subprocess

    run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "preflight.py"), "--json", "--region", REGION, *args],
                         capture_output=True, text=True, timeout=120)
    check(run.returncode in (0, 1), f"preflight {args}: exit {run.returncode}: {run.stderr[-2000:]}")
    try:
        return json.loads(run.stdout), run.returncode
    except ValueError:
        check(False, f"preflight printed no JSON: {run.stdout[-500:]} {run.stderr[-2000:]}")
        return {"parameters": {}, "problems": ["no answer"], "notes": []}, run.returncode


def stack_resources(cf, name):
    pages = cf.get_paginator("list_stack_resources").paginate(StackName=name)
    return {r["LogicalResourceId"]: r for page in pages for r in page["StackResourceSummaries"]}


def create(cf, name, template, params):
    body = json.dumps(template)
    try:
        cf.create_stack(StackName=name, TemplateBody=body,
                        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
                        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    except Exception as e:  # moto answers a failed create with the service's error
        check(False, f"stack {name} was not created: {e}")
        check.finish()
    stack = cf.describe_stacks(StackName=name)["Stacks"][0]
    check(stack["StackStatus"] == "CREATE_COMPLETE", f"stack {name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
    failed_resources = [(k, r["ResourceStatus"]) for k, r in stack_resources(cf, name).items() if r["ResourceStatus"] != "CREATE_COMPLETE"]
    check(not failed_resources, f"stack {name}: resources not created: {failed_resources}")
    physical = {k: r["PhysicalResourceId"] for k, r in stack_resources(cf, name).items()}
    intrinsics = Intrinsics(template, params, physical)
    stand_ins = []
    for logical, r in template["Resources"].items():
        if logical in physical or ("Condition" in r and not intrinsics.condition(r["Condition"])):
            continue
        if r["Type"] in NOT_MODELLED:
            continue
        made = stand_in_create(r, intrinsics.value(r.get("Properties", {})))
        check(made is not None, f"stack {name}: moto did not create {logical} ({r['Type']}) and no stand-in does")
        if made:
            stand_ins.append((r["Type"], made))
            physical[logical] = made
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return outputs, physical, stand_ins


class Intrinsics:
    """CloudFormation's intrinsics over a created stack: parameters, conditions, and the
    resources' physical ids (the few attributes the template reads are derived from them)."""

    def __init__(self, template, params, physical):
        self.template, self.physical = template, physical
        self.params = {k: str(p.get("Default", "")) for k, p in template["Parameters"].items()}
        self.params.update(params)
        self.params.update({"AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::Partition": "aws"})
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name):
        if name in self.params:
            value = self.params[name]
            kind = self.template["Parameters"].get(name, {}).get("Type", "")
            return value.split(",") if kind.startswith("List") or kind == "CommaDelimitedList" else value
        return self.physical[name]

    def att(self, name, attr):
        pid = self.physical[name]
        if attr == "QueueName":
            return pid.rsplit("/", 1)[-1]
        if attr == "Name":
            return pid.rsplit("/", 1)[-1]
        if attr == "Arn" and name in self.template["Resources"] and "Function" in self.template["Resources"][name]["Type"]:
            return f"arn:aws:lambda:{REGION}:123456789012:function:{pid}"
        raise KeyError(f"{name}.{attr} is not derived here")

    def sub(self, text, extra):
        import re

        def one(m):
            key = m.group(1)
            if key in extra:
                return str(extra[key])
            if "." in key and not key.startswith("AWS::"):
                return str(self.att(*key.split(".", 1)))
            v = self.ref(key)
            return ",".join(v) if isinstance(v, list) else str(v)
        return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", one, text)

    def value(self, v):
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (fn, args), = v.items()
            if fn == "Ref":
                return self.ref(args)
            if fn == "Condition":
                return self.condition(args)
            if fn == "Fn::GetAtt":
                return self.att(*args)
            if fn == "Fn::Sub":
                text, extra = (args, {}) if isinstance(args, str) else (args[0], {k: self.value(x) for k, x in args[1].items()})
                return self.sub(text, extra)
            if fn == "Fn::If":
                return self.value(args[1] if self.condition(args[0]) else args[2])
            if fn == "Fn::Equals":
                return self.value(args[0]) == self.value(args[1])
            if fn == "Fn::Not":
                return not self.value(args[0])
            if fn == "Fn::And":
                return all(self.value(a) for a in args)
            if fn == "Fn::Or":
                return any(self.value(a) for a in args)
            if fn == "Fn::Join":
                return args[0].join(self.value(args[1]))
            if fn == "Fn::Select":
                return self.value(args[1])[int(args[0])]
            if fn == "Fn::Split":
                return self.value(args[1]).split(args[0])
        return {k: self.value(x) for k, x in v.items()}


# Resource types moto's CloudFormation does not create: the test creates them, with the
# properties the stack resolves, where CloudFormation would (and deletes them with the stack).
def stand_in_create(r, props):
    if r["Type"] == "AWS::SecretsManager::Secret":
        value = props.get("SecretString")
        if value is None:
            # GenerateSecretString: the template's object with a generated value at its key.
            spec = props["GenerateSecretString"]
            value = json.dumps({**json.loads(spec["SecretStringTemplate"]), spec["GenerateStringKey"]: uuid.uuid4().hex})
        client("secretsmanager").create_secret(Name=props["Name"], Description=props.get("Description", ""),
                                               SecretString=value)
        return props["Name"]
    if r["Type"] == "AWS::CloudWatch::Alarm":
        keys = ["AlarmName", "AlarmDescription", "Namespace", "MetricName", "Statistic", "ComparisonOperator", "Threshold",
                "Period", "EvaluationPeriods", "DatapointsToAlarm", "TreatMissingData", "Dimensions",
                "AlarmActions", "OKActions", "InsufficientDataActions"]
        client("cloudwatch").put_metric_alarm(**{k: props[k] for k in keys if k in props})
        return props["AlarmName"]
    if r["Type"] == "AWS::IAM::ServiceLinkedRole":
        # Refused, as IAM does, when the account has it already (the preflight says whether).
        return client("iam").create_service_linked_role(AWSServiceName=props["AWSServiceName"])["Role"]["RoleName"]
    if r["Type"] == "AWS::SNS::Subscription":
        return client("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"],
                                       ReturnSubscriptionArn=True)["SubscriptionArn"]
    return None


# Types moto skips that no function reads (network rules, a topic's policy, a dependency
# anchor): nothing to stand in for.
NOT_MODELLED = {"AWS::SNS::TopicPolicy", "AWS::EC2::SecurityGroupEgress", "AWS::CloudFormation::WaitConditionHandle"}


def stand_in_delete(kind, name):
    if kind == "AWS::SecretsManager::Secret":
        # CloudFormation deletes a stack's secrets without a recovery window.
        client("secretsmanager").delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    elif kind == "AWS::CloudWatch::Alarm":
        client("cloudwatch").delete_alarms(AlarmNames=[name])
    elif kind == "AWS::SNS::Subscription":
        client("sns").unsubscribe(SubscriptionArn=name)


def deploy(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    s3, cf, lam, ddb = client("s3"), client("cloudformation"), client("lambda"), client("dynamodb")
    s3.create_bucket(Bucket="stack-code")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    s3.put_object(Bucket="stack-code", Key="connector.zip", Body=code.getvalue())
    template = translated()
    vpc, subnets, route_table = network()
    stage = "s" + uuid.uuid4().hex[:8]
    prefix = f"mako-connect-{stage}"  # the default Service
    old = old_service(cf, stage, vpc, subnets, route_table)
    endpoints_before = client("ec2").describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    # The preflight reads the shared VPC: every endpoint exists (a second interface endpoint with
    # private DNS would be refused), the broker's address is in the VPC, the old service is seen.
    broker = "10.42.7.10:9094"
    pre, code = preflight("--vpc-id", vpc, "--subnet-ids", ",".join(subnets), "--stage", stage, "--broker-string", broker,
                          "--alert-email", "oncall@example.org", "--stack-name", f"{prefix}-1")
    check(code == 0 and not pre["problems"], f"preflight beside the old service found problems: {pre['problems']}")
    suggested = pre["parameters"]
    check(all(v == "existing" for k, v in suggested.items() if k.startswith("VpcEndpoint")) and len(
        [k for k in suggested if k.startswith("VpcEndpoint")]) == 10, f"preflight's endpoint values: {suggested}")
    check(any(old in n for n in pre["notes"]), f"preflight did not see the old service {old}: {pre['notes']}")
    params = {"Stage": stage, "VpcId": vpc, "PrivateSubnetIds": ",".join(subnets), "PrivateRouteTableIds": route_table,
              "BrokerString": "b-1.example.internal:9094", "RunbookBaseUrl": "https://runbooks.example/runbooks",
              "AlertEmail": "oncall@example.org",
              "ConnectImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/connect:1"}

    # With the defaults, beside the old service in its VPC: nothing of the old one is touched and
    # no endpoint is added.
    first, _, stand_ins = create(cf, f"{prefix}-1", template, params)
    after = client("ec2").describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    check(len(after) == len(endpoints_before), f"the stack created endpoints in a VPC that has them: {len(endpoints_before)} -> {len(after)}")
    check(cf.describe_stacks(StackName=old)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE", "the old service's stack changed")
    tables = [first[k] for k in ["SeatoolTableName", "AppianTableName"]]
    # History the next stack must keep: one item in each table.
    for table in tables:
        ddb.put_item(TableName=table, Item={"PK": {"S": "KEPT-1"}, "SK": {"S": "KEPT-1"}, "from": {"S": f"{prefix}-1"}})
    cf.delete_stack(StackName=f"{prefix}-1")
    for kind, made in stand_ins:
        stand_in_delete(kind, made)
    def exists(table):
        try:
            ddb.describe_table(TableName=table)
            return True
        except ddb.exceptions.ResourceNotFoundException:
            return False

    check(all(exists(t) for t in tables), f"the data tables {tables} were not kept when the stack was deleted")
    check(not exists(first["MonitorStateTableName"]), "the monitor-state table outlived its stack")

    # Again, as a first deploy does it (no image yet: the service runs no task), with the kept
    # tables of the first stack still there.
    # and with the preflight's parameters.
    params["ConnectImage"] = ""
    params.update({k: v for k, v in suggested.items() if k not in ("BrokerString",)})
    # Created again on the tables the first kept: adopted, not replaced by empty ones. The
    # preflight checks them (and refuses one whose keys the sinks cannot write).
    ddb.create_table(TableName=f"{prefix}-wrong-keys", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    adopt, code = preflight("--vpc-id", vpc, "--subnet-ids", ",".join(subnets), "--stage", stage, "--broker-string", broker,
                            "--alert-email", "oncall@example.org", "--stack-name", f"{prefix}-2",
                            "--seatool-table", tables[0], "--appian-table", f"{prefix}-wrong-keys")
    check(code == 1 and adopt["parameters"].get("ExistingSeatoolTable") == tables[0]
          and any(f"{prefix}-wrong-keys" in p and "PK and SK" in p for p in adopt["problems"]),
          f"preflight of tables to adopt: {adopt}")
    params.update({"ExistingSeatoolTable": tables[0], "ExistingAppianTable": tables[1]})
    name = f"{prefix}-2"
    outputs, physical, _ = create(cf, name, template, params)
    # A second stage in the same VPC, beside both: its own names, no endpoint of its own.
    other_stage = "o" + stage[1:]
    pre_other, code = preflight("--vpc-id", vpc, "--subnet-ids", ",".join(subnets), "--stage", other_stage,
                                "--broker-string", broker, "--alert-email", "oncall@example.org")
    check(code == 0 and pre_other["parameters"]["CreateEcsServiceLinkedRole"] == "false",
          f"preflight of a second stage once the role exists: {pre_other}")
    other, other_physical, _ = create(cf, f"mako-connect-{other_stage}", template,
                                      {**params, **pre_other["parameters"], "BrokerString": params["BrokerString"],
                                       "ExistingSeatoolTable": "", "ExistingAppianTable": ""})
    mine = {v for k, v in physical.items() if k.endswith("Logs") or k in ("TestConnectors", "AlertsTopic")}
    theirs = {v for k, v in other_physical.items() if k.endswith("Logs") or k in ("TestConnectors", "AlertsTopic")}
    check(mine and not mine & theirs, f"two stages share names: {sorted(mine & theirs)}")
    after = client("ec2").describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    check(len(after) == len(endpoints_before), f"a stage created endpoints in a VPC that has them: {len(after)}")
    # The preflight for a third stack under the second's names finds every name taken; a broker
    # no route reaches is a problem; a VPC without endpoints or NAT gets them created.
    clash, code = preflight("--vpc-id", vpc, "--subnet-ids", ",".join(subnets), "--stage", stage, "--broker-string",
                            "192.0.2.10:9094", "--stack-name", f"{prefix}-3", "--alert-email", "oncall@example.org")
    check(code == 1 and any(f"{prefix}-testConnectors" in p or "more names" in p for p in clash["problems"])
          and any("192.0.2.10" in p for p in clash["problems"]), f"preflight under taken names: {clash['problems']}")
    bare_vpc, bare_subnets, _ = network()
    bare, code = preflight("--vpc-id", bare_vpc, "--subnet-ids", ",".join(bare_subnets), "--stage", "bare",
                           "--broker-string", broker)
    check(code == 1 and all(v == "create" for k, v in bare["parameters"].items() if k.startswith("VpcEndpoint"))
          and bare["parameters"]["PrivateRouteTableIds"] and any("nobody would be paged" in p for p in bare["problems"]),
          f"preflight in a VPC without endpoints: {bare}")
    check([outputs["SeatoolTableName"], outputs["AppianTableName"]] == tables,
          f"the second stack did not adopt the kept tables {tables}: {outputs['SeatoolTableName']}, {outputs['AppianTableName']}")
    for table in tables:
        kept = ddb.get_item(TableName=table, Key={"PK": {"S": "KEPT-1"}, "SK": {"S": "KEPT-1"}}).get("Item")
        check(kept is not None, f"the adopted table {table} lost the first stack's item")
    check(not {"SeatoolTable", "AppianTable"} & set(physical), "the stack created a table it was told to adopt")
    # A worker that reports nothing leaves the connector-unhealthy alarms breaching, not OK.
    unhealthy = [a for a in client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
                 if a["AlarmName"].endswith("-connector-unhealthy")]
    check(len(unhealthy) == 2 and all(a.get("TreatMissingData") == "breaching" for a in unhealthy),
          f"the stack's connector-unhealthy alarms: {[(a['AlarmName'], a.get('TreatMissingData')) for a in unhealthy]}")
    # Alerts reach a person: the critical topic and (no warning subscriber given) the warning one
    # both reach AlertEmail.
    sns = client("sns")
    for key in ["AlertsTopicArn", "WarningAlertsTopicArn"]:
        subs = sns.list_subscriptions_by_topic(TopicArn=outputs[key])["Subscriptions"]
        check([(x["Protocol"], x["Endpoint"]) for x in subs] == [("email", params["AlertEmail"])],
              f"{key} is subscribed by {[(x['Protocol'], x['Endpoint']) for x in subs]}, expected AlertEmail alone")
    service = client("ecs").describe_services(cluster=outputs["ConnectClusterName"], services=[outputs["ConnectServiceName"]])["services"][0]
    check(service["desiredCount"] == 0, f"without an image the service wants {service['desiredCount']} tasks, expected 0")

    functions = {}
    for logical, r in template["Resources"].items():
        if r["Type"] == "AWS::Lambda::Function":
            conf = lam.get_function_configuration(FunctionName=physical[logical])
            binary = conf["FunctionName"][len(prefix) + 1:]
            functions[binary] = conf
            env = conf.get("Environment", {}).get("Variables", {})
            with open(os.path.join(out_dir, f"{binary}.env"), "w") as f:
                f.writelines(f"{k}={v}\n" for k, v in sorted(env.items()))
    cargo_bins = {line.split('"')[1] for line in open(os.path.join(ROOT, "functions/lambdas/Cargo.toml")) if line.startswith("name = ") and "connector" not in line}
    check(set(functions) == cargo_bins, f"functions of the stack {sorted(functions)}, binaries {sorted(cargo_bins)}")
    json.dump({"stack": name, "prefix": prefix, "outputs": outputs,
               "resources": physical},
              open(os.path.join(out_dir, "stack.json"), "w"), indent=1)
    print(f"stack: {name} created, deleted and created again; {len(functions)} functions' environments in {out_dir}")


def invoke(binary, payload):
    url = os.environ[f"STACK_WATCH_{binary}"]
    req = urllib.request.Request(f"{url}/2015-03-31/functions/{binary}/invocations", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def sample(path, prefix, renames=()):
    """A file of events/, with the sample deployment's names replaced by the stack's."""
    text = open(os.path.join(ROOT, "events", path)).read()
    for old, new in renames:
        text = text.replace(old, new)
    return json.loads(text.replace("mako-connector-main", prefix))


def emf_lines(binary):
    """The metric lines the function printed since its server last started: a service's log keeps
    its earlier lives (lib.sh's start_bg), an earlier scripts/test run's stack among them."""
    lines = []
    for line in open(os.environ[f"STACK_LOG_{binary}"], errors="replace"):
        if line.startswith("=== ") and ": started " in line:
            lines = []
        elif '"_aws":' in line:
            try:
                lines.append(json.loads(line[line.index("{"):]))
            except ValueError:
                pass
    return lines


def drain(queue_url, want, seconds=30):
    """Messages of the topic's test subscription until `want` arrived or `seconds` passed."""
    sqs, got, deadline = client("sqs"), [], time.time() + seconds
    while len(got) < want and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return got


def exercise(out_dir):
    info = json.load(open(os.path.join(out_dir, "stack.json")))
    prefix, outputs = info["prefix"], info["outputs"]
    ddb, sqs, sns = client("dynamodb"), client("sqs"), client("sns")
    # The topic's messages, read through a queue subscribed to it.
    queue = sqs.create_queue(QueueName=f"{prefix}-alerts-seen")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=outputs["AlertsTopicArn"], Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})

    # The sinks write the stack's tables.
    for binary, batch, table in [("sinkSeatoolData", "sink/confluent-seatool-batch.json", outputs["SeatoolTableName"]),
                                 ("sinkAppianData", "sink/confluent-appian-batch.json", outputs["AppianTableName"])]:
        status, answer = invoke(binary, sample(batch, prefix))
        check(status == 200, f"{binary}: HTTP {status}: {answer}")
        items = ddb.scan(TableName=table, Select="COUNT")["Count"]
        check(items > 0, f"{binary} answered {answer} and the stack's table {table} holds {items} items")

    # A dead letter too large for SQS: kept whole in the stack's bucket, the letter names it.
    bucket = dict(line.rstrip("\n").split("=", 1)
                  for line in open(os.path.join(out_dir, "sinkSeatoolData.env")))["DEAD_LETTER_BUCKET"]
    big = [{"payload": {"timestamp": 1, "topic": "t", "partition": 0, "offset": 1, "key": '"BIG-1"',
                        "value": "\u0001" * 300_000}}]
    status, answer = invoke("sinkSeatoolData", big)
    check(status == 200 and answer[0]["payload"]["result"] == "dead-lettered", f"sinkSeatoolData on a 300 KB binary value: HTTP {status}: {str(answer)[:300]}")
    keys = [o["Key"] for o in client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]
    check(len(keys) == 1 and keys[0].startswith("dead-letters/seatool/t/0/1-"), f"the stack's bucket {bucket} holds {keys}, not one claim check")

    # alarmState: an alarm of the stack becomes one alert on the stack's topic; a direct alarm none.
    # The sample's alarm renamed to one the stack has.
    status, answer = invoke("alarmState", sample("alarm/sink-failure-alarm.json", prefix,
                                                 [("main-sink-failure", "main-seatool-errors-sink-failure")]))
    check(status == 200 and answer.get("alerted") is True, f"alarmState on the sink-failure alarm: HTTP {status}: {answer}")
    status, answer = invoke("alarmState", sample("alarm/monitor-heartbeat-insufficient-data.json", prefix))
    check(status == 200 and answer.get("alerted") is False, f"alarmState on the heartbeat (a direct alarm): HTTP {status}: {answer}")
    # ecsTaskState: a stop of a task of the stack's cluster.
    status, answer = invoke("ecsTaskState", sample("ecs/task-stopped-oom-killed.json", prefix))
    check(status == 200 and answer.get("alerted") is True, f"ecsTaskState on an OOM kill: HTTP {status}: {answer}")
    # testConnectors: reads the stack's connector secrets, finds no worker (no image yet, no
    # task), records it in its state table and alerts.
    status, report = invoke("testConnectors", sample("schedule/scheduled-event.json", prefix))
    check(status == 200, f"testConnectors: HTTP {status}: {report}")
    check(report.get("worker") is None, f"testConnectors reached a worker {report.get('worker')} the stack does not run")
    check(sorted(report.get("desired", [])) == [f"{prefix}.appian-sink", f"{prefix}.seatool-sink"],
          f"testConnectors did not read the stack's connector secrets: {json.dumps(report)[:600]}")
    # The control functions, told no cluster, look in the stack's (which runs no task).
    cluster = outputs["ConnectClusterName"]
    for binary, payload in [("findTaskIp", {"Context": {"Execution": {"Input": {}}}}), ("deleteConnector", {"connectorName": f"{prefix}.seatool-sink"})]:
        status, answer = invoke(binary, payload)
        print(f"{binary} without a cluster: HTTP {status}: {answer}")
        check(f"no RUNNING Kafka Connect task with an IP address in ECS cluster {cluster}" in json.dumps(answer),
              f"{binary} did not look in the stack's cluster {cluster}: HTTP {status}: {answer}")
    state = ddb.scan(TableName=outputs["MonitorStateTableName"])["Items"]
    check(len(state) > 0, "testConnectors wrote nothing to the stack's monitor-state table")

    subjects = sorted(json.loads(m["Message"]).get("subject", "") if m["Message"].startswith("{") else m.get("Subject", "")
                      for m in drain(queue, 3))
    print("alerts on the stack's topic:", subjects)
    for part in [f"sink-failure {prefix}-connect/{prefix}-seatool-errors", "oom-killed", "worker-unreachable"]:
        check(any(part in s for s in subjects), f"no alert with {part} reached the stack's topic: {subjects}")

    # Every metric printed is in the stack's namespace and, where the stack has an alarm on it,
    # carries exactly the alarm's dimensions (CloudWatch matches the whole dimension set).
    def env_of(binary):
        return dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(out_dir, f"{binary}.env")))

    namespace = env_of("sinkSeatoolData")["METRICS_NAMESPACE"]
    seen = {}
    for binary in ["sinkSeatoolData", "sinkAppianData", "testConnectors", "ecsTaskState"]:
        for line in emf_lines(binary):
            decl = line["_aws"]["CloudWatchMetrics"][0]
            check(decl["Namespace"] == namespace, f"{binary} printed metrics in {decl['Namespace']}, the stack's namespace is {namespace}")
            for m in decl["Metrics"]:
                seen.setdefault(m["Name"], []).append({d: line[d] for d in decl["Dimensions"][0]})
    for must in ["SinkRecordsFailed", "MonitorHeartbeat", "EcsTaskStopped"]:
        check(must in seen, f"no {must} metric in the functions' logs ({sorted(seen)})")
    alarms = client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    # The alarms that bypass alarmState name the stack's topic itself.
    direct = [a for a in alarms if a["AlarmActions"]]
    check(len(direct) >= 5 and all(a["AlarmActions"] == a["OKActions"] == [outputs["AlertsTopicArn"]] for a in direct),
          f"direct alarms and their actions: {[(a['AlarmName'], a['AlarmActions']) for a in direct]}")
    matched = 0
    for a in alarms:
        if a["Namespace"] != namespace or a["MetricName"] not in seen:
            continue
        want = {d["Name"]: d["Value"] for d in a["Dimensions"]}
        matched += 1
        check(want in seen[a["MetricName"]], f"alarm {a['AlarmName']} wants {a['MetricName']} with {want}; printed: {seen[a['MetricName']][:4]}")
    print(f"alarms matched with printed metrics: {matched}")
    check(matched >= 3, f"only {matched} alarms of the stack could be matched with printed metrics")
    context_from_stack(info)


def context_from_stack(info):
    """`connectorctl context from-stack` takes the stack's names from its outputs."""
    import subprocess
    import tempfile

    outputs = info["outputs"]
    ctl = os.path.join(os.environ["CARGO_TARGET_DIR"], "debug", "connectorctl")
    with tempfile.TemporaryDirectory() as home:
        config = os.path.join(home, "contexts.json")
        env = {**os.environ, "CONNECTORCTL_CONFIG": config}
        run = subprocess.run([ctl, "--region", REGION, "context", "from-stack", "deployed", "--stack", info["stack"]],
                             env=env, capture_output=True, text=True, timeout=60)
        check(run.returncode == 0, f"connectorctl context from-stack: exit {run.returncode}: {run.stderr}")
        saved = json.load(open(config)) if run.returncode == 0 else {"contexts": {}}
        ctx = saved["contexts"].get("deployed", {})
        want = {"cluster": outputs["ConnectClusterName"], "stateTable": outputs["MonitorStateTableName"],
                "secretPrefix": outputs["ConnectorConfigSecretPrefix"], "alertTopicArn": outputs["AlertsTopicArn"],
                "seatoolTable": outputs["SeatoolTableName"], "appianTable": outputs["AppianTableName"],
                "connectCredentialsSecret": outputs["ConnectRestCredentialsSecret"], "region": REGION}
        check({k: ctx.get(k) for k in want} == want and saved.get("current") == "deployed",
              f"the context from the stack's outputs: {saved}, expected {want}")
        # A stack that is not this one is refused by name.
        run = subprocess.run([ctl, "--region", REGION, "context", "from-stack", "x", "--stack", "no-such-stack"],
                             env=env, capture_output=True, text=True, timeout=60)
        check(run.returncode != 0 and "no-such-stack" in run.stderr, f"from-stack of a missing stack: exit {run.returncode}: {run.stderr}")


if __name__ == "__main__":
    check.name = f"stack {sys.argv[1]}"
    {"deploy": deploy, "exercise": exercise}[sys.argv[1]](sys.argv[2])
    check.finish()
