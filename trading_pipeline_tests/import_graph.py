"""The package's import graph read from the source (AST, nothing imported) and its rules.

``python -m trading_pipeline_tests.import_graph`` prints the violations and the in-function
import counts; ``--write-allow-list`` rewrites the allow-list of uncommented in-function imports
(run it after removing some, never to hide a new one).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "trading_pipeline"
ROOT = Path(__file__).resolve().parents[1]
ALLOW_LIST = Path(__file__).with_name("in_function_imports.txt")


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it sits and whether a comment says why."""

    module: str  # the importing module, dotted
    target: str  # the imported module, dotted (``from a import b``: ``a.b`` when b is a module)
    line: int
    function: str | None  # the enclosing function's qualified name; None at module level
    commented: bool  # a comment on the line, or just above the block of imports it opens

    @property
    def key(self) -> str:
        """Line-independent: ``module:function -> target``."""
        return f"{self.module}:{self.function} -> {self.target}"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, dotted: str) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _comment_lines(source: str) -> set[int]:
    """Lines with a comment (a ``#``; good enough for import lines, which hold no string
    literal, and the lines just above them)."""
    return {n for n, text in enumerate(source.splitlines(), start=1) if "#" in text}


_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


class _Walker:
    """Visits statements only (imports are statements), tracking the enclosing def/class."""

    def __init__(self, root: Path, module: str, is_package: bool, comments: set[int]):
        self.root, self.module, self.is_package = root, module, is_package
        self.with_hash = comments
        self.stack: list[str] = []
        self.found: list[Import] = []
        self.import_lines: set[int] = set()

    def walk(self, statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                self._add(node, [a.name for a in node.names])
            elif isinstance(node, ast.ImportFrom):
                self._add(node, self._from_targets(node))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.stack.append(node.name)
                self.walk(node.body)
                self.stack.pop()
            else:
                self._walk_children(node)

    def _walk_children(self, node: ast.AST) -> None:
        for field in _BODIES:
            for child in getattr(node, field, None) or []:
                if isinstance(child, ast.stmt):
                    self.walk([child])
                else:  # an except handler or a match case: its body holds statements
                    self.walk(getattr(child, "body", []))

    def _add(self, node: ast.stmt, targets: Iterable[str]) -> None:
        self.import_lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        function = ".".join(self.stack) if self.stack else None
        for target in targets:
            self.found.append(Import(self.module, target, node.lineno, function, False))

    def _from_targets(self, node: ast.ImportFrom) -> list[str]:
        base = node.module or ""
        if node.level:
            parts = self.module.split(".")
            keep = len(parts) - node.level + (1 if self.is_package else 0)
            base = ".".join(parts[:keep] + ([base] if base else []))
        targets = []
        for alias in node.names:
            sub = f"{base}.{alias.name}" if base else alias.name
            targets.append(sub if _is_module(self.root, sub) else base)
        return list(dict.fromkeys(targets))

    def finish(self) -> list[Import]:
        """Mark each import commented when its line, or the line above the block of import
        lines it belongs to, carries a comment."""
        out = []
        for imp in self.found:
            above = imp.line - 1
            while above in self.import_lines:  # walk up over the imports of the same block
                above -= 1
            # a comment on the line above counts even when it ends a line of code
            commented = imp.line in self.with_hash or above in self.with_hash
            out.append(Import(imp.module, imp.target, imp.line, imp.function, commented))
        return out


def imports(root: Path) -> list[Import]:
    """Every import under ``root/trading_pipeline`` (``root`` is the folder holding it)."""
    out: list[Import] = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        source = path.read_text()
        walker = _Walker(
            root, module_name(root, path), path.name == "__init__.py", _comment_lines(source)
        )
        walker.walk(ast.parse(source, filename=str(path)).body)
        out.extend(walker.finish())
    return out


# -- layers -----------------------------------------------------------------------------------
def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def is_internal(name: str) -> bool:
    return _under(name, PACKAGE)


def is_cli(name: str) -> bool:
    """The command line: ``trading_pipeline.cli`` (module or package), ``__main__`` and the old
    ``*cli*`` modules (``backtest.cli``, ``selector.select_cli``, ``ops_cli`` …)."""
    if not is_internal(name):
        return False
    last = name.rsplit(".", 1)[-1]
    return _under(name, f"{PACKAGE}.cli") or last == "__main__" or "cli" in last


def is_dagster_layer(name: str) -> bool:
    return _under(name, f"{PACKAGE}.defs") or name == f"{PACKAGE}.definitions"


def is_core(name: str) -> bool:
    return is_internal(name) and not is_cli(name) and not is_dagster_layer(name)


def _in(domain: str) -> Callable[[str], bool]:
    """A core module of ``trading_pipeline.<domain>`` (its CLI module is the CLI's)."""
    return lambda name: is_core(name) and _under(name, f"{PACKAGE}.{domain}")


@dataclass(frozen=True)
class Rule:
    """Modules matching ``source`` may not import modules matching ``forbidden``."""

    name: str
    source: Callable[[str], bool]
    forbidden: Callable[[str], bool]


def _dagster(name: str) -> bool:
    return name.split(".")[0] in ("dagster", "dagster_webserver", "dagster_postgres")


RULES: tuple[Rule, ...] = (
    Rule("core never imports dagster", is_core, _dagster),
    Rule("core never imports defs", is_core, is_dagster_layer),
    Rule("core never imports the CLI", is_core, is_cli),
    Rule("backtest never imports discovery", _in("backtest"), _in("discovery")),
    Rule("strategies never import backtest", _in("strategies"), _in("backtest")),
    Rule("selector never imports bots", _in("selector"), _in("bots")),
    Rule("bots never import selector", _in("bots"), _in("selector")),
)


@dataclass(frozen=True)
class Violation:
    rule: str
    imp: Import

    def __str__(self) -> str:
        return f"{self.rule}: {self.imp.module}:{self.imp.line} imports {self.imp.target}"


def violations(found: Iterable[Import], rules: Iterable[Rule] = RULES) -> list[Violation]:
    return [
        Violation(rule.name, imp)
        for imp in found
        for rule in rules
        if rule.source(imp.module) and rule.forbidden(imp.target)
    ]


# -- imports inside functions -----------------------------------------------------------------
def in_function(found: Iterable[Import]) -> list[Import]:
    """Internal (``trading_pipeline.*``) imports inside functions."""
    return [i for i in found if i.function is not None and is_internal(i.target)]


def read_allow_list(path: Path = ALLOW_LIST) -> set[str]:
    lines = path.read_text().splitlines() if path.is_file() else []
    return {s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")}


def unexplained(found: Iterable[Import], allowed: set[str]) -> list[Import]:
    """In-function internal imports with no comment saying why and not on the allow-list."""
    return [i for i in in_function(found) if not i.commented and i.key not in allowed]


def stale(found: Iterable[Import], allowed: set[str]) -> set[str]:
    """Allow-list entries that no longer match an uncommented in-function import."""
    return allowed - {i.key for i in in_function(found) if not i.commented}


def write_allow_list(found: Iterable[Import], path: Path = ALLOW_LIST) -> int:
    keys = sorted({i.key for i in in_function(found) if not i.commented})
    header = (
        "# In-function imports of trading_pipeline modules that carry no comment saying why.\n"
        "# Frozen list: a new one must say why on its line or the line above (e.g.\n"
        "# `# lazy: mlflow costs 2 s`), or be moved to the top. Shrink it; never grow it.\n"
        "# Regenerate after removals: python -m trading_pipeline_tests.import_graph "
        "--write-allow-list\n"
    )
    path.write_text(header + "".join(f"{k}\n" for k in keys))
    return len(keys)


def summary(found: list[Import], allowed: set[str]) -> dict[str, int]:
    internal = [i for i in found if is_internal(i.target)]
    inside = in_function(found)
    return {
        "internal_imports": len(internal),
        "in_function": len(inside),
        "in_function_commented": sum(i.commented for i in inside),
        "in_function_allow_listed": sum(not i.commented and i.key in allowed for i in inside),
        "allow_list_entries": len(allowed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-allow-list", action="store_true")
    args = parser.parse_args(argv)
    found = imports(ROOT)
    if args.write_allow_list:
        print(f"{write_allow_list(found)} entries written to {ALLOW_LIST}")
    allowed = read_allow_list()
    for v in violations(found):
        print(v)
    for i in unexplained(found, allowed):
        print(f"in-function import without a reason: {i.module}:{i.line} {i.key}")
    print(" ".join(f"{k}={v}" for k, v in summary(found, allowed).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
