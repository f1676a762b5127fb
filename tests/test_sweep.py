"The sweep: a failing method is marked in the table, an interrupted sweep finishes only what is left."
import json, os, re, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
pytestmark = pytest.mark.slow  # `make test-quick` leaves this file out
from rsacfn.experiments.sweep import run_sweep

os.environ['HF_HUB_OFFLINE'] = '1'
BIN = Path(sys.executable).parent


@pytest.fixture
def small(tiny_backbones):
    return dict(demo_size='tiny', epochs=1, wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']))


FLAKY = '''
from pathlib import Path
import torch
from torch import nn
from rsacfn.models.heads import FusionHead
from rsacfn.models.registry import register_head

@register_head('flaky_fusion', batch_size=16)
class FlakyFusion(FusionHead):
    "Early fusion that fails while a marker file is there: every setting is fine, the run fails only once it trains."
    def __init__(self, audio_dim, text_dim, num_classes=7):
        super().__init__()
        self.classifier = nn.Linear(audio_dim + text_dim, num_classes)
    def forward(self, audio, text, audio_mask=None, text_mask=None):
        if Path(MARKER).exists(): raise RuntimeError('flaky_fusion fails while its marker file is there')
        return self.classifier(torch.cat([audio, text], 1)), {}
'''


def test_a_failing_method_is_marked_and_does_not_stop_the_others(tmp_path, small):
    cwd = os.getcwd()
    marker, plugin = tmp_path/'marker', tmp_path/'flaky.py'
    marker.touch(); plugin.write_text(FLAKY.replace('MARKER', repr(str(marker))))
    methods, params = ['flaky_fusion', 'stack'], dict(small, plugins=[str(plugin)])
    table = run_sweep(tmp_path/'sweep', methods=methods, params=params, jobs=2, progress=False)
    assert os.getcwd() == cwd  # notebooks run at once do not move the process' working directory
    row = table.set_index('method')
    assert row.loc['flaky_fusion', 'failed'] == 1 and 'fails while its marker file is there' in row.loc['flaky_fusion', 'error']
    assert row.loc['stack', 'failed'] == 0  # the run after it still ran
    md = (tmp_path/'sweep'/'f1_table.md').read_text()
    assert '| flaky_fusion |' in md and '**failed: RuntimeError: flaky_fusion fails while its marker file is there' in md
    assert pd.read_csv(tmp_path/'sweep'/'f1_table.csv').shape[0] == 2
    assert (tmp_path/'sweep'/'notebooks'/'flaky_fusion-seed42.failed.ipynb').is_file()
    executed = json.loads((tmp_path/'sweep'/'notebooks'/'stack-seed42.ipynb').read_text())
    outputs = [o for c in executed['cells'] if c['cell_type'] == 'code' for o in c['outputs']]
    assert sum('image/png' in o.get('data', {}) for o in outputs) >= 2  # the curves and the confusion matrix, inline
    assert not [o for o in outputs if o.get('name') == 'stderr'], 'quiet=True: the executed notebook holds stderr output'
    # fixed and run again: only the failed run runs
    marker.unlink()
    table = run_sweep(tmp_path/'sweep', methods=methods, params=params, progress=False)
    runs = pd.read_csv(tmp_path/'sweep'/'runs.csv').set_index('method')
    assert table.failed.sum() == 0 and runs.seconds['stack'] == 0 and runs.seconds['flaky_fusion'] > 0
    assert not (tmp_path/'sweep'/'notebooks'/'flaky_fusion-seed42.failed.ipynb').exists()


def kill_after_first_run(cmd, out, warm=True):
    """Start a sweep command, SIGKILL it alone once its first run's notebook is saved: every process it started (its
    kernels, their launchers, the warm process they are forked from where `warm`) ends with it; the sweep has no table."""
    import psutil
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = out/'notebooks'/'text_only-seed42.ipynb'  # saved once the run's notebook has finished
    deadline = time.time() + 600
    while not first.is_file():
        assert proc.poll() is None and time.time() < deadline, 'the sweep ended before its first run finished'
        time.sleep(0.2)
    started = psutil.Process(proc.pid).children(recursive=True)
    assert warm == any('rsacfn.experiments.kernels' in ' '.join(p.cmdline()) for p in started)  # a local sweep's warm process
    os.kill(proc.pid, signal.SIGKILL); proc.wait()
    gone, alive = psutil.wait_procs(started, timeout=15)
    assert not alive, [' '.join(p.cmdline())[:200] for p in alive]
    assert not (out/'f1_table.md').exists()


@pytest.fixture(scope='module')
def interrupted_sweep(tmp_path_factory, tiny_backbones):
    "A local sweep of two methods, killed after its first run and started again: (its folder, the second command's result)."
    out = tmp_path_factory.mktemp('interrupted')/'sweep'
    cmd = [str(BIN/'rsacfn'), 'sweep', str(out), '--methods', 'text_only,late_fusion', '--set', 'demo_size=tiny',
           '--set', 'epochs=1', '--set', f'wav_model={tiny_backbones["audio"]}', '--set', f'text_model={tiny_backbones["text"]}']
    kill_after_first_run(cmd, out)
    return out, subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_an_interrupted_sweep_finishes_only_the_remaining_runs(interrupted_sweep):
    out, out2 = interrupted_sweep
    assert out2.returncode == 0, out2.stderr[-3000:]
    assert 'ERROR' not in out2.stdout + out2.stderr  # no kernel log lines, no papermill warnings
    runs = pd.read_csv(out/'runs.csv').set_index('method')
    assert runs.seconds['text_only'] == 0 and runs.seconds['late_fusion'] > 0
    assert (runs.status == 'ok').all()
    assert sorted(p.name for p in (out/'notebooks').glob('*.ipynb')) == ['late_fusion-seed42.ipynb', 'text_only-seed42.ipynb']


def test_kernels_forked_warm_train_what_new_interpreters_train(tmp_path, small, monkeypatch):
    """A sweep's kernels are forked from a process that has imported the libraries (`rsacfn.experiments.kernels`): their runs, scores
    and figures are those of kernels started as new interpreters, and their imports cell takes no time."""
    from rsacfn.experiments.launchers import LocalLauncher
    methods, seen = ['early_fusion'], {}  # one method hears and reads: both halves of the imports and the figures
    for warm in (True, False):
        monkeypatch.setattr(LocalLauncher, 'warm', warm)
        out = tmp_path/f'warm_{warm}'
        run_sweep(out, methods=methods, params=small, jobs=2, progress=False)
        runs = pd.read_csv(out/'runs.csv').set_index('method')
        notebooks = {m: json.loads((out/'notebooks'/f'{m}-seed42.ipynb').read_text()) for m in methods}
        cells = {m: [c for c in nb['cells'] if c['cell_type'] == 'code'] for m, nb in notebooks.items()}
        imports = [next(c for c in cs if 'from rsacfn.training.loop import train' in ''.join(c['source'])) for cs in cells.values()]
        seen[warm] = dict(
            scores=runs[['train_loss', 'weighted_f1', 'macro_f1', 'uar', 'pred_counts']].to_dict(),
            outputs={m: [sorted(o.get('data', {o.get('name', o['output_type']): 0})) for c in cs for o in c['outputs']]
                     for m, cs in cells.items()},
            imports_s=max(c['metadata']['papermill']['duration'] for c in imports),
        )
    assert seen[True]['scores'] == seen[False]['scores']
    assert seen[True]['outputs'] == seen[False]['outputs']  # the same figures, tables and printed lines
    assert seen[True]['imports_s'] < 0.5 < seen[False]['imports_s']


def test_a_changed_configuration_is_never_answered_with_an_old_result(tmp_path, small, rsacfn_cli):
    out = tmp_path/'sweep'
    cmd = ['sweep', out, '--methods', 'text_only', '--set', 'demo_size=tiny', '--set', 'epochs=1',
           '--set', f'wav_model={small["wav_model"]}', '--set', f'text_model={small["text_model"]}']
    first = rsacfn_cli(*cmd)
    assert first.returncode == 0, first.stderr[-3000:]
    # the default baseline early_fusion is not in this sweep: said once (in the table the command prints), not twice
    assert (first.stdout + first.stderr).count('No paired comparison') == 1, first.stdout
    identity = (out/'runs'/'text_only-seed42'/'identity.json').read_text()
    refused = rsacfn_cli(*cmd, '--set', 'lr=0.1')
    assert refused.returncode == 2 and 'text_only-seed42 (lr: 0.001 -> 0.1)' in refused.stderr and '--rerun' in refused.stderr
    assert 'Traceback' not in refused.stderr and (out/'runs'/'text_only-seed42'/'identity.json').read_text() == identity
    again = rsacfn_cli(*cmd, '--set', 'lr=0.1', '--set', 'weight_decay=0.01', '--rerun')
    assert again.returncode == 0, again.stderr[-3000:]
    config = json.loads((out/'runs'/'text_only-seed42'/'config.json').read_text())
    assert (config['lr'], config['weight_decay']) == (0.1, 0.01)  # every --set key reaches the run's configuration
    runs = pd.read_csv(out/'runs.csv', dtype={'identity': str})
    assert runs.seconds[0] > 0 and runs.identity[0] == json.loads((out/'runs'/'text_only-seed42'/'identity.json').read_text())['hash']
    assert runs.identity[0] in (out/'runs'/'text_only-seed42'/'result.json').read_text()


@pytest.mark.parametrize('args, message', [
    (['--set', 'bogus_key=1'], "unknown parameter 'bogus_key'"),
    (['--set', 'epoch=3'], "unknown parameter 'epoch'; did you mean 'epochs'?"),
    (['--methods', 'rsacfn'], "unknown method 'rsacfn'; did you mean 'rsa_cfn'?"),
    (['--set', 'head_sizes={"proj_dm": 8}'], "unknown head size for the sweep's methods 'proj_dm'; did you mean 'proj_dim'?"),
    (['--methods', 'rsa', '--set', 'use_wav=true'], "--set use_wav=true: the paper's flags choose one method"),
    (['--sett', 'lr=1'], "unknown flag '--sett'; did you mean '--set'?"),
    (['--set', 'lr=1', '--set', 'lr=2'], "--set lr is given twice (1 and 2); give it once"),
    (['--protocol', 'paper', '--folds', '0'], "protocol 'paper' is the random split, and folds asks for session folds; give one of them"),
    (['--protocol', 'speaker-independent', '--set', 'split=random'], "protocol 'speaker-independent' sets split (session folds); leave split out"),
    (['--baseline', 'early_fuson'], "unknown method 'early_fuson'; did you mean 'early_fusion'?"),
])
def test_a_bad_key_stops_the_sweep_before_anything_is_written(tmp_path, args, message, rsacfn_cli):
    out = tmp_path/'sweep'
    r = rsacfn_cli('sweep', out, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-3000:]
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()  # no corpus, no backbones, no folder


def test_the_submitit_launcher_runs_the_same_sweep_and_after_a_kill_only_what_is_missing(tmp_path, small, interrupted_sweep):
    "submitit's local executor stands in for SLURM: each run a job of its own, results gathered from the sweep folder."
    methods = ['text_only', 'late_fusion']
    local = pd.read_csv(interrupted_sweep[0]/'f1_table.csv')  # the local sweep of the same settings
    assert list(local.method) == methods
    out = tmp_path/'submitit'
    cmd = [str(BIN/'rsacfn'), 'sweep', str(out), '--methods', ','.join(methods), '--launcher', 'submitit-local', '--time_min', '20',
           *[a for k, v in small.items() for a in ('--set', f'{k}={v}')]]
    kill_after_first_run(cmd, out, warm=False)  # submitit starts its own kernels
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    runs = pd.read_csv(out/'runs.csv').set_index('method')
    assert runs.seconds['text_only'] == 0 and runs.seconds['late_fusion'] > 0 and (runs.status == 'ok').all()  # only the missing run ran
    assert len(list((out/'jobs').rglob('*_submitted.pkl'))) >= 2  # every run went through submitit
    theirs = pd.read_csv(out/'f1_table.csv')
    cols = [c for c in local.columns if c.endswith(('_mean', '_std')) or c.startswith('pred_')]
    pd.testing.assert_frame_equal(theirs[cols], local.reset_index(drop=True)[cols], check_dtype=False)


def job_ids(out) -> set:
    "The SLURM jobs a sweep submitted: submitit's folder of each, named by its id."
    return {p.name for p in (out/'jobs').iterdir() if p.name.isdigit()}


def test_a_sweep_on_a_real_slurm_cluster_survives_a_cancelled_job_and_reruns_only_it(tmp_path, small, interrupted_sweep):
    "`--launcher slurm` on a one-node cluster started here: scancel one job mid-run, the rerun submits only that one."
    from slurm_cluster import one_node_cluster, unavailable
    if (why := unavailable()): pytest.skip(f'no one-node SLURM cluster here: {why}')
    methods, out = ['text_only', 'late_fusion'], tmp_path/'slurm'
    cmd = [str(BIN/'rsacfn'), 'sweep', str(out), '--methods', ','.join(methods), '--launcher', 'slurm', '--partition', 'debug',
           '--gpus_per_run', '0', '--cpus_per_run', '1', '--time_min', '20',
           *[a for k, v in small.items() for a in ('--set', f'{k}={v}')]]
    with one_node_cluster() as env:
        sweep = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 300
        while not list((out/'notebooks').glob('.text_only-seed42.*.partial.ipynb')):  # its job runs the notebook
            assert sweep.poll() is None and time.time() < deadline, 'the sweep ended before text_only started'
            time.sleep(0.2)
        first = min(job_ids(out), key=int)  # text_only was submitted first
        subprocess.run(['scancel', first], env=env, check=True)
        said = sweep.communicate(timeout=600)[0]
        assert sweep.returncode != 0 and f'text_only seed 42: failed (slurm job {first} ended CANCELLED' in said, said[-3000:]
        assert 'sacct' not in said  # asked with squeue: this cluster, like many, keeps no accounting
        runs = pd.read_csv(out/'runs.csv').set_index('method')
        assert runs.status.to_dict() == {'text_only': 'failed', 'late_fusion': 'ok'}
        before = job_ids(out)
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert len(job_ids(out) - before) == 1  # only the cancelled run was submitted
    runs = pd.read_csv(out/'runs.csv').set_index('method')
    assert runs.seconds['late_fusion'] == 0 and runs.seconds['text_only'] > 0 and (runs.status == 'ok').all()
    local, theirs = pd.read_csv(interrupted_sweep[0]/'f1_table.csv'), pd.read_csv(out/'f1_table.csv')
    cols = [c for c in local.columns if c.endswith(('_mean', '_std')) or c.startswith('pred_')]
    pd.testing.assert_frame_equal(theirs[cols], local[cols], check_dtype=False)  # the same table as the local sweep's


def test_the_slurm_job_script_carries_the_options(tmp_path):
    from rsacfn.experiments.launchers import SlurmOptions, slurm_script
    text = slurm_script(tmp_path/'sweep', SlurmOptions(partition='gpu-a100', gpus_per_run=1, time_min=600, cpus_per_run=8, account='emo'), 'rsacfn-x')
    for line in ('#SBATCH --partition=gpu-a100', '#SBATCH --gpus-per-node=1', '#SBATCH --time=600', '#SBATCH --cpus-per-task=8',
                 '#SBATCH --account=emo', '#SBATCH --job-name=rsacfn-x', '#SBATCH --nodes=1', '#SBATCH --ntasks-per-node=1',
                 f'#SBATCH --output={tmp_path}/sweep/jobs/%j/%j_0_log.out'):
        assert line in text.splitlines(), (line, text)
    assert f'{sys.executable} -u -m submitit.core._submit {tmp_path}/sweep/jobs/%j' in text
    assert '--partition' not in slurm_script(tmp_path, SlurmOptions()) and '--gpus-per-node' not in slurm_script(tmp_path, SlurmOptions(gpus_per_run=0))
    with pytest.raises(ValueError, match='one GPU; use gpus_per_run=1'): slurm_script(tmp_path, SlurmOptions(gpus_per_run=2))
    with pytest.raises(ValueError, match='time_min >= 1'): slurm_script(tmp_path, SlurmOptions(time_min=0))
    with pytest.raises(ValueError, match="launcher='slurm'"): run_sweep(tmp_path/'s', methods=['text_only'], slurm=SlurmOptions())


def test_a_speaker_independent_sweep_writes_its_intervals_tests_and_reliance(tmp_path, small):
    "`--protocol speaker-independent` end to end: session folds, epochs chosen on a development fold, and every output it promises."
    out = tmp_path/'si'
    methods = ['text_only', 'early_fusion']
    run_sweep(out, methods=methods, seeds=[42], folds=[0, 1], protocol='speaker-independent', params=dict(small, n_folds=4),
              jobs=2, progress=False)  # the tiny corpus has four sessions
    runs = pd.read_csv(out/'runs.csv')
    assert sorted(zip(runs.method, runs.fold)) == sorted((m, f) for m in methods for f in (0, 1)) and (runs.status == 'ok').all()
    for r in runs.itertuples():
        config = json.loads((out/'runs'/r.run/'config.json').read_text())
        assert (config['split'], config['fold'], config['select_epoch']) == ('session', r.fold, 'dev')
    md = (out/'f1_table.md').read_text()
    assert md.startswith('**Protocol: speaker-independent (session folds 0, 1 x seed 42)'), md[:200]
    sig = pd.read_csv(out/'significance.csv').set_index('method')
    # the method-level difference is the mean over the folds of the paired runs' difference, from runs.csv
    by = runs.set_index(['method', 'fold']).macro_f1
    diff = (by['text_only'] - by['early_fusion']).mean()
    assert sig.loc['text_only', 'diff_macro_f1'] == pytest.approx(diff)
    rel = pd.read_csv(out/'reliance.csv')
    assert set(rel.method) == {'early_fusion'}  # the fusion method, not text alone
    for png in ('f1_bars.png', 'intervals.png', 'reliance.png', 'early_fusion_reliance.png'):
        assert (out/'figures'/png).stat().st_size > 1000, png
    att = pd.read_csv(out/'attributions.csv')  # every run's attributions, gathered: the text-only runs' share is all text
    assert set(att.run) == set(runs.run) and (att[att.method == 'text_only'].audio_share == 0).all()
    assert att[att.method == 'early_fusion'].audio_share.between(0, 1).all() and 'top words per emotion' in md


def test_more_folds_than_the_corpus_has_sessions_stops_the_sweep_before_any_run(tmp_path, small, rsacfn_cli):
    "Found once, while the sweep plans, not in every run's notebook after its kernel has started."
    out = tmp_path/'si'
    r = rsacfn_cli('sweep', out, '--methods', 'text_only', '--protocol', 'speaker-independent', '--seeds', '42',
                   *[a for k, v in small.items() for a in ('--set', f'{k}={v}')])
    said = [l for l in r.stderr.replace('\r', '\n').splitlines() if l.strip() and '%|' not in l]  # not the corpus' progress bar
    assert r.returncode == 2 and len(said) == 1 and 'n_folds 5:' in said[0], r.stderr
    assert said[0].endswith('has 4 sessions; use --n_folds 4 or less'), said  # in the sweep's own flag
    assert not (out/'runs').exists() and not (out/'notebooks').exists()


def test_a_sweep_says_each_finished_run_once_with_its_scores_and_the_time_left(tmp_path, small, rsacfn_cli):
    "Its base configuration from a file, every run to TensorBoard, and a line per run as it finishes."
    base = tmp_path/'base.yaml'
    base.write_text(f"demo_size: tiny\nepochs: 2\nwav_model: {small['wav_model']}\ntext_model: {small['text_model']}\n"
                    "method: rsa_cfn\nreport_to: mlflow\n")  # method: the sweep's own (--methods), named, not used
    out = tmp_path/'sweep'
    r = rsacfn_cli('sweep', out, '--methods', 'text_only,speech_only', '--config', base, '--set', 'epochs=1',
                   '--report_to', 'tensorboard', '--baseline', 'none')
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count(f'--config {base}: method set by the sweep for each run (--methods)') == 1
    runs = pd.read_csv(out/'runs.csv')
    lines = [l for l in r.stdout.splitlines() if re.match(r'\[\d/2\] ', l)]
    assert len(lines) == 2, r.stdout  # one per run, once each
    for line, (method, seed) in zip(lines, [('text_only', 42), ('speech_only', 42)]):
        row = runs[runs.method == method].iloc[0]
        assert f"{method} seed {seed}: {row.seconds / 60:.1f} min, weighted F1 {row.weighted_f1:.4f}, macro F1 {row.macro_f1:.4f}" in line
    assert re.search(r'; about \d+\.\d min left for the other 1$', lines[0]) and 'left' not in lines[1]
    for name in ('text_only-seed42', 'speech_only-seed42'):
        assert json.loads((out/'runs'/name/'config.json').read_text())['epochs'] == 1  # --set over the file
        assert list((out/'runs'/'tensorboard'/name).glob('events.out.tfevents.*'))
    assert not (out/'runs'/'mlruns').exists()  # --report_to over the file's report_to


def test_a_local_sweep_gives_each_run_a_gpu_of_its_own_and_the_mps_daemon_it_started_then_stops_it(tmp_path, small,
                                                                                                     monkeypatch):
    """Two GPUs (as CUDA_VISIBLE_DEVICES names them), two runs at a time, `mps=True`: a stand-in for NVIDIA's MPS
    program says what it was asked; a plugin, imported in each run's kernel, says what the kernel saw."""
    from rsacfn.experiments.launchers import MPS_CONTROL
    asked, seen = tmp_path/'asked.txt', tmp_path/'seen.txt'
    (tmp_path/'bin').mkdir()
    (tmp_path/'bin'/MPS_CONTROL).write_text(f'#!/bin/sh\necho "$* | $CUDA_MPS_PIPE_DIRECTORY | $(cat -)" >> {asked}\n')
    (tmp_path/'bin'/MPS_CONTROL).chmod(0o755)
    (tmp_path/'saw.py').write_text(
        f"import os\nwith open({str(seen)!r}, 'a') as f:\n"
        "    print(os.environ.get('CUDA_VISIBLE_DEVICES'), os.environ.get('CUDA_MPS_PIPE_DIRECTORY'), file=f)\n")
    monkeypatch.setenv('PATH', f"{tmp_path/'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv('CUDA_MPS_PIPE_DIRECTORY', str(tmp_path/'no_daemon'))  # the machine runs none
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '7,8')  # no such GPUs: the kernels train on the CPU, as without them
    params = dict(small, plugins=[str(tmp_path/'saw.py')])
    table = run_sweep(tmp_path/'sweep', methods=['text_only'], seeds=[42, 43], params=params, jobs=2, progress=False,
                      mps=True)
    assert table.failed.sum() == 0
    (start, pipe, _), (stop, pipe_then, said) = (line.split(' | ') for line in asked.read_text().splitlines())
    assert (start, stop, said, pipe_then) == ('-d', '', 'quit', pipe) and 'rsacfn-mps-' in pipe
    kernels = [line.split() for line in seen.read_text().splitlines() if not line.startswith('7,8 ')]  # not the sweep's
    assert sorted(kernels) == [['7', pipe], ['8', pipe]], seen.read_text()  # one GPU each, both told of the daemon
    assert os.environ['CUDA_MPS_PIPE_DIRECTORY'] == str(tmp_path/'no_daemon') and not Path(pipe).exists()
