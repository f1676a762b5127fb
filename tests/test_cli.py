"The command line, as `rsacfn` and as `python -m rsacfn` (what `accelerate launch -m rsacfn` runs)."
import subprocess, sys
from pathlib import Path
from rsacfn.data import read_kemdy20

BIN = Path(sys.executable).parent


def test_python_dash_m_runs_the_cli(tmp_path):
    out = subprocess.run([sys.executable, '-m', 'rsacfn', 'demo-corpus', str(tmp_path/'demo'), '--size', 'tiny', '--quiet'],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert '120 segments' in out.stdout and len(read_kemdy20(tmp_path/'demo')) == 120


def test_bad_flags_fail_with_usage(tmp_path):
    out = subprocess.run([str(BIN/'rsacfn'), 'train', '--use_concat', 'maybe'], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "expected true or false, got 'maybe'" in out.stderr
    out = subprocess.run([str(BIN/'rsacfn'), 'train', '--multimodal_method', 'rsa_cnf', '--use_concat', '--data_path', str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "rsacfn train: error: unknown multimodal_method 'rsa_cnf'" in out.stderr and "Traceback" not in out.stderr
