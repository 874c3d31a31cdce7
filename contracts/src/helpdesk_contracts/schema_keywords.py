"""What single JSON Schema keywords allow, for `subschema`: types, values and limits.

Each `*_limits(o, n)` lists the limits of conjunct `n` that conjunct `o` does not imply (so
some instance `o` accepts may fail them); given a `value`, those the value fails instead.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from typing import Any

TYPES = frozenset({"null", "boolean", "object", "array", "number", "string"})
"""JSON Schema's types; "integer" is the numbers without a fractional part."""


def finite_values(node: dict[str, Any]) -> list[Any] | None:
    """The finite set of values a conjunct allows (const, enum), or None."""
    if "const" in node:
        enum = node.get("enum")
        if enum is not None and canon(node["const"]) not in {canon(v) for v in enum}:
            return []
        return [node["const"]]
    return list(node["enum"]) if "enum" in node else None


def types_of(node: dict[str, Any]) -> set[str]:
    declared = node.get("type")
    if declared is None:
        return set(TYPES)
    return {declared} if isinstance(declared, str) else set(declared)


def type_in(kind: str, types: set[str]) -> bool:
    return kind in types or (kind == "integer" and "number" in types)


def types_overlap(old: list[dict[str, Any]], new: list[Any]) -> bool:
    old_types = set.intersection(*(types_of(c) for c in old))
    new_types = set.intersection(set(TYPES) | {"integer"}, *(types_of(c) for c in new))
    return any(t == u or {t, u} == {"integer", "number"} for t in old_types for u in new_types)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "unknown")


def count_limits(o: dict[str, Any], n: dict[str, Any], what: str) -> list[str]:
    """maxLength/minLength, maxItems/minItems or max/minProperties of `n` tighter than `o`'s."""
    problems = []
    old_max, new_max = o.get(f"max{what}"), n.get(f"max{what}")
    if new_max is not None and (old_max is None or new_max < old_max):
        problems.append(_limit(f"max{what}", old_max, new_max, "lowered"))
    if n.get(f"min{what}", 0) > o.get(f"min{what}", 0):
        problems.append(_limit(f"min{what}", o.get(f"min{what}"), n[f"min{what}"], "raised"))
    return problems


def string_limits(o: dict[str, Any], n: dict[str, Any], value: str | None = None) -> list[str]:
    """Limits of `n` that `o` does not imply; for one `value` if given, those it fails."""
    if value is None:
        problems = count_limits(o, n, "Length")
    elif not n.get("minLength", 0) <= len(value) <= n.get("maxLength", len(value)):
        problems = ["length out of the new limits"]
    else:
        problems = []
    pattern = n.get("pattern")
    if pattern is not None and pattern != o.get("pattern"):
        if value is None:
            problems.append(_limit("pattern", o.get("pattern"), pattern, "changed"))
        elif not _searches(pattern, value):
            problems.append(f"does not match the new pattern {canon(pattern)}")
    if n.get("format") is not None and n.get("format") != o.get("format"):
        problems.append(_limit("format", o.get("format"), n["format"], "changed"))
    return problems


def _searches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def number_limits(o: dict[str, Any], n: dict[str, Any], value: float | None = None) -> list[str]:
    """Bounds and multipleOf of `n` that `o` does not imply; for one `value`, those it fails."""
    problems = []
    for side, sign in (("minimum", 1), ("maximum", -1)):
        new = _bound(n, side, sign)
        old = (value, False) if value is not None else _bound(o, side, sign)
        # Sign-adjusted, a higher minimum or a lower maximum is tighter; at the same number an
        # exclusive bound is tighter than an inclusive one.
        if new is not None and (old is None or (sign * new[0], new[1]) > (sign * old[0], old[1])):
            verb = "raised" if sign > 0 else "lowered"
            was = None if old is None else _show_bound(old)
            problems.append(
                f"{side} {_show_bound(new)} added"
                if was is None
                else f"{side} {verb} from {was} to {_show_bound(new)}"
            )
    step = n.get("multipleOf")
    if step is not None:
        base = value if value is not None else o.get("multipleOf")
        if base is None or (Fraction(str(base)) / Fraction(str(step))).denominator != 1:
            problems.append(_limit("multipleOf", o.get("multipleOf"), step, "changed"))
    return problems


def _bound(node: dict[str, Any], side: str, sign: int) -> tuple[float, bool] | None:
    """The tighter of `minimum` and `exclusiveMinimum` (or the maximums): (number, exclusive)."""
    exclusive = "exclusive" + side[0].upper() + side[1:]
    bounds = [(node[side], False)] if side in node else []
    if isinstance(node.get(exclusive), int | float) and not isinstance(node[exclusive], bool):
        bounds.append((node[exclusive], True))
    return max(bounds, key=lambda b: (sign * b[0], b[1])) if bounds else None


def _show_bound(bound: tuple[float, bool]) -> str:
    return f"{canon(bound[0])} (exclusive)" if bound[1] else canon(bound[0])


def _limit(keyword: str, old: Any, new: Any, verb: str) -> str:
    if old is None:
        return f"{keyword} {canon(new)} added"
    return f"{keyword} {verb} from {canon(old)} to {canon(new)}"


def canon(value: Any) -> str:
    # JSON equality: 1, 1.0 and true are three different values (Python says equal).
    return json.dumps(value, sort_keys=True)


def show_all(values: list[Any]) -> str:
    return ", ".join(map(canon, values)) or "no value"
