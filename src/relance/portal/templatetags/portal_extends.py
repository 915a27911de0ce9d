"""``{% extends "literal" %}`` for the portal's engine: the parent template and its blocks found once.

A built-in of the portal's template engine only (settings ``TEMPLATES``, ``NAME`` "portal",
``builtins``), so that it replaces Django's ``extends`` before any ``{% load %}``. Django's
``ExtendsNode`` looks its parent template up again on every render and walks the parent's whole node
tree for its ``{% block %}``s each time. For a parent named by a literal (every portal page extends
``portal/_layout.html``), both are the same on every render for as long as this compiled template lives
— it lives in the same cached loader as its parent and is dropped with it — so this node keeps them.
Anything else (a parent named by a variable, or by a Template object) is Django's node, unchanged. The
output is Django's: tested on every portal page (tests/portal/test_portal_layout.py).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.template.base import Parser, TextNode, Token
from django.template.context import Context
from django.template.loader_tags import BLOCK_CONTEXT_KEY, BlockContext, BlockNode, ExtendsNode, do_extends
from django.utils.safestring import SafeString

register = template.Library()


class FixedExtendsNode(ExtendsNode):
    """Django's ``ExtendsNode`` for a literal parent name, the parent and its blocks kept after the first render."""

    def __init__(self, node: ExtendsNode) -> None:
        super().__init__(node.nodelist, node.parent_name, node.template_dirs)  # the parser sets token, origin
        self._found: tuple[Any, Any, dict[str, Any] | None] | None = None

    def _parent(self, context: Context) -> tuple[Any, dict[str, Any] | None]:
        engine = context.template.engine  # type: ignore[union-attr]
        found = self._found
        if found is None or found[0] is not engine:
            parent: Any = self.get_parent(context)
            blocks = None
            for node in parent.nodelist:  # as ExtendsNode.render: the root's blocks join the block context
                if not isinstance(node, TextNode):
                    if not isinstance(node, ExtendsNode):
                        blocks = {n.name: n for n in parent.nodelist.get_nodes_by_type(BlockNode)}
                    break
            found = (engine, parent, blocks)
            self._found = found
        return found[1], found[2]

    def render(self, context: Context) -> SafeString:
        compiled_parent, parent_blocks = self._parent(context)
        if BLOCK_CONTEXT_KEY not in context.render_context:
            context.render_context[BLOCK_CONTEXT_KEY] = BlockContext()
        block_context = context.render_context[BLOCK_CONTEXT_KEY]
        block_context.add_blocks(self.blocks)
        if parent_blocks is not None:
            block_context.add_blocks(parent_blocks)
        with context.render_context.push_state(compiled_parent, isolated_context=False):
            return compiled_parent._render(context)


@register.tag("extends")
def extends(parser: Parser, token: Token) -> Any:
    node = do_extends(parser, token)
    parent: Any = node.parent_name
    literal = not parent.filters and isinstance(parent.var, str)  # "…", not a variable
    return FixedExtendsNode(node) if literal else node
