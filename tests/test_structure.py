"""The package's shape: layers as folders, imports that go one way, small modules and functions, public names kept."""
import ast, importlib
from pathlib import Path

import pytest

PKG = Path(__file__).parents[1]/'rsacfn'
# bottom to top: a module imports only from its own layer or below (imports inside functions too)
LAYERS = [('rsacfn.config', 'rsacfn.files', 'rsacfn.progress', 'rsacfn.notices'), ('rsacfn.data',), ('rsacfn.models',),
          ('rsacfn.evaluation',), ('rsacfn.training',), ('rsacfn.experiments',),
          ('rsacfn.recognizer', 'rsacfn.recordings', 'rsacfn.app'),
          ('rsacfn.commands',), ('rsacfn.cli', 'rsacfn.__main__')]


def modules() -> dict:
    "Each module of the package (generated `_modidx` and the package markers apart): its dotted name and source."
    out = {}
    for f in sorted(PKG.rglob('*.py')):
        if f.name in ('_modidx.py', '__init__.py'): continue
        out['.'.join(('rsacfn', *f.relative_to(PKG).with_suffix('').parts))] = f.read_text(encoding='utf-8')
    return out


def layer(name:str) -> int:
    found = [i for i, prefixes in enumerate(LAYERS) for p in prefixes if name == p or name.startswith(p + '.')]
    assert found, f'{name} belongs to no layer of LAYERS: add it there'
    return found[0]


def imported(name:str, source:str) -> set:
    "The package's modules that a module imports, at the top or inside a function."
    out, package = set(), name.rsplit('.', 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if not base.startswith('rsacfn'): continue
            for a in node.names:  # `from rsacfn.models import heads` names a module
                out.add(f'{base}.{a.name}' if f'{base}.{a.name}' in MODULES else base)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith('rsacfn.')}
    return {m for m in out if m in MODULES}


MODULES = modules()
GRAPH = {m: imported(m, s) for m, s in MODULES.items()}


def test_every_import_goes_down_or_across_a_layer():
    up = [f'{m} -> {t}' for m, ts in GRAPH.items() for t in ts if layer(t) > layer(m)]
    assert not up, f'imports back up a layer: {up}'


def test_no_module_imports_itself_in_a_circle():
    def visit(m, path):
        if m in path: return path[path.index(m):] + [m]
        for t in GRAPH[m]:
            if (c := visit(t, path + [m])): return c
    circles = {tuple(c) for m in GRAPH if (c := visit(m, []))}
    assert not circles, f'import circles: {sorted(circles)}'


def test_modules_and_functions_are_small_and_lines_short():
    big = {m: n for m, s in MODULES.items() if (n := len(s.splitlines())) > 450}
    assert not big, f'modules over 450 lines: {big}'
    long_functions = [f'{m}.{n.name} ({n.end_lineno - n.lineno + 1} lines)' for m, s in MODULES.items()
                      for n in ast.walk(ast.parse(s)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.end_lineno - n.lineno + 1 > 60]
    assert not long_functions, f'functions over 60 lines: {long_functions}'
    lines = [line for s in MODULES.values() for line in s.split('\n')]
    share = sum(len(line) > 120 for line in lines) / len(lines)
    assert share <= 0.02, f'{share:.1%} of the package lines are over 120 characters (at most 2 %)'


def test_the_layers_hold_what_the_graph_shows():
    "The check above can fail: an import that goes up a layer is caught (a module of the data layer importing the trainer)."
    source = 'def f():\n    from rsacfn.training.loop import train\n'
    assert 'rsacfn.training.loop' in imported('rsacfn.data.readers', source)
    assert layer('rsacfn.training.loop') > layer('rsacfn.data.readers')


PUBLIC = ['EmotionRecognizer', 'TrainConfig', 'train', 'experiment_config', 'run_sweep', 'MultiModel', '__version__']


@pytest.mark.parametrize('name', PUBLIC)
def test_the_public_names_of_rsacfn_keep_working(name):
    import rsacfn
    assert name in dir(rsacfn) and getattr(rsacfn, name) is not None
    assert name in rsacfn.__all__


def test_the_public_names_are_the_documented_entry_points():
    import rsacfn
    assert sorted(rsacfn.__all__) == sorted(PUBLIC)
    assert rsacfn.train is importlib.import_module('rsacfn.training.loop').train
    assert rsacfn.MultiModel is importlib.import_module('rsacfn.models.multimodal').MultiModel



def test_a_module_that_lists_the_methods_imports_the_heads_that_register_them():
    "The registry fills as the heads are imported: a module reading METHODS must import them (else a table is empty)."
    def reached(m, seen):
        for t in GRAPH[m] - seen: seen.add(t); reached(t, seen)
        return seen
    readers = [m for m, s in MODULES.items() if 'METHODS' in s and m.split('.')[-1] not in ('config', 'registry', 'heads')]
    assert readers, 'no module reads METHODS: this test checks nothing'
    assert not [m for m in readers if 'rsacfn.models.heads' not in reached(m, set())]
