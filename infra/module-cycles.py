#!/usr/bin/env python3
"""Lists cycles between sibling modules in every crate of the workspace: for each folder of a
crate's `src/` (the crate root included), the modules it holds and which of them name which,
through `crate::`, `super::` or `self::` paths outside comments and test modules. Exits 1 when
there is one. Usage: infra/module-cycles.py (from the repository root)."""
import glob
import os
import re
import sys

CRATES = ["domain/src", "shared/src", "cli/src", "test-support/src", "bench/src", "tests/src"] + sorted(
    glob.glob("functions/*/src"))
ROOT_FILES = ("lib.rs", "main.rs", "mod.rs")


def module_path(src, path):
    """The module path of a file, as a list of names (the crate root is [])."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main", "mod"):
        rel = rel[:-1]
    return rel


def code(path):
    src = re.split(r"#\[cfg\(test\)\]\s*mod tests", open(path).read())[0]
    return "\n".join(l for l in src.split("\n") if not l.strip().startswith("//"))


PATH = re.compile(r"\b((?:crate|self|super)(?:::super)*)::((?:\w+::)*)(\w+|\{[^}]*\})")


def references(here, text):
    """Absolute module paths (lists) a file's code names."""
    out = []
    for start, middle, last in PATH.findall(text):
        parts = start.split("::")
        if parts[0] == "crate":
            base = []
        else:
            base = list(here)
            for p in parts:
                if p == "super":
                    base = base[:-1]
        names = [n for n in middle.split("::") if n]
        if last.startswith("{"):
            for item in re.findall(r"(?:^|[,{\s])(\w+)", last):
                out.append(base + names + [item])
        else:
            out.append(base + names + [last])
    return out


def cycles(graph):
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


bad = False
for src in CRATES:
    if not os.path.isdir(src):
        continue
    files = [f for f in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True)]
    paths = {f: module_path(src, f) for f in files}
    folders = {}
    for f, mp in paths.items():
        # Every proper prefix of a module path is a folder holding the next name.
        for depth in range(len(mp)):
            folders.setdefault(tuple(mp[:depth]), set()).add(mp[depth])
    edges = {folder: {m: set() for m in mods} for folder, mods in folders.items()}
    for f, mp in paths.items():
        for ref in references(mp, code(f)):
            for folder, graph in edges.items():
                n = len(folder)
                if len(mp) > n and tuple(mp[:n]) == folder and len(ref) > n and tuple(ref[:n]) == folder:
                    a, b = mp[n], ref[n]
                    if a != b and b in graph:
                        graph[a].add(b)
    crate_edges = 0
    for folder, graph in sorted(edges.items()):
        label = "::".join([src] + list(folder))
        for comp in cycles(graph):
            bad = True
            print(f"{label}: cycle between " + ", ".join(
                f"{m} -> {sorted(graph[m] & set(comp))}" for m in comp))
        crate_edges += sum(map(len, graph.values()))
    print(f"{src}: {len(files)} files, {len(edges)} folders, {crate_edges} edges between siblings")
sys.exit(1 if bad else 0)
