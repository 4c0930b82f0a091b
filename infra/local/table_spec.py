#!/usr/bin/env python3
"""Write the DynamoDB CreateTable request of template.yaml's `Table` resource as JSON.

The table has one definition, in template.yaml; local tests and the local stack create their
tables from this file (the Rust code reads it from WINBACK_TABLE_SPEC and adds a TableName).

    python infra/local/table_spec.py [--template template.yaml] [--out .local/table-spec.json]

Output: {"AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes"?, "LocalSecondaryIndexes"?,
"BillingMode": "PAY_PER_REQUEST", "TimeToLiveAttribute": "ttl"}; no TableName.
"""

import argparse
import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short tags (!Ref, !Sub, !GetAtt, ...)."""


def _construct_tag(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else "Fn::" + tag_suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


def _plain(value, what):
    """Reject intrinsic functions: a local table needs literal names."""
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key == "Ref" or key.startswith("Fn::"):
            raise SystemExit(f"table_spec: {what} uses {key}; the local table needs a literal value")
    return value


def _key_schema(schema, what):
    return [
        {"AttributeName": _plain(k["AttributeName"], what), "KeyType": _plain(k["KeyType"], what)}
        for k in schema
    ]


def _index(index, what):
    out = {
        "IndexName": _plain(index["IndexName"], what),
        "KeySchema": _key_schema(index["KeySchema"], what),
        "Projection": {"ProjectionType": index.get("Projection", {}).get("ProjectionType", "ALL")},
    }
    non_key = index.get("Projection", {}).get("NonKeyAttributes")
    if non_key:
        out["Projection"]["NonKeyAttributes"] = list(non_key)
    return out


def table_spec(template, logical_id="Table"):
    resources = template.get("Resources") or {}
    if logical_id not in resources:
        raise SystemExit(f"table_spec: no resource named {logical_id!r} in the template")
    resource = resources[logical_id]
    if resource.get("Type") != "AWS::DynamoDB::Table":
        raise SystemExit(f"table_spec: {logical_id} is {resource.get('Type')}, not AWS::DynamoDB::Table")
    props = resource.get("Properties") or {}
    spec = {
        "AttributeDefinitions": [
            {
                "AttributeName": _plain(a["AttributeName"], "AttributeDefinitions"),
                "AttributeType": _plain(a["AttributeType"], "AttributeDefinitions"),
            }
            for a in props["AttributeDefinitions"]
        ],
        "KeySchema": _key_schema(props["KeySchema"], "KeySchema"),
    }
    if props.get("GlobalSecondaryIndexes"):
        spec["GlobalSecondaryIndexes"] = [
            _index(i, "GlobalSecondaryIndexes") for i in props["GlobalSecondaryIndexes"]
        ]
    if props.get("LocalSecondaryIndexes"):
        spec["LocalSecondaryIndexes"] = [
            _index(i, "LocalSecondaryIndexes") for i in props["LocalSecondaryIndexes"]
        ]
    # Locally always on demand: no capacity to provision, same API behaviour.
    spec["BillingMode"] = "PAY_PER_REQUEST"
    ttl = props.get("TimeToLiveSpecification") or {}
    spec["TimeToLiveAttribute"] = _plain(ttl.get("AttributeName", "ttl"), "TimeToLiveSpecification")
    return spec


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=os.path.join(ROOT, "template.yaml"))
    parser.add_argument("--out", default=os.path.join(ROOT, ".local", "table-spec.json"))
    parser.add_argument("--resource", default="Table", help="logical id of the table resource")
    args = parser.parse_args(argv)

    spec = table_spec(load_template(args.template), args.resource)
    text = json.dumps(spec, indent=2, sort_keys=False) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
        return
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"table_spec: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
