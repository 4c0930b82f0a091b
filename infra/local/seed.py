#!/usr/bin/env python3
"""Create the local resources `cargo lambda watch` runs against (idempotent).

Names match the defaults in functions/*/Cargo.toml ([package.metadata.lambda.env]):
- DynamoDB Local: table winback-local, created from WINBACK_TABLE_SPEC (template.yaml's table).
- moto: event bus winback-local, a rule sending WinbackStepDue to the SQS queue
  winback-local-steps (as on AWS), and the SES identity winback@example.com.

Run with the stack's env file sourced (infra/local/stack.sh start does it).
"""

import json
import os
import sys

import boto3
from botocore.exceptions import ClientError

TABLE = os.environ.get("WINBACK_LOCAL_TABLE", "winback-local")
BUS = os.environ.get("WINBACK_LOCAL_BUS", "winback-local")
QUEUE = os.environ.get("WINBACK_LOCAL_QUEUE", "winback-local-steps")
SENDER = os.environ.get("WINBACK_LOCAL_SENDER", "winback@example.com")


def table():
    ddb = boto3.client("dynamodb")
    spec = json.load(open(os.environ["WINBACK_TABLE_SPEC"], encoding="utf-8"))
    ttl = spec.pop("TimeToLiveAttribute", None)
    try:
        ddb.create_table(TableName=TABLE, **spec)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return "exists"
    ddb.get_waiter("table_exists").wait(TableName=TABLE)
    if ttl:
        ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
    return "created"


def bus_and_queue():
    events = boto3.client("events")
    sqs = boto3.client("sqs")
    try:
        events.create_event_bus(Name=BUS)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "360"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="winback-local-step-due",
        EventBusName=BUS,
        EventPattern=json.dumps({"source": ["winback"], "detail-type": ["WinbackStepDue"]}),
        State="ENABLED",
    )
    events.put_targets(Rule="winback-local-step-due", EventBusName=BUS, Targets=[{"Id": "steps", "Arn": queue_arn}])
    return queue_url


def ses_identity():
    ses = boto3.client("sesv2")
    try:
        ses.create_email_identity(EmailIdentity=SENDER)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("AlreadyExistsException", "AlreadyExists"):
            raise


def main():
    state = table()
    queue_url = bus_and_queue()
    ses_identity()
    print(
        f"seed: table {TABLE} ({state}), bus {BUS} -> queue {queue_url}, SES identity {SENDER}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
