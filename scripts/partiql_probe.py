"""What moto's DynamoDB runs of PartiQL BatchExecuteStatement, the batched form of conditional
writes the sink could use to go under one request per id (issue 14). Run by hand against a moto:

    .venv-tools/bin/python scripts/partiql_probe.py http://127.0.0.1:<moto port>

Prints one line per probe: the statement's form and what moto answered. The README's "Cost"
section records the result and why the sink stays at one conditional PutItem per id.
"""

import json
import sys
import uuid

import boto3

ENDPOINT = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
client = boto3.client(
    "dynamodb", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
)
TABLE = f"partiql-probe-{uuid.uuid4().hex[:8]}"
client.create_table(
    TableName=TABLE,
    KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK")],
    BillingMode="PAY_PER_REQUEST",
)


def probe(label, statements):
    try:
        out = client.batch_execute_statement(Statements=statements)
        answer = json.dumps([r.get("Error", {}).get("Code", "ok") for r in out["Responses"]])
    except Exception as e:  # what moto cannot run comes back as a 500 or a client error
        answer = f"request failed: {str(e).splitlines()[0][:120]}"
    stored = client.get_item(TableName=TABLE, Key={"PK": {"S": "A"}, "SK": {"S": "A"}}).get("Item")
    print(f"{label:<48} {answer}   item A now: {stored}")


def s(statement, *parameters):
    return {"Statement": statement, **({"Parameters": list(parameters)} if parameters else {})}


t = f'"{TABLE}"'
probe("INSERT with ? parameters", [s(f"INSERT INTO {t} VALUE {{'PK': ?, 'SK': ?, 'o': ?}}", {"S": "A"}, {"S": "A"}, {"N": "5"})])
probe("INSERT with literals (new item)", [s(f"INSERT INTO {t} VALUE {{'PK': 'A', 'SK': 'A', 'o': 5, 'a': 1}}")])
probe("INSERT over an existing item (AWS: DuplicateItem)", [s(f"INSERT INTO {t} VALUE {{'PK': 'A', 'SK': 'A', 'o': 6}}")])
probe("UPDATE ... WHERE o < 7 (newer)", [s(f"UPDATE {t} SET o = 7 WHERE PK = 'A' AND SK = 'A' AND o < 7")])
probe("UPDATE ... WHERE o < ? (parameter)", [s(f"UPDATE {t} SET o = 8 WHERE PK = 'A' AND SK = 'A' AND o < ?", {"N": "8"})])
probe("UPDATE ... REMOVE a (drop an old field)", [s(f"UPDATE {t} REMOVE a SET o = 9 WHERE PK = 'A' AND SK = 'A'")])
probe("26 INSERTs in one request (AWS: at most 25)", [s(f"INSERT INTO {t} VALUE {{'PK': 'X{i}', 'SK': 'X{i}'}}") for i in range(26)])
client.delete_table(TableName=TABLE)
