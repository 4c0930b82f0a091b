#!/usr/bin/env python3
"""Smoke test: the three compiled functions under `cargo lambda watch`, against the local stack.

    infra/local/stack.sh start && . "$(infra/local/stack.sh env)"
    .local/venv/bin/python infra/local/smoke.py

1. webhook (Function URL, signed `POST /v1/activity`): the shop reports orders of a few
   customers; checks 2xx answers and that the customers are written to the table.
2. scheduler (`cargo lambda invoke`, a scheduled event months later): the customers (a few
   hundred) have lapsed; checks that one invocation completes the run, as
   docs/operations.md#run-it-locally-cargo-lambda runs it, and that `WinbackStepDue` events
   reach the step queue (bus -> rule -> SQS, as on AWS).
3. sender (`cargo lambda invoke`, an SQS batch of those messages): checks no batch item failed
   and that SES (moto) received the emails. The customers live where it is early afternoon when
   the test runs, so quiet hours never defer them: the outcome is the same at any hour.
4. webhook (Function URL): a one-click unsubscribe (RFC 8058) from one of those emails, its body
   multipart/form-data as urllib3 encodes it; checks the customer is unsubscribed.
5. webhook (EventBridge, SES bounce): checks it is accepted.

Exits non-zero with the failing step named. Prints "N passed, N failed" at the end.
"""

import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zoneinfo

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVENTS = os.path.join(ROOT, "functions")
TABLE = os.environ.get("WINBACK_LOCAL_TABLE", "winback-local")
QUEUE = os.environ.get("WINBACK_LOCAL_QUEUE", "winback-local-steps")
KEY = os.environ.get("WINBACK_WEBHOOK_KEYS", "local-dev-key").split(",")[0]
# The webhook marks a changed customer due for re-evaluation at its own clock, so the orders lie
# months in the past and the scheduler's "now" just after the present.
_now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
ORDERED_AT = os.environ.get("WINBACK_SMOKE_ORDERED_AT",
                            (_now - datetime.timedelta(days=400)).isoformat().replace("+00:00", "Z"))
NOW = os.environ.get("WINBACK_SMOKE_NOW", (_now + datetime.timedelta(minutes=10)).isoformat().replace("+00:00", "Z"))
RUN = uuid.uuid4().hex[:6]
# The sender reads the wall clock (as on AWS) and defers emails in the customer's quiet hours, so
# the smoke customers live where it is early afternoon now: the outcome is the same at any hour.
ZONES = ["Pacific/Kiritimati", "Pacific/Auckland", "Asia/Tokyo", "Asia/Bangkok", "Asia/Dubai", "Europe/Berlin",
         "America/Sao_Paulo", "America/New_York", "America/Chicago", "America/Los_Angeles", "Pacific/Honolulu"]


def daytime_zone(at):
    """The zone of ZONES whose local hour at `at` is nearest to 14:00."""
    def distance(zone):
        local = at.astimezone(zoneinfo.ZoneInfo(zone))
        return abs(local.hour + local.minute / 60 - 14)
    return min(ZONES, key=distance)


TIME_ZONE = os.environ.get("WINBACK_SMOKE_TIME_ZONE", daytime_zone(_now))
CUSTOMERS = [f"smoke-{RUN}-{i:02d}" for i in range(1, 13)]  # several, so some are not in the holdout
# More lapsed customers, so the scheduler's one invocation has a few hundred to work through.
CROWD = [f"smoke-{RUN}-crowd-{i:03d}" for i in range(1, 301)]
BUILD_TIMEOUT = int(os.environ.get("WINBACK_SMOKE_BUILD_TIMEOUT", "1800"))

results = []


def step(name, ok, detail=""):
    results.append(ok)
    print(f"[smoke] {'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"[smoke] cargo lambda watch exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"[smoke] cargo lambda watch did not listen on {port} within {timeout}s")


def invoke(port, function, payload):
    """`cargo lambda invoke FUNCTION --data-file ...`; returns the parsed response."""
    path = os.path.join(ROOT, ".local", f"smoke-{function}-{uuid.uuid4().hex[:6]}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    try:
        out = subprocess.run(
            ["cargo", "lambda", "invoke", function, "--data-file", path, "--invoke-address", "127.0.0.1",
             "--invoke-port", str(port), "--output-format", "json"],
            capture_output=True, text=True, timeout=BUILD_TIMEOUT, cwd=ROOT, check=False,
        )
    finally:
        os.remove(path)
    if out.returncode != 0:
        return None, (out.stderr or out.stdout).strip()[-2000:]
    text = out.stdout.strip()
    try:
        return json.loads(text) if text else None, text
    except json.JSONDecodeError:
        return None, text


def signed_post(url, body):
    t = int(time.time())
    raw = json.dumps(body, separators=(",", ":"))
    sig = hmac.new(KEY.encode(), f"{t}.{raw}".encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=raw.encode(), method="POST", headers={
        "content-type": "application/json", "winback-signature": f"t={t},v1={sig}"})
    try:
        with urllib.request.urlopen(request, timeout=BUILD_TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sent_emails():
    with urllib.request.urlopen(os.environ["WINBACK_MOTO_URL"] + "/moto-api/data.json") as r:
        data = json.load(r)
    ses = data.get("ses", {})
    return sum(len(v) for k, v in ses.items() if k in ("Message", "RawMessage") and isinstance(v, list))


def emailed_codes():
    """The reward codes in the emails moto's SES holds."""
    with urllib.request.urlopen(os.environ["WINBACK_MOTO_URL"] + "/moto-api/data.json") as r:
        data = json.load(r)
    text = json.dumps(data.get("ses", {}))
    return set(re.findall(r"WB-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", text))


def shop_codes():
    """The codes the fake shop has (infra/local/fake_shop.py), and the requests it refused."""
    with urllib.request.urlopen(os.environ["WINBACK_FAKE_SHOP_URL"] + "/_fake/state") as r:
        state = json.load(r)
    return set(state["codes"]), state["violations"]


def main():
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "WINBACK_MOTO_URL", "WINBACK_FAKE_SHOP_URL",
                "WINBACK_CHECKOUT_CONNECTION"):
        if var not in os.environ:
            raise SystemExit(f"[smoke] {var} is not set: start the stack and source its env file first")
    ddb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs.purge_queue(QueueUrl=queue_url)

    print("[smoke] building the functions (debug) for cargo lambda watch", flush=True)
    # One binary at a time, as `cargo lambda watch` runs them (`cargo run --bin X`), so that the
    # first invocation does not spend the function's deadline compiling.
    for binary in ("scheduler", "sender", "webhook"):
        subprocess.run(["cargo", "build", "--bin", binary], cwd=ROOT, check=True, timeout=BUILD_TIMEOUT)
    port = free_port()
    log = open(os.path.join(ROOT, ".local", "smoke-watch.log"), "w", encoding="utf-8")
    watch = subprocess.Popen(
        # As docs/operations.md#run-it-locally-cargo-lambda runs it (on a free port, and not
        # rebuilding on edits meanwhile).
        ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port), "--ignore-changes"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_port(port, watch, 120)
        run(port, ddb, sqs, queue_url)
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        try:
            watch.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(watch.pid, signal.SIGKILL)
        log.close()
    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    if failed:
        print(f"[smoke] function logs: {os.path.join(ROOT, '.local', 'smoke-watch.log')}")
        sys.exit(1)


def run(port, ddb, sqs, queue_url):
    base = f"http://127.0.0.1:{port}/lambda-url/webhook"
    # 1. webhook: orders in
    def order(customer):
        return customer, *signed_post(f"{base}/v1/activity", {
            "event_id": f"smoke-order-{customer}", "customer_id": customer, "type": "order",
            "occurred_at": ORDERED_AT, "amount": {"value": "30.00", "currency": "EUR"},
            "profile": {"email": f"{customer}@example.com", "first_name": "Sam", "locale": "en",
                        "time_zone": TIME_ZONE}})

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(order, CUSTOMERS + CROWD))
    refused = [(c, status, body) for c, status, body in answers if status >= 300]
    if refused:
        customer, status, body = refused[0]
        step("webhook POST /v1/activity", False, f"{len(refused)} refused, {customer}: HTTP {status} {body[:300]}")
        return
    step("webhook POST /v1/activity", True, f"{len(answers)} orders accepted")
    items = ddb.scan(TableName=TABLE, Select="COUNT")["Count"]
    if not step("customers written to DynamoDB", items > 0, f"{items} items in {TABLE}"):
        return

    # 2. scheduler: months later, the customers are due
    scheduled = json.load(open(os.path.join(EVENTS, "scheduler", "events", "scheduled.json"), encoding="utf-8"))
    scheduled["time"] = NOW
    # The flow of docs/operations.md#run-it-locally-cargo-lambda: one invocation, under
    # `cargo lambda watch` with its default settings, works through every due customer and
    # answers "complete": true.
    response, text = invoke(port, "scheduler", scheduled)
    if not step("scheduler invoked", isinstance(response, dict), text[:400]):
        return
    evaluated = response.get("evaluated", 0)
    if not step("scheduler run complete in one invocation",
                response.get("complete") is True and evaluated >= len(CUSTOMERS + CROWD),
                f"complete={response.get('complete')}, {evaluated} customers evaluated"):
        return
    messages = []
    deadline = time.time() + 20
    while time.time() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  VisibilityTimeout=60).get("Messages", [])
        messages += got
        if not got and messages:
            break
    if not step("WinbackStepDue events reached the step queue", bool(messages), f"{len(messages)} messages"):
        return

    # 3. sender: the SQS batch, as the event source mapping delivers it
    before = sent_emails()
    codes_before = emailed_codes()
    batch = {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{QUEUE}", "awsRegion": "us-east-1",
    } for m in messages[:10]]}
    response, text = invoke(port, "sender", batch)
    failures = (response or {}).get("batchItemFailures", []) if isinstance(response, dict) else None
    if not step("sender invoked, no batch item failed", failures == [], text[:300]):
        return
    after = sent_emails()
    step("emails in moto's SES", after > before, f"{after - before} new emails")
    # The example campaign's checkout is Shopify: every code an email carries exists in the shop.
    # (moto also holds the emails of the tests that ran before on this stack.)
    codes, (in_shop, violations) = emailed_codes() - codes_before, shop_codes()
    step("every emailed reward code exists in the (fake) Shopify checkout",
         bool(codes) and codes <= in_shop and not violations,
         f"{len(codes)} codes emailed, {len(codes & in_shop)} in the shop, {len(violations)} schema violations")

    # 4. one-click unsubscribe (RFC 8058) from an email just sent, its body multipart/form-data as
    # urllib3 encodes it (the RFC's preferred form), through the Function URL
    if not step("one-click unsubscribe, multipart", one_click_multipart(base, ddb), ""):
        return

    # 5. webhook: SES feedback from EventBridge
    bounce = json.load(open(os.path.join(EVENTS, "webhook", "events", "ses-bounce.json"), encoding="utf-8"))
    response, text = invoke(port, "webhook", bounce)
    step("webhook accepted an SES bounce", response is not None or text == "", text[:300])


def one_click_multipart(base, ddb):
    """POSTs `List-Unsubscribe=One-Click` as multipart/form-data to the unsubscribe link of one
    email the sender sent to a smoke customer; true when the customer is then unsubscribed."""
    import urllib3

    with urllib.request.urlopen(os.environ["WINBACK_MOTO_URL"] + "/moto-api/data.json") as r:
        messages = json.load(r).get("ses", {}).get("Message", [])
    for message in reversed(messages):
        to = message.get("destinations", {}).get("ToAddresses", [""])[0]
        token = re.search(r"/v1/unsubscribe\?t=([A-Za-z0-9_.\-]+)", message.get("body", ""))
        if not to.startswith(f"smoke-{RUN}-") or not token:
            continue
        customer = to.split("@")[0]
        body, content_type = urllib3.encode_multipart_formdata({"List-Unsubscribe": "One-Click"})
        request = urllib.request.Request(f"{base}/v1/unsubscribe?t={token.group(1)}", data=body, method="POST",
                                         headers={"content-type": content_type})
        with urllib.request.urlopen(request, timeout=BUILD_TIMEOUT) as r:
            if r.status != 200:
                return False
        item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"C#{customer}"}, "sk": {"S": "PROFILE"}},
                            ConsistentRead=True).get("Item", {})
        return json.loads(item.get("doc", {}).get("S", "{}")).get("email_status") == "unsubscribed"
    return False


if __name__ == "__main__":
    main()
