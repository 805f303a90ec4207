#!/usr/bin/env python3
"""Prints the import graph between the daemon crate's top-level modules (src/<module>) and
the circles in it (strongly connected components of more than one module).

A module's imports are every `crate::<name>` path in its files (use declarations and inline
paths, not comments or test modules). It also checks the layer table of
docs/ARCHITECTURE.md: every module is in a layer, and imports only its layer or below.
Usage: python3 .ci/imports.py [--strict]  (--strict: exit 1 on a circle or a layer breach).
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src')


def module_of(path):
    rel = os.path.relpath(path, ROOT)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith('.rs') else first


def main():
    mods = set()
    edges = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith('.rs'):
                continue
            p = os.path.join(dirpath, f)
            m = module_of(p)
            if m in ('lib', 'main'):
                continue
            mods.add(m)
            text = open(p, encoding='utf-8').read()
            # Drop test modules: they may look anywhere.
            text = text.split('#[cfg(test)]')[0]
            # Drop comments: a doc may name any module.
            text = re.sub(r'//[^\n]*', '', text)
            for dep in re.findall(r'crate::([a-z_][a-z0-9_]*)', text):
                if dep != m:
                    edges.setdefault(m, set()).add(dep)
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in mods:
                continue
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
            sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(mods):
        if v not in index:
            visit(v)
    for m in sorted(mods):
        print(f"{m} -> {', '.join(sorted(d for d in edges.get(m, ()) if d in mods)) or '-'}")
    circles = [c for c in sccs if len(c) > 1]
    doc = open(os.path.join(ROOT, '..', 'docs', 'ARCHITECTURE.md'), encoding='utf-8').read()
    table = doc.split('<!-- layers:', 1)[1].split('\n\n', 1)[0] if '<!-- layers:' in doc else ''
    layer = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip('|').split('|')]
        if len(cells) >= 2 and cells[0].isdigit():
            for name in re.findall(r'`([a-z_]+)`', cells[1]):
                layer[name] = int(cells[0])
    breaches = [f"{m} is in no layer of docs/ARCHITECTURE.md" for m in sorted(mods) if m not in layer]
    for m in sorted(mods):
        for d in sorted(edges.get(m, ())):
            if d in mods and m in layer and d in layer and layer[d] > layer[m]:
                breaches.append(f"{m} (layer {layer[m]}) imports {d} (layer {layer[d]})")
    print()
    if circles:
        for c in circles:
            print('circle:', ' <-> '.join(c))
    else:
        print('no circles')
    for b in breaches:
        print('layer:', b)
    if not breaches:
        print('every import goes to its own layer or below')
    if '--strict' in sys.argv and (circles or breaches):
        sys.exit(1)


main()
