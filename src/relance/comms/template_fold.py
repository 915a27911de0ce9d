"""Templates folded for a dispatch batch: the parts that only use batch-wide values rendered once.

In a batch, most of a message's template does not change from one message to the next: the creditor's
and the agency's names and addresses, the FR-COL-05 statement, the L111-8 paragraphs (FR-COL-07), the
Mode B branch. ``fold`` takes a compiled Django template and the batch-wide context (one creditor, one
language) and returns a template whose nodes that read only those variables are replaced by their
rendered text; every node that reads anything else (the case, the debtor, the amounts, the portal link,
the first letter's date…) stays as it is and is rendered per message, with the full context. So the
output is the one Django gives for the whole template (tested on every shipped template and on edited
ones), for less work per message.

Only a known set of nodes is folded or looked into — text, ``{{ variables }}`` with Django's built-in
filters (except ``random``), ``{% if %}``, ``{% for %}``, ``{% autoescape %}``, ``{% comment %}``,
``{% load %}`` and ``{% include "literal name" %}`` without ``with``/``only`` (inlined). A template using
anything else (``{% with %}``, ``{% cycle %}``, ``{% regroup %}``, ``{% now %}``, custom tags or
filters…) is not folded at all: ``fold`` returns ``None`` and the caller renders it as usual.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, TypeGuard, TypeVar, cast

from django.template import Context
from django.template.base import (
    FilterExpression,
    Node,
    NodeList,
    Template,
    TextNode,
    Variable,
    VariableDoesNotExist,
    VariableNode,
)
from django.template.defaultfilters import register as _builtin_filters
from django.template.defaulttags import AutoEscapeControlNode, CommentNode, ForNode, IfNode, LoadNode
from django.template.loader_tags import ExtendsNode, IncludeNode, construct_relative_path

# Built-in filters are functions of their input and arguments (and of the active language and time
# zone, which are the batch's); ``random`` is not.
_PURE_FILTERS = frozenset(f for name, f in _builtin_filters.filters.items() if name != "random")


_N = TypeVar("_N", bound=Node)


def _is(node: Node, kind: type[_N]) -> TypeGuard[_N]:
    """``node`` is exactly a ``kind`` (a subclass may render differently: not looked into)."""
    return type(node) is kind


class _NotFoldable(Exception):  # noqa: N818 - a signal inside this module
    pass


def _fe_names(fe: Any) -> set[str]:
    """The top-level names a filter expression reads; raises ``_NotFoldable`` for a non-built-in filter."""
    if not isinstance(fe, FilterExpression):
        raise _NotFoldable
    names: set[str] = set()
    if isinstance(fe.var, Variable) and fe.var.lookups:
        names.add(fe.var.lookups[0])
    for func, args in fe.filters:
        if func not in _PURE_FILTERS:
            raise _NotFoldable
        for lookup, arg in args:
            if lookup and isinstance(arg, Variable) and arg.lookups:
                names.add(arg.lookups[0])
    return names


def _condition_names(condition: Any) -> set[str]:
    if condition is None:
        return set()
    if hasattr(condition, "value") and hasattr(condition, "text"):  # smartif's TemplateLiteral
        return _fe_names(condition.value)
    if not hasattr(condition, "first"):
        raise _NotFoldable
    return _condition_names(condition.first) | _condition_names(getattr(condition, "second", None))


class _Folder:
    def __init__(self, template: Template, static: dict[str, Any]) -> None:
        self.template = template
        self.static = static
        self.context = Context(static, autoescape=template.engine.autoescape)
        self.context.template = template
        self.included: dict[str, Template] = {}

    def _include(self, node: IncludeNode) -> Template:
        fe = node.template
        if not (
            isinstance(fe, FilterExpression)
            and isinstance(fe.var, str)
            and not fe.filters
            and not node.extra_context
            and not node.isolated_context
        ):
            raise _NotFoldable
        origin = node.origin.template_name
        name = construct_relative_path(origin if isinstance(origin, str) else None, fe.var)
        if name not in self.included:
            self.included[name] = self.template.engine.select_template([name])
        return self.included[name]

    def names(self, nodes: Iterable[Any]) -> set[str]:
        """The top-level names ``nodes`` read (loop variables excluded); ``_NotFoldable`` for other nodes."""
        found: set[str] = set()
        for node in nodes:
            if _is(node, TextNode) or _is(node, CommentNode) or _is(node, LoadNode):
                continue
            if _is(node, VariableNode):
                found |= _fe_names(node.filter_expression)
            elif _is(node, IfNode):
                for condition, nodelist in node.conditions_nodelists:
                    found |= _condition_names(condition) | self.names(nodelist)
            elif _is(node, ForNode):
                inner = self.names(node.nodelist_loop) - {*node.loopvars, "forloop"}
                found |= _fe_names(node.sequence) | inner | self.names(node.nodelist_empty)
            elif _is(node, AutoEscapeControlNode):
                found |= self.names(node.nodelist)
            elif _is(node, IncludeNode):
                found |= self.names(self._include(node).nodelist)
            else:
                raise _NotFoldable
        return found

    def fold(self, nodes: Iterable[Any], *, shadowed: frozenset[str], autoescape: bool) -> NodeList:
        out = NodeList()
        for node in nodes:
            for folded in self._fold_node(node, shadowed=shadowed, autoescape=autoescape):
                if type(folded) is TextNode and out and type(out[-1]) is TextNode:
                    out[-1] = TextNode(out[-1].s + folded.s)
                else:
                    out.append(folded)
        return out

    def _static(self, names: set[str], shadowed: frozenset[str]) -> bool:
        return not (names & shadowed) and names <= self.static.keys()

    def _render_once(self, node: Node, autoescape: bool) -> list[Node] | None:
        self.context.autoescape = autoescape
        try:
            return [TextNode(str(node.render_annotated(self.context)))]
        except Exception:
            return None

    def _fold_node(self, node: Node, *, shadowed: frozenset[str], autoescape: bool) -> list[Node]:
        if _is(node, TextNode):
            return [node]
        if _is(node, CommentNode) or _is(node, LoadNode):
            return [TextNode(str(node.render(self.context)))]
        if self._static(self.names([node]), shadowed):
            rendered = self._render_once(node, autoescape)
            if rendered is not None:
                return rendered
        if _is(node, IfNode):
            branches: list[tuple[Any, NodeList]] = []
            for condition, nodelist in node.conditions_nodelists:
                if not branches and condition is not None and self._static(_condition_names(condition), shadowed):
                    try:
                        matched = condition.eval(cast(Any, self.context))
                    except VariableDoesNotExist:  # as IfNode.render: no match
                        matched = None
                    except Exception:
                        return [node]
                    if not matched:
                        continue  # this branch is never taken in this batch
                    return list(self.fold(nodelist, shadowed=shadowed, autoescape=autoescape))
                if not branches and condition is None:  # every earlier branch was statically false
                    return list(self.fold(nodelist, shadowed=shadowed, autoescape=autoescape))
                branches.append((condition, self.fold(nodelist, shadowed=shadowed, autoescape=autoescape)))
            return [IfNode(branches)] if branches else []
        if _is(node, ForNode):
            inner = shadowed | {*node.loopvars, "forloop"}
            folded = copy.copy(node)
            folded.nodelist_loop = self.fold(node.nodelist_loop, shadowed=frozenset(inner), autoescape=autoescape)
            folded.nodelist_empty = self.fold(node.nodelist_empty, shadowed=shadowed, autoescape=autoescape)
            return [folded]
        if _is(node, AutoEscapeControlNode):
            nodelist = self.fold(node.nodelist, shadowed=shadowed, autoescape=node.setting)
            return [AutoEscapeControlNode(node.setting, nodelist)]
        if _is(node, IncludeNode):
            # Rendered in the includer's context, as {% include %} without "with"/"only" does.
            return list(self.fold(self._include(node).nodelist, shadowed=shadowed, autoescape=autoescape))
        return [node]


def fold(template: Template, static: dict[str, Any]) -> Template | None:
    """``template`` with what only reads ``static``'s names rendered once; ``None`` when not foldable.

    Render the result with a context holding ``static`` and the per-message values, under the same
    language and time zone as when folding.
    """
    if any(isinstance(node, ExtendsNode) for node in template.nodelist):
        return None
    folder = _Folder(template, static)
    try:
        folder.names(template.nodelist)  # every node, includes too, is one this module knows
        nodelist = folder.fold(template.nodelist, shadowed=frozenset(), autoescape=template.engine.autoescape)
    except _NotFoldable:
        return None
    folded = copy.copy(template)
    folded.nodelist = nodelist
    return folded
