"""Every integer and string an API user can send, found by walking the app's OpenAPI document,
and values at and beyond their extremes: so a route or a field added later is covered.

A *target* is one place a value goes: a path, query or header parameter, or a field (or a
dict key) of a JSON body, reached from one of the body's documented examples. ``conforms``
says whether a value fits the target's schema, which decides the status a test expects.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, replace
from typing import Any

INTS = [0, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1]
INTS += [2**64, -(2**64), 10**300, -(10**300)]
STRINGS = ["", "\x00", "a\x00b", "x" * 100_000, '"', "\\", "\x1f", "é🙂", "' OR 1=1 --"]
STRINGS += ["<script>alert(1)</script>", "1e20", "NaN", "-0"]
HEADER_SAFE = re.compile(r"[\x20-\x7e]*")  # what an HTTP client can put in a header


@dataclass(frozen=True)
class Target:
    method: str
    path: str  # the route's template, /v1/jobs/{job_id}
    where: str  # path, query, header, body, key (a key of a body's object)
    name: str  # the parameter, or the field as the API names it (data.n_samples)
    schema: dict[str, Any]
    responses: frozenset[str]
    example: Any = None  # the body this target's value is put into
    steps: tuple[str | int, ...] = ()  # where in the body

    def body_with(self, value: Any) -> Any:
        body = copy.deepcopy(self.example)
        parent = _at(body, self.steps[:-1])
        if self.where == "key":  # the dict at steps gets one entry, keyed by value
            entries = parent[self.steps[-1]]
            parent[self.steps[-1]] = {value: next(iter(entries.values()))}
        else:
            parent[self.steps[-1]] = value
        return body


def dotted(steps: tuple[str | int, ...]) -> str:
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else f".{step}" if out else str(step)
    return out


class Walker:
    """The targets of an OpenAPI document: its parameters, and its JSON bodies' fields."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.doc = document

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def targets(self) -> list[Target]:
        out: list[Target] = []
        for path, methods in self.doc["paths"].items():
            for method, op in methods.items():
                responses = frozenset(op["responses"])
                for p in op.get("parameters", []):
                    if _leaf_type(p["schema"]) not in ("integer", "string"):
                        continue  # numbers and booleans: not this module's business
                    out.append(Target(method, path, p["in"], p["name"], p["schema"], responses))
                content = op.get("requestBody", {}).get("content", {}).get("application/json")
                for example in (content or {}).get("examples", {}).values():
                    top = Target(method, path, "body", "", {}, responses, example["value"])
                    # A body that is a union (POST /v1/jobs: a job spec, or an external
                    # run without a recipe, whose fields are the spec's): its first member.
                    body = self.resolve(content["schema"])
                    body = self.resolve(body.get("oneOf", body.get("anyOf", [body]))[0])
                    out += self._fields(top, body, ())
        return out

    def _fields(self, top: Target, schema: dict[str, Any], steps: tuple) -> list[Target]:
        """The targets in the object at ``steps`` of ``top.example``; each variant of a union
        on ``kind`` is put in its place in a copy of the example."""
        out: list[Target] = []
        for prop, sub in self.resolve(schema).get("properties", {}).items():
            here = (*steps, prop)
            sub = self.resolve(sub)
            for option in (self.resolve(s) for s in sub.get("oneOf", sub.get("anyOf", [sub]))):
                kind = option.get("type")
                if kind == "object" and "properties" in option:
                    base = copy.deepcopy(top.example)
                    parent, tag = _at(base, steps), option["properties"].get("kind", {})
                    current = parent.get(prop)
                    if "const" in tag and (not current or current.get("kind") != tag["const"]):
                        parent[prop] = {"kind": tag["const"]}
                    elif not isinstance(current, dict):
                        parent[prop] = {}
                    out += self._fields(replace(top, example=base), option, here)
                elif kind in ("integer", "string") and prop != "kind":
                    out.append(replace(top, name=dotted(here), schema=option, steps=here))
                elif kind == "array":
                    out += self._items(top, option, steps, prop)
                elif kind == "object":
                    out += self._dict(top, option, steps, prop)
        return out

    def _items(self, top: Target, schema: dict, steps: tuple, prop: str) -> list[Target]:
        items = self.resolve(schema.get("items", {}))
        if items.get("type") not in ("integer", "string", None):
            return []
        base = copy.deepcopy(top.example)
        _at(base, steps)[prop] = [_sample(items)]
        here = (*steps, prop, 0)
        return [replace(top, name=dotted(here), schema=items, example=base, steps=here)]

    def _dict(self, top: Target, schema: dict, steps: tuple, prop: str) -> list[Target]:
        """A dict's keys, and its values (or the items of its lists)."""
        values = schema.get("additionalProperties") or next(
            iter(schema.get("patternProperties", {}).values()), {}
        )
        values = self.resolve(values) if isinstance(values, dict) else {}
        base = copy.deepcopy(top.example)
        parent = _at(base, steps)
        if not isinstance(parent.get(prop), dict) or not parent[prop]:
            parent[prop] = {"k": _sample(values)}
        first = next(iter(parent[prop]))
        with_dict = replace(top, example=base)
        keys = dict(schema.get("propertyNames", {}), type="string")
        here = (*steps, prop)
        out = [replace(with_dict, where="key", name=dotted(here), schema=keys, steps=here)]
        if values.get("type") == "array":
            return out + self._items(with_dict, values, here, first)
        value_steps = (*here, first)
        if values.get("type") in ("integer", "string", None):
            out.append(
                replace(with_dict, name=dotted(value_steps), schema=values, steps=value_steps)
            )
        return out


def _at(body: Any, steps: tuple) -> Any:
    for step in steps:
        body = body[step]
    return body


def _sample(schema: dict) -> Any:
    return {"integer": 1, "string": "v", "number": 0.5, "array": [0.0]}.get(
        str(schema.get("type")), 0
    )


def values_for(target: Target) -> list[Any]:
    """The extremes to send: for a parameter every value as text; for a body field the
    values of its own JSON type (a JSON string for an integer is another test's business)."""
    if target.where in ("path", "query", "header"):
        # a URL holds at most 64 k characters (httpx; servers stop far sooner)
        values = [str(i) for i in INTS] + [v[:30_000] for v in STRINGS]
        if target.where == "path":  # a slash, or nothing, makes another URL
            values = [v for v in values if v.strip(".") and "/" not in v]
        if target.where == "header":
            values = [v for v in values if HEADER_SAFE.fullmatch(v) and v.strip() == v and v]
        return values
    kind = _leaf_type(target.schema)
    if target.where == "key" or kind == "string":
        return list(STRINGS)
    if kind == "integer":
        return list(INTS)
    return list(INTS) + list(STRINGS)  # any JSON value


def _leaf_type(schema: dict) -> str | None:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") not in (None, "null"):
            return option["type"]
    return None


def conforms(value: Any, schema: dict) -> bool:
    """Whether ``value`` (parsed from text for a parameter) fits ``schema``."""
    options = schema.get("anyOf", [schema])
    return any(_fits(value, o) for o in options if o.get("type") != "null")


def _fits(value: Any, schema: dict) -> bool:
    kind = schema.get("type")
    if "enum" in schema:
        return value in schema["enum"]
    if kind == "integer":
        if isinstance(value, str):
            if not re.fullmatch(r"-?[0-9]+", value):
                return False
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        return schema.get("minimum", -float("inf")) <= value <= schema.get("maximum", float("inf"))
    if kind == "string":
        if not isinstance(value, str):
            return False
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9):
            return False
        return "pattern" not in schema or re.search(schema["pattern"], value) is not None
    return kind is None  # any JSON value fits an untyped schema
