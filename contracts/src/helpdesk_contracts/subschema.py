"""Whether every instance of one JSON Schema is an instance of another, and if not, why.

`schema_breaks(old, new)` is what `compatibility` runs for each released event schema. It is
a proof over the keywords pydantic emits, not a diff: `$ref`s are followed, `anyOf` (optional
fields) and `oneOf` are split into alternatives, and each old alternative must be covered by
some new one. Where it cannot prove a change safe it reports it, so it may refuse a change that
is in fact compatible (a pattern rewritten to accept more, an edited `if`/`then` rule), never
the other way round, except for one assumption:

**Writers send only the properties their schema declares.** Our models ignore unknown fields
and their schemas leave additional properties open, so read literally an old message could
carry any property with any value, and adding even an optional property would break (Confluent
Schema Registry says exactly that for JSON Schema's open content model). jsoncompat makes the
same assumption for deserializers. Declared maps (an `additionalProperties` or
`patternProperties` schema, like `custom_fields`) and `additionalProperties: true` are not
assumed away.

Reported, each with the dotted path of the property (`payload.tags[]` for list items,
`[/pattern/]` and `[*]` for map values):
- a property newly required, or removed where the new schema forbids additional properties;
- a type narrowed (including a nullable field made non-nullable; integer fits number);
- an enum or const value no longer accepted, or an enum where any value was accepted;
- a tighter limit: maxLength, maxItems, maxProperties or maximum lowered, their minimum
  counterparts raised (exclusive bounds too), a pattern, format, multipleOf, uniqueItems or
  propertyNames added or changed;
- a changed default: an old message without the field would be read differently;
- any other keyword (`if`/`then`, `not`, a `oneOf` whose branches may overlap...) added or
  changed.
"""

from __future__ import annotations

import re
from typing import Any

from helpdesk_contracts.schema_keywords import (
    canon,
    count_limits,
    finite_values,
    json_type,
    number_limits,
    show_all,
    string_limits,
    type_in,
    types_of,
    types_overlap,
)

# fmt: off
ANNOTATIONS = frozenset({
    "$comment", "$defs", "$id", "$schema", "contentEncoding", "contentMediaType",
    "contentSchema", "default", "deprecated", "description", "discriminator", "examples",
    "readOnly", "title", "writeOnly",
})
_CHECKED = frozenset({
    "type", "enum", "const", "minLength", "maxLength", "pattern", "format", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "items", "prefixItems",
    "minItems", "maxItems", "uniqueItems", "properties", "required", "additionalProperties",
    "patternProperties", "propertyNames", "minProperties", "maxProperties",
})
# fmt: on
_COMBINATORS = frozenset({"$ref", "allOf", "anyOf", "oneOf"})
# Keywords whose meaning depends on everything around them: never shown unchanged.
_UNCHECKABLE = frozenset({"unevaluatedProperties", "unevaluatedItems", "$dynamicRef"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_VALUES = frozenset(
    {"items", "not", "if", "then", "else", "contains", "additionalProperties", "propertyNames"}
)
_MAX_DEPTH = 64

Problem = tuple[str, str]
"""(path, what breaks), e.g. ("payload.subject", "maxLength lowered from 250 to 100")."""


def schema_breaks(old: Any, new: Any) -> list[Problem]:
    """Why some instance valid under the `old` schema document may be invalid under `new`."""
    problems = _Comparison(old, new).schema(old, new, "", 0)
    return list(dict.fromkeys(problems))


class _Comparison:
    """Compares one old and one new schema document; `$ref`s resolve within each."""

    def __init__(self, old_doc: Any, new_doc: Any) -> None:
        self.old_doc, self.new_doc = old_doc, new_doc
        # Pairs being compared further up: a recursive schema meets them again, and assuming
        # they hold there is sound (coinduction), as for recursive types.
        self._open: set[tuple[int, int]] = set()
        self._open_same: set[tuple[int, int]] = set()

    def schema(self, old: Any, new: Any, path: str, depth: int) -> list[Problem]:
        key = (id(old), id(new))
        if key in self._open:
            return []
        if depth > _MAX_DEPTH:
            return [(path, "nested too deeply to check")]
        self._open.add(key)
        try:
            problems = _default_change(old, new, path)
            olds = [_merge(a) for a in self._alternatives(old, self.old_doc, True, 0)]
            news = self._alternatives(new, self.new_doc, False, 0)
            for alternative in (split for a in olds for split in _split(a)):
                problems += self._alternative(alternative, news, path, depth)
            return problems
        finally:
            self._open.discard(key)

    def _alternatives(self, node: Any, doc: Any, old_side: bool, hops: int) -> list[list[Any]]:
        """The node as alternatives (anyOf), each a list of conjuncts without combinators."""
        if node is True or node == {}:
            return [[]]
        if node is False:
            return []
        if not isinstance(node, dict) or hops > _MAX_DEPTH:
            return [[{"$unreadable": node}]]
        rest = {k: v for k, v in node.items() if k not in ANNOTATIONS | _COMBINATORS}
        result: list[list[Any]] = [[rest] if rest else []]

        def expand(subschemas: list[Any]) -> list[list[Any]]:
            return [
                a for sub in subschemas for a in self._alternatives(sub, doc, old_side, hops + 1)
            ]

        parts = [expand([sub]) for sub in node.get("allOf", ())]
        if "$ref" in node:
            target = _resolve(doc, node["$ref"])
            parts.append([[{"$ref": node["$ref"]}]] if target is _MISSING else expand([target]))
        if "anyOf" in node:
            parts.append(expand(node["anyOf"]))
        if "oneOf" in node:
            branches, rule = expand(node["oneOf"]), {"oneOf": node["oneOf"]}
            if old_side:  # oneOf accepts less than anyOf: keeping the rule as well is exact
                parts.append([[*branch, rule] for branch in branches])
            elif _exclusive(branches):  # then a value matches one branch only: anyOf
                parts.append(branches)
            else:
                parts.append([[rule]])
        for part in parts:
            result = [a + b for a in result for b in part]
        return result

    def _alternative(
        self, old: list[dict[str, Any]], news: list[list[Any]], path: str, depth: int
    ) -> list[Problem]:
        """Problems unless one new alternative covers the old one (best attempt reported)."""
        if not news:
            return [(path, "nothing is accepted any more")]
        best: tuple[tuple[bool, int, int], list[Problem]] | None = None
        for alternative in news:
            problems: list[Problem] = []
            for conjunct in alternative:
                attempts: list[list[Problem]] = []
                for o in old:
                    attempt = self._covers(o, conjunct, path, depth)
                    if not attempt:
                        break
                    attempts.append(attempt)
                else:
                    fewest: list[Problem] = min(attempts, key=len)
                    problems += fewest
            if not problems:
                return []
            rank = (not types_overlap(old, alternative), _mismatches(problems), len(problems))
            if best is None or rank < best[0]:
                best = (rank, problems)
        assert best is not None
        return best[1]

    def _covers(self, o: dict[str, Any], n: dict[str, Any], path: str, depth: int) -> list[Problem]:
        """Problems unless every instance valid under conjunct `o` is valid under `n`."""
        problems: list[Problem] = []
        for keyword in sorted(n.keys() - _CHECKED):
            if keyword in _UNCHECKABLE:
                problems.append((path, f"{keyword} cannot be checked, so it counts as breaking"))
            elif keyword not in o or not self.same(o[keyword], n[keyword]):
                problems.append((path, f"{keyword} added or changed (not checked: breaking)"))
        values = finite_values(o)
        if values is not None:
            return problems + [(path, r) for v in values if (r := self.value(o, n, v))]
        if (allowed := finite_values(n)) is not None:
            return [*problems, (path, f"only {show_all(allowed)} accepted now")]
        kept = {t for t in types_of(o) if type_in(t, types_of(n))}
        lost = sorted(types_of(o) - kept)
        if lost:
            problems.append((path, f"type narrowed: {', '.join(lost)} no longer accepted"))
        if "string" in kept:
            problems += [(path, r) for r in string_limits(o, n)]
        if kept & {"integer", "number"}:
            problems += [(path, r) for r in number_limits(o, n)]
        if "array" in kept:
            problems += self._arrays(o, n, path, depth)
        if "object" in kept:
            problems += self._objects(o, n, path, depth)
        return problems

    def _arrays(self, o: dict[str, Any], n: dict[str, Any], path: str, depth: int) -> list[Problem]:
        problems = [(path, r) for r in count_limits(o, n, "Items")]
        if n.get("uniqueItems") is True and o.get("uniqueItems") is not True:
            problems.append((path, "uniqueItems added"))
        positions = max(len(o.get("prefixItems", ())), len(n.get("prefixItems", ())))
        for i in range(positions):
            problems += self.schema(_item(o, i), _item(n, i), f"{path}[{i}]", depth + 1)
        return problems + self.schema(
            o.get("items", True), n.get("items", True), f"{path}[]", depth + 1
        )

    def _objects(
        self, o: dict[str, Any], n: dict[str, Any], path: str, depth: int
    ) -> list[Problem]:
        problems = [(path, r) for r in count_limits(o, n, "Properties")]
        for name in sorted(set(n.get("required", ())) - set(o.get("required", ()))):
            problems.append((_join(path, name), "required now: messages valid before may lack it"))
        for name in sorted(o.get("properties", {}).keys() | n.get("properties", {}).keys()):
            sent, accepted = _property(o, name, old=True), _property(n, name, old=False)
            if sent is None or accepted is True:
                continue
            if accepted is False:
                reason = "removed, and the new schema forbids additional properties"
                problems.append((_join(path, name), reason))
            else:
                problems += self.schema(sent, accepted, _join(path, name), depth + 1)
        old_patterns, new_patterns = o.get("patternProperties", {}), n.get("patternProperties", {})
        old_extra = o.get("additionalProperties", False)  # absent: writers send only declared
        for pattern, schema in new_patterns.items():
            # Names matching a new pattern may have matched any old pattern, or none.
            senders = (
                [old_patterns[pattern]]
                if pattern in old_patterns
                else [*old_patterns.values(), old_extra]
            )
            for sent in senders:
                problems += self.schema(sent, schema, f"{path}[/{pattern}/]", depth + 1)
        new_extra = n.get("additionalProperties", True)
        if new_extra is not True:
            gone = [s for p, s in old_patterns.items() if p not in new_patterns] + [old_extra]
            for sent in gone:
                if new_extra is False and sent is not False:
                    problems.append(
                        (f"{path}[*]", "no longer accepted: additional properties forbidden")
                    )
                elif new_extra is not False:
                    problems += self.schema(sent, new_extra, f"{path}[*]", depth + 1)
        if "propertyNames" in n:
            problems += self._names(o, n, path, depth)
        return problems

    def _names(self, o: dict[str, Any], n: dict[str, Any], path: str, depth: int) -> list[Problem]:
        where = f"{path}(names)"
        problems: list[Problem] = []
        if o.get("patternProperties") or o.get("additionalProperties", False) is not False:
            problems += self.schema(
                o.get("propertyNames", True), n["propertyNames"], where, depth + 1
            )
        for name in sorted(o.get("properties", {})):
            alternatives = self._alternatives(n["propertyNames"], self.new_doc, False, 0)
            if not any(
                all(c.keys() <= _CHECKED and not self.value({}, c, name) for c in a)
                for a in alternatives
            ):
                problems.append((_join(path, name), "property name no longer allowed"))
        return problems

    def value(self, o: dict[str, Any], n: dict[str, Any], value: Any) -> str | None:
        """Why `n` refuses a value `o` accepts (an enum or const value), or None."""
        shown = canon(value)
        allowed = finite_values(n)
        if allowed is not None and canon(value) not in {canon(a) for a in allowed}:
            if "enum" in n:
                return f"enum value {shown} removed"
            return f"value {shown} no longer accepted (const is now {canon(n['const'])})"
        kind = json_type(value)
        if not type_in(kind, types_of(n)):
            narrowed = "/".join(sorted(types_of(n)))
            return f"value {shown} no longer accepted: type narrowed to {narrowed}"
        limits: list[str] = []
        if kind == "string":
            limits = string_limits({"format": o.get("format")}, n, value)
        elif kind in ("integer", "number"):
            limits = number_limits({}, n, value)
        elif kind in ("array", "object") and n.keys() & _CHECKED - {"type", "enum", "const"}:
            limits = ["cannot be checked against the new limits"]
        return f"value {shown}: {limits[0]}" if limits else None

    def same(self, old: Any, new: Any) -> bool:
        """Whether two schemas are the same but for annotations ($refs followed)."""
        if not (isinstance(old, dict) and isinstance(new, dict)):
            return canon(old) == canon(new)
        key = (id(old), id(new))
        if key in self._open_same:
            return True
        self._open_same.add(key)
        try:
            keywords = old.keys() - ANNOTATIONS
            return keywords == new.keys() - ANNOTATIONS and all(
                self._same_keyword(k, old[k], new[k]) for k in keywords
            )
        finally:
            self._open_same.discard(key)

    def _same_keyword(self, keyword: str, old: Any, new: Any) -> bool:
        if keyword == "$ref":
            old_target, new_target = _resolve(self.old_doc, old), _resolve(self.new_doc, new)
            if old_target is _MISSING or new_target is _MISSING:
                return bool(old == new)
            return self.same(old_target, new_target)
        if keyword in _SCHEMA_MAPS:
            return old.keys() == new.keys() and all(self.same(old[k], new[k]) for k in old)
        if keyword in _SCHEMA_LISTS:
            return len(old) == len(new) and all(map(self.same, old, new))
        if keyword in _SCHEMA_VALUES:
            return self.same(old, new)
        return canon(old) == canon(new)


_MISSING = object()


def _resolve(doc: Any, ref: str) -> Any:
    """The target of a local `#/...` reference, or _MISSING."""
    if not ref.startswith("#"):
        return _MISSING
    node = doc
    for part in filter(None, ref[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _merge(conjuncts: list[Any]) -> list[dict[str, Any]]:
    """Old side: the conjuncts combined as far as that is safe, so that one holds all that an
    object declares. Accepting more than their intersection is safe on the old side: what
    covers more covers the intersection."""
    merged: list[dict[str, Any]] = []
    for conjunct in conjuncts:
        target = next((m for m in merged if not (m.keys() & conjunct.keys()) - _MEETS), None)
        if target is None:
            merged.append(dict(conjunct))
            continue
        for key, value in conjunct.items():
            target[key] = _meet(key, target[key], value) if key in target else value
    # Writers send whatever any conjunct declares: a conjunct learns the properties, patterns
    # and additionalProperties that the others declare (each stays a superset of the whole).
    for key in ("properties", "patternProperties"):
        declared = {k: v for m in reversed(merged) for k, v in m.get(key, {}).items()}
        for m in merged:
            if declared.keys() - m.get(key, {}).keys():
                m[key] = {**declared, **m.get(key, {})}
    extras = [
        m["additionalProperties"]
        for m in merged
        if m.get("additionalProperties", False) is not False
    ]
    for m in merged:
        if extras and "additionalProperties" not in m:
            m["additionalProperties"] = extras[0]
    return merged or [{}]


_MEETS = frozenset({"type", "required", "properties", "patternProperties"})


def _meet(keyword: str, a: Any, b: Any) -> Any:
    """Both values of a keyword at once (keywords in _MEETS only)."""
    if keyword == "type":
        ta, tb = types_of({"type": a}), types_of({"type": b})
        return sorted({t for t in ta if type_in(t, tb)} | {t for t in tb if type_in(t, ta)})
    if keyword == "required":
        return [*a, *(name for name in b if name not in a)]
    return {**a, **{k: {"allOf": [a[k], v]} if k in a else v for k, v in b.items()}}


def _split(alternative: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """An old alternative as a union of narrower ones, one per type and per enum value, so
    that each may be covered by a different new alternative."""
    for i, conjunct in enumerate(alternative):
        types, values = conjunct.get("type"), conjunct.get("enum", ())
        if isinstance(types, list) and len(types) > 1:
            parts = [{**conjunct, "type": t} for t in types]
        elif len(values) > 1 and "const" not in conjunct:
            parts = [{**conjunct, "enum": [v]} for v in values]
        else:
            continue
        rest = (alternative[:i], alternative[i + 1 :])
        return [split for part in parts for split in _split([*rest[0], part, *rest[1]])]
    return [alternative]


def _mismatches(problems: list[Problem]) -> int:
    """How many problems say the instance is of another kind (a wrong branch, likely)."""
    kinds = ("type narrowed", "only ", "enum value ", "value ")
    return sum(1 for _, reason in problems if reason.startswith(kinds))


def _default_change(old: Any, new: Any, path: str) -> list[Problem]:
    if not (
        isinstance(old, dict) and isinstance(new, dict) and "default" in old and "default" in new
    ):
        return []
    if canon(old["default"]) == canon(new["default"]):
        return []
    was, now = canon(old["default"]), canon(new["default"])
    return [(path, f"default changed from {was} to {now}: old messages would read differently")]


def _property(node: dict[str, Any], name: str, old: bool) -> Any:
    """The schema a property's value meets: None on the old side if it is never sent."""
    schemas = [node["properties"][name]] if name in node.get("properties", {}) else []
    schemas += [s for p, s in node.get("patternProperties", {}).items() if _matches(p, name)]
    if schemas:
        return schemas[0] if len(schemas) == 1 else {"allOf": schemas}
    extra = node.get("additionalProperties")
    if old:
        return None if extra is None or extra is False else extra
    return True if extra is None else extra


def _matches(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return True  # assume the worst: the pattern applies


def _item(node: dict[str, Any], i: int) -> Any:
    prefix = node.get("prefixItems", ())
    return prefix[i] if i < len(prefix) else node.get("items", True)


def _exclusive(alternatives: list[list[Any]]) -> bool:
    """Whether no value can match two of the alternatives (by type, or by a const property)."""
    return all(_disjoint(a, b) for i, a in enumerate(alternatives) for b in alternatives[i + 1 :])


def _disjoint(a: list[Any], b: list[Any]) -> bool:
    if not types_overlap(_merge(a), b):
        return True
    a_merged, b_merged = _merge(a)[0], _merge(b)[0]
    for name in set(a_merged.get("required", ())) & set(b_merged.get("required", ())):
        a_values = finite_values(a_merged.get("properties", {}).get(name, {}))
        b_values = finite_values(b_merged.get("properties", {}).get(name, {}))
        if (
            a_values is not None
            and b_values is not None
            and not ({canon(v) for v in a_values} & {canon(v) for v in b_values})
        ):
            return True
    return False


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
