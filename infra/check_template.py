#!/usr/bin/env python3
"""Checks on template.yaml that cfn-lint cannot make.

- The dashboard body is valid JSON once substituted, its widgets fit the 24-column grid without
  overlapping, and it shows every metric the functions emit (namespace Winback).
- The alarms and saved queries the product promises exist.
- The follow-up topic, its email subscription and the webhook's right to publish to it.
- The table keeps the keys and the sparse index the code relies on.

    python infra/check_template.py [template.yaml]
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "local"))
from table_spec import load_template, table_spec  # noqa: E402

# Every EMF metric the functions emit (namespace Winback), read from the one list the code names
# them from (shared/src/telemetry.rs); the dashboard must show each one, and an alarm or chart on
# namespace Winback may read only these.
def emitted_metrics(path):
    text = open(path).read()
    body = text[text.index("metrics! {"):]
    out, service = {}, None
    for line in body.split("\n")[1:]:
        line = line.strip()
        if line == "}":
            if service is None:
                break
            service = None
        elif line.endswith("{"):
            service = line[:-1].strip()
            out[service] = []
        elif service and "=" in line:
            out[service].append(re.search(r'"(\w+)"', line).group(1))
    return out


METRICS = emitted_metrics(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "src",
                                       "telemetry.rs"))
ALL_METRICS = {n for names in METRICS.values() for n in names}
# Least privilege: the DynamoDB actions each function's code calls (shared/src/adapters/dynamodb/
# maps each store method to its API call), on the table and on the due index, and the secrets
# each one reads. A function with a managed policy broader than these fails the check.
DYNAMODB = {
    "SchedulerFunction": ({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "Scan"}, {"Query"}),
    "SenderFunction": ({"GetItem", "PutItem", "UpdateItem"}, set()),
    "WebhookFunction": ({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"}, set()),
    "ReportFunction": ({"Query"}, set()),
}
SECRETS = {
    "SchedulerFunction": set(),
    "SenderFunction": {"LinkKeySeed", "CheckoutSecret"},
    "WebhookFunction": {"Secret", "LinkKeySeed", "StaffKeySeed", "PseudonymKeySeed"},
    "ReportFunction": set(),
}
SECRET_VARIABLES = {"Secret": "WEBHOOK_SECRET_ARN", "LinkKeySeed": "LINK_SECRET_ARN",
                    "CheckoutSecret": "CHECKOUT_SECRET_ARN", "StaffKeySeed": "STAFF_SECRET_ARN",
                    "PseudonymKeySeed": "PSEUDONYM_SECRET_ARN"}
PUBLISHERS = {"SchedulerFunction", "WebhookFunction"}
BROAD_POLICIES = {"DynamoDBCrudPolicy", "DynamoDBReadPolicy", "DynamoDBWritePolicy", "AmazonDynamoDBFullAccess",
                  "SecretsManagerReadWrite"}

# The flows (shared/src/campaign/flows.rs) and the name their counters are kept under; the metrics
# each flow's dashboard row shows by Campaign and Flow (the EMF records' second dimension set).
FLOWS = {"win-back": "${Campaign}", "at-risk": "${Campaign}-at-risk",
         "re-engagement": "${Campaign}-re-engagement", "celebration": "${Campaign}-celebration"}
PER_FLOW = ["CustomersEnrolled", "HoldoutAssigned", "EmailsSent", "Opened", "Clicked", "Unsubscribed",
            "Reactivated", "RevenueRecovered", "CustomersSunset"]

# Shown on the dashboard through another metric of the same row, not on their own; or alarmed
# and not charted (a failing secret read is for the operator, not the marketer's dashboard).
# Enrolled: the cohort counts of section 8 show it. The report function's figures not charted in
# the first row are in its Logs Insights table and the weekly report.
NOT_ON_DASHBOARD = {"Enrolled", "SecretRefreshFailures", "EnrolledToDate", "HeldOutToDate", "BroughtBack", "BroughtBackLow", "BroughtBackHigh",
                    "IncrementalRevenue", "IncrementalRevenueLow", "IncrementalRevenueHigh",
                    "ReactivationRateLow", "ReactivationRateHigh"}
# The dashboard's first row of charts: the report function's figures, each with its 95% interval,
# by Flow: the whole program's against the program holdout (Flow program), and the win-back flow's
# (the headline until the program holdout is large enough).
FIRST_ROW = {"program": ["ReactivationRate", "HoldoutReactivationRate", "LiftPoints", "IncrementalProfit",
                         "IncrementalProfit28d", "PulledForward"],
             "win-back": ["LiftPoints", "StillActive90d", "HoldoutStillActive90d"]}

errors = []


def check(cond, message):
    if not cond:
        errors.append(message)


def substitute(value):
    """Resolve Fn::Sub with placeholders, enough to parse the JSON."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    if isinstance(value, list):
        value = value[0]
    return re.sub(r"\$\{([^}!]+)\}", lambda m: "X" + re.sub(r"\W", "", m.group(1)), value)


def statements(policies):
    """The inline statements of a SAM Policies list, and the names of its managed templates."""
    inline, managed = [], {}
    for p in policies:
        if isinstance(p, dict) and "Statement" in p:
            inline.extend(p["Statement"])
        elif isinstance(p, dict):
            for name, args in p.items():
                managed.setdefault(name, []).append(args)
        else:
            managed.setdefault(p, []).append(None)
    return inline, managed


def as_list(value):
    return value if isinstance(value, list) else [value]


def check_privileges(resources, global_env):
    for logical, (table_actions, index_actions) in DYNAMODB.items():
        props = resources[logical]["Properties"]
        inline, managed = statements(props.get("Policies", []))
        for broad in BROAD_POLICIES & set(managed):
            errors.append(f"{logical}: {broad} grants more than the function calls; list its actions")
        on_table, on_index = set(), set()
        for st in inline:
            actions = {a for a in as_list(st.get("Action", [])) if a.startswith("dynamodb:")}
            if not actions:
                continue
            check(st.get("Effect") == "Allow", f"{logical}: DynamoDB statement {st.get('Sid')} must Allow")
            for r in as_list(st.get("Resource")):
                target = on_table if r == {"Fn::GetAtt": ["Table", "Arn"]} else None
                if isinstance(r, dict) and r.get("Fn::Sub") == "${Table.Arn}/index/due":
                    target = on_index
                if target is None:
                    errors.append(f"{logical}: DynamoDB actions on an unexpected resource {r}")
                else:
                    target.update(a.split(":", 1)[1] for a in actions)
        check(on_table == table_actions,
              f"{logical}: DynamoDB actions on the table are {sorted(on_table)}, expected {sorted(table_actions)}")
        check(on_index == index_actions,
              f"{logical}: DynamoDB actions on the due index are {sorted(on_index)}, expected {sorted(index_actions)}")
        read = {args["SecretArn"]["Ref"] for args in managed.get("AWSSecretsManagerGetSecretValuePolicy", [])}
        check(read == SECRETS[logical], f"{logical}: reads secrets {sorted(read)}, expected {sorted(SECRETS[logical])}")
        check(not any("secretsmanager:" in json.dumps(st.get("Action")) for st in inline),
              f"{logical}: secrets are granted only through AWSSecretsManagerGetSecretValuePolicy")
        variables = props.get("Environment", {}).get("Variables", {})
        for secret, name in SECRET_VARIABLES.items():
            given = variables.get(name, global_env.get(name))
            if secret in SECRETS[logical]:
                check(given == {"Ref": secret}, f"{logical}: {name} must name {secret}")
            else:
                check(given is None, f"{logical}: {name} is set but the function may not read {secret}")
        publishes = "EventBridgePutEventsPolicy" in managed or any(
            "events:PutEvents" in json.dumps(st.get("Action")) for st in inline)
        check(publishes == (logical in PUBLISHERS),
              f"{logical}: PutEvents {'missing' if logical in PUBLISHERS else 'granted but it publishes nothing'}")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    template = load_template(path)
    resources = template["Resources"]

    # Table
    spec = table_spec(template)
    check([k["AttributeName"] for k in spec["KeySchema"]] == ["pk", "sk"], "Table keys must be pk, sk")
    gsis = {g["IndexName"]: g for g in spec.get("GlobalSecondaryIndexes", [])}
    check("due" in gsis, "Table needs the sparse GSI 'due'")
    if "due" in gsis:
        check([k["AttributeName"] for k in gsis["due"]["KeySchema"]] == ["due_shard", "due_key"],
              "GSI due must be keyed by due_shard, due_key")
    check(spec["TimeToLiveAttribute"] == "ttl", "TTL attribute must be ttl")

    # Functions
    for logical, binary in [("SchedulerFunction", "scheduler"), ("SenderFunction", "sender"),
                            ("WebhookFunction", "webhook")]:
        fn = resources.get(logical, {})
        check(fn.get("Metadata", {}).get("BuildMethod") == "rust-cargolambda", f"{logical}: BuildMethod")
        check(fn.get("Metadata", {}).get("BuildProperties", {}).get("Binary") == binary, f"{logical}: Binary")
        # Each function keeps concurrency of its own, so a flood on the public webhook cannot
        # starve the sender and the scheduler (a parameter; 0 drops the reservation).
        reserved = fn.get("Properties", {}).get("ReservedConcurrentExecutions")
        param = f"{logical[:-len('Function')]}ReservedConcurrency"
        check(isinstance(reserved, dict) and param in json.dumps(reserved),
              f"{logical}: ReservedConcurrentExecutions must come from parameter {param}")
        default = template.get("Parameters", {}).get(param, {}).get("Default", 0)
        check(int(default) > 0, f"parameter {param} needs a default above 0")
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    for name in ["TABLE_NAME", "EVENT_BUS_NAME", "SENDER_ADDRESS", "SES_CONFIGURATION_SET", "CAMPAIGN"]:
        check(name in env, f"Globals: environment variable {name} missing")
    check("SECRETS_ARN" not in env, "Globals: SECRETS_ARN would give every function every key")
    check_privileges(resources, env)
    for logical in ["SchedulerFunction", "SenderFunction", "WebhookFunction"]:
        variables = resources[logical]["Properties"].get("Environment", {}).get("Variables", {})
        check("PUBLIC_BASE_URL" in variables, f"{logical}: PUBLIC_BASE_URL missing")
    check("SES_MAX_SEND_RATE" in resources["SenderFunction"]["Properties"]["Environment"]["Variables"],
          "SenderFunction: SES_MAX_SEND_RATE missing")
    # A resolved reason reaches the scheduler (which may Scan) from the bus, never the webhook.
    routes = [e.get("Properties", {}) for e in
              resources["SchedulerFunction"]["Properties"].get("Events", {}).values()
              if e.get("Type") == "EventBridgeRule"]
    check(any(r.get("Pattern", {}).get("detail-type") == ["ResolutionRequested"]
              and r.get("Pattern", {}).get("source") == ["winback"]
              and "EventBus" in json.dumps(r.get("EventBusName")) for r in routes),
          "SchedulerFunction: needs an EventBridgeRule on EventBus for ResolutionRequested")

    # Dashboard
    body = substitute(resources["Dashboard"]["Properties"]["DashboardBody"])
    try:
        dashboard = json.loads(body)
    except json.JSONDecodeError as e:
        lines = body.splitlines()
        context = lines[e.lineno - 1] if 0 < e.lineno <= len(lines) else ""
        errors.append(f"Dashboard body is not valid JSON: {e}\n    {context}")
        dashboard = {"widgets": []}
    cells = {}
    text = json.dumps(dashboard)
    for i, w in enumerate(dashboard["widgets"]):
        x, y, width, height = w["x"], w["y"], w["width"], w["height"]
        check(0 <= x and x + width <= 24, f"widget {i} does not fit the 24-column grid")
        for cx in range(x, x + width):
            for cy in range(y, y + height):
                if (cx, cy) in cells:
                    errors.append(f"widget {i} overlaps widget {cells[(cx, cy)]}")
                    break
                cells[(cx, cy)] = i
        if w["type"] == "metric":
            check(w["properties"].get("title"), f"widget {i} has no title")
            # Every Winback metric a chart reads is one a function emits.
            for m in w["properties"].get("metrics", []):
                if isinstance(m, list) and m and m[0] == "Winback":
                    check(m[1] in ALL_METRICS, f"widget {i} reads Winback metric {m[1]}, which no function emits")
                for part in m if isinstance(m, list) else []:
                    if isinstance(part, dict) and "expression" in part:
                        for name in re.findall(r'MetricName=\\?"(\w+)', part["expression"]):
                            check(name in ALL_METRICS,
                                  f"widget {i} searches Winback metric {name}, which no function emits")
    for service, names in METRICS.items():
        for name in names:
            if name in NOT_ON_DASHBOARD:
                continue
            check(f'\\"{name}\\"' in text or f'"{name}"' in text,
                  f"dashboard does not show {service}'s metric {name}")
    texts = [w for w in dashboard["widgets"] if w["type"] == "text"]
    check(len(texts) >= 6, "each dashboard row needs a text widget explaining it")
    # A row per flow: a heading naming it, and its metrics by Campaign and Flow.
    for flow, counters in FLOWS.items():
        counters = substitute(counters)
        check(any(f"(`{flow}`)" in w["properties"]["markdown"] for w in texts),
              f"the dashboard has no heading for the {flow} flow")
        row = [w for w in dashboard["widgets"] if w["type"] == "metric"
               and f'{{Winback,Campaign,Flow}} Campaign=\"{counters}\" Flow=\"{flow}\"'
               in json.dumps(w["properties"]["metrics"]).replace('\\"', '\"')]
        shown = json.dumps([w["properties"]["metrics"] for w in row]).replace('\\"', '\"')
        check(len(row) >= 3 and len({w["y"] for w in row}) == 1,
              f"the dashboard has no row of widgets for the {flow} flow")
        for name in PER_FLOW:
            check(f'{{Winback,Campaign,Flow}} Campaign=\"{counters}\" Flow=\"{flow}\" MetricName=\"{name}\"' in shown,
                  f"the {flow} flow's row does not show {name} by Campaign {counters} and Flow")
    check(any(w["type"] == "log" and "by Flow, Variant" in w["properties"]["query"]
              for w in dashboard["widgets"]),
          "the dashboard has no table comparing each flow's variants with its holdout")
    # Logs Insights tables are cohort-correct: none sums enrollments and reactivations of a time
    # range (a customer enrolled before it, or too late in it to come back, skews the rate).
    for i, w in enumerate(dashboard["widgets"]):
        if w["type"] == "log":
            q = w["properties"]["query"]
            check(not ("sum(CustomersEnrolled)" in q and "sum(Reactivated)" in q),
                  f"widget {i}: a rate from enrollments and reactivations summed over the time range is not by cohort")
    # The first row a marketer sees: a text widget at the top saying what each figure counts and
    # its base, then charts of the report function's figures with their intervals.
    top = sorted(dashboard["widgets"], key=lambda w: (w["y"], w["x"]))
    check(top and top[0]["type"] == "text" and top[0]["y"] == 0, "the dashboard must open with a text widget")
    if top and top[0]["type"] == "text":
        said = top[0]["properties"]["markdown"]
        for words in ["base: EnrolledToDate", "base: HeldOutToDate", "95% interval", "by enrollment cohort",
                      "program holdout", "intention to treat", "win-back flow's figures", "last 28 days",
                      "Orders merely pulled forward"]:
            check(words in said, f"the dashboard's first text does not say {words!r}")
    first_y = min((w["y"] for w in dashboard["widgets"] if w["type"] == "metric"), default=None)
    first = [w for w in dashboard["widgets"] if w["type"] == "metric" and w["y"] == first_y]
    read = set()
    for w in first:
        for m in w["properties"].get("metrics", []):
            if isinstance(m, list) and m and m[0] == "Winback":
                dims = dict(zip(m[2:-1:2], m[3:-1:2]))
                if set(dims) == {"Campaign", "Flow", "Variant"} and dims["Campaign"] == substitute("${Campaign}") \
                        and dims["Variant"] == "all":
                    read.add((dims["Flow"], m[1]))
    for flow, names in FIRST_ROW.items():
        for name in names:
            for end in ["", "Low", "High"]:
                check((flow, name + end) in read,
                      f"the dashboard's first row does not read {name + end} by Campaign, Flow {flow} and Variant all")

    # The sender's reputation is the account's: the bounce and complaint alarms, and the charts of
    # their rates, count every flow's emails, each flow's missing days as 0.
    for alarm, metric in [("BounceRateAlarm", "Bounced"), ("ComplaintRateAlarm", "Complained")]:
        queries = resources[alarm]["Properties"]["Metrics"]
        read = {(q["MetricStat"]["Metric"]["MetricName"],
                 q["MetricStat"]["Metric"]["Dimensions"][0]["Value"].get("Fn::Sub"))
                for q in queries if "MetricStat" in q}
        for counters in FLOWS.values():
            for name in [metric, "Delivered"]:
                check((name, counters) in read, f"{alarm} does not count {name} of Campaign {counters}")
        check(len(read) <= 10, f"{alarm} reads {len(read)} metrics; an alarm may read at most 10")
        sums = " ".join(q["Expression"] for q in queries if "Expression" in q)
        for q in queries:
            if "MetricStat" in q:
                check(f"FILL({q['Id']}, 0)" in sums,
                      f"{alarm}: {q['Id']} must count as 0 on a day without data (FILL), or the sum has none")
    for title, metric in [("Bounce rate", "Bounced"), ("Complaint rate", "Complained")]:
        chart = [w for w in dashboard["widgets"] if w["properties"].get("title", "").startswith(title)]
        check(len(chart) == 1, f"the dashboard has no {title} chart")
        shown = json.dumps(chart[0]["properties"]["metrics"] if chart else [])
        for counters in FLOWS.values():
            check(f'"{metric}", "Campaign", "{substitute(counters)}"' in shown,
                  f"the {title} chart does not count {metric} of Campaign {counters}")

    # Alarms and queries
    alarms = set()
    for r in resources.values():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarms.add(r["Properties"].get("MetricName"))
        if r["Properties"].get("Namespace") == "Winback":
            check(r["Properties"].get("MetricName") in ALL_METRICS,
                  f"an alarm reads Winback metric {r['Properties'].get('MetricName')}, which no function emits")
        # Metric-math alarms: the metrics they read.
        for m in r["Properties"].get("Metrics", []):
            metric = m.get("MetricStat", {}).get("Metric", {})
            alarms.add(metric.get("MetricName"))
            if metric.get("Namespace") == "Winback":
                check(metric.get("MetricName") in ALL_METRICS,
                      f"an alarm reads Winback metric {metric.get('MetricName')}, which no function emits")
    webhook_throttles = any(
        r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "Throttles"
        and "WebhookFunction" in json.dumps(r["Properties"].get("Dimensions", []))
        for r in resources.values())
    check(webhook_throttles, "no alarm on the webhook's throttles")
    check(int(template["Parameters"]["SenderReservedConcurrency"]["Default"]) >= 2,
          "the sender's reservation must cover the step queue's maximum concurrency (2)")
    for name in ["ApproximateNumberOfMessagesVisible", "Bounced", "Complained", "Errors", "PublishFailures",
                 "SendingPaused", "SendRejected"]:
        check(name in alarms, f"no alarm on {name}")
    # A step queue that stops draining (sender failing, SES slow) shows as its oldest message ageing.
    check(any(r["Type"] == "AWS::CloudWatch::Alarm"
              and r["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"
              and {"Fn::GetAtt": ["StepQueue", "QueueName"]}
              in [d.get("Value") for d in r["Properties"].get("Dimensions", [])]
              for r in resources.values()),
          "no alarm on the age of the step queue's oldest message")
    # Events a function could not publish are lost to subscribers: every publisher has its alarm.
    for service, names in METRICS.items():
        if "PublishFailures" in names:
            check(any(r["Type"] == "AWS::CloudWatch::Alarm"
                      and r["Properties"].get("MetricName") == "PublishFailures"
                      and {"Name": "Service", "Value": service} in r["Properties"].get("Dimensions", [])
                      for r in resources.values()),
                  f"no alarm on {service}'s PublishFailures")
    queries = [r["Properties"]["QueryString"] for r in resources.values() if r["Type"] == "AWS::Logs::QueryDefinition"]
    for event in ["survey_answered", "customer_reactivated", "send_failed"]:
        check(any(f'"{event}"' in q for q in queries), f"no saved query for {event}")

    # Several flows per deployment: the Campaigns parameter reaches every function as CAMPAIGNS.
    check("Campaigns" in template.get("Parameters", {}), "parameter Campaigns missing")
    env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    check(env.get("CAMPAIGNS") == {"Ref": "Campaigns"}, "Globals: CAMPAIGNS must be the Campaigns parameter")
    check(env.get("CAMPAIGN") == {"Ref": "Campaign"}, "Globals: CAMPAIGN must be the Campaign parameter")

    # A person in the loop: the follow-up topic, its email subscription from FollowUpEmail, and
    # the webhook allowed to publish to it, told where it is.
    topic = resources.get("FollowUpTopic", {})
    check(topic.get("Type") == "AWS::SNS::Topic", "FollowUpTopic must be an SNS topic")
    sub = resources.get("FollowUpSubscription", {})
    check(sub.get("Type") == "AWS::SNS::Subscription"
          and sub.get("Properties", {}).get("Protocol") == "email"
          and sub.get("Properties", {}).get("Endpoint") == {"Ref": "FollowUpEmail"}
          and sub.get("Properties", {}).get("TopicArn") == {"Ref": "FollowUpTopic"},
          "FollowUpSubscription must subscribe FollowUpEmail to FollowUpTopic by email")
    check("FollowUpEmail" in template.get("Parameters", {}), "parameter FollowUpEmail missing")
    webhook = resources["WebhookFunction"]["Properties"]
    check(webhook.get("Environment", {}).get("Variables", {}).get("FOLLOW_UP_TOPIC_ARN") == {"Ref": "FollowUpTopic"},
          "WebhookFunction: FOLLOW_UP_TOPIC_ARN must be the FollowUpTopic")
    check(any("SNSPublishMessagePolicy" in p and "FollowUpTopic" in json.dumps(p)
              for p in webhook.get("Policies", []) if isinstance(p, dict)),
          "WebhookFunction may not publish to FollowUpTopic (SNSPublishMessagePolicy)")
    check("Open follow-ups" in text, "the dashboard does not show open follow-ups")
    # The customer model is refitted by a periodic rebuild.
    refit = resources.get("RefitSchedule", {})
    check(refit.get("Type") == "AWS::Scheduler::Schedule", "no RefitSchedule (the periodic rebuild and refit)")
    refit_input = substitute(refit.get("Properties", {}).get("Target", {}).get("Input", ""))
    check('"mode": "rebuild"' in refit_input, "RefitSchedule must invoke the scheduler with mode rebuild")

    outputs = template.get("Outputs", {})
    for name in ["WebhookUrl", "DashboardUrl", "EventBusName", "TableName"]:
        check(name in outputs, f"output {name} missing")

    if errors:
        for e in errors:
            print(f"check_template: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"check_template: {path} ok ({len(dashboard['widgets'])} dashboard widgets, {len(alarms)} alarm metrics, "
          f"{len(queries)} saved queries)")


if __name__ == "__main__":
    main()
