"The trainer: determinism, SIGKILL and resume, two-process data parallel, learning on the demo corpus."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
pytestmark = pytest.mark.slow  # `make test-quick` leaves this file out
import torch
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.splits import split_corpus
from rsacfn.config import METRICS, TrainConfig
from rsacfn.evaluation.metrics import classification_metrics
from rsacfn.files import OUTPUTS
from rsacfn.training.state import save_atomic
from rsacfn.training.loop import train
from rsacfn.training.presets import resolve_config

os.environ['HF_HUB_OFFLINE'] = '1'
BIN = Path(sys.executable).parent


@pytest.fixture(scope='module')
def setup(default_corpus, tiny_backbones):
    tiny = tiny_backbones
    return dict(data_path=str(default_corpus), wav_model=str(tiny['audio']), text_model=str(tiny['text']),
                audio_max_lens=40_000, text_max_lens=64, lr=1e-3, batch_size=16, quiet=True)


def cli_args(cfg: dict):
    out = []
    for k, v in cfg.items(): out += [f'--{k}', json.dumps(v) if isinstance(v, dict) else str(v)]
    return out


def test_rsa_cfn_learns_the_demo_corpus(setup, tmp_path):
    r = train(TrainConfig(**setup, output_dir=str(tmp_path), ver='rsa_cfn', method='rsa_cfn',
                          head_sizes=dict(proj_dim=32), epochs=4))
    _, valid = split_corpus(read_kemdy20(setup['data_path']))
    majority = classification_metrics(valid.label.astype(int), np.zeros(len(valid), int))
    assert r['weighted_f1'] > majority['weighted_f1'] + 0.25, (r['weighted_f1'], majority['weighted_f1'])
    assert r['macro_f1'] > majority['macro_f1'] + 0.3
    preds = pd.read_csv(Path(r['run_dir'])/'predictions.csv')
    assert len(preds) == len(valid) == r['n']  # the whole validation set, no dropped batch
    assert classification_metrics(valid.label.astype(int), preds.filter(like='p_').values.argmax(1))['weighted_f1'] == r['weighted_f1']


def test_the_epoch_is_chosen_on_the_development_split_and_scored_on_the_validation_fold(setup, tiny_corpus, tmp_path,
                                                                                      monkeypatch):
    "The two splits are made to disagree: the development split prefers epoch 1, the scored fold epoch 3."
    import rsacfn.training.loop as loop
    scores = {'valid': iter([0.1, 0.2, 0.3]), 'dev': iter([0.9, 0.5, 0.1])}
    calls = []
    def scripted(module, loader, *a, **k):  # fit_epoch scores the validation fold, then the development split
        metrics, probs, dims = evaluate(module, loader, *a, **k)
        split = 'dev' if len(calls) % 2 else 'valid'; calls.append(split)
        return dict(metrics, weighted_f1=next(scores[split])), probs, dims
    evaluate = loop.evaluate
    monkeypatch.setattr(loop, 'evaluate', scripted)
    setup = dict(setup, data_path=str(tiny_corpus))  # four sessions: fold 3 scored, fold 0 chooses the epoch, 1-2 train
    r = train(TrainConfig(**setup, output_dir=str(tmp_path), ver='dev', method='early_fusion', split='session', n_folds=4, fold=3,
                          epochs=3, select_epoch='dev'))
    history = [json.loads(l) for l in (Path(r['run_dir'])/'metrics.jsonl').read_text().splitlines()]
    assert [h['dev_weighted_f1'] for h in history] == [0.9, 0.5, 0.1] and [h['weighted_f1'] for h in history] == [0.1, 0.2, 0.3]
    # picked by the development split (epoch 1), not by the scored fold (epoch 3), and reported with the fold's score
    assert r['epoch'] == 1 and r['weighted_f1'] == 0.1 and r['select_epoch'] == 'dev'
    assert all(set(f'dev_{k}' for k in METRICS) <= set(h) for h in history)
    valid = split_corpus(read_kemdy20(setup['data_path']), 'session', fold=3, n_folds=4)[1]
    assert pd.read_csv(Path(r['run_dir'])/'predictions.csv').segment_id.tolist() == valid.segment_id.tolist()


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(setup, tiny_corpus, tmp_path):
    cfg = dict(setup, data_path=str(tiny_corpus), output_dir=str(tmp_path), method='residual', epochs=3)
    whole = train(TrainConfig(**cfg, ver='whole'))
    cmd = [str(BIN/'rsacfn'), 'train', *cli_args(dict(cfg, ver='killed'))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, HF_HUB_OFFLINE='1'))
    log = tmp_path/'killed'/'metrics.jsonl'
    deadline = time.time() + 300
    while not (log.is_file() and len(log.read_text().splitlines()) == 1):
        assert proc.poll() is None and time.time() < deadline, 'the run ended before its first epoch was logged'
        time.sleep(0.05)
    time.sleep(json.loads(log.read_text())['train_seconds'] * 0.5)  # half way through epoch 2
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert len(log.read_text().splitlines()) == 1 and not (tmp_path/'killed'/'result.json').exists()  # killed mid-epoch 2
    with pytest.raises(FileExistsError, match='another ver|resume'):  # a finished run is never silently overwritten
        train(TrainConfig(**cfg, ver='whole'))
    resumed = train(TrainConfig(**cfg, ver='killed', resume=True))
    assert {k: resumed[k] for k in METRICS + ('epoch',)} == {k: whole[k] for k in METRICS + ('epoch',)}
    a = pd.read_json(tmp_path/'whole'/'metrics.jsonl', lines=True); b = pd.read_json(log, lines=True)
    assert a[list(METRICS)].equals(b[list(METRICS)]) and b.epoch.tolist() == [1, 2, 3]
    from safetensors.torch import load_file
    wa, wb = load_file(str(tmp_path/'whole'/'best'/'model.safetensors')), load_file(str(tmp_path/'killed'/'best'/'model.safetensors'))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)  # the same best checkpoint


KILLED_BEFORE_ITS_RESULT = '''
import json, os, signal, sys
import rsacfn.training.loop as T
from rsacfn.config import TrainConfig
write = T.write_json
def dies(path, obj):  # every epoch is trained and checkpointed; the run's result is not written yet
    if path.name == 'result.json': os.kill(os.getpid(), signal.SIGKILL)
    write(path, obj)
T.write_json = dies
T.train(TrainConfig(**json.loads(sys.argv[1])))
'''


def test_the_last_epochs_resume_state_is_not_written_and_a_kill_before_the_result_resumes_to_the_same_run(setup, tiny_corpus, tmp_path):
    cfg = dict(setup, data_path=str(tiny_corpus), output_dir=str(tmp_path), method='residual', epochs=2)
    whole = train(TrainConfig(**cfg, ver='whole'))
    assert not (tmp_path/'whole'/'last.pt').exists()
    killed = tmp_path/'killed'
    r = subprocess.run([sys.executable, '-c', KILLED_BEFORE_ITS_RESULT, json.dumps(dict(cfg, ver='killed'))], capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert len((killed/'metrics.jsonl').read_text().splitlines()) == 2 and not (killed/'result.json').exists()
    assert torch.load(killed/'last.pt', weights_only=True)['epoch'] == 0  # the first epoch's: the last one's was never written
    resumed = train(TrainConfig(**cfg, ver='killed', resume=True))  # epoch 2 again, from epoch 1's state
    assert {k: resumed[k] for k in METRICS + ('epoch',)} == {k: whole[k] for k in METRICS + ('epoch',)}
    assert not (killed/'last.pt').exists() and resumed['epochs_done'] == 2
    from safetensors.torch import load_file
    wa, wb = load_file(str(tmp_path/'whole'/'best'/'model.safetensors')), load_file(str(killed/'best'/'model.safetensors'))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path/'last.pt'
    save_atomic({'epoch': 1}, path)
    def dies(obj, f, *a, **k): f.write(b'half a checkpoint'); raise KeyboardInterrupt
    monkeypatch.setattr(torch, 'save', dies)
    with pytest.raises(KeyboardInterrupt): save_atomic({'epoch': 2}, path)
    monkeypatch.undo()
    assert torch.load(path)['epoch'] == 1 and [p.name for p in tmp_path.iterdir() if p.name != OUTPUTS] == ['last.pt']


RANK_SCRIPT = '''
import hashlib, json, os, sys
import accelerate, torch
from rsacfn.config import TrainConfig
from rsacfn.training.loop import train
trained = []
prepare = accelerate.Accelerator.prepare
def keep(self, *objs, **kw):  # the module the optimizer updates, as this process holds it
    trained.extend(o for o in objs if isinstance(o, torch.nn.Module))
    return prepare(self, *objs, **kw)
accelerate.Accelerator.prepare = keep
r = train(TrainConfig(**json.loads(sys.argv[1])))
digest = hashlib.sha256()
for k, v in sorted(trained[0].state_dict().items()): digest.update(k.encode() + v.detach().cpu().numpy().tobytes())
out = os.path.join(sys.argv[2], f"rank{os.environ.get('RANK', '0')}.json")
json.dump(dict({k: r[k] for k in ('weighted_f1', 'macro_f1', 'uar', 'accuracy', 'n', 'num_processes')}, weights=digest.hexdigest()),
          open(out, 'w'))
'''


STARTERS = {  # the two ways the README gives to start one run on several processes
    'torchrun': [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29517'],
    'accelerate launch': [str(BIN/'accelerate'), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
                          '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', '29518'],
}


@pytest.mark.parametrize('launcher', list(STARTERS))
def test_two_processes_train_one_model(setup, tiny_corpus, tmp_path, launcher):
    "Two processes end with the same weights, bit for bit, and train as one process does on the same global batches."
    script = tmp_path/'rank.py'; script.write_text(RANK_SCRIPT)
    cfg = dict(setup, data_path=str(tiny_corpus), method='early_fusion', epochs=2, device='cpu')
    single = train(TrainConfig(**cfg, output_dir=str(tmp_path/'single')))
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
    out = subprocess.run([*STARTERS[launcher], str(script), json.dumps(dict(cfg, output_dir=str(tmp_path/'ddp'))), str(tmp_path)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path/f'rank{i}.json').read_text()) for i in (0, 1))
    assert r0['num_processes'] == 2 and r0['weights'] == r1['weights']  # gradients were averaged: one model, not two
    assert r0['n'] == single['n']                                         # scored over the whole validation set, once
    # each global batch of 16 split 8 + 8: the losses follow the one-process run's (dropout draws differ per process)
    ddp, one = (pd.read_json(tmp_path/d/'baseline'/'metrics.jsonl', lines=True) for d in ('ddp', 'single'))
    np.testing.assert_allclose(ddp.train_loss, one.train_loss, rtol=0.05)
    from safetensors.torch import load_file
    wd, ws = (load_file(str(tmp_path/d/'baseline'/'best'/'model.safetensors')) for d in ('ddp', 'single'))
    assert wd.keys() == ws.keys()
    gap = {k: float((wd[k] - ws[k]).abs().max()) for k in ws if k.startswith('head.')}
    assert max(gap.values()) < 0.02, gap  # the same best epoch's head, up to those draws


def test_gradient_accumulation_matches_the_larger_batch(setup, tmp_path):
    cfg = dict(setup, output_dir=str(tmp_path), method='early_fusion', freeze_backbones=True,
               epochs=2, scheduler='linear')
    for ver, kw in (('b16', dict(batch_size=16)), ('b8x2', dict(batch_size=8, grad_accum=2)), ('b8', dict(batch_size=8))):
        train(TrainConfig(**dict(cfg, **kw), ver=ver, keep_resume_state=True))
    lr = {v: [json.loads(l)['lr'] for l in (tmp_path/v/'metrics.jsonl').read_text().splitlines()] for v in ('b16', 'b8x2', 'b8')}
    assert lr['b8x2'] == pytest.approx(lr['b16']) and lr['b16'][0] == pytest.approx(setup['lr'] / 2)  # half the steps of batch 8
    w = {v: torch.load(tmp_path/v/'last.pt', weights_only=False)['trainable']['head.classifier.weight'] for v in ('b16', 'b8x2', 'b8')}
    gap = lambda a, b: float((w[a] - w[b]).abs().max())
    assert gap('b8x2', 'b16') < 0.1 * gap('b8', 'b16'), (gap('b8x2', 'b16'), gap('b8', 'b16'))


def test_mixed_precision_is_bfloat16_where_the_device_has_it_and_float16_on_older_gpus():
    from rsacfn.training.precision import amp_precision
    def gpu(dtype='auto', has=True, use_amp=True):
        return amp_precision(use_amp, False, 'cuda', amp_dtype=dtype, gpu_bf16=has)
    assert (gpu(), gpu(has=False), gpu('float16'), gpu('bfloat16'), gpu(use_amp=False)) == \
        ('bf16', 'fp16', 'fp16', 'bf16', 'no')
    with pytest.raises(ValueError, match="no bfloat16 units .* amp_dtype='float16'"): gpu('bfloat16', has=False)
    assert amp_precision(True, True, 'cpu', bf16=True) == 'bf16' and amp_precision(True, False, 'cpu', bf16=True) == 'no'
    with pytest.raises(ValueError, match='trains on mps'): amp_precision(True, True, 'mps')  # cpu_amp is never silently ignored
    with pytest.raises(ValueError, match='trains on cuda'): amp_precision(True, True, 'cuda')
    with pytest.raises(ValueError, match='no bfloat16 units'): amp_precision(False, True, 'cpu', bf16=False)
    with pytest.raises(ValueError, match="amp_dtype='float16' with use_amp=False"):
        TrainConfig(amp_dtype='float16', use_amp=False)
    with pytest.raises(ValueError, match="unknown amp_dtype 'half'"): TrainConfig(amp_dtype='half')


def test_amp_dtype_at_its_default_leaves_every_identity_as_it_was(tiny_corpus):
    "amp_dtype came after identities were written: at 'auto' it is not in them (the runs written before keep theirs)."
    from rsacfn.training.identity import identity_changes, run_identity
    df = read_kemdy20(tiny_corpus)
    def identity(dtype):
        cfg = TrainConfig(data_path=str(tiny_corpus), method='text_only', amp_dtype=dtype)
        return run_identity(resolve_config(cfg), df)
    auto, half = identity('auto'), identity('float16')
    assert 'amp_dtype' not in auto['config'] and half['config']['amp_dtype'] == 'float16'
    assert identity_changes(auto, half) == ["amp_dtype: None -> 'float16'"]


@pytest.fixture
def tiny_setup(tiny_corpus, tiny_backbones, tmp_path):
    return dict(data_path=str(tiny_corpus), wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']), method='early_fusion',
                audio_max_lens=40_000, text_max_lens=64, lr=1e-3, batch_size=16, quiet=True, output_dir=str(tmp_path))


def test_cpu_amp_trains_under_bfloat16_autocast_and_saves_float32_weights(tiny_setup, monkeypatch):
    "The bfloat16 path runs in CI: on a CPU without bfloat16 units it is forced here (emulated, slower, same numbers path)."
    import rsacfn.training.loop as T, rsacfn.training.precision as P
    from rsacfn.models.multimodal import MultiModel
    if not P.cpu_bf16(): monkeypatch.setattr(P, 'cpu_bf16', lambda: True)
    seen = set()
    orig_setup = T.setup
    def watched(*a, **k):
        s = orig_setup(*a, **k)
        s.model.audio_encoder.encoder.layers[0].feed_forward.intermediate_dense.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
        return s
    monkeypatch.setattr(T, 'setup', watched)
    r = train(TrainConfig(**tiny_setup, ver='bf16', cpu_amp=True, epochs=2))
    assert seen == {torch.bfloat16}, seen  # every training and validation forward ran in bfloat16
    rows = pd.read_json(Path(r['run_dir'])/'metrics.jsonl', lines=True)
    assert np.isfinite(rows[list(METRICS)].values).all() and rows.train_loss.iloc[1] < rows.train_loss.iloc[0]
    assert {p.dtype for p in MultiModel.from_pretrained(Path(r['run_dir'])/'best').parameters()} == {torch.float32}


def test_the_float16_gradient_scaler_skips_overflowing_steps_and_resumes_with_its_scale(tiny_setup, monkeypatch):
    "CUDA's float16 path without a GPU: Accelerate's scaler, given a scale so large that the first steps overflow, runs on CPU."
    import rsacfn.training.loop as T
    orig = T._accelerator
    def with_scaler(cfg):
        acc = orig(cfg)
        acc.scaler = torch.amp.GradScaler('cpu', init_scale=2.0 ** 127, growth_interval=10 ** 6)  # Accelerate's fp16 scaler, at a scale the first steps overflow (never grown back)
        return acc
    monkeypatch.setattr(T, '_accelerator', with_scaler)
    whole = train(TrainConfig(**tiny_setup, ver='whole', epochs=2, keep_resume_state=True))  # the loss is finite: skipped steps are not a NonFiniteLoss
    state = torch.load(Path(whole['run_dir'])/'last.pt', weights_only=True)
    assert 0 < state['scaler']['scale'] < 2.0 ** 127  # overflowing steps were skipped and the scale came down
    train(TrainConfig(**tiny_setup, ver='resumed', epochs=1, keep_resume_state=True))
    resumed = train(TrainConfig(**tiny_setup, ver='resumed', epochs=2, resume=True))
    assert {k: resumed[k] for k in METRICS} == {k: whole[k] for k in METRICS}
    from safetensors.torch import load_file
    wa, wb = (load_file(str(Path(r['run_dir'])/'best'/'model.safetensors')) for r in (whole, resumed))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resuming_in_another_precision_is_refused_and_writes_nothing(tiny_setup):
    "`last.pt` records its precision: going on in another (an older GPU, a CPU) would mix two trainings in one."
    r = train(TrainConfig(**tiny_setup, ver='run', epochs=1, keep_resume_state=True))
    run, last = Path(r['run_dir']), Path(r['run_dir'])/'last.pt'
    state = torch.load(last, weights_only=True)
    assert state['precision'] == 'no'  # float32 on this CPU
    torch.save(dict(state, precision='bf16'), last)
    files = lambda: {f: f.read_bytes() for f in run.rglob('*') if f.is_file()}
    before = files()
    with pytest.raises(ValueError, match='last.pt was trained in bfloat16 and this machine would go on in float32'):
        train(TrainConfig(**tiny_setup, ver='run', epochs=2, resume=True))
    assert files() == before


def test_the_training_loop_reads_the_device_once_per_logging_interval_not_every_step(tiny_setup, monkeypatch):
    "On a GPU every read of a tensor's value waits for the device; rsacfn's own loop reads the loss once per `log_every` steps."
    import traceback
    import rsacfn, rsacfn.training.loop as T
    package, reads, active = str(Path(rsacfn.__file__).parent), [], [False]
    for name in ('item', 'tolist', 'cpu', 'numpy', '__bool__', '__float__', '__int__'):
        def read(self, *a, _orig=getattr(torch.Tensor, name), _name=name, **k):
            if active[0]:
                caller = traceback.extract_stack(limit=2)[0]
                if caller.filename.startswith(package): reads.append(f'{_name} {Path(caller.filename).name}:{caller.lineno}')
            return _orig(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, read)
    epoch = T.train_epoch
    def watched(*a, **k):
        active[0] = True
        try: return epoch(*a, **k)
        finally: active[0] = False
    monkeypatch.setattr(T, 'train_epoch', watched)
    counts = {}
    for every in (1, 50):
        reads.clear()
        train(TrainConfig(**tiny_setup, ver=f'every{every}', epochs=1, log_every=every))
        counts[every] = len(reads)
    steps = -(-len(split_corpus(read_kemdy20(tiny_setup['data_path']))[0]) // 16)  # batches of 16
    assert counts[50] <= 4, reads                      # a steps-long epoch, read once (plus the epoch's sampler and total)
    assert counts[1] >= counts[50] + steps - 1, counts  # reading every step costs a read per step


def test_data_loading_defaults_follow_the_device():
    "Workers and pinned memory where benchmarks/limits.py loading measured them to help (CUDA), none where they cost (a 2-core CPU)."
    from rsacfn.training.loop import loader_settings
    assert TrainConfig().num_workers is None  # None: chosen per device
    assert loader_settings(TrainConfig(), 'cuda') == dict(num_workers=2, pin_memory=True)
    assert loader_settings(TrainConfig(), 'cpu') == dict(num_workers=0, pin_memory=False)
    assert loader_settings(TrainConfig(), 'mps') == dict(num_workers=0, pin_memory=False)
    assert loader_settings(TrainConfig(num_workers=3), 'cpu') == dict(num_workers=3, pin_memory=False)  # an explicit setting is kept
    assert loader_settings(TrainConfig(num_workers=0), 'cuda') == dict(num_workers=0, pin_memory=True)
    with pytest.raises(ValueError, match='num_workers=-1'): TrainConfig(num_workers=-1)


def test_audio_padding_follows_the_device_and_reaches_the_training_batches(tiny_setup):
    "On CUDA each batch's audio is padded up to whole seconds (a GPU pays per new batch shape: benchmarks/limits.py shapes); elsewhere to its longest clip."
    from rsacfn.training.precision import _accelerator
    from rsacfn.training.prepare import _load_data
    from rsacfn.training.loop import audio_pad_multiple, setup
    assert TrainConfig().audio_pad_multiple is None  # None: chosen per device
    assert audio_pad_multiple(TrainConfig(), 'cuda') == 16000 and audio_pad_multiple(TrainConfig(), 'cpu') == 1
    assert audio_pad_multiple(TrainConfig(audio_pad_multiple=8000), 'cuda') == 8000  # an explicit setting is kept
    with pytest.raises(ValueError, match='audio_pad_multiple=0'): TrainConfig(audio_pad_multiple=0)
    # frozen backbones' features are extracted once per clip, unpadded: a padding asked for there would be ignored, so it is refused
    with pytest.raises(ValueError, match='audio_pad_multiple=16000.*freeze_backbones'): TrainConfig(freeze_backbones=True, audio_pad_multiple=16000)
    with pytest.raises(ValueError, match='static_padding=True.*freeze_backbones'): TrainConfig(freeze_backbones=True, static_padding=True)
    with pytest.raises(ValueError, match='cache_cnn=True.*freeze_backbones'): TrainConfig(freeze_backbones=True, cache_cnn=True)
    TrainConfig(freeze_backbones=True)  # the per-device default is no request
    lengths = {}
    for multiple in (None, 16000):
        cfg = resolve_config(TrainConfig(**tiny_setup, ver=f'pad{multiple}', audio_pad_multiple=multiple))
        acc = _accelerator(cfg)
        s = setup(cfg, acc, *_load_data(cfg))
        lengths[multiple] = [b['audio_attention_mask'].shape[1] for b in s.train_loader]  # the waveforms' padded length
    assert any(n % 16000 for n in lengths[None])  # on this CPU: each batch as long as its longest clip
    assert all(n % 16000 == 0 or n == tiny_setup['audio_max_lens'] for n in lengths[16000])
    assert all(r >= n for r, n in zip(lengths[16000], lengths[None])) and lengths[16000] != lengths[None]


@pytest.mark.parametrize('option', ['group_by_length', 'batch_weighted_sampler'])
def test_the_sampling_options_reach_the_training_batches(setup, tiny_corpus, tmp_path, monkeypatch, option):
    "The batches the training step receives are the sampler's order for the option: every segment the collator sees, in order."
    import rsacfn.training.loop as trainer
    from rsacfn.training.prepare import load_split
    seen, real = [], trainer.training_data
    def spying(cfg, acc, model, df, *splits):
        trainable, collate, *datasets = real(cfg, acc, model, df, *splits)
        def recorded(items):
            seen.append([it['segment_id'] for it in items])
            return collate(items)
        return (trainable, recorded, *datasets)
    monkeypatch.setattr(trainer, 'training_data', spying)
    cfg = resolve_config(TrainConfig(**dict(setup, data_path=str(tiny_corpus), batch_size=8), method='early_fusion', epochs=1,
                                     output_dir=str(tmp_path), **{option: True}))
    train(cfg)
    train_df, _ = load_split(cfg)
    sampler = trainer.train_sampler(cfg, train_df, 'both'); sampler.set_epoch(0)
    order = train_df.segment_id.values[list(sampler)].tolist()
    batches = [order[i:i + 8] for i in range(0, len(order), 8)]
    assert seen[:len(batches)] == batches  # the trainer's first epoch is exactly this order, cut into batches of 8
    ids = [s for b in batches for s in b]
    if option == 'batch_weighted_sampler':  # drawn with replacement, rare classes more often than the corpus holds them
        drawn = train_df.set_index('segment_id').loc[ids].label.value_counts(normalize=True)
        assert len(set(ids)) < len(ids) and drawn.get(0, 0) < (train_df.label == 0).mean()
    else:  # each batch holds segments of similar length: far less spread within a batch than across the epoch
        dur = train_df.set_index('segment_id').duration
        within = np.mean([dur[b].max() - dur[b].min() for b in batches if len(b) == 8])
        assert within < 0.5 * (dur.max() - dur.min()), within


def test_the_frozen_cnn_runs_once_per_clip_on_a_cpu_and_the_run_is_the_one_it_gives_every_step(tiny_setup, monkeypatch):
    """cache_cnn=None on a CPU: the CNN's output is computed once per clip, not every epoch; losses, metrics and weights
    are those of the CNN running every step (SpecAugment's draws included)."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2FeatureEncoder
    clips, forward = {}, Wav2Vec2FeatureEncoder.forward
    def counted(self, x):
        clips[current] = clips.get(current, 0) + x.shape[0]
        return forward(self, x)
    monkeypatch.setattr(Wav2Vec2FeatureEncoder, 'forward', counted)
    runs = {}
    for current in (False, None):
        runs[current] = train(TrainConfig(**tiny_setup, ver=f'cnn_{current}', epochs=2, cache_cnn=current))
    train_df, valid_df = split_corpus(read_kemdy20(tiny_setup['data_path']))
    assert clips[None] == len(train_df) + len(valid_df)  # once per clip
    assert clips[False] == 2 * (len(train_df) + len(valid_df))  # without it: in every epoch's steps and validation
    history = {c: pd.read_json(Path(r['run_dir'])/'metrics.jsonl', lines=True) for c, r in runs.items()}
    np.testing.assert_allclose(history[None].train_loss, history[False].train_loss, rtol=1e-5)
    assert {k: runs[None][k] for k in METRICS} == {k: runs[False][k] for k in METRICS}
    from safetensors.torch import load_file
    wa, wb = (load_file(str(Path(r['run_dir'])/'best'/'model.safetensors')) for r in runs.values())
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)


def test_the_cnn_cache_is_chosen_per_device_and_refused_where_it_would_change_the_result(tiny_backbones, tiny_corpus,
                                                                                         monkeypatch):
    """None: on a CPU where it fits, never on CUDA; True where the CNN trains or normalises over time (its output
    depends on the batch's padding) is an error naming the reason."""
    import types
    import rsacfn.training.features as T
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    from rsacfn.models.backbones import load_audio_encoder
    df = split_corpus(read_kemdy20(str(tiny_corpus)))[0]
    layer = types.SimpleNamespace(audio_encoder=load_audio_encoder(str(tiny_backbones['audio'])))
    cfg = lambda c: TrainConfig(method='early_fusion', cache_cnn=c)
    assert T.uses_cnn_cache(cfg(None), layer, 'cpu', df) and not T.uses_cnn_cache(cfg(None), layer, 'cuda', df)
    assert T.uses_cnn_cache(cfg(True), layer, 'cuda', df) and not T.uses_cnn_cache(cfg(False), layer, 'cpu', df)
    seconds = df.duration.clip(upper=cfg(None).audio_max_lens / 16000).sum()
    expected = seconds * 50 * 32 * 4  # 50 frames a second, 32 channels, float32
    assert abs(T.cnn_cache_bytes(cfg(None), layer, df) - expected) < 0.02 * expected
    monkeypatch.setattr(T, 'CNN_CACHE_BYTES', T.cnn_cache_bytes(cfg(None), layer, df) - 1)
    assert not T.uses_cnn_cache(cfg(None), layer, 'cpu', df)  # too large for the default: the CNN runs every step
    group = types.SimpleNamespace(audio_encoder=Wav2Vec2Model(Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=(32,) * 7,
        feat_extract_norm='group')))
    group.audio_encoder.freeze_feature_encoder()
    assert not T.uses_cnn_cache(cfg(None), group, 'cpu', df)
    with pytest.raises(ValueError, match=r"cache_cnn=True: .*feat_extract_norm='group'.*cache_cnn=None"):
        T.uses_cnn_cache(cfg(True), group, 'cpu', df)
    layer.audio_encoder.feature_extractor.requires_grad_(True)
    assert not T.uses_cnn_cache(cfg(None), layer, 'cpu', df)
    with pytest.raises(ValueError, match='cache_cnn=True: the CNN trains'):
        T.uses_cnn_cache(cfg(True), layer, 'cpu', df)


def test_extracting_features_draws_nothing_from_the_global_random_generator(tiny_backbones, tiny_corpus, tmp_path):
    "A frozen run trains the same whether it extracted its features or found them cached (the sweep's runs in any order)."
    from rsacfn.models.multimodal import MultiModel
    from rsacfn.training.features import extract_features
    model = MultiModel.from_backbones('early_fusion', tiny_backbones['audio'], tiny_backbones['text'], audio_max_lens=32_000,
                                      text_max_lens=64)
    df = read_kemdy20(str(tiny_corpus)).head(8)
    draws = []
    for _ in range(2):  # extracted, then found in the cache
        torch.manual_seed(0)
        extract_features(model, df, tmp_path/'cache', batch_size=4, progress=False)
        draws.append(torch.rand(1).item())
    assert draws[0] == draws[1]
