"""A local shop for the tests: Shopify's Admin GraphQL API, WooCommerce's REST API v3 and Stripe's
coupons and promotion codes, each checking every request against the platform's published schema
(infra/local/schemas/, each file names its source and version) and answering as the platforms'
documentation shows, errors included.

    python fake_shop.py --port PORT

Paths: Shopify  /admin/api/2025-10/graphql.json   (X-Shopify-Access-Token: shpat-local)
       Woo      /wp-json/wc/v3/coupons[...]       (Basic ck_local:cs_local)
       Stripe   /v1/coupons, /v1/promotion_codes   (Bearer rk_test_local, Stripe-Version)
Control: GET /_fake/state (codes, schema violations, calls); POST /_fake/mode
{"down": bool, "rate_limited": n, "slow": seconds}; POST /_fake/reset.

A request the schema refuses is answered as the platform would (400 / GraphQL errors) and is
recorded under "violations", which the tests assert empty.
"""

import argparse
import base64
import datetime
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import graphql
import jsonschema

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE / "schemas"
SHOPIFY_VERSION = "2025-10"
STRIPE_VERSION = "2026-10-28.endive"
SHOPIFY_TOKEN = "shpat-local"
WOO_KEY, WOO_SECRET = "ck_local", "cs_local"
STRIPE_KEY = "rk_test_local"

LOCK = threading.Lock()
STATE = {}


def reset():
    with LOCK:
        STATE.clear()
        STATE.update(codes={}, coupons={}, violations=[], calls=[], idempotency={},
                     down=False, rate_limited=0, slow=0.0, next_id=1000)


reset()


def next_id():
    STATE["next_id"] += 1
    return STATE["next_id"]


def violation(platform, what):
    STATE["violations"].append({"platform": platform, "what": what})


# ------------------------------------------------------------------ Shopify


def _parse_datetime(value):
    if not isinstance(value, str):
        raise graphql.GraphQLError(f"DateTime must be an ISO 8601 string, got {value!r}")
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise graphql.GraphQLError(f"invalid DateTime {value!r}: {e}")
    return value


def _parse_decimal(value):
    if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        raise graphql.GraphQLError(f"Decimal must be a decimal string like \"29.99\", got {value!r}")
    return value


SHOPIFY_SCHEMA = graphql.build_schema((SCHEMAS / "shopify-admin-2025-10.graphql").read_text())
SHOPIFY_SCHEMA.type_map["DateTime"].parse_value = _parse_datetime
SHOPIFY_SCHEMA.type_map["Decimal"].parse_value = _parse_decimal


def _user_error(field, code, message):
    return {"field": field, "code": code, "message": message}


def _create_basic(_root, _info, basicCodeDiscount):
    d = basicCodeDiscount
    errors = []
    for name in ("code", "title", "startsAt", "customerGets"):
        if d.get(name) in (None, ""):
            errors.append(_user_error(["basicCodeDiscount", name], "BLANK", f"{name} can't be blank"))
    if d.get("context") is None and d.get("customerSelection") is None:
        errors.append(_user_error(["basicCodeDiscount", "context"], "BLANK", "context can't be blank"))
    value = (d.get("customerGets") or {}).get("value") or {}
    pct = value.get("percentage")
    if pct is not None and not (0.0 <= pct <= 1.0):
        errors.append(_user_error(["basicCodeDiscount", "customerGets", "value", "percentage"],
                                  "VALUE_OUTSIDE_RANGE", "Value must be between 0.0 and 1.0"))
    customers = ((d.get("context") or {}).get("customers") or {}).get("add") or []
    for c in customers:
        if not c.startswith("gid://shopify/Customer/"):
            errors.append(_user_error(["basicCodeDiscount", "context", "customers", "add"],
                                      "INVALID", f"{c} is not a customer id"))
    if errors:
        return {"codeDiscountNode": None, "userErrors": errors}
    code = d["code"]
    if code.upper() in (k.upper() for k in STATE["codes"]):
        return {"codeDiscountNode": None, "userErrors": [
            _user_error(["basicCodeDiscount", "code"], "TAKEN", "Code must be unique. Please try a different code.")]}
    gid = f"gid://shopify/DiscountCodeNode/{next_id()}"
    STATE["codes"][code] = {"platform": "shopify", "id": gid, "active": True, "request": d}
    return {"codeDiscountNode": {"id": gid}, "userErrors": []}


def _find(_root, _info, code):
    for k, v in STATE["codes"].items():
        if k.upper() == code.upper() and v["platform"] == "shopify":
            return {"id": v["id"]}
    return None


def _deactivate(_root, _info, id):
    for v in STATE["codes"].values():
        if v.get("id") == id:
            v["active"] = False
            return {"codeDiscountNode": {"id": id}, "userErrors": []}
    return {"codeDiscountNode": None, "userErrors": [_user_error(["id"], "INVALID", "Discount does not exist")]}


SHOPIFY_ROOT = {"discountCodeBasicCreate": _create_basic, "codeDiscountNodeByCode": _find,
                "discountCodeDeactivate": _deactivate}


def _resolver(root, info, **args):
    return SHOPIFY_ROOT[info.field_name](root, info, **args)


for _t in (SHOPIFY_SCHEMA.query_type, SHOPIFY_SCHEMA.mutation_type):
    for _name, _field in _t.fields.items():
        _field.resolve = _resolver


def shopify(handler, body):
    if handler.headers.get("X-Shopify-Access-Token") != SHOPIFY_TOKEN:
        return 401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    try:
        req = json.loads(body)
    except ValueError:
        violation("shopify", "body is not JSON")
        return 400, {"errors": "body is not JSON"}
    query, variables = req.get("query"), req.get("variables") or {}
    try:
        document = graphql.parse(query or "")
    except graphql.GraphQLError as e:
        violation("shopify", f"parse: {e.message}")
        return 200, {"errors": [{"message": e.message, "extensions": {"code": "GRAPHQL_PARSE_FAILED"}}]}
    problems = graphql.validate(SHOPIFY_SCHEMA, document)
    if problems:
        violation("shopify", "; ".join(p.message for p in problems))
        return 200, {"errors": [{"message": p.message} for p in problems]}
    with LOCK:
        result = graphql.execute(SHOPIFY_SCHEMA, document, variable_values=variables)
    if result.errors:
        violation("shopify", "; ".join(e.message for e in result.errors))
        return 200, {"errors": [{"message": e.message} for e in result.errors]}
    cost = {"requestedQueryCost": 10, "actualQueryCost": 10,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0}}
    return 200, {"data": result.data, "extensions": {"cost": cost}}


# ------------------------------------------------------------------ WooCommerce

WOO_SCHEMA = json.loads((SCHEMAS / "woocommerce-coupon-v3.json").read_text())


def woo_check(doc):
    readonly = [k for k in doc if k in WOO_SCHEMA["x-readonly"]]
    schema = {k: v for k, v in WOO_SCHEMA.items() if not k.startswith("x-") and k != "$comment"}
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    errors += [f"{k} is read-only" for k in readonly]
    return errors


def woo(handler, method, path, query, body):
    auth = handler.headers.get("Authorization", "")
    expected = "Basic " + base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
    if auth != expected:
        return 401, {"code": "woocommerce_rest_cannot_create", "message": "Sorry, you are not allowed to create resources.", "data": {"status": 401}}
    if method == "GET" and path == "/wp-json/wc/v3/coupons":
        code = (query.get("code") or [""])[0]
        return 200, [{"id": c["id"], "code": k, "status": c["status"]}
                     for k, c in STATE["codes"].items() if c["platform"] == "woocommerce" and k.lower() == code.lower()]
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        violation("woocommerce", "body is not JSON")
        return 400, {"code": "rest_invalid_json", "message": "Invalid JSON body passed.", "data": {"status": 400}}
    errors = woo_check(doc)
    if errors:
        violation("woocommerce", "; ".join(errors))
        return 400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): " + "; ".join(errors), "data": {"status": 400}}
    if method == "POST" and path == "/wp-json/wc/v3/coupons":
        code = doc.get("code", "")
        if not code:
            return 400, {"code": "woocommerce_rest_empty_coupon_code", "message": "The coupon code cannot be empty.", "data": {"status": 400}}
        with LOCK:
            if any(k.lower() == code.lower() for k in STATE["codes"]):
                return 400, {"code": "woocommerce_rest_coupon_code_already_exists",
                             "message": f"The coupon code {code} already exists", "data": {"status": 400}}
            cid = next_id()
            STATE["codes"][code] = {"platform": "woocommerce", "id": cid, "active": True,
                                    "status": doc.get("status", "publish"), "request": doc}
        return 201, {"id": cid, "code": code, **doc}
    m = re.fullmatch(r"/wp-json/wc/v3/coupons/([0-9]+)", path)
    if m and method == "PUT":
        with LOCK:
            for v in STATE["codes"].values():
                if v["platform"] == "woocommerce" and v["id"] == int(m.group(1)):
                    v.update(status=doc.get("status", v["status"]))
                    v["active"] = v["status"] == "publish"
                    return 200, {"id": v["id"], "status": v["status"]}
        return 404, {"code": "woocommerce_rest_shop_coupon_invalid_id", "message": "Invalid ID.", "data": {"status": 404}}
    return 404, {"code": "rest_no_route", "message": "No route was found matching the URL and request method.", "data": {"status": 404}}


# ------------------------------------------------------------------ Stripe

STRIPE_OPS = json.loads((SCHEMAS / "stripe-2026-10-28.endive.json").read_text())["operations"]


def stripe_form(text):
    """Stripe's form encoding (`a[b]=c`, `a[]=x`) as nested JSON."""
    out = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        cur = out
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            if p == "[]":
                continue
            if last or parts[i + 1] == "[]":
                if not last and parts[i + 1] == "[]":
                    cur.setdefault(p, []).append(value)
                else:
                    cur[p] = value
            else:
                cur = cur.setdefault(p, {})
    return out


def coerce(value, schema):
    """Form text to the type the schema names; what does not convert is left to fail validation."""
    t = schema.get("type")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {k: coerce(v, props.get(k, extra if isinstance(extra, dict) else {})) for k, v in value.items()}
    if isinstance(value, list):
        return [coerce(v, schema.get("items", {})) for v in value]
    try:
        if t == "integer" and re.fullmatch(r"-?[0-9]+", value):
            return int(value)
        if t == "number" and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
            return float(value)
        if t == "boolean" and value in ("true", "false"):
            return value == "true"
    except TypeError:
        pass
    return value


def stripe_error(status, message, code=None, kind="invalid_request_error", param=None):
    err = {"type": kind, "message": message}
    if code:
        err["code"] = code
    if param:
        err["param"] = param
    return status, {"error": err}


def stripe(handler, method, path, query_text, body):
    if handler.headers.get("Authorization") != f"Bearer {STRIPE_KEY}":
        return stripe_error(401, "Invalid API Key provided", kind="invalid_request_error")
    if handler.headers.get("Stripe-Version") not in (None, STRIPE_VERSION):
        violation("stripe", f"Stripe-Version {handler.headers.get('Stripe-Version')}")
    m = re.fullmatch(r"/v1/promotion_codes/([A-Za-z0-9_]+)", path)
    op = f"{method} {'/v1/promotion_codes/{promotion_code}' if m else path}"
    schema = STRIPE_OPS.get(op)
    if schema is None:
        return stripe_error(404, f"Unrecognized request URL ({method}: {path}).")
    params = coerce(stripe_form(query_text if method == "GET" else (body or b"").decode()), schema)
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(params)]
    if errors:
        violation("stripe", f"{op}: " + "; ".join(errors))
        return stripe_error(400, "; ".join(errors), code="parameter_invalid")
    key = handler.headers.get("Idempotency-Key")
    with LOCK:
        if key and method == "POST":
            seen = STATE["idempotency"].get(key)
            if seen is not None:
                if seen[0] != params:
                    return stripe_error(400, "Keys for idempotent requests can only be used with the same parameters they were first used with.", kind="idempotency_error")
                return seen[1]
        answer = stripe_op(op, params, m)
        if key and method == "POST":
            STATE["idempotency"][key] = (params, answer)
    return answer


def stripe_op(op, p, m):
    if op == "POST /v1/coupons":
        if ("amount_off" in p) == ("percent_off" in p):
            return stripe_error(400, "You must pass exactly one of amount_off or percent_off.")
        if "amount_off" in p and "currency" not in p:
            return stripe_error(400, "You must pass currency when passing amount_off.", param="currency")
        cid = p.get("id") or f"coupon_{next_id()}"
        if cid in STATE["coupons"]:
            return stripe_error(400, "Coupon already exists.", code="resource_already_exists", param="id")
        STATE["coupons"][cid] = p
        return 200, {"id": cid, "object": "coupon", "valid": True, **p}
    if op == "POST /v1/promotion_codes":
        coupon = p["promotion"].get("coupon")
        if coupon not in STATE["coupons"]:
            return stripe_error(400, f"No such coupon: '{coupon}'", code="resource_missing", param="promotion[coupon]")
        code = p.get("code") or f"PROMO{next_id()}"
        if any(k.upper() == code.upper() and v["active"] for k, v in STATE["codes"].items()):
            return stripe_error(400, f"An active promotion code with `code: {code}` already exists.", code="resource_already_exists", param="code")
        pid = f"promo_{next_id()}"
        STATE["codes"][code] = {"platform": "stripe", "id": pid, "active": p.get("active", True), "request": p,
                                "coupon": STATE["coupons"][coupon]}
        return 200, {"id": pid, "object": "promotion_code", "code": code, "active": True}
    if op == "GET /v1/promotion_codes":
        data = [{"id": v["id"], "object": "promotion_code", "code": k, "active": v["active"]}
                for k, v in STATE["codes"].items() if v["platform"] == "stripe"
                and ("code" not in p or k.upper() == p["code"].upper())]
        return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/promotion_codes"}
    if op == "POST /v1/promotion_codes/{promotion_code}":
        for v in STATE["codes"].values():
            if v.get("id") == m.group(1):
                if "active" in p:
                    v["active"] = p["active"]
                return 200, {"id": v["id"], "object": "promotion_code", "active": v["active"]}
        return stripe_error(404, f"No such promotion code: '{m.group(1)}'", code="resource_missing")
    return stripe_error(404, "Unrecognized request URL.")


# ------------------------------------------------------------------ server


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, doc, headers=()):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path == "/_fake/state":
            with LOCK:
                return self._reply(200, {k: STATE[k] for k in ("codes", "violations", "calls")})
        if url.path == "/_fake/reset":
            reset()
            return self._reply(200, {})
        if url.path == "/_fake/mode":
            mode = json.loads(body or b"{}")
            with LOCK:
                for k in ("down", "rate_limited", "slow"):
                    if k in mode:
                        STATE[k] = mode[k]
            return self._reply(200, {})
        with LOCK:
            STATE["calls"].append(f"{method} {url.path}")
            down, slow = STATE["down"], STATE["slow"]
            limited = STATE["rate_limited"] > 0
            if limited:
                STATE["rate_limited"] -= 1
        if slow:
            time.sleep(slow)
        if down:
            return self._reply(503, {"errors": "Service Unavailable"})
        if limited:
            if url.path.endswith("graphql.json"):
                # Shopify answers a throttled query with 200 and a THROTTLED error.
                return self._reply(200, {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                                         "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": None,
                                                                  "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 4, "restoreRate": 2.0}}}})
            return self._reply(429, {"error": {"type": "rate_limit_error", "message": "Too many requests"}}, [("Retry-After", "3")])
        query = urllib.parse.parse_qs(url.query)
        if url.path == f"/admin/api/{SHOPIFY_VERSION}/graphql.json" and method == "POST":
            status, doc = shopify(self, body)
        elif url.path.startswith("/wp-json/wc/v3/"):
            status, doc = woo(self, method, url.path, query, body)
        elif url.path.startswith("/v1/"):
            status, doc = stripe(self, method, url.path, url.query, body)
        else:
            status, doc = 404, {"error": f"no such path {url.path}"}
        self._reply(status, doc)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
