"The notebooks run, are committed clean and with their outputs, and the module is what they export."
import filecmp, json, re, shutil, subprocess, sys
from pathlib import Path
import pytest
pytestmark = pytest.mark.slow  # `make test-quick` leaves this file out

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# every notebook, in its layer's folder (nbdev skips names starting with _ or .)
NOTEBOOKS = sorted(str(p.relative_to(ROOT/'nbs')) for p in (ROOT/'nbs').rglob('*.ipynb')
                   if not any(part.startswith(('_', '.')) for part in p.relative_to(ROOT/'nbs').parts))


@pytest.fixture(scope='module')
def nbdev_test():
    """`nbdev_test` on every notebook, once: (its output, the notebooks it names as failed). One worker process runs them one
    after another, each in a fresh shell: the heavy imports are paid once, not per notebook (benchmarks/RESULTS.md, the
    test suite)."""
    out = subprocess.run([BIN/'nbdev_test', '--n_workers', '1', '--do_print', '--timing'], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    listed = out.stderr.partition('nbdev Tests Failed On The Following Notebooks:')[2]  # empty when none failed: a traceback's lines are never read as names
    failed = set(re.findall(r'^\t(\S+\.ipynb)$', listed, re.M))  # file names: each notebook's is unique (numbered)
    assert out.returncode == 0 or failed, f'nbdev_test stopped without naming a notebook: {out.stdout[-3000:]}{out.stderr[-3000:]}'
    return out, failed


@pytest.mark.parametrize('nb', NOTEBOOKS)
def test_notebook_runs(nb, nbdev_test):
    out, failed = nbdev_test
    assert Path(nb).name not in failed, f'{nb} fails under nbdev_test (the tracebacks of every failing notebook, last ones last):' + out.stderr[-6000:]
    assert re.search(rf'^- Completed .*/{re.escape(nb)}$', out.stdout, re.M), f'nbdev_test did not run {nb}: {out.stdout[-3000:]}'


def _copy(tmp_path):
    for f in ('settings.ini', 'setup.py'): shutil.copy(ROOT/f, tmp_path/f)
    shutil.copytree(ROOT/'nbs', tmp_path/'nbs'); shutil.copytree(ROOT/'rsacfn', tmp_path/'rsacfn')
    return tmp_path


def _different(a, b):
    files = sorted({p.relative_to(a) for p in a.rglob('*') if p.is_file() and '__pycache__' not in p.parts} |
                   {p.relative_to(b) for p in b.rglob('*') if p.is_file() and '__pycache__' not in p.parts})
    return [str(f) for f in files if not ((a/f).exists() and (b/f).exists() and filecmp.cmp(a/f, b/f, shallow=False))]


def test_module_matches_notebooks(tmp_path):
    work = _copy(tmp_path)
    out = subprocess.run([BIN/'nbdev_export'], cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    changed = _different(ROOT/'rsacfn', work/'rsacfn')
    assert not changed, f'nbdev_export changes {changed}: run nbdev_export and commit the module with the notebooks'


def test_notebooks_are_clean(tmp_path):
    work = _copy(tmp_path)
    out = subprocess.run([BIN/'nbdev_clean'], cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    changed = _different(ROOT/'nbs', work/'nbs')
    assert not changed, f'nbdev_clean changes {changed}: run nbdev_clean and commit'


def _outputs(nb):
    cells = json.loads((ROOT/'nbs'/nb).read_text())['cells']
    return [o for c in cells if c['cell_type'] == 'code' for o in c['outputs']]


@pytest.mark.parametrize('nb', NOTEBOOKS)
def test_notebook_is_committed_with_small_outputs(nb):
    outputs = _outputs(nb)
    assert outputs, f'{nb} is committed without outputs: run `make notebooks` and commit'
    text = [''.join(o.get('text', '')) for o in outputs if o['output_type'] == 'stream']
    assert not [t for t in text if '\r' in t or '%|' in t], f'{nb} holds progress-bar output: run `make notebooks` (progress bars off)'
    assert (ROOT/'nbs'/nb).stat().st_size < 1_000_000, f'{nb} is over 1 MB'


@pytest.mark.parametrize('nb', ['20_models/24_heads.ipynb', '50_experiments/experiment.ipynb', '30_evaluation/35_figures.ipynb',
                                '30_evaluation/36_analysis.ipynb', '60_recognizer.ipynb'])
def test_notebook_shows_figures(nb):
    assert any('image/png' in o.get('data', {}) for o in _outputs(nb)), f'{nb} shows no figure'


def test_each_notebook_has_a_name_of_its_own():
    "nbdev_test names a failed notebook by its file name only: the names must tell the notebooks apart across folders."
    names = [Path(nb).name for nb in NOTEBOOKS]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)


def test_the_experiment_notebooks_parameters_are_the_packages_defaults():
    """Each default is written once: the papermill parameters cell holds `experiment_config`'s defaults and the fields
    the notebook sets differently (`NOTEBOOK_DEFAULTS`), and nothing else."""
    import ast, dataclasses, inspect
    from rsacfn.config import TrainConfig
    from rsacfn.training.presets import NOTEBOOK_DEFAULTS, experiment_config
    cells = json.loads((ROOT/'nbs'/'50_experiments'/'experiment.ipynb').read_text())['cells']
    cell = next(c for c in cells if 'parameters' in c['metadata'].get('tags', []))
    values = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(''.join(cell['source'])).body}
    own = {k: p.default for k, p in inspect.signature(experiment_config).parameters.items() if p.default is not p.empty}
    assert values == {**own, **NOTEBOOK_DEFAULTS}
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert all(k in fields and fields[k] != v for k, v in NOTEBOOK_DEFAULTS.items())  # each one a field set differently
