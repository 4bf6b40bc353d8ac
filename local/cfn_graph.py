"""The dependency graph of a CloudFormation template, and the cycles CloudFormation refuses.

CloudFormation orders resources by what their properties refer to (Ref, Fn::GetAtt,
the ${X} and ${X.Attr} of Fn::Sub) and by DependsOn; a loop makes it refuse the
whole change set ("Circular dependency between resources"). cfn-lint finds such a
loop only in the template it is given, and it no longer runs the SAM transform: the
loops that the transform makes (an HTTP API's OpenAPI body naming the functions'
ARNs) are only seen in the translated template, which is what this reads.

    graph = dependencies(translated, conditions=evaluate_conditions(translated, values))
    find_cycle(graph)           # None, or ["A", "B", "A"]
    assert_acyclic(translated)  # raises CycleError naming the loop

Without `conditions`, both branches of every Fn::If count (conservative: a loop on
a branch that no deployment takes is still reported).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

# ${Name} or ${Name.Attr} in Fn::Sub; ${!Literal} is text, not a reference.
_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]+)\}")

Graph = dict[str, set[str]]


class CycleError(Exception):
    """The template's resources cannot be ordered: `cycle` is the loop, first = last."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__("circular dependency between resources: " + " -> ".join(cycle))
        self.cycle = cycle


def references(value: Any, conditions: Mapping[str, bool] | None = None) -> Iterator[str]:
    """Names (logical ids, parameters, pseudo parameters) that a piece of a template refers to.

    With `conditions`, only the taken branch of each Fn::If is followed.
    """
    if isinstance(value, list):
        for item in value:
            yield from references(item, conditions)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key == "Ref" and isinstance(item, str):
            yield item
        elif key == "Fn::GetAtt":
            target = item.split(".", 1)[0] if isinstance(item, str) else item[0]
            if isinstance(target, str):
                yield target
            else:  # Fn::GetAtt [!Ref X, Attr] is not valid CloudFormation, but be safe
                yield from references(target, conditions)
        elif key == "Fn::Sub":
            text, variables = (item, {}) if isinstance(item, str) else (item[0], item[1])
            if isinstance(text, str):
                for escaped, name in _SUB_VARIABLE.findall(text):
                    if not escaped and name not in variables:
                        yield name.split(".", 1)[0]
            yield from references(variables, conditions)
        elif key == "Fn::If" and isinstance(item, list) and len(item) == 3:
            name, when_true, when_false = item
            if conditions is None or name not in conditions:
                yield from references(when_true, conditions)
                yield from references(when_false, conditions)
            else:
                yield from references(when_true if conditions[name] else when_false, conditions)
        else:
            yield from references(item, conditions)


def evaluate_conditions(
    template: Mapping[str, Any], parameters: Mapping[str, Any]
) -> dict[str, bool]:
    """Every condition of the template, for these parameter values (defaults filled in).

    A parameter without a value makes the conditions that read it undecidable: they are
    left out, so that `dependencies` follows both branches of their Fn::If.
    """
    values: dict[str, str | list[str]] = {}
    for name, spec in template.get("Parameters", {}).items():
        given = parameters[name] if name in parameters else spec.get("Default")
        if given is None:
            continue
        kind = str(spec.get("Type", "String"))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            text = given if isinstance(given, str) else ",".join(map(str, given))
            values[name] = [part.strip() for part in text.split(",")] if text else []
        else:
            values[name] = str(given)
    declared: Mapping[str, Any] = template.get("Conditions", {})
    decided: dict[str, bool] = {}

    def value_of(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return values[arg]  # KeyError: not decidable here
            if key == "Fn::Join":
                parts = value_of(arg[1])
                return str(arg[0]).join(str(value_of(part)) for part in parts)
            if key == "Fn::Select":
                return value_of(arg[1])[int(value_of(arg[0]))]
            return truth(node)
        if isinstance(node, list):
            return [value_of(part) for part in node]
        return str(node)

    def truth(node: Any) -> bool:
        ((key, arg),) = node.items()
        if key == "Condition":
            return decide(str(arg))
        if key == "Fn::Equals":
            return bool(value_of(arg[0]) == value_of(arg[1]))
        if key == "Fn::Not":
            return not truth(arg[0])
        if key == "Fn::And":
            return all(truth(part) for part in arg)
        if key == "Fn::Or":
            return any(truth(part) for part in arg)
        raise LookupError(key)

    def decide(name: str) -> bool:
        if name not in decided:
            decided[name] = truth(declared[name])
        return decided[name]

    known: dict[str, bool] = {}
    for name in declared:
        try:
            known[name] = decide(name)
        except (LookupError, KeyError, TypeError, ValueError, IndexError):
            continue
    return known


def dependencies(
    template: Mapping[str, Any], conditions: Mapping[str, bool] | None = None
) -> Graph:
    """Logical id -> the resources it must come after (Ref, GetAtt, Sub, DependsOn).

    With `conditions`, resources whose Condition is false are left out and only the
    taken branch of each Fn::If counts; without, every resource and branch counts.
    """
    resources: Mapping[str, Any] = template.get("Resources", {})

    def present(resource: Mapping[str, Any]) -> bool:
        name = resource.get("Condition")
        return conditions is None or name is None or conditions.get(name, True)

    wanted = {logical_id for logical_id, res in resources.items() if present(res)}
    graph: Graph = {}
    for logical_id in wanted:
        resource = resources[logical_id]
        depends = resource.get("DependsOn", [])
        found = set([depends] if isinstance(depends, str) else depends)
        # Everything but the resource's own attributes of ordering (Condition, DeletionPolicy).
        body = {key: value for key, value in resource.items() if key not in ("DependsOn", "Type")}
        found.update(references(body, conditions))
        graph[logical_id] = {name for name in found if name in wanted and name != logical_id}
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One loop of the graph as [A, B, ..., A] (A depends on B ... on A), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        # Iterative depth-first search: `path` is the current chain, `on_path` its members.
        path: list[str] = [start]
        on_path = {start}
        pending: list[Iterator[str]] = [iter(sorted(graph.get(start, ())))]
        while pending:
            following = next(pending[-1], None)
            if following is None:
                pending.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if following in on_path:
                return [*path[path.index(following) :], following]
            if following in done:
                continue
            path.append(following)
            on_path.add(following)
            pending.append(iter(sorted(graph.get(following, ()))))
    return None


def assert_acyclic(
    template: Mapping[str, Any], conditions: Mapping[str, bool] | None = None
) -> None:
    """Raise CycleError naming the loop if CloudFormation could not order the resources."""
    cycle = find_cycle(dependencies(template, conditions))
    if cycle is not None:
        raise CycleError(cycle)


def resolve_conditions(value: Any, conditions: Mapping[str, bool]) -> Any:
    """`value` with each decidable Fn::If replaced by its taken branch, and the
    AWS::NoValue it may leave dropped (from lists and mappings, as CloudFormation does)."""
    if isinstance(value, list):
        chosen = [resolve_conditions(item, conditions) for item in value]
        return [item for item in chosen if not _no_value(item)]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"} and isinstance(value["Fn::If"], list):
        name, when_true, when_false = value["Fn::If"]
        if name in conditions:
            return resolve_conditions(when_true if conditions[name] else when_false, conditions)
    resolved = {key: resolve_conditions(item, conditions) for key, item in value.items()}
    return {key: item for key, item in resolved.items() if not _no_value(item)}


def _no_value(value: Any) -> bool:
    return isinstance(value, dict) and value == {"Ref": "AWS::NoValue"}
