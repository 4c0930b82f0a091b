#!/usr/bin/env python3
"""Re-sign a Function URL request fixture with the current time, for `cargo lambda invoke`.

The webhook rejects signatures older than 300 s, so the committed fixtures cannot carry a valid
one. This rewrites the `winback-signature` header as the shop would, with scheme v2:
`t=<unix seconds>,v2=<hex HMAC-SHA256(key, "<t>\\n<METHOD>\\n<path and query>\\n<raw body>")>`
(with `--v1`, the older `v1=<hex HMAC-SHA256(key, "<t>.<raw body>")>`, where a request without a
body signs `"<t>.<path and query>"`).

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


def sign(request, key, now=None, v1=False):
    t = int(now if now is not None else time.time())
    body = request.get("body") or ""
    query = request.get("rawQueryString") or ""
    path_and_query = request.get("rawPath", "/") + (f"?{query}" if query else "")
    if v1:
        message = f"{t}.{body}" if body else f"{t}.{path_and_query}"
    else:
        method = ((request.get("requestContext") or {}).get("http") or {}).get("method", "POST")
        message = f"{t}\n{method.upper()}\n{path_and_query}\n{body}"
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()
    scheme = "v1" if v1 else "v2"
    headers = {k: v for k, v in (request.get("headers") or {}).items() if k.lower() != "winback-signature"}
    headers["winback-signature"] = f"t={t},{scheme}={digest}"
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
    parser.add_argument("--now", type=int, help="unix seconds to sign at (default: now)")
    parser.add_argument("--v1", action="store_true", help="the older scheme, for a deployment still taking it")
    args = parser.parse_args()
    with open(args.fixture, encoding="utf-8") as f:
        request = json.load(f)
    json.dump(sign(request, args.key, args.now, args.v1), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
