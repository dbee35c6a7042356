"""A small read-only model of the Terraform under ``infra/``, parsed with python-hcl2.

python-hcl2 (8.x) keeps the source form of values: strings keep their quotes (``'"Enabled"'``),
expressions are wrapped in ``${...}``, and a function call such as ``jsonencode({...})`` stays one
expression string. The helpers here undo that: :func:`text` unquotes a literal,
:func:`decode_call` parses the argument of ``jsonencode(...)`` back into Python values, and
:func:`references` finds the ``var.x`` / ``aws_s3_bucket.name`` references an expression makes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"

_META_KEYS = frozenset(
    {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}
)
_TRAVERSAL = r"(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[[^\]]*\])*"


def text(value: Any) -> str:
    """The text of a literal or an expression: ``'"Enabled"'`` -> ``Enabled``, ``'${var.x}'`` -> ``var.x``."""
    if not isinstance(value, str):
        return str(value)
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return value[1:-1].replace('\\"', '"')
    if value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return value


def is_literal(value: Any, expected: str) -> bool:
    return isinstance(value, str) and value == f'"{expected}"'


def strip_meta(value: Any) -> Any:
    """A parsed value without python-hcl2's markers and comments."""
    if isinstance(value, Mapping):
        return {text(key): strip_meta(item) for key, item in value.items() if key not in _META_KEYS}
    if isinstance(value, list):
        return [strip_meta(item) for item in value]
    return value


def parse_expression(source: str) -> Any:
    """Parse one HCL expression (an object, a tuple, a literal) into Python values."""
    return strip_meta(hcl2.loads(f"value = {source}\n")["value"])


def decode_call(value: Any, function: str = "jsonencode") -> Any | None:
    """The argument of ``function(...)`` when ``value`` is exactly that call, parsed; else None."""
    if not isinstance(value, str):
        return None
    expression = text(value)
    prefix = f"{function}("
    if not (value.startswith("${") and expression.startswith(prefix) and expression.endswith(")")):
        return None
    return parse_expression(expression[len(prefix) : -1])


def walk_strings(value: Any) -> Iterator[str]:
    """Every string (values and keys) inside a parsed value, comments excluded."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _META_KEYS:
                continue
            yield str(key)
            yield from walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_strings(item)
    elif isinstance(value, str):
        yield value


def references(value: Any, prefix: str) -> set[str]:
    """Full references starting with ``prefix`` (``"var"``, ``"aws_s3_bucket"``, ``"module"``...).

    ``references(x, "var")`` -> ``{"var.kms_key_arn", ...}``; traversals such as ``[each.key]`` and
    attribute names are kept, so ``"aws_s3_bucket.zone[each.key].id"`` is one reference.
    """
    pattern = re.compile(rf"(?<![A-Za-z0-9_.\-]){re.escape(prefix)}\.[A-Za-z_][A-Za-z0-9_-]*{_TRAVERSAL}")
    return {match.group(0) for string in walk_strings(value) for match in pattern.finditer(string)}


def names(value: Any, prefix: str) -> set[str]:
    """The names referenced after ``prefix``: ``names(x, "var")`` -> ``{"kms_key_arn", ...}``."""
    pattern = re.compile(rf"(?<![A-Za-z0-9_.\-]){re.escape(prefix)}\.([A-Za-z_][A-Za-z0-9_-]*)")
    return {match.group(1) for string in walk_strings(value) for match in pattern.finditer(string)}


def blocks_of(body: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """Nested blocks ``name { ... }`` of a block body (python-hcl2 gives a list, or one dict)."""
    found = body.get(name, [])
    return [found] if isinstance(found, dict) else list(found)


def block(body: Mapping[str, Any], *path: str) -> dict[str, Any]:
    """The single nested block at ``path`` (e.g. ``"rule", "apply_server_side_encryption_by_default"``)."""
    current: Mapping[str, Any] = body
    for name in path:
        found = blocks_of(current, name)
        assert len(found) == 1, f"expected one {name!r} block, found {len(found)}"
        current = found[0]
    return dict(current)


@dataclass(frozen=True)
class Block:
    """A top-level block: ``resource "type" "name"``, ``data``, ``variable``, ``output``, ``module``,
    ``provider`` or ``terraform``."""

    kind: str
    type: str
    name: str
    body: dict[str, Any]
    file: Path

    @property
    def address(self) -> str:
        parts = {"resource": [self.type, self.name], "data": ["data", self.type, self.name]}
        return ".".join(parts.get(self.kind, [self.kind, self.name]))

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)


@dataclass
class Module:
    """All ``.tf`` files of one directory."""

    path: Path
    blocks: list[Block] = field(default_factory=list)
    locals: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path.relative_to(INFRA_DIR)) if self.path != INFRA_DIR else "infra (root)"

    def _of(self, kind: str, type_: str = "") -> dict[str, Block]:
        return {b.name: b for b in self.blocks if b.kind == kind and (not type_ or b.type == type_)}

    def resources(self, type_: str) -> dict[str, Block]:
        return self._of("resource", type_)

    def all_resources(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "resource"]

    def data(self, type_: str) -> dict[str, Block]:
        return self._of("data", type_)

    @property
    def variables(self) -> dict[str, Block]:
        return self._of("variable")

    @property
    def outputs(self) -> dict[str, Block]:
        return self._of("output")

    @property
    def module_calls(self) -> dict[str, Block]:
        return self._of("module")

    def body_values(self) -> list[Any]:
        """Everything an expression can appear in: block bodies and locals."""
        return [b.body for b in self.blocks] + [self.locals]


def _load_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle)


@cache
def load_module(path: Path) -> Module:
    module = Module(path)
    for file in sorted(path.glob("*.tf")):
        parsed = _load_file(file)
        for kind in ("resource", "data"):
            for entry in parsed.get(kind, []):
                for type_, named in entry.items():
                    for name, body in named.items():
                        module.blocks.append(Block(kind, text(type_), text(name), body, file))
        for kind in ("variable", "output", "module", "provider"):
            for entry in parsed.get(kind, []):
                for name, body in entry.items():
                    module.blocks.append(Block(kind, "", text(name), body, file))
        for entry in parsed.get("terraform", []):
            module.blocks.append(Block("terraform", "", "terraform", entry, file))
        for entry in parsed.get("locals", []):
            module.locals.update({key: value for key, value in entry.items() if key not in _META_KEYS})
    return module


@cache
def all_modules() -> tuple[Module, ...]:
    """The root module and every module under ``infra/modules``."""
    directories = [INFRA_DIR, *sorted(p for p in (INFRA_DIR / "modules").iterdir() if p.is_dir())]
    return tuple(load_module(directory) for directory in directories)


def root_module() -> Module:
    return load_module(INFRA_DIR)


def child_module(name: str) -> Module:
    """The module that the root module calls ``name`` (its ``source`` directory)."""
    call = root_module().module_calls[name]
    return load_module((INFRA_DIR / text(call.get("source"))).resolve())


def module_output_source(call_name: str, output: str) -> str:
    """The expression behind ``module.<call_name>.<output>``."""
    return text(child_module(call_name).outputs[output].get("value"))


# ---------------------------------------------------------------------------------------------
# IAM policy statements, from aws_iam_policy_document data sources and jsonencode'd documents
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    source: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    principals: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _document_statements(source: str, body: Mapping[str, Any]) -> Iterator[Statement]:
    plain = blocks_of(body, "statement")
    dynamic = [
        content
        for entry in blocks_of(body, "dynamic")
        for label, dynamic_block in entry.items()
        if text(label) == "statement"
        for content in blocks_of(dynamic_block, "content")
    ]
    for statement in plain + dynamic:
        yield Statement(
            source=source,
            effect=text(statement.get("effect", '"Allow"')),
            actions=tuple(text(a) for a in _listify(statement.get("actions"))),
            resources=tuple(text(r) for r in _listify(statement.get("resources"))),
            conditions=tuple(
                (
                    text(c.get("test")),
                    text(c.get("variable")),
                    tuple(text(v) for v in _listify(c.get("values"))),
                )
                for c in blocks_of(statement, "condition")
            ),
            principals=tuple(
                (text(p.get("type")), tuple(text(i) for i in _listify(p.get("identifiers"))))
                for p in blocks_of(statement, "principals")
            ),
        )


def _json_statements(source: str, document: Mapping[str, Any]) -> Iterator[Statement]:
    for statement in _listify(document.get("Statement")):
        yield Statement(
            source=source,
            effect=text(statement.get("Effect", '"Allow"')),
            actions=tuple(text(a) for a in _listify(statement.get("Action"))),
            resources=tuple(text(r) for r in _listify(statement.get("Resource"))),
        )


POLICY_ATTRIBUTES = ("policy", "assume_role_policy")


def policy_statements() -> list[Statement]:
    """Every IAM statement written in infra/: policy-document data sources and inline JSON documents."""
    found: list[Statement] = []
    for module in all_modules():
        for document in module.data("aws_iam_policy_document").values():
            found.extend(_document_statements(f"{module.name}: {document.address}", document.body))
        for resource in module.all_resources():
            for attribute in POLICY_ATTRIBUTES:
                decoded = decode_call(resource.get(attribute))
                if isinstance(decoded, Mapping):
                    found.extend(_json_statements(f"{module.name}: {resource.address}.{attribute}", decoded))
    return found


def key_policy_documents() -> set[str]:
    """Addresses (``module: data.aws_iam_policy_document.x``) of the documents used as KMS key policies."""
    documents: set[str] = set()
    for module in all_modules():
        for key in module.resources("aws_kms_key").values():
            for name in names(key.get("policy"), "data.aws_iam_policy_document"):
                documents.add(f"{module.name}: data.aws_iam_policy_document.{name}")
    return documents
