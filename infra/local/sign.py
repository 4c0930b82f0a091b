#!/usr/bin/env python3
"""Re-sign a Function URL request fixture with the current time, for `cargo lambda invoke`.

The webhook rejects signatures older than 300 s, so the committed fixtures cannot carry a valid
one. This rewrites the `winback-signature` header as the shop would:
`t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<raw body>")>`; a request without a body signs
`"<t>.<path and query>"`.

    python infra/local/sign.py functions/webhook/events/function-url-activity.json > .local/activity.json
    cargo lambda invoke webhook --data-file .local/activity.json

The key is the first of WINBACK_WEBHOOK_KEYS (default local-dev-key, as in the Cargo.toml metadata).
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import time


def sign(request, key, now=None):
    t = int(now if now is not None else time.time())
    body = request.get("body")
    if body:
        message = f"{t}.{body}"
    else:
        query = request.get("rawQueryString") or ""
        message = f"{t}.{request.get('rawPath', '/')}" + (f"?{query}" if query else "")
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()
    headers = {k: v for k, v in (request.get("headers") or {}).items() if k.lower() != "winback-signature"}
    headers["winback-signature"] = f"t={t},v1={digest}"
    request = dict(request, headers=headers)
    context = dict(request.get("requestContext") or {})
    if context:
        context["timeEpoch"] = t * 1000
        context["time"] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
        request["requestContext"] = context
    return request


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixture")
    parser.add_argument("--key", default=os.environ.get("WINBACK_WEBHOOK_KEYS", "local-dev-key").split(",")[0])
    args = parser.parse_args()
    with open(args.fixture, encoding="utf-8") as f:
        request = json.load(f)
    json.dump(sign(request, args.key), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
