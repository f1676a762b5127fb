"The command line, as `rsacfn` and as `python -m rsacfn` (what `accelerate launch -m rsacfn` runs)."
import json, subprocess, sys
from pathlib import Path
import pytest
from rsacfn.data.kemdy import read_kemdy20

BIN = Path(sys.executable).parent


def test_python_dash_m_runs_the_cli(tmp_path):
    out = subprocess.run([sys.executable, '-m', 'rsacfn', 'demo-corpus', str(tmp_path/'demo'), '--size', 'tiny', '--quiet'],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert '120 segments' in out.stdout and len(read_kemdy20(tmp_path/'demo')) == 120


def test_bad_flags_fail_with_usage(tmp_path, rsacfn_cli):
    out = rsacfn_cli('train', '--use_concat', 'maybe')
    assert out.returncode == 2 and '--use_concat maybe: must be true or false' in out.stderr
    out = rsacfn_cli('train', '--multimodal_method', 'rsa_cnf', '--use_concat', '--data_path', tmp_path)
    assert out.returncode == 2 and "rsacfn train: error: unknown multimodal_method 'rsa_cnf'" in out.stderr and "Traceback" not in out.stderr


HEAVY = ('torch', 'transformers', 'scipy', 'pandas', 'numpy', 'sklearn', 'accelerate')


def test_building_a_configuration_imports_the_standard_library_only_and_runs_no_plugin(tmp_path):
    "Settings are plain data: a TrainConfig (with a plugin named) imports no heavy library and executes no plugin file."
    plugin = tmp_path/'noisy.py'; plugin.write_text("open(__file__ + '.ran', 'w').write('ran')\n")
    code = ("import sys, rsacfn.config as c; cfg = c.TrainConfig(method='early_fusion', plugins=[sys.argv[1]]); "
            "import dataclasses; dataclasses.replace(cfg, lr=1e-4); "
            f"print(','.join(m for m in {HEAVY!r} + ('rsacfn.models.heads', 'rsacfn.models.multimodal', 'rsacfn.models.registry') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code, str(plugin)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '', f'building a TrainConfig loaded {out.stdout.strip()}'
    assert not (tmp_path/'noisy.py.ran').exists()  # the plugin runs where a run starts (resolve_config), not here


def test_the_registry_imports_no_model():
    "The registry is a leaf (as timm's): importing it loads neither the models nor torch."
    code = f'import sys, rsacfn.models.registry; print(",".join(m for m in {HEAVY!r} + ("rsacfn.models.heads", "rsacfn.models.multimodal") if m in sys.modules))'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == '', out.stdout + out.stderr


def test_the_command_line_module_leaves_torch_unimported():
    "`import rsacfn.cli` (what `rsacfn --help` runs) must not load torch or the other heavy libraries; a command loads what it needs."
    code = f'import sys, rsacfn, rsacfn.cli; print(",".join(m for m in {HEAVY!r} if m in sys.modules))'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '', f'import rsacfn.cli loaded {out.stdout.strip()}'


def test_help_describes_every_setting_without_loading_torch():
    "`--help` is answered from rsacfn.config alone, and still lists every TrainConfig field, preset, demo size and protocol."
    from rsacfn.config import DEMO_SIZES, PRESETS, PROTOCOLS, TrainConfig
    import dataclasses
    code = ('import sys, contextlib, io\nfrom rsacfn.cli import main\n'
            'for cmd in ([], ["train"], ["sweep"]):\n'
            '    f = io.StringIO()\n'
            '    with contextlib.redirect_stdout(f):\n'
            '        try: main(cmd + ["--help"])\n'
            '        except SystemExit: pass\n'
            '    print(f.getvalue()); print("=====")\n'
            f'print(",".join(m for m in {HEAVY!r} if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    top, train, sweep, loaded = out.stdout.split('=====\n')
    assert loaded.strip() == '', f'--help loaded {loaded.strip()}'
    assert all(c in top for c in ('train', 'sweep', 'predict', 'evaluate', 'demo-corpus'))
    assert all(f'--{f.name}' in train for f in dataclasses.fields(TrainConfig))
    assert all(p in train for p in PRESETS) and all(s in train for s in DEMO_SIZES)
    assert all(p in sweep for p in PROTOCOLS)


@pytest.mark.slow
def test_a_runs_own_config_reproduces_its_identity_and_a_flag_overrides_the_file(tiny_corpus, tiny_backbones, tmp_path,
                                                                                   rsacfn_cli):
    "`rsacfn train --config <run>/config.json`: the same identity under another name; a flag beside it wins over the file."
    args = ('--method', 'early_fusion', '--epochs', '1', '--data_path', tiny_corpus, '--audio_max_lens', 32000,
            '--text_max_lens', 64, '--wav_model', tiny_backbones['audio'], '--text_model', tiny_backbones['text'],
            '--output_dir', tmp_path/'runs', '--quiet')
    assert rsacfn_cli('train', *args, '--ver', 'first').returncode == 0
    first = tmp_path/'runs'/'first'
    again = rsacfn_cli('train', '--config', first/'config.json', '--ver', 'again')
    assert again.returncode == 0, again.stderr[-2000:]
    identity = lambda run: json.loads((tmp_path/'runs'/run/'identity.json').read_text())['hash']
    assert identity('again') == identity('first')
    (tmp_path/'over.yaml').write_text((first/'config.json').read_text())  # JSON is YAML: the YAML reader takes it
    over = rsacfn_cli('train', '--config', tmp_path/'over.yaml', '--ver', 'over', '--lr', '0.002')
    assert over.returncode == 0, over.stderr[-2000:]
    cfg = json.loads((tmp_path/'runs'/'over'/'config.json').read_text())
    assert cfg['lr'] == 0.002 and cfg['ver'] == 'over' and identity('over') != identity('first')


def test_a_bad_config_file_is_one_line_naming_the_file_and_key(tmp_path, rsacfn_cli):
    (tmp_path/'c.yaml').write_text('epochs: 2\nepoch: 3\n')
    r = rsacfn_cli('train', '--config', tmp_path/'c.yaml')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{tmp_path/'c.yaml'}: unknown TrainConfig field 'epoch'; did you mean 'epochs'?" in r.stderr
    r = rsacfn_cli('sweep', tmp_path/'s', '--config', tmp_path/'missing.json')
    assert r.returncode == 2 and 'missing.json: no such configuration file' in r.stderr and not (tmp_path/'s').exists()


def test_sweep_mps_is_refused_in_the_flags_spelling_before_anything_is_written(rsacfn_cli, tmp_path, monkeypatch):
    monkeypatch.setenv('PATH', str(Path(sys.executable).parent))  # no nvidia-cuda-mps-control here
    monkeypatch.setenv('CUDA_MPS_PIPE_DIRECTORY', str(tmp_path/'no_daemon'))
    out = rsacfn_cli('sweep', tmp_path/'s', '--methods', 'text_only', '--mps')
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        'rsacfn sweep: error: --mps asks for CUDA MPS, and nvidia-cuda-mps-control is not on PATH here (it comes with '
        'the NVIDIA driver); leave --mps out'], out.stderr
    out = rsacfn_cli('sweep', tmp_path/'s', '--methods', 'text_only', '--mps', '--launcher', 'slurm')
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "rsacfn sweep: error: --mps is for --launcher local (a cluster's nodes run their own); with --launcher slurm "
        'leave --mps out'], out.stderr
    assert not (tmp_path/'s').exists()
