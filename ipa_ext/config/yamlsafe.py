"""The one YAML loader for everything ipa-ext reads: configs, pipelines, YAML profiles,
IPA configs and ``KEY=VALUE`` option values.

It is PyYAML's safe loader with bounds, so a small hostile file cannot exhaust
memory or time: at most :data:`MAX_BYTES` of text, :data:`MAX_DEPTH` levels of
nesting (aliases included) and :data:`MAX_ALIAS_NODES` nodes added by aliases.
Timestamps stay strings. Every problem is a one-line :class:`~ipa_ext.errors.InputError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from ..errors import InputError, ProfileError
from .show import clip, shown

MAX_BYTES = 16 * 1024 * 1024
"""The largest YAML input read (16 MiB): far above any real config or profile table."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and lists, counting what aliases bring in."""
MAX_ALIAS_NODES = 100_000
"""How many nodes aliases may add to a document when expanded (an alias "bomb" adds billions)."""
MAX_INT_DIGITS = 1000
"""The longest integer literal read (Python refuses to convert beyond 4300 digits)."""


class YamlLimitError(InputError):
    """A YAML input over one of the loader's bounds (size, depth, alias expansion)."""


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader with a nesting bound, no timestamps, and (optionally) unique keys."""

    unique_keys = True

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:  # type: ignore[override]
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception:  # noqa: BLE001 - PyYAML's constructors raise assorted built-in errors
            tag = str(node.tag).rsplit(":", 1)[-1]  # on malformed tagged values (!!int "", !!bool x)
            raise ConstructorError(None, None, f"not a valid {tag}: {shown(node.value)}",
                                   node.start_mark) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *base": the base class merges; this file's own keys override
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise ConstructorError(None, None, "a key must be a scalar (a name or a number)",
                                       key_node.start_mark) from None
            if self.unique_keys and key in seen:
                raise ConstructorError(None, None, f"duplicate key {shown(key)}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Node) -> int:  # type: ignore[override]
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise ConstructorError(None, None, f"an integer of {digits} digits is too long",
                                   node.start_mark)
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)
_BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


class _LastKeyWinsLoader(_BoundedLoader):
    unique_keys = False


def _check_expansion(root: Node, path: Path | None) -> None:
    """Refuse a node graph whose expansion is too deep, too large or recursive (post-order,
    each node once, so a billion-node expansion costs nothing to measure)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids = _children(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            continue
        if key in size:
            continue
        if key in on_path:
            raise YamlLimitError(f"a recursive alias (at line {node.start_mark.line + 1})", path=path)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)
    if depth[id(root)] > MAX_DEPTH:
        raise YamlLimitError(f"aliases nest it deeper than {MAX_DEPTH} levels", path=path)
    added = size[id(root)] - len(size)
    if added > MAX_ALIAS_NODES:
        raise YamlLimitError(
            f"aliases expand it by {added} nodes (at most {MAX_ALIAS_NODES}; an alias bomb?)", path=path
        )


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_text(
    text: str,
    *,
    path: str | Path | None = None,
    error: type[InputError] = ProfileError,
    unique_keys: bool = True,
) -> Any:
    """Parse YAML text within the bounds; problems are ``error`` naming ``path`` and the line."""
    p = Path(path) if path is not None else None
    if len(text) > MAX_BYTES:
        raise YamlLimitError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB", path=p)
    loader = None
    try:
        loader = (_BoundedLoader if unique_keys else _LastKeyWinsLoader)(text)  # checks characters
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, p)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        if isinstance(exc, yaml.reader.ReaderError):
            where, problem = f"character {exc.position + 1}", f"unacceptable character #x{exc.character:04x}"
        else:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"malformed YAML: {clip(problem, 200)}", path=p, where=where) from None
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as exc:  # a deferred constructor's
        raise error(f"malformed YAML: {clip(str(exc), 200)}", path=p) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_file(
    path: str | Path, error: type[InputError] = ProfileError, *, unique_keys: bool = True
) -> Any:
    """Read a YAML file, turning I/O, syntax and bound problems into one-line errors.

    Repeated mapping keys are an error unless ``unique_keys`` is False (upstream
    IPA configs repeat some keys and rely on the last one winning).
    """
    p = Path(path)
    text = read_text(p, error, too_large=YamlLimitError)
    return load_text(text, path=p, error=error, unique_keys=unique_keys)


def check_name(path: Path, error: type[InputError], what: str = "file") -> None:
    """A file name with a NUL character (which the OS refuses, as Python's ValueError) is one ``error``,
    the name shown escaped."""
    if "\0" in str(path):
        raise error(f"{what} name holds a NUL character, which no file name can",
                    path=Path(str(path).replace("\0", "\\0")))


def read_text(
    path: str | Path,
    error: type[InputError],
    *,
    what: str = "file",
    limit: int = MAX_BYTES,
    too_large: type[InputError] | None = None,
) -> str:
    """A UTF-8 text file of at most ``limit`` bytes (the rest is never read).

    A missing, unreadable, too large or non-UTF-8 file is one ``error`` (``too_large``
    for the size, when given) naming the file and ``what`` it is.
    """
    p = Path(path)
    check_name(p, error, what)
    try:
        with p.open("rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{what} not found", path=p) from None
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}", path=p) from None
    if len(raw) > limit:
        size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
        raise (too_large or error)(f"{what} larger than {size}", path=p)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text (byte {exc.start})", path=p) from None


def parse_value(text: str, *, where: str) -> Any:
    """A ``KEY=VALUE`` option value: YAML when it parses (``0.5``, ``[a, b]``), the text
    itself otherwise; over the loader's bounds it is an error naming ``where``."""
    if text == "":
        return ""
    try:
        return load_text(text, error=InputError)
    except YamlLimitError as exc:
        raise InputError(exc.detail, where=where) from None
    except InputError:
        return text
