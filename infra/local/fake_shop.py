"""A local shop for the tests: Shopify's Admin GraphQL API, WooCommerce's REST API v3 and Stripe's
coupons and promotion codes, each checking every request against the platform's published schema
(infra/local/schemas/, each file names its source and version) and answering as the platforms'
documentation shows, errors included.

    python fake_shop.py --port PORT

Paths: Shopify  /admin/api/2025-10/graphql.json   (X-Shopify-Access-Token: shpat-local)
                 discount codes, and the `orders` query (cursor paging, query cost, cost bucket)
       Woo      /wp-json/wc/v3/coupons[...], GET /wp-json/wc/v3/orders   (Basic ck_local:cs_local)
       Stripe   /v1/coupons, /v1/promotion_codes, GET /v1/charges   (Bearer rk_test_local, Stripe-Version)
Control: GET /_fake/state (codes, schema violations, calls, pages served); POST /_fake/mode
{"down": bool, "rate_limited": n, "failing": n, "after": n, "slow": seconds,
"bucket": {"maximum": points, "restore": points per second}}; POST /_fake/orders
{"orders": [...]} seeds the order history every platform lists (see seed_orders);
POST /_fake/reset.

"rate_limited": n answers the next n platform requests with the platform's rate limit (Shopify
THROTTLED, 429 with Retry-After elsewhere), "failing": n with 503, "down" every one with 503;
"after": n lets n more requests through before any of them starts.

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
                     down=False, rate_limited=0, failing=0, after=0, slow=0.0, next_id=1000,
                     orders=[], pages=[], bucket={"maximum": 2000.0, "restore": 1000.0},
                     available=2000.0, refilled=time.monotonic())


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


def _money_bag(amount, currency):
    money = {"amount": f"{amount:.2f}", "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": money}


def _shopify_order(o):
    """A seeded order as the Admin GraphQL API's Order."""
    total = float(o["amount"])
    refunded = {"refunded": total, "partially_refunded": float(o.get("refunded") or 0)}.get(o["status"], 0.0)
    status = {"paid": "PAID", "partially_refunded": "PARTIALLY_REFUNDED", "refunded": "REFUNDED",
              "pending": "PENDING", "cancelled": "VOIDED"}[o["status"]]
    customer = None
    if o.get("customer"):
        customer = {"id": f"gid://shopify/Customer/{o['customer']}", "legacyResourceId": o["customer"],
                    "firstName": o.get("first_name"), "lastName": None, "locale": o.get("locale") or "en",
                    "email": o.get("email"),
                    "defaultEmailAddress": {"emailAddress": o["email"],
                                            "marketingState": o.get("marketing") or "SUBSCRIBED"}
                    if o.get("email") else None}
    lines = [{"id": f"gid://shopify/LineItem/{o['id']}{i}", "title": l["title"], "quantity": l.get("quantity", 1),
              "sku": None, "product": {"id": f"gid://shopify/Product/{i}", "productType": l.get("category") or "",
                                       "title": l["title"]},
              "originalUnitPriceSet": _money_bag(float(l["price"]), o["currency"]),
              "discountedUnitPriceSet": _money_bag(float(l["price"]), o["currency"])}
             for i, l in enumerate(o.get("lines") or [])]

    def line_items(_info, first=None, **_args):
        shown = lines[: first or 0]
        return {"nodes": shown, "edges": [{"cursor": str(i), "node": n} for i, n in enumerate(shown)],
                "pageInfo": {"hasNextPage": len(lines) > len(shown), "hasPreviousPage": False,
                             "startCursor": None, "endCursor": None}}

    return {"id": f"gid://shopify/Order/{o['id']}", "legacyResourceId": o["id"], "name": f"#{o['id']}",
            "createdAt": o["at"], "processedAt": o["at"], "updatedAt": o["at"],
            "cancelledAt": o["at"] if o["status"] == "cancelled" else None, "test": bool(o.get("test")),
            "currencyCode": o["currency"], "displayFinancialStatus": status, "email": o.get("email"),
            "customerLocale": o.get("locale"), "customer": customer,
            "totalPriceSet": _money_bag(total, o["currency"]),
            "currentTotalPriceSet": _money_bag(total - refunded, o["currency"]),
            "totalRefundedSet": _money_bag(refunded, o["currency"]), "lineItems": line_items}


def _cursor(i):
    return base64.b64encode(json.dumps({"last": i}).encode()).decode()


def _orders(_root, _info, first=None, after=None, last=None, before=None, sortKey="PROCESSED_AT",
            reverse=False, query=None, savedSearchId=None):
    if first is None and last is None:
        raise graphql.GraphQLError("you must provide one of first or last")
    if (first or 0) > 250 or (last or 0) > 250:
        raise graphql.GraphQLError("The 'first' and 'last' arguments cannot exceed 250")
    if before is not None or last is not None or query is not None or savedSearchId is not None:
        raise graphql.GraphQLError("the fake shop serves first/after paging only")
    key = {"CREATED_AT": "at", "PROCESSED_AT": "at", "ID": "id"}.get(sortKey)
    if key is None:
        raise graphql.GraphQLError(f"the fake shop sorts by CREATED_AT, PROCESSED_AT or ID, not {sortKey}")
    ordered = sorted(STATE["orders"], key=lambda o: (o[key], o["id"]), reverse=bool(reverse))
    start = 0
    if after is not None:
        try:
            start = json.loads(base64.b64decode(after))["last"] + 1
        except (ValueError, KeyError, TypeError):
            raise graphql.GraphQLError(f"Invalid cursor for current pagination sort: {after}")
    chunk = ordered[start:start + first]
    STATE["pages"].append({"platform": "shopify", "after": after, "first": first})
    nodes = [_shopify_order(o) for o in chunk]
    end = start + len(chunk) - 1
    return {"nodes": nodes, "edges": [{"cursor": _cursor(start + i), "node": n} for i, n in enumerate(nodes)],
            "pageInfo": {"hasNextPage": start + len(chunk) < len(ordered), "hasPreviousPage": start > 0,
                         "startCursor": _cursor(start) if chunk else None,
                         "endCursor": _cursor(end) if chunk else None}}


def query_cost(schema, document, variables):
    """Shopify's calculated query cost: an object 1, a scalar or enum 0, a connection 2 plus its
    page size times the cost of each node (shopify.dev/docs/api/usage/limits#cost-calculation)."""
    def arg(field, name, default):
        for a in field.arguments or ():
            if a.name.value == name:
                v = a.value
                if isinstance(v, graphql.language.VariableNode):
                    return variables.get(v.name.value, default)
                return graphql.value_from_ast_untyped(v, variables)
        return default

    def fields_cost(selection_set, parent):
        return sum(field_cost(f, parent) for f in (selection_set.selections if selection_set else ())
                   if isinstance(f, graphql.language.FieldNode))

    def field_cost(field, parent):
        name = field.name.value
        if name.startswith("__"):
            return 0
        t = graphql.get_named_type(parent.fields[name].type)
        if graphql.is_leaf_type(t):
            return 0
        if t.name.endswith("Connection"):
            n = arg(field, "first", None) or arg(field, "last", None) or 0
            per = sum(field_cost(f, t) for f in field.selection_set.selections
                      if isinstance(f, graphql.language.FieldNode) and f.name.value in ("nodes", "edges"))
            return 2 + n * per
        if t.name.endswith("Edge"):
            return fields_cost(field.selection_set, t)
        return 1 + fields_cost(field.selection_set, t)

    total = 0
    for d in document.definitions:
        if isinstance(d, graphql.language.OperationDefinitionNode):
            root = schema.mutation_type if d.operation == graphql.language.OperationType.MUTATION else schema.query_type
            total += sum(field_cost(f, root) for f in d.selection_set.selections
                         if isinstance(f, graphql.language.FieldNode)) if d.operation != graphql.language.OperationType.MUTATION else 10
    return total


SHOPIFY_ROOT = {"discountCodeBasicCreate": _create_basic, "codeDiscountNodeByCode": _find,
                "discountCodeDeactivate": _deactivate, "orders": _orders}


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
    requested = query_cost(SHOPIFY_SCHEMA, document, variables)
    if requested > 1000:
        # As Shopify answers a query over the single-query limit: not run, nothing charged.
        return 200, {"errors": [{"message": f"Query cost is {requested}, which exceeds the single query max cost limit (1000).",
                                 "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": 1000,
                                                "documentation": "https://shopify.dev/api/usage/limits#rate-limits"}}]}
    with LOCK:
        bucket = STATE["bucket"]
        now = time.monotonic()
        available = min(bucket["maximum"], STATE["available"] + (now - STATE["refilled"]) * bucket["restore"])
        STATE["refilled"] = now
        status = {"maximumAvailable": bucket["maximum"], "restoreRate": bucket["restore"]}
        if available < requested:
            # The cost bucket is empty: THROTTLED, nothing charged (what the client must honour).
            STATE["available"] = available
            STATE["throttled"] = STATE.get("throttled", 0) + 1
            return 200, {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                         "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                                 "throttleStatus": {**status, "currentlyAvailable": available}}}}
        STATE["available"] = available - requested
        result = graphql.execute(SHOPIFY_SCHEMA, document, variable_values=variables)
    if result.errors:
        violation("shopify", "; ".join(e.message for e in result.errors))
        return 200, {"errors": [{"message": e.message} for e in result.errors]}
    cost = {"requestedQueryCost": requested, "actualQueryCost": requested,
            "throttleStatus": {**status, "currentlyAvailable": STATE["available"]}}
    return 200, {"data": result.data, "extensions": {"cost": cost}}


# ------------------------------------------------------------------ WooCommerce

WOO_SCHEMA = json.loads((SCHEMAS / "woocommerce-coupon-v3.json").read_text())


def woo_check(doc):
    readonly = [k for k in doc if k in WOO_SCHEMA["x-readonly"]]
    schema = {k: v for k, v in WOO_SCHEMA.items() if not k.startswith("x-") and k != "$comment"}
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    errors += [f"{k} is read-only" for k in readonly]
    return errors


WOO_ORDERS = json.loads((SCHEMAS / "woocommerce-orders-v3.json").read_text())
WOO_STATUS = {"paid": "completed", "partially_refunded": "completed", "refunded": "refunded",
              "pending": "pending", "cancelled": "cancelled"}


def woo_query(query):
    """Query text as WordPress reads it: each value converted to the type its parameter names,
    an array given as `a,b` or `a[]=…` split (wp_parse_list)."""
    props = WOO_ORDERS["properties"]
    params = {}
    for key, values in query.items():
        name = key[:-2] if key.endswith("[]") else key
        schema = props.get(name, {})
        if schema.get("type") == "array":
            items = [v for value in values for v in value.split(",") if v != ""]
            params[name] = [coerce(v, schema["items"]) for v in items]
        else:
            params[name] = coerce(values[-1], schema)
    return params


def _woo_order(o):
    """A seeded order as WooCommerce's order resource."""
    refunds = []
    if o["status"] == "partially_refunded":
        refunds = [{"id": o["id"] * 10, "reason": "", "total": f"-{float(o['refunded']):.2f}"}]
    if o["status"] == "refunded":
        refunds = [{"id": o["id"] * 10, "reason": "", "total": f"-{float(o['amount']):.2f}"}]
    naive = o["at"].replace("Z", "")
    customer = o.get("customer")
    return {"id": o["id"], "status": WOO_STATUS[o["status"]], "currency": o["currency"],
            "date_created_gmt": naive, "date_modified_gmt": naive,
            "date_paid_gmt": naive if o["status"] in ("paid", "partially_refunded", "refunded") else None,
            "total": f"{float(o['amount']):.2f}",
            "customer_id": int(customer) if customer and customer.isdigit() else 0,
            "billing": {"first_name": o.get("first_name") or "", "email": o.get("email") or ""},
            "line_items": [{"id": o["id"] * 100 + i, "name": l["title"], "product_id": i + 1,
                            "quantity": l.get("quantity", 1), "price": float(l["price"]),
                            "total": f"{float(l['price']) * l.get('quantity', 1):.2f}"}
                           for i, l in enumerate(o.get("lines") or [])],
            "refunds": refunds}


def woo_orders(handler, query):
    params = woo_query(query)
    errors = [e.message for e in jsonschema.Draft7Validator(
        {k: v for k, v in WOO_ORDERS.items() if not k.startswith("x-") and k != "$comment"}).iter_errors(params)]
    if errors:
        violation("woocommerce", "GET /orders: " + "; ".join(errors))
        return 400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): " + "; ".join(errors), "data": {"status": 400}}
    statuses = [s for s in params.get("status", ["any"]) if s != "any"]
    orders = [_woo_order(o) for o in STATE["orders"]]
    if statuses:
        orders = [o for o in orders if o["status"] in statuses]
    key = {"id": "id", "date": "date_created_gmt", "modified": "date_modified_gmt"}.get(params.get("orderby", "date"))
    if key is None:
        return 400, {"code": "rest_invalid_param", "message": "the fake shop sorts by id, date or modified", "data": {"status": 400}}
    orders.sort(key=lambda o: (o[key], o["id"]), reverse=params.get("order", "desc") == "desc")
    per_page, page = params.get("per_page", 10), params.get("page", 1)
    total_pages = max(1, -(-len(orders) // per_page))
    if page > total_pages and orders:
        return 400, {"code": "rest_post_invalid_page_number", "message": "The page number requested is larger than the number of pages available.", "data": {"status": 400}}
    STATE["pages"].append({"platform": "woocommerce", "page": page, "per_page": per_page})
    handler.extra_headers = [("X-WP-Total", str(len(orders))), ("X-WP-TotalPages", str(total_pages))]
    return 200, orders[(page - 1) * per_page: page * per_page]


def woo(handler, method, path, query, body):
    auth = handler.headers.get("Authorization", "")
    expected = "Basic " + base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
    if auth != expected:
        return 401, {"code": "woocommerce_rest_cannot_create", "message": "Sorry, you are not allowed to create resources.", "data": {"status": 401}}
    if method == "GET" and path == "/wp-json/wc/v3/orders":
        with LOCK:
            return woo_orders(handler, query)
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
    if op == "GET /v1/charges":
        return stripe_charges(p)
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


def _stripe_charge(o, expand_customer):
    """A seeded order as a Stripe charge (amounts in the smallest unit, cents here)."""
    cents = round(float(o["amount"]) * 100)
    refunded = {"refunded": cents, "partially_refunded": round(float(o.get("refunded") or 0) * 100)}.get(o["status"], 0)
    paid = o["status"] in ("paid", "partially_refunded", "refunded")
    customer = o.get("customer")
    if customer and expand_customer:
        customer = {"id": customer, "object": "customer", "email": o.get("email"),
                    "name": o.get("first_name"), "preferred_locales": [o["locale"]] if o.get("locale") else []}
    created = int(datetime.datetime.fromisoformat(o["at"].replace("Z", "+00:00")).timestamp())
    return {"id": f"ch_{o['id']}", "object": "charge", "payment_intent": f"pi_{o['id']}",
            "amount": cents, "amount_captured": cents if paid else 0,
            "amount_refunded": refunded, "currency": o["currency"].lower(), "created": created,
            "customer": customer, "paid": paid, "refunded": refunded == cents and cents > 0,
            "status": "succeeded" if paid else ("pending" if o["status"] == "pending" else "failed"),
            "billing_details": {"email": o.get("email"), "name": o.get("first_name")},
            "receipt_email": o.get("email"), "description": None,
            # A charge of a PaymentIntent names it; one of no invoice names no invoice.
            "payment_intent": f"pi_{o['id']}", "invoice": None}


def stripe_charges(p):
    expand = p.get("expand") or []
    unknown = [e for e in expand if e != "data.customer"]
    if unknown:
        return stripe_error(400, f"This property cannot be expanded ({unknown[0]}).")
    # Newest first, as Stripe lists them.
    ordered = sorted(STATE["orders"], key=lambda o: (o["at"], o["id"]), reverse=True)
    start = 0
    if "starting_after" in p:
        ids = [f"ch_{o['id']}" for o in ordered]
        if p["starting_after"] not in ids:
            return stripe_error(400, f"No such charge: '{p['starting_after']}'", code="resource_missing", param="starting_after")
        start = ids.index(p["starting_after"]) + 1
    limit = p.get("limit", 10)
    chunk = ordered[start:start + limit]
    STATE["pages"].append({"platform": "stripe", "starting_after": p.get("starting_after"), "limit": limit})
    return 200, {"object": "list", "url": "/v1/charges", "has_more": start + limit < len(ordered),
                 "data": [_stripe_charge(o, "data.customer" in expand) for o in chunk]}


def seed_orders(orders):
    """Seeds the order history every platform lists. Each order: {"id": int, "customer": "1001"
    or "cus_…" or null (a guest), "email", "first_name", "locale", "currency": "EUR", "amount":
    "12.50", "refunded": "2.00" (with status partially_refunded), "at": "2026-01-02T10:00:00Z",
    "status": paid | partially_refunded | refunded | pending | cancelled, "marketing": Shopify's
    marketingState, "test": bool, "lines": [{"title", "category", "quantity", "price"}]}."""
    with LOCK:
        STATE["orders"].extend(orders)


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
                state = {k: STATE[k] for k in ("codes", "violations", "calls", "pages")}
                return self._reply(200, {**state, "throttled": STATE.get("throttled", 0)})
        if url.path == "/_fake/orders":
            seed_orders(json.loads(body or b"{}").get("orders", []))
            return self._reply(200, {"orders": len(STATE["orders"])})
        if url.path == "/_fake/reset":
            reset()
            return self._reply(200, {})
        if url.path == "/_fake/mode":
            mode = json.loads(body or b"{}")
            with LOCK:
                for k in ("down", "rate_limited", "failing", "after", "slow"):
                    if k in mode:
                        STATE[k] = mode[k]
                if "bucket" in mode:
                    STATE["bucket"] = {k: float(v) for k, v in mode["bucket"].items()}
                    STATE["available"], STATE["refilled"] = STATE["bucket"]["maximum"], time.monotonic()
            return self._reply(200, {})
        with LOCK:
            STATE["calls"].append(f"{method} {url.path}")
            slow = STATE["slow"]
            if STATE["after"] > 0:
                STATE["after"] -= 1
                down = limited = failing = False
            else:
                down = STATE["down"]
                limited = STATE["rate_limited"] > 0
                if limited:
                    STATE["rate_limited"] -= 1
                failing = not limited and STATE["failing"] > 0
                if failing:
                    STATE["failing"] -= 1
        if slow:
            time.sleep(slow)
        if down or failing:
            return self._reply(503, {"errors": "Service Unavailable"})
        if limited:
            if url.path.endswith("graphql.json"):
                # Shopify answers a throttled query with 200 and a THROTTLED error.
                return self._reply(200, {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                                         "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": None,
                                                                  "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 4, "restoreRate": 2.0}}}})
            return self._reply(429, {"error": {"type": "rate_limit_error", "message": "Too many requests"}}, [("Retry-After", "3")])
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path == f"/admin/api/{SHOPIFY_VERSION}/graphql.json" and method == "POST":
            status, doc = shopify(self, body)
        elif url.path.startswith("/wp-json/wc/v3/"):
            status, doc = woo(self, method, url.path, query, body)
        elif url.path.startswith("/v1/"):
            status, doc = stripe(self, method, url.path, url.query, body)
        else:
            status, doc = 404, {"error": f"no such path {url.path}"}
        self._reply(status, doc, getattr(self, "extra_headers", ()))
        self.extra_headers = ()

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
