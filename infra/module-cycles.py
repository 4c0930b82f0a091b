#!/usr/bin/env python3
"""Lists cycles between the modules of `shared` (its top-level modules, and the modules of
`shared/src/domain` among themselves) from their `crate::`/`super::` paths outside comments and
test modules. Exits 1 when there is one. Usage: infra/module-cycles.py (from the repository root)."""
import os
import re
import sys


def modules(root):
    mods = {}
    for f in sorted(os.listdir(root)):
        path = os.path.join(root, f)
        if f in ("lib.rs", "mod.rs") or not (f.endswith(".rs") or os.path.isdir(path)):
            continue
        name = f[:-3] if f.endswith(".rs") else f
        mods[name] = [path] if f.endswith(".rs") else [
            os.path.join(d, x) for d, _, fs in os.walk(path) for x in fs if x.endswith(".rs")]
    return mods


def code(path):
    src = re.split(r"#\[cfg\(test\)\]\s*mod tests", open(path).read())[0]
    return "\n".join(l for l in src.split("\n") if not l.strip().startswith("//"))


def edges(mods, prefix):
    out = {m: set() for m in mods}
    for m, files in mods.items():
        for p in files:
            src = code(p)
            names = re.findall(prefix + r"(\w+)", src)
            for group in re.findall(prefix + r"\{([^}]*)\}", src):
                names += re.findall(r"(?:^|[,{\s])(\w+)", group)
            out[m] |= {n for n in names if n in out and n != m}
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
for label, root, prefix in [
    ("shared", "shared/src", r"crate::"),
    ("shared::domain", "shared/src/domain", r"(?:super|crate::domain)::"),
]:
    graph = edges(modules(root), prefix)
    for comp in cycles(graph):
        bad = True
        print(f"{label}: cycle between " + ", ".join(
            f"{m} -> {sorted(graph[m] & set(comp))}" for m in comp))
    print(f"{label}: {len(graph)} modules, {sum(map(len, graph.values()))} edges")
sys.exit(1 if bad else 0)
