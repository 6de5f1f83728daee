#!/usr/bin/python3
"""Finds fields the Kubernetes API does not know in rendered objects (a JSON array, as helm-render -json prints them).

The API server drops unknown fields without a word, so a misspelt `hostPid` would silently run the installer without
the host's PID namespace; the OpenAPI schema kubernetes-models validates against allows them. This walks each object
along the models of Debian's python3-kubernetes (their attribute_map and openapi_types) and prints every field that
no model has. Exits 1 when there is one.
"""
import json
import re
import sys

from kubernetes import client


def check(value, type_name, path, errors):
    if value is None:
        return
    listed = re.fullmatch(r"list\[(.*)\]", type_name)
    if listed:
        for index, item in enumerate(value):
            check(item, listed.group(1), f"{path}[{index}]", errors)
        return
    mapped = re.fullmatch(r"dict\(([^,]*), (.*)\)", type_name)
    if mapped:
        for key, item in value.items():
            check(item, mapped.group(2), f"{path}.{key}", errors)
        return
    model = getattr(client, type_name, None)
    if model is None or not hasattr(model, "attribute_map"):
        return  # str, int, bool, object (int-or-string), datetime
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object ({type_name})")
        return
    by_json_name = {json_name: attribute for attribute, json_name in model.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json_name:
            errors.append(f"{path}.{key}: not a field of {type_name}")
            continue
        check(item, model.openapi_types[by_json_name[key]], f"{path}.{key}", errors)


def main():
    with open(sys.argv[1], encoding="utf-8") as stream:
        objects = json.load(stream)
    errors = []
    for obj in objects:
        version = obj["apiVersion"].rpartition("/")[2]
        type_name = version.capitalize() + obj["kind"]
        if getattr(client, type_name, None) is None:
            errors.append(f"{obj['apiVersion']} {obj['kind']}: python3-kubernetes has no model {type_name}")
            continue
        check(obj, type_name, f"{obj['kind']}/{obj['metadata']['name']}", errors)
    for error in errors:
        print(error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
