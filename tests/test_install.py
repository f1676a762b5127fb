"An ordinary install (a wheel, no source tree on the path) finds its experiment notebook and sweeps."
import pytest
pytestmark = pytest.mark.slow  # `make test-quick` leaves this file out
import os, subprocess, sys
from pathlib import Path
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_install_runs_a_sweep(tmp_path, tiny_backbones):
    run = lambda *cmd, **kw: subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)
    built = run(sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-w', tmp_path/'dist', ROOT)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, = (tmp_path/'dist').glob('rsacfn-*.whl')
    venv = tmp_path/'venv'
    assert run(sys.executable, '-m', 'venv', venv).returncode == 0
    py = venv/'bin'/'python'
    site = run(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip()
    deps = run(sys.executable, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip()
    (Path(site)/'deps.pth').write_text(deps + '\n')  # the dependencies, not the editable rsacfn (.pth files there are not read)
    installed = run(py, '-m', 'pip', 'install', '--no-deps', '--no-index', wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    where = run(py, '-c', 'import rsacfn.experiments.sweep as s; print(s.__file__); print(s.experiment_notebook())', cwd=tmp_path, env=env)
    module, notebook = where.stdout.split()
    assert module.startswith(site) and notebook.startswith(site) and not Path(notebook).is_symlink(), where.stdout + where.stderr
    out = tmp_path/'sweep'
    sweep = run(venv/'bin'/'rsacfn', 'sweep', out, '--methods', 'text_only', '--set', 'demo_size=tiny', '--set', 'epochs=1',
                '--set', f'wav_model={tiny_backbones["audio"]}', '--set', f'text_model={tiny_backbones["text"]}', cwd=tmp_path, env=env)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert pd.read_csv(out/'f1_table.csv').method.tolist() == ['text_only']
    assert (out/'runs'/'text_only-seed42'/'experiment.json').is_file() and (out/'notebooks'/'text_only-seed42.ipynb').is_file()
