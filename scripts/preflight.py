"""Reads the target account and VPC before a deploy and prints the parameter values to use, or
what is wrong (scripts/preflight runs it; README "A first deploy").

It creates nothing. It reads: the VPC's endpoints (which services already have one, with private
DNS or not) and the private subnets' routes (a NAT, the brokers' addresses), whether any name
this stack would give is already taken (the old service's names differ by Service), the licence
secret, and the ECS service-linked role. Exit 0 when nothing is wrong, 1 with problems, 2 on
bad arguments. `--json` prints {"parameters", "problems", "notes"}."""
import argparse
import ipaddress
import json
import os
import re
import socket
import sys

import boto3
import botocore.exceptions
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
INTERFACE = {"Ecs": "ecs", "SecretsManager": "secretsmanager", "Sns": "sns", "Lambda": "lambda", "Logs": "logs",
             "EcrApi": "ecr.api", "EcrDkr": "ecr.dkr", "SsmMessages": "ssmmessages"}
GATEWAY = {"DynamoDb": "dynamodb", "S3": "s3"}
LIVE = {"pendingAcceptance", "pending", "available"}
# A private subnet's default route that reaches the internet (an internet gateway does not
# without a public address, which the functions and the workers do not have).
NAT_TARGETS = ("NatGatewayId", "TransitGatewayId", "InstanceId", "NetworkInterfaceId")


class Report:
    def __init__(self):
        self.parameters, self.problems, self.notes = {}, [], []

    def problem(self, text):
        self.problems.append(text)

    def note(self, text):
        self.notes.append(text)


def absent(e):
    code = e.response.get("Error", {}).get("Code", "")
    return code in {"ResourceNotFoundException", "NoSuchEntity", "NotFoundException", "ClusterNotFoundException",
                    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFound", "ValidationError",
                    "StateMachineDoesNotExist", "ResourceNotFound", "InvalidParameterValueException"}


def route_tables(ec2, vpc, subnets):
    """{subnet: its route table} (the VPC's main table where a subnet has none of its own)."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    mine = {}
    for s in subnets:
        own = next((t for t in tables if any(a.get("SubnetId") == s for a in t.get("Associations", []))), None)
        mine[s] = own or main
    return mine


def has_nat(table):
    return table is not None and any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and any(k in r for k in NAT_TARGETS)
                                     for r in table.get("Routes", []))


def endpoints(ec2, region, vpc, tables, report):
    found = [e for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
             if e.get("State", "available") in LIVE]
    nat = all(has_nat(t) for t in tables.values())
    for key, service in INTERFACE.items():
        name = f"com.amazonaws.{region}.{service}"
        mine = [e for e in found if e["ServiceName"] == name and e["VpcEndpointType"] == "Interface"]
        if any(e.get("PrivateDnsEnabled") for e in mine):
            value = "existing"
            report.note(f"{service}: the VPC has {mine[0]['VpcEndpointId']} with private DNS; a second one would be refused")
        elif mine:
            value = "create"
            report.note(f"{service}: {mine[0]['VpcEndpointId']} has no private DNS, so the AWS SDK would not use it; the stack creates one with private DNS")
        else:
            value = "none" if nat else "create"
        report.parameters[f"VpcEndpoint{key}"] = value
    ids = {t["RouteTableId"] for t in tables.values() if t}
    gateways_to_create = False
    for key, service in GATEWAY.items():
        name = f"com.amazonaws.{region}.{service}"
        mine = [e for e in found if e["ServiceName"] == name and e["VpcEndpointType"] == "Gateway"]
        covered = set().union(*[set(e.get("RouteTableIds", [])) for e in mine]) & ids
        if covered == ids:
            value = "existing"
        elif covered:
            value = "existing"
            report.problem(f"{service}: gateway endpoint {mine[0]['VpcEndpointId']} is on route tables {sorted(covered)} "
                           f"but not {sorted(ids - covered)}; add them to it (a route table takes one gateway per service)")
        else:
            value = "create"
            gateways_to_create = True
        report.parameters[f"VpcEndpoint{key}"] = value
    report.parameters["PrivateRouteTableIds"] = ",".join(sorted(ids)) if gateways_to_create else ""


def brokers(broker_string, cidrs, tables, report):
    """Each broker's address has a route from every private subnet: the VPC's own range, or a
    route (peering, transit gateway, NAT) in the subnet's table."""
    for entry in [b.strip() for b in broker_string.split(",") if b.strip()]:
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit():
            report.problem(f"broker {entry!r} is not host:port")
            continue
        try:
            addresses = sorted({a[4][0] for a in socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP)})
        except OSError as e:
            report.note(f"broker {host}: cannot resolve it from here ({e}); its route is unchecked")
            continue
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if any(ip in ipaddress.ip_network(c) for c in cidrs):
                continue
            missing = [s for s, t in tables.items()
                       if not any(r.get("DestinationCidrBlock") and ip in ipaddress.ip_network(r["DestinationCidrBlock"])
                                  and r.get("State", "active") == "active" and not r.get("GatewayId", "").startswith("igw-")
                                  for r in (t or {}).get("Routes", []))]
            if missing:
                report.problem(f"broker {host} ({address}) is outside the VPC {cidrs} and subnets {missing} have no route to it")


def names(region, account, project, service, stage):
    """(kind, name) of every name the template gives, for these parameters."""
    template = yaml.safe_load(open(os.path.join(ROOT, "infra", "template.yaml")))
    values = {"Project": project, "Service": service, "Stage": stage, "AWS::Region": region,
              "AWS::AccountId": account, "AWS::Partition": "aws"}
    props = {"AWS::Serverless::Function": "FunctionName", "AWS::Logs::LogGroup": "LogGroupName", "AWS::SQS::Queue": "QueueName",
             "AWS::SNS::Topic": "TopicName", "AWS::ECS::Cluster": "ClusterName", "AWS::SecretsManager::Secret": "Name",
             "AWS::Serverless::StateMachine": "Name", "AWS::CloudWatch::Alarm": "AlarmName"}
    for r in template["Resources"].values():
        prop = props.get(r["Type"])
        value = r.get("Properties", {}).get(prop) if prop else None
        if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
            yield r["Type"], re.sub(r"\$\{([A-Za-z:]+)\}", lambda m: values.get(m.group(1), m.group(0)), value["Fn::Sub"])


def taken(session, region, account, kind, name):
    try:
        if kind == "AWS::Serverless::Function":
            session.client("lambda").get_function(FunctionName=name)
        elif kind == "AWS::Logs::LogGroup":
            groups = session.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            return any(g["logGroupName"] == name for g in groups)
        elif kind == "AWS::SQS::Queue":
            session.client("sqs").get_queue_url(QueueName=name)
        elif kind == "AWS::SNS::Topic":
            session.client("sns").get_topic_attributes(TopicArn=f"arn:aws:sns:{region}:{account}:{name}")
        elif kind == "AWS::ECS::Cluster":
            clusters = session.client("ecs").describe_clusters(clusters=[name])["clusters"]
            return any(c["status"] == "ACTIVE" for c in clusters)
        elif kind == "AWS::SecretsManager::Secret":
            return "DeletedDate" not in session.client("secretsmanager").describe_secret(SecretId=name)
        elif kind == "AWS::Serverless::StateMachine":
            session.client("stepfunctions").describe_state_machine(
                stateMachineArn=f"arn:aws:states:{region}:{account}:stateMachine:{name}")
        elif kind == "AWS::CloudWatch::Alarm":
            return bool(session.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"])
        return True
    except botocore.exceptions.ClientError as e:
        if absent(e):
            return False
        raise


def collisions(session, region, account, args, report):
    cf = session.client("cloudformation")
    try:
        cf.describe_stacks(StackName=args.stack_name)
        report.note(f"stack {args.stack_name} exists: this deploy is an update of it, its own names are no collision")
        return
    except botocore.exceptions.ClientError as e:
        if not absent(e):
            raise
    clashes = [(k, n) for k, n in names(region, account, args.project, args.service, args.stage)
               if taken(session, region, account, k, n)]
    for kind, name in clashes[:10]:
        report.problem(f"{kind.split('::')[-1]} {name} exists and is not stack {args.stack_name}'s: choose another Service or Stage")
    if len(clashes) > 10:
        report.problem(f"... and {len(clashes) - 10} more names of this stack are taken")
    if args.service != "connector":
        old = f"{args.project}-connector-{args.stage}"
        functions = [f["FunctionName"] for page in session.client("lambda").get_paginator("list_functions").paginate()
                     for f in page["Functions"] if f["FunctionName"].startswith(old + "-")]
        if functions:
            report.note(f"the old service runs here ({len(functions)} functions {old}-…); this stack's names "
                        f"({args.project}-{args.service}-{args.stage}-…) are apart from them")


def license_secret(session, arn, report):
    if not arn:
        report.note("no licence secret: the connector runs its 30-day trial (ConfluentLicenseSecretArn)")
        return
    try:
        described = session.client("secretsmanager").describe_secret(SecretId=arn)
        if "DeletedDate" in described:
            report.problem(f"licence secret {arn} is scheduled for deletion")
        else:
            report.parameters["ConfluentLicenseSecretArn"] = described["ARN"]
    except botocore.exceptions.ClientError as e:
        if not absent(e):
            raise
        report.problem(f"licence secret {arn} does not exist")


def adopted_tables(session, tables, report):
    """Tables to adopt: they exist, with the sinks' keys (PK and SK, strings)."""
    ddb = session.client("dynamodb")
    for param, table in tables:
        if not table:
            continue
        try:
            described = ddb.describe_table(TableName=table)["Table"]
        except botocore.exceptions.ClientError as e:
            if not absent(e):
                raise
            report.problem(f"table {table} ({param}) does not exist")
            continue
        keys = {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]}
        types = {a["AttributeName"]: a["AttributeType"] for a in described["AttributeDefinitions"]}
        if keys != {"PK": "HASH", "SK": "RANGE"} or types.get("PK") != "S" or types.get("SK") != "S":
            report.problem(f"table {table} ({param}) has keys {keys} {types}; the sinks write PK and SK, strings")
            continue
        report.parameters[param] = table
        ttl = ddb.describe_time_to_live(TableName=table).get("TimeToLiveDescription", {})
        if ttl.get("AttributeName") != "@expires" or ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            report.note(f"table {table}: TTL is not on @expires, so deleted records' tombstones stay (enable it to expire them)")


def service_linked_role(session, report):
    """ECS's service-linked role (AWSServiceRoleForECS), found by the path IAM gives it."""
    pages = session.client("iam").get_paginator("list_roles").paginate(PathPrefix="/aws-service-role/ecs.amazonaws.com/")
    if any(page["Roles"] for page in pages):
        report.parameters["CreateEcsServiceLinkedRole"] = "false"
    else:
        report.parameters["CreateEcsServiceLinkedRole"] = "true"
        report.note("the account has no AWSServiceRoleForECS (no ECS service yet): the stack creates it")


def main(argv):
    p = argparse.ArgumentParser(prog="scripts/preflight", description=__doc__.split("\n\n")[0])
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    p.add_argument("--profile")
    p.add_argument("--vpc-id", required=True)
    p.add_argument("--subnet-ids", required=True, help="the private subnets, comma-separated")
    p.add_argument("--project", default="mako")
    p.add_argument("--service", default="connect")
    p.add_argument("--stage", required=True)
    p.add_argument("--stack-name", help="default: <project>-<service>-<stage>")
    p.add_argument("--broker-string", required=True)
    p.add_argument("--license-secret-arn", default="")
    p.add_argument("--seatool-table", default="", help="a table to adopt (ExistingSeatoolTable)")
    p.add_argument("--appian-table", default="", help="a table to adopt (ExistingAppianTable)")
    p.add_argument("--alert-email", default="")
    p.add_argument("--alert-https-endpoint", default="")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not args.region:
        p.error("no region: pass --region or set AWS_REGION")
    args.stack_name = args.stack_name or f"{args.project}-{args.service}-{args.stage}"
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    report = Report()
    account = session.client("sts").get_caller_identity()["Account"]
    ec2 = session.client("ec2")
    subnet_ids = [s.strip() for s in args.subnet_ids.split(",") if s.strip()]
    vpc = ec2.describe_vpcs(VpcIds=[args.vpc_id])["Vpcs"][0]
    cidrs = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", [])] or [vpc["CidrBlock"]]
    for s in ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]:
        if s["VpcId"] != args.vpc_id:
            report.problem(f"subnet {s['SubnetId']} is in {s['VpcId']}, not {args.vpc_id}")
    tables = route_tables(ec2, args.vpc_id, subnet_ids)
    report.parameters.update({"Project": args.project, "Service": args.service, "Stage": args.stage,
                              "VpcId": args.vpc_id, "PrivateSubnetIds": ",".join(subnet_ids),
                              "BrokerString": args.broker_string})
    endpoints(ec2, args.region, args.vpc_id, tables, report)
    brokers(args.broker_string, cidrs, tables, report)
    collisions(session, args.region, account, args, report)
    license_secret(session, args.license_secret_arn, report)
    service_linked_role(session, report)
    adopted_tables(session, [("ExistingSeatoolTable", args.seatool_table), ("ExistingAppianTable", args.appian_table)], report)
    if args.alert_email:
        report.parameters["AlertEmail"] = args.alert_email
    if args.alert_https_endpoint:
        report.parameters["AlertHttpsEndpoint"] = args.alert_https_endpoint
    if not (args.alert_email or args.alert_https_endpoint):
        report.problem("nobody would be paged: pass --alert-email or --alert-https-endpoint "
                       "(or deploy with AlertSubscriptions=none on purpose)")
    if args.json:
        print(json.dumps({"stack": args.stack_name, "parameters": report.parameters, "problems": report.problems,
                          "notes": report.notes}, indent=1))
    else:
        for n in report.notes:
            print(f"note: {n}")
        for pr in report.problems:
            print(f"PROBLEM: {pr}")
        overrides = " ".join(f"{k}={v}" for k, v in report.parameters.items() if v != "")
        print(f"\nsam deploy --stack-name {args.stack_name} --parameter-overrides {overrides} RunbookBaseUrl=<url>")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
