#!/usr/bin/env python3
"""tests/check_layers.py -- fails on an include or call cycle among the
files of one source folder (ctest: backends/cuda).

    check_layers.py SRCDIR LIBRARY.a
    check_layers.py --self-test

A source file and the header of the same name are one unit (cuda_emit.c
and cuda_emit.h are cuda_emit).  Unit A depends on unit B when a file of A
includes a header of B (#include "NAME.h" resolved in SRCDIR), or when A's
object file (member NAME.c.o of the static library, read with nm) uses a
global symbol that B's object defines (a call, or data such as a table).
The units must depend on each other in one direction only: every cycle is
printed with the reason for each of its steps and the exit status is 1;
with none, the units are printed from the top layer down and the status
is 0.  2: bad usage, an unreadable file, or a source without its object.
--self-test runs the cycle finder on made-up graphs (status 0 when it finds
exactly the cycles they hold).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
NM_LINE = re.compile(r'^.*\[(?P<member>[^\]]+)\]: (?P<sym>\S+) (?P<type>\S)')


def units_of(srcdir):
    """{unit: [paths]} for the .c and .h files of srcdir (not below it)."""
    units = {}
    for name in sorted(os.listdir(srcdir)):
        base, ext = os.path.splitext(name)
        if ext in ('.c', '.h') and os.path.isfile(os.path.join(srcdir, name)):
            units.setdefault(base, []).append(os.path.join(srcdir, name))
    return units


def include_edges(srcdir, units, edges):
    for unit, paths in units.items():
        for path in paths:
            with open(path, encoding='utf-8', errors='replace') as f:
                text = f.read()
            for inc in INCLUDE.findall(text):
                target = os.path.normpath(os.path.join(srcdir, inc))
                if os.path.dirname(target) != os.path.normpath(srcdir):
                    continue
                base, ext = os.path.splitext(os.path.basename(target))
                if ext == '.h' and base in units and base != unit:
                    edges.setdefault(unit, {}).setdefault(base, []).append('includes ' + base + '.h')


def symbol_edges(library, units, edges):
    """Edges from the global symbols of the members NAME.c.o of library."""
    try:
        out = subprocess.run(['nm', '-A', '-P', library], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit('check_layers: nm %s failed: %s' % (library, e))
    defined, used, seen = {}, {}, {}
    for line in out.splitlines():
        m = NM_LINE.match(line)
        if not m:
            continue
        member = m.group('member')
        if not member.endswith('.c.o'):
            continue
        unit = member[:-len('.c.o')]
        if unit not in units or not any(p.endswith('.c') for p in units[unit]):
            continue
        seen[unit] = seen.get(unit, 0) + (1 if m.group('type') != 'U' else 0)
        sym, kind = m.group('sym'), m.group('type')
        if kind == 'U':
            used.setdefault(unit, set()).add(sym)
        elif kind.isupper():
            if sym in defined and defined[sym] != unit:
                sys.exit('check_layers: %s is defined by %s.c and %s.c' % (sym, defined[sym], unit))
            defined[sym] = unit
    for unit, paths in units.items():
        if any(p.endswith('.c') for p in paths) and unit not in seen:
            sys.exit('check_layers: no object %s.c.o in %s (build the library first)' % (unit, library))
    for unit, syms in used.items():
        for sym in sorted(syms):
            owner = defined.get(sym)
            if owner and owner != unit:
                edges.setdefault(unit, {}).setdefault(owner, []).append('uses ' + sym)


def cycles(nodes, edges):
    """For each strongly connected component of more than one node
    (Tarjan): the shortest cycle [a, b, ..., a] from its first node, and
    the component's nodes."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                strong(w)
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
                comps.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    found = []
    for comp in comps:
        # the shortest way from the component's first node back to it (BFS)
        start, inside = comp[0], set(comp)
        prev, queue, path = {start: None}, [start], None
        while queue and path is None:
            v = queue.pop(0)
            for w in sorted(edges.get(v, {})):
                if w == start:
                    chain = [v]
                    while prev[chain[-1]] is not None:
                        chain.append(prev[chain[-1]])
                    path = chain[::-1] + [start]
                    break
                if w in inside and w not in prev:
                    prev[w] = v
                    queue.append(w)
        found.append((path, comp))
    return sorted(found)


def layers(nodes, edges):
    """Each node's height (0: depends on nothing), for an acyclic graph."""
    height = {}

    def h(v):
        if v not in height:
            height[v] = 0
            height[v] = 1 + max((h(w) for w in edges.get(v, {})), default=-1)
        return height[v]

    for v in nodes:
        h(v)
    return height


def self_test():
    ok = True
    cases = [
        ({'a': {'b': 1}, 'b': {'c': 1}}, []),
        ({'a': {'b': 1}, 'b': {'a': 1}}, [['a', 'b', 'a']]),
        ({'p': {'f': 1, 'g': 1}, 'f': {'p': 1}, 'g': {'u': 1}, 'u': {'g': 1}, 'x': {'p': 1}},
         [['f', 'p', 'f'], ['g', 'u', 'g']]),
        ({'a': {'b': 1}, 'b': {'c': 1}, 'c': {'a': 1}, 'd': {'a': 1}}, [['a', 'b', 'c', 'a']]),
    ]
    for graph, want in cases:
        nodes = set(graph) | {w for v in graph.values() for w in v}
        got = [c for c, _ in cycles(nodes, graph)]
        if got != want:
            print('check_layers: self-test: %s: found %s, want %s' % (graph, got, want))
            ok = False
    # files: two headers that include each other; objects (cc, ar) whose
    # calls go round a -> b -> a, and c calling a (no cycle through c)
    with tempfile.TemporaryDirectory() as d:
        for name, text in [('h.h', '#include "g.h"\n'), ('g.h', '#include "h.h"\n'),
                           ('a.c', 'int b(void);\nint a(void) { return b(); }\n'),
                           ('b.c', 'int a(void);\nint b(void) { return 1; }\nint b2(void) { return a(); }\n'),
                           ('c.c', 'int a(void);\nint c(void) { return a(); }\n')]:
            with open(os.path.join(d, name), 'w') as f:
                f.write(text)
        units, edges = units_of(d), {}
        include_edges(d, units, edges)
        got = [c for c, _ in cycles(set(units), edges)]
        if got != [['g', 'h', 'g']]:
            print('check_layers: self-test: includes: found %s' % got)
            ok = False
        cc = shutil.which('cc')
        if cc:
            objs = []
            for n in 'abc':
                objs.append(os.path.join(d, n + '.c.o'))
                subprocess.run([cc, '-c', os.path.join(d, n + '.c'), '-o', objs[-1]], check=True)
            lib = os.path.join(d, 'lib.a')
            subprocess.run(['ar', 'rc', lib] + objs, check=True)
            os.remove(os.path.join(d, 'h.h'))
            os.remove(os.path.join(d, 'g.h'))
            units, edges = units_of(d), {}
            symbol_edges(lib, units, edges)
            got = [c for c, _ in cycles(set(units), edges)]
            if got != [['a', 'b', 'a']] or sorted(edges.get('c', {})) != ['a']:
                print('check_layers: self-test: symbols: found %s, edges %s' % (got, edges))
                ok = False
        else:
            print('check_layers: self-test: no cc, the symbol part skipped')
    print('check_layers: self-test %s' % ('passed' if ok else 'FAILED'))
    return 0 if ok else 1


def main(argv):
    if len(argv) == 2 and argv[1] == '--self-test':
        return self_test()
    if len(argv) != 3:
        print('usage: check_layers.py SRCDIR LIBRARY.a | --self-test', file=sys.stderr)
        return 2
    srcdir, library = argv[1], argv[2]
    if not os.path.isdir(srcdir) or not os.path.isfile(library):
        print('check_layers: no folder %s or no library %s' % (srcdir, library), file=sys.stderr)
        return 2
    units = units_of(srcdir)
    edges = {}
    include_edges(srcdir, units, edges)
    symbol_edges(library, units, edges)
    found = cycles(set(units), edges)
    if found:
        for c, comp in found:
            print('check_layers: cycle among the files of %s: %s' % (srcdir, ' -> '.join(c)))
            if len(comp) > len(c) - 1:
                print('    (one of the cycles among %s)' % ', '.join(comp))
            for a, b in zip(c, c[1:]):
                why = edges[a][b]
                print('    %s -> %s: %s%s' % (a, b, ', '.join(why[:4]), ' and %d more' % (len(why) - 4) if len(why) > 4 else ''))
        return 1
    height = layers(set(units), edges)
    print('check_layers: %s: %d units, no cycle; from the top layer down:' % (srcdir, len(units)))
    for v in sorted(units, key=lambda v: (-height[v], v)):
        deps = sorted(edges.get(v, {}))
        print('    %-16s -> %s' % (v, ', '.join(deps) if deps else '(nothing)'))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
