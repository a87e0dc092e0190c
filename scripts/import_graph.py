#!/usr/bin/env python3
"""The import graph of a module tree of this crate, and its cycles.

Why: a module tree whose files import each other in a circle cannot be read
(or changed) one file at a time; issue 25 asks the server's modules to form
a tree. `cargo modules` draws this graph but is not installed everywhere
and needs a nightly-matching rust-analyzer, so this script draws it from
the source: every `use crate::…`, `use super::…`, `use self::…` (trees
with braces expanded) and every inline path such as `super::stats::bump(`
is an edge from the file it is written in to the file of the module it
names. Test modules (`#[cfg(test)] mod … { … }`) and comments are left
out: tests may reach anywhere.

Usage: scripts/import_graph.py [--root src] [--strict] [--dot] [MODULE ...]
       scripts/import_graph.py --self-test
  MODULE is a module path such as `server` (default: `server` and
  `protocol`): the files of those trees are the graph's nodes; edges to
  files outside them are ignored. Exits 1 and names the files of every
  cycle (each strongly connected component of more than one file) if
  there is one; `--dot` prints the graph in Graphviz form instead.
"""

import argparse
import os
import re
import sys



def module_files(root):
    """Maps each module path (a tuple of names) to its file under `root`."""
    modules = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            parts = rel[: -len(".rs")].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            modules[tuple(parts)] = os.path.join(dirpath, name)
    return modules


def strip_comments(text):
    """Removes // and /* */ comments, keeping string literals intact."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_test_modules(text):
    """Removes every `#[cfg(test)] mod name { … }` block."""
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{")
    while True:
        m = pattern.search(text)
        if not m:
            return text
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[: m.start()] + text[i:]


def expand_use_tree(tree):
    """`a::{b, c::{d, self}}` -> ['a::b', 'a::c::d', 'a::c']."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)  # `x as y`: where x is, is what counts
    tree = re.sub(r"\s+", "", tree)
    depth, split_at = 0, None
    for i, c in enumerate(tree):
        if c == "{":
            if depth == 0:
                split_at = i
                break
            depth += 1
    if split_at is None:
        return [tree[:-6] if tree.endswith("::self") else tree]
    prefix, inner = tree[:split_at], tree[split_at + 1 : tree.rindex("}")]
    parts, depth, start = [], 0, 0
    for i, c in enumerate(inner + ","):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            if inner[start:i]:
                parts.append(inner[start:i])
            start = i + 1
    paths = []
    for part in parts:
        if part == "self":
            paths.append(prefix.rstrip(":"))
        else:
            paths.extend(expand_use_tree(prefix + part))
    return paths


def reexports_in(text, module):
    """`pub use a::b::C;` in `module`: {'C': absolute path of C}."""
    exported = {}
    for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
        for path in expand_use_tree(m.group(1)):
            rooted = path if re.match(r"(crate|super|self)\b", path) else "self::" + path
            exported[path.split("::")[-1]] = resolve(rooted, module, False)
    return exported


def paths_in(text):
    """Every path a file names that starts at crate, super, self or one of
    the file's own child modules (`mod reactor;` then `reactor::spawn`),
    the latter written as `self::…`."""
    children = set(re.findall(r"\bmod\s+(\w+)\s*;", text))
    starts = r"crate|super|self" + "".join("|" + re.escape(c) for c in sorted(children))
    inline = re.compile(r"(?<![\w:])(" + starts + r")((?:\s*::\s*(?:\w+|\{))+)")
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand_use_tree(m.group(1)))
    without_uses = re.sub(r"\buse\s+[^;]+;", "", text)
    for m in inline.finditer(without_uses):
        paths.append(re.sub(r"\s+", "", m.group(0)).rstrip(":{"))
    rooted = []
    for path in paths:
        first = path.split("::")[0]
        if first in ("crate", "super", "self"):
            rooted.append(path)
        elif first in children:
            rooted.append("self::" + path)
    return rooted


def resolve(path, here, is_dir_module):
    """The absolute module path (tuple) `path` names, written in module `here`."""
    names = path.split("::")
    if names[0] == "crate":
        base, names = (), names[1:]
    else:
        base = here
        while names and names[0] in ("self", "super"):
            if names[0] == "super":
                base = base[:-1]
            names = names[1:]
    del is_dir_module  # `super` means the parent module for foo.rs and foo/mod.rs alike
    return base + tuple(names)


def home(path, modules, reexports):
    """The module file where the item `path` (absolute) is defined: the
    longest prefix that is a module, following `pub use` re-exports."""
    for _ in range(16):  # re-exports of re-exports, but never a loop
        target = path
        while target and target not in modules:
            target = target[:-1]
        rest = path[len(target) :]
        moved = reexports.get(target, {}).get(rest[0]) if rest else None
        if moved is None or moved == path[: len(target) + 1]:
            return target
        path = moved + rest[1:]
    return target


def build_graph(root, trees, strict):
    modules = module_files(root)
    texts = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            texts[module] = strip_test_modules(strip_comments(f.read()))
    reexports = {m: reexports_in(t, m) for m, t in texts.items()}
    nodes = {m: f for m, f in modules.items() if any(m[: len(t)] == t for t in trees)}
    edges = {m: set() for m in nodes}
    for module, path in nodes.items():
        for named in paths_in(texts[module]):
            target = home(resolve(named, module, False), modules, reexports)
            ancestor = module[: len(target)] == target
            if target in nodes and target != module and (strict or not ancestor):
                edges[module].add(target)
    return nodes, edges


def cycles(edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def self_test():
    """The checker on small trees whose answer is known: a cycle through a
    `use super::`, an inline path and a re-export must be found; the same
    tree without the closing edge, and a child using its parent, must pass."""
    import tempfile

    def check(files, strict=False):
        with tempfile.TemporaryDirectory() as root:
            for name, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
                with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                    f.write(text)
            return cycles(build_graph(root, [("server",)], strict)[1])

    tree = {
        "server/mod.rs": "mod a; mod b; mod c; pub(crate) use c::Thing;",
        "server/a.rs": "use super::b::{self, B};\nfn f() { b::go() }",
        "server/b.rs": "fn g() { crate::server::Thing::new(); }",
        "server/c.rs": "use super::a::A; // the closing edge\npub struct Thing;",
    }
    found = check(tree)
    assert found == [[("server", "a"), ("server", "b"), ("server", "c")]], found
    tree["server/c.rs"] = "pub struct Thing;\n#[cfg(test)]\nmod tests { use super::super::a::A; }"
    assert check(tree) == [], "a test module's use is not an edge"
    tree["server/mod.rs"] = "mod a; mod b; mod c; pub struct Shared; fn run() { a::f() }"
    tree["server/a.rs"] = "use super::Shared; pub fn f() {}"
    assert check(tree) == [], "a child may use its parent"
    assert check(tree, strict=True) != [], "unless --strict"
    print("import_graph: self-test passed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="src", help="the crate's source root (default: src)")
    parser.add_argument("--dot", action="store_true", help="print the graph for Graphviz")
    parser.add_argument(
        "--strict", action="store_true", help="count a module's uses of its own ancestors too"
    )
    parser.add_argument("--self-test", action="store_true", help="check the checker and exit")
    parser.add_argument("modules", nargs="*", default=["server", "protocol"])
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    trees = [tuple(m.split("::")) for m in args.modules]
    nodes, edges = build_graph(args.root, trees, args.strict)
    if not nodes:
        sys.exit(f"import_graph: no module files under {args.root} for {args.modules}")
    name = lambda m: "::".join(m)
    if args.dot:
        print("digraph imports {")
        for v in sorted(edges):
            for w in sorted(edges[v]):
                print(f'  "{name(v)}" -> "{name(w)}";')
        print("}")
        return
    found = cycles(edges)
    count = sum(len(e) for e in edges.values())
    if not found:
        print(f"import_graph: {len(nodes)} modules of {', '.join(args.modules)}, {count} imports, no cycle")
        return
    for component in found:
        print(f"import cycle among {len(component)} modules:")
        for v in component:
            inside = sorted(name(w) for w in edges[v] if w in component)
            print(f"  {nodes[v]} -> {', '.join(inside)}")
    sys.exit(1)


if __name__ == "__main__":
    main()
