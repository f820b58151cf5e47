"""The layers point one way (docs/architecture.md), checked on the source:

    controller/  never imports hil_tests/ or bench/   (the CLI, controller/cli/,
                 is the one place that sees every layer: it dispatches to the bench)
    hil_tests/   imports controller/ and firmware/, never bench/
    firmware/    imports nothing of the host
and no module imports itself back through others (no import cycle), counting
imports inside functions too: a lazy import is still an arrow.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("controller", "hil_tests", "firmware", "cython_ext", "bench")


def module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path, me=None):
    """Project modules a file imports (absolute names), with line numbers."""
    tree = ast.parse(path.read_text(), str(path))
    me = me or module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [base] + ["%s.%s" % (base, a.name) for a in node.names]
        else:
            continue
        for n in names:
            if n.split(".")[0] in PACKAGES:
                out.append((n, node.lineno))
    return out


def sources():
    for top in PACKAGES:
        for p in sorted((ROOT / top).rglob("*.py")):
            yield p


def graph():
    files = {module_name(p): p for p in sources()}
    g = {}
    for mod, p in files.items():
        deps = set()
        for n, _ in imports(p):
            # "from a.b import c": c may be a module or a name in a.b
            while n and n not in files:
                n = n.rpartition(".")[0]
            if n and n != mod:
                deps.add(n)
        g[mod] = deps
    return g, files


def violations(files):
    """files: [(module name, path)] -> ["path:line imports name"] against the layers."""
    bad = []
    for mod, p in files:
        for n, line in imports(p, mod):
            top = n.split(".")[0]
            if mod.startswith("controller.cli"):
                continue
            if mod.startswith("controller") and top in ("hil_tests", "bench"):
                bad.append("%s:%d imports %s" % (p.name, line, n))
            if mod.startswith("hil_tests") and top == "bench":
                bad.append("%s:%d imports %s" % (p.name, line, n))
            if mod.startswith("firmware") and top in ("controller", "hil_tests", "bench"):
                bad.append("%s:%d imports %s" % (p.name, line, n))
    return bad


def test_no_arrow_against_the_layers():
    bad = violations([(module_name(p), p) for p in sources()])
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_import_cycle():
    g, _ = graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []
    counter = [0]

    def strong(v):  # Tarjan
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
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
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            strong(v)
    assert not cycles, "import cycles: %s" % cycles


def test_the_checker_sees_a_wrong_arrow(tmp_path):
    """The rule bites: a controller module importing the bench is reported."""
    p = tmp_path / "probe.py"
    p.write_text("import json\n\ndef f():\n    from hil_tests import bench\n")
    assert violations([("controller.probe", p)]) == ["probe.py:4 imports hil_tests",
                                                     "probe.py:4 imports hil_tests.bench"]
    assert violations([("hil_tests.probe", p)]) == []


def test_a_long_controller_module_says_why_at_its_top():
    """Issue "One-way layers": no module in controller/ over ~300 lines without
    a reason written at its top (a "Size (N lines): ..." paragraph in its
    first 15 lines)."""
    root = Path(__file__).resolve().parent.parent / "controller"
    silent = []
    for p in sorted(root.rglob("*.py")):
        text = p.read_text()
        if text.count("\n") > 320 and "Size (" not in "\n".join(text.splitlines()[:15]):
            silent.append("%s (%d lines)" % (p.relative_to(root.parent), text.count("\n")))
    assert not silent, "long modules without a reason at their top: %s" % silent
