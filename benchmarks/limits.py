"""How far rsacfn is from the limits of the machine it runs on: startup, peak matrix throughput, mixed precision, MFU.

    python benchmarks/limits.py startup                     # the command line against `import torch`
    python benchmarks/limits.py mfu --backbones paper       # model FLOPs utilisation per method, float32 and bfloat16
    python benchmarks/limits.py precision                   # bfloat16 autocast against float32 on the demo: time and F1 over 3 seeds
    python benchmarks/limits.py habits                      # whole runs: the published pipeline's habits against the defaults
    python benchmarks/limits.py habits --segments 1920 --duration 0.6,1.0   # the same on a corpus of short clips
    python benchmarks/limits.py loading --device cuda       # data-loading workers and pinned memory
    python benchmarks/limits.py checkpoint                  # the resume state at the paper's sizes: what training waits for
    python benchmarks/limits.py step --steps 20             # rsacfn's training step against a bare PyTorch loop
    python benchmarks/limits.py syncs --device cuda         # host-device synchronisations per training step
    python benchmarks/limits.py firststep                   # from the command to the first step: imports, corpus, model, loaders
    python benchmarks/limits.py demo                        # make demo on a fresh clone of HEAD, empty cache (about 7 minutes)

Every section prints a table preceded by the command that made it and the machine it ran on.

- **startup**: the median wall time of 5 fresh interpreters for `import torch` and for the command line's help pages
  (target: each in less than half of `import torch`), and for the libraries a run cannot do without (torch, Accelerate,
  transformers' `Wav2Vec2Model` and `RobertaModel`) against `import rsacfn.training.loop` (target: at most 1.1x them) and
  `import rsacfn.experiments.experiment` (what each sweep run's kernel imports: the figures too).
- **peak**: the best of several large square matrix products (float32 and bfloat16) in this process: what the
  cores can do, the denominator of MFU.
- **mfu**: per method, one training step of the trainer itself (`rsacfn.training.loop.setup`, Accelerate, fused AdamW)
  on a real demo batch at the method's batch size with dynamic padding; model FLOPs per step counted by
  `torch.utils.flop_counter.FlopCounterMode` (matrix products, convolutions, attention; forward and backward),
  divided by the median step time, against the measured peak of the precision in use; then the operators that
  took the step's time (`torch.profiler`, self CPU time). Target: 50 % of the peak.
- **precision**: whole demo runs (`--preset demo`, early_fusion, 3 seeds) in float32 and with `cpu_amp=True`:
  epoch time and validation F1, to decide the CPU default.
- **habits**: whole `train` runs in the published pipeline's habits (static padding to 96000 samples / 256 tokens,
  the corpus decoded before training) against the defaults and `group_by_length`; targets 3x and 5x.
- **checkpoint**: the resume state (`last.pt`) at the paper's sizes, early_fusion and rsa_cfn: its size, and the
  seconds the training loop waits for it, written in the loop (before) and by the background `StateWriter` (now).
- **step**: rsacfn's training step (`train_epoch` over the same collated batches) against a bare PyTorch loop on the
  same model, batches and optimizer, tiny backbones: the overhead of Accelerate, logging and the schedule; target 1.3x.
- **syncs** (CUDA only): synchronisations between host and GPU per training step, counted with
  `torch.cuda.set_sync_debug_mode('warn')` over one epoch of `train_epoch`; target: fewer than one per step.
- **firststep**: from a fresh interpreter to the end of the first training step, split into imports, corpus reading,
  model building, loader start and the step, in the published pipeline's habits and in the defaults (median of 3).
- **demo**: `make demo` on a fresh clone of HEAD with an empty rsacfn cache against the 8-minute target, split into
  the install, the corpus and pretraining, and the sweep; each row of its table beside the README's.
- **loading**: whole `train` runs with 0, 2 and 4 data-loading worker processes, with and without pinned memory
  (pinned host memory only matters on CUDA): the median epoch time of epochs 2 onwards.

`--device cuda` runs mfu, habits and loading on the GPU: the peaks are then float32, bfloat16 and float16 products on
the GPU (float32 without TF32, as the trainer runs it), the precisions float32, bfloat16 (the trainer's CUDA default
under `use_amp` where the GPU has it; MFU target 15 %) and float16 with a gradient scaler (`amp_dtype='float16'`, the
published pipeline's, which habits trains it in; target for the default there 1.5x), times wait for the GPU
(`torch.cuda.synchronize`) and the profile ranks operators by their GPU time.
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TQDM_DISABLE', '1')
BIN = Path(sys.executable).parent


def machine(device='cpu') -> str:
    import torch, transformers
    from rsacfn.training.precision import cpu_bf16
    gpu = f'GPU: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}; ' if device == 'cuda' else ''
    return (f'machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, transformers {transformers.__version__}, '
            f'{torch.get_num_threads()} threads, bfloat16 units: {"yes" if cpu_bf16() else "no"}; {gpu}{time.strftime("%Y-%m-%d")}')


def precisions(device) -> tuple:
    "The precisions a device trains in: float32, and the mixed precisions the trainer offers there."
    return ('float32', 'bfloat16', 'float16') if device == 'cuda' else ('float32', 'bfloat16')


def precision_fields(precision, device) -> dict:
    "The TrainConfig fields that train in `precision` on `device`."
    if device == 'cuda':
        return dict(use_amp=precision != 'float32', amp_dtype='auto' if precision == 'float32' else precision)
    return dict(use_amp=False, cpu_amp=precision == 'bfloat16')


# the precision a device's MFU target is for (None: each), and the target in %
MFU_TARGET = {'cpu': (None, 50), 'cuda': ('bfloat16', 15)}


def sync(device):
    if device == 'cuda':
        import torch
        torch.cuda.synchronize()


def header(argv):
    print(f'command: python benchmarks/limits.py {" ".join(argv)}')


def table(rows):
    import pandas as pd
    print(pd.DataFrame(rows).to_markdown(index=False))
    print()


def wall(cmd, n=5) -> float:
    "Median wall time of `cmd` over n fresh processes (after one untimed run that warms the file cache)."
    subprocess.run(cmd, capture_output=True, check=True)
    times = []
    for _ in range(n):
        t = time.perf_counter(); subprocess.run(cmd, capture_output=True, check=True); times.append(time.perf_counter() - t)
    return statistics.median(times)


LIBS = 'import torch, accelerate; from transformers import Wav2Vec2Model, RobertaModel'  # what a run cannot do without


def startup(args):
    torch_s = wall([sys.executable, '-c', 'import torch'])
    rows = [dict(what='python -c "import torch"', seconds=round(torch_s, 3), ratio='1 (import torch)', target='', result='')]
    for what, cmd in (('rsacfn --help', [str(BIN/'rsacfn'), '--help']), ('rsacfn train --help', [str(BIN/'rsacfn'), 'train', '--help']),
                      ('rsacfn sweep --help', [str(BIN/'rsacfn'), 'sweep', '--help']),
                      ('python -c "import rsacfn.cli"', [sys.executable, '-c', 'import rsacfn.cli'])):
        s = wall(cmd)
        rows.append(dict(what=what, seconds=round(s, 3), ratio=f'{s / torch_s:.3f} (import torch)', target='< 0.5',
                         result='met' if s < torch_s / 2 else 'NOT met'))
    libs_s = wall([sys.executable, '-c', LIBS])
    rows.append(dict(what=f'python -c "{LIBS}"', seconds=round(libs_s, 3), ratio='1 (the libraries)', target='', result=''))
    for what in ('rsacfn.training.loop', 'rsacfn.experiments.experiment'):
        s = wall([sys.executable, '-c', f'import {what}'])
        rows.append(dict(what=f'python -c "import {what}"', seconds=round(s, 3), ratio=f'{s / libs_s:.3f} (the libraries)',
                         target='<= 1.1' if what == 'rsacfn.training.loop' else '',
                         result=('met' if s <= 1.1 * libs_s else 'NOT met') if what == 'rsacfn.training.loop' else ''))
    table(rows)


def peak(device='cpu', repeats=5) -> dict:
    "GFLOP/s of the best of `repeats` large square matrix products in each precision the device trains in."
    import torch
    n, out = (8192 if device == 'cuda' else 4096), {}
    for name in precisions(device):
        dtype = getattr(torch, name)
        a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
        a @ b
        best = min(_timed(lambda: a @ b, device) for _ in range(repeats))
        out[name] = 2 * n ** 3 / best / 1e9
    return out


def _timed(fn, device='cpu') -> float:
    sync(device); t = time.perf_counter(); fn(); sync(device); return time.perf_counter() - t


def step_cost(method, backbones, heads, precision, steps, profile_rows, size_name, device='cpu'):
    # the FLOP-counted step is also the warm-up (allocations, oneDNN kernels): the timed steps follow it
    "Median seconds and model FLOPs of the trainer's own training step for `method` on one demo batch."
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from rsacfn.training.presets import preset_config
    from rsacfn.evaluation.inference import model_inputs
    from rsacfn.training.precision import _accelerator
    from rsacfn.training.prepare import _load_data
    from rsacfn.training.loop import setup
    work = Path(tempfile.mkdtemp())
    cfg = preset_config('paper' if size_name == 'paper' else 'demo', method=method, data_path=str(backbones['corpus']),
                        wav_model=str(backbones['audio']), text_model=str(backbones['text']), output_dir=str(work), device=device,
                        quiet=True, epochs=1, **precision_fields(precision, device), **heads)
    acc = _accelerator(cfg)
    s = setup(cfg, acc, *_load_data(cfg))
    s.trainable.train()
    batch = next(iter(s.train_loader))

    def step():  # the same random draws every step (wav2vec 2.0's LayerDrop and time masks): the same layers, the same FLOPs
        import numpy as np
        torch.manual_seed(0); np.random.seed(0)
        out = s.trainable(**model_inputs(batch), labels=batch['labels'])
        acc.backward(out.loss)
        s.optimizer.step(); s.optimizer.zero_grad()
        return out.loss.detach()

    with FlopCounterMode(display=False) as fc: step()
    step()  # on a GPU the counted step ran under the counter's Python dispatch: one more untimed step
    times = [_timed(step, device) for _ in range(steps)]
    top = []
    if profile_rows:
        from torch.profiler import ProfilerActivity, profile
        gpu = device == 'cuda'
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])) as prof: step(); sync(device)
        own = (lambda e: e.self_device_time_total) if gpu else (lambda e: e.self_cpu_time_total)
        events = sorted(prof.key_averages(), key=lambda e: -own(e))
        total = sum(own(e) for e in events)
        top = [f'{e.key} {100 * own(e) / total:.0f}%' for e in events[:profile_rows]]
    audio = batch.get('input_values')
    shape = f"audio {tuple(audio.shape)}" if audio is not None else ''
    text = batch.get('input_ids')
    shape += (', ' if shape else '') + (f"text {tuple(text.shape)}" if text is not None else '')
    return statistics.median(times), fc.get_total_flops(), shape, top


def mfu(args):
    sys.path.insert(0, str(Path(__file__).parent))
    from throughput import paper_size_backbones
    from rsacfn.models.tiny import tiny_backbones
    from rsacfn.data.demo import make_demo_corpus
    from rsacfn.models.registry import METHODS
    out = Path(args.out)
    tiny = tiny_backbones(progress=False)
    bb = dict(tiny if args.backbones == 'tiny' else paper_size_backbones(out/'paper_size_backbones', tiny),
              corpus=make_demo_corpus(out/'demo_tiny', size='tiny', progress=False))
    heads = {}  # tiny: the demo preset's small heads; paper: the paper's
    pk = peak(args.device)
    n = 8192 if args.device == 'cuda' else 4096
    print(f'peak (best of 5 products of {n} x {n} matrices on {args.device}, this process): '
          + ', '.join(f'{k} {v:.0f} GFLOP/s' for k, v in pk.items()))
    print()
    rows, profiles = [], []
    for method in (args.methods.split(',') if args.methods else list(METHODS)):
        for precision in precisions(args.device):
            profile = args.profile if args.profile_methods is None or method in args.profile_methods.split(',') else 0
            sec, flops, shape, top = step_cost(method, bb, heads, precision, args.steps, profile, args.backbones, args.device)
            achieved, (aimed, target) = flops / sec / 1e9, MFU_TARGET[args.device]
            mfu_pct = 100 * achieved / pk[precision]
            rows.append({'method': method, 'precision': precision, 'batch': shape, 'GFLOP / step': round(flops / 1e9, 1),
                         'step s': round(sec, 3), 'GFLOP/s': round(achieved, 1), 'MFU %': round(mfu_pct, 1),
                         f'target ({aimed + " " if aimed else ""}>= {target} %)':
                             ('met' if mfu_pct >= target else 'NOT met') if aimed in (None, precision) else ''})
            if top: profiles.append({'method': method, 'precision': precision,
                                     f'top operators (self {"GPU" if args.device == "cuda" else "CPU"} time)': '; '.join(top)})
            print(rows[-1], flush=True)
    print()
    table(rows)
    if profiles: table(profiles)


def precision(args):
    import pandas as pd
    from rsacfn.training.presets import preset_config
    from rsacfn.models.tiny import demo_inputs
    from rsacfn.training.loop import train
    out = Path(args.out)/'precision'
    inputs = demo_inputs(Path(args.out), 'default')
    rows = []
    for cpu_amp in (False, True):
        for seed in (42, 43, 44):
            cfg = preset_config('demo', method=args.method, seed=seed, cpu_amp=cpu_amp, output_dir=str(out), ver=f'{args.method}_{cpu_amp}_{seed}',
                                quiet=True, **inputs)
            r = train(cfg)
            epochs = [json.loads(l) for l in (Path(r['run_dir'])/'metrics.jsonl').read_text().splitlines()]
            rows.append(dict(precision='bfloat16' if cpu_amp else 'float32', seed=seed,
                             epoch_s=statistics.median(e['train_seconds'] for e in epochs[1:]),
                             **{k: r[k] for k in ('weighted_f1', 'macro_f1', 'uar')}))
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    agg = df.groupby('precision', sort=False).agg(['mean', 'std']).drop(columns='seed')
    agg.columns = [f'{a} {b}' for a, b in agg.columns]
    print()
    print(f'{args.method}, demo preset, default demo corpus, seeds 42-44; epoch s = median training seconds of epochs 2-4')
    print(agg.round(4).to_markdown())
    print()


def run_inputs(args, folder):
    """What the whole-run sections train on: the demo corpus (`--size`, `--segments`) written under `--out`/folder, and
    either the tiny backbones with small heads, batches of 16 and lr 1e-3, or paper-size backbones with the paper's heads
    and recipes. Returns (corpus, backbones, run settings, heads(method))."""
    sys.path.insert(0, str(Path(__file__).parent))
    from throughput import SMALL_HEADS, paper_size_backbones
    from rsacfn.models.tiny import tiny_backbones
    from rsacfn.data.demo import make_demo_corpus
    from rsacfn.models.registry import head_sizes
    tiny = tiny_backbones(progress=False)
    paper = args.backbones == 'paper'
    duration = tuple(float(x) for x in args.duration.split(','))
    corpus = make_demo_corpus(Path(args.out)/folder/f'demo_{args.size}_{args.segments}_{args.duration}', size=args.size,
                              n_segments=args.segments, duration=duration, progress=False)
    bb = paper_size_backbones(Path(args.out)/'paper_size_backbones', tiny) if paper else tiny
    sizes = {} if paper else dict(batch_size=16, val_batch_size=32, lr=1e-3)
    heads = lambda method: {} if paper else {k: v for k, v in SMALL_HEADS.items() if k in head_sizes(method)}
    return corpus, bb, sizes, heads


def habits(args):
    """Whole training runs (`rsacfn.training.loop.train`, wall time from the call to its return) in the published pipeline's
    habits against rsacfn's defaults, same corpus, backbones, heads, batches and epochs: published = every batch padded
    to 96000 samples / 256 tokens and the whole corpus decoded into memory before training (its decoding time added);
    default = dynamic padding, clips decoded as batches need them (on a CPU the frozen CNN's output computed once per
    clip, `cache_cnn`; the published pipeline runs it every step); grouped = default with group_by_length. Beside the
    whole runs, the training loops alone (the logged `train_seconds` of every epoch) and where each run's time went (the
    trainer's setup, training epochs, validation and checkpoints, timed from outside; the rest: reading the corpus, the
    run folder). `--audio_pad_multiples` repeats default and grouped with each `audio_pad_multiple`. An untimed one-epoch
    run comes first: the process's first run would pay for CUDA's and the libraries' start-up. The runs share one
    process; each side's imports in a fresh interpreter (the published pipeline: torch and the two model classes;
    rsacfn: `import rsacfn.training.loop`) are measured apart and added for the ratio with imports. Where a target is not met,
    `held back by` names the part of the default run furthest over its share (a third of the published run's part)."""
    import collections, contextlib, shutil
    from unittest import mock
    import rsacfn.training.loop as T
    from rsacfn.config import TrainConfig
    from rsacfn.data.audio import load_audio
    from rsacfn.data.readers import read_corpus
    out = Path(args.out)/'habits'
    corpus, bb, sizes, heads = run_inputs(args, 'habits')
    gpu = args.device == 'cuda'
    goal = 1.5 if gpu else 3  # the default's target speed-up over the published pipeline
    rows = []
    imports = {'published': wall([sys.executable, '-c', PUBLISHED_LIBS], n=3), 'rsacfn': wall([sys.executable, '-c', 'import rsacfn.training.loop'], n=3)}
    for method in args.methods.split(',') if args.methods else ['early_fusion']:
        base = dict(data_path=str(corpus), wav_model=str(bb['audio']), text_model=str(bb['text']), method=method, epochs=args.epochs,
                    head_sizes=heads(method), quiet=True, output_dir=str(out/'runs'), device=args.device, **sizes)
        def run(ver, **kw):
            spent = collections.Counter()
            def timed(name, fn):
                def f(*a, **k):
                    t = time.perf_counter()
                    try: return fn(*a, **k)
                    finally: spent[name] += time.perf_counter() - t
                return f
            with contextlib.ExitStack() as stack:  # where a run's time goes: the trainer's own steps, timed from outside
                for name in ('setup', 'train_epoch', 'evaluate', 'checkpoint'): stack.enter_context(mock.patch.object(T, name, timed(name, getattr(T, name))))
                t = time.perf_counter(); r = T.train(TrainConfig(**dict(base, ver=f'{method}_{ver}', **kw))); s = time.perf_counter() - t
            r['epoch_s'] = [json.loads(l)['train_seconds'] for l in (Path(r['run_dir'])/'metrics.jsonl').read_text().splitlines()]
            r['train_s'] = sum(r['epoch_s'])
            r['part_s'] = [spent[k] for k in PARTS[:-1]] + [s - sum(spent.values())]
            r['parts'] = ' / '.join(f'{x:.1f}' for x in r['part_s'])
            shutil.rmtree(r['run_dir'])
            return s, r
        # untimed: the process's first run pays for CUDA, library and file-cache start-up
        if not rows: run('warm-up', static_padding=True, cache_cnn=False, epochs=1)
        t = time.perf_counter()
        df = read_corpus(corpus)
        decoded = [load_audio(w, max_len=TrainConfig.audio_max_lens) for w in df.wav_path]  # the published pipeline's up-front decode
        decode_s = time.perf_counter() - t
        del decoded
        # its CNN runs every step; on a GPU in float16 with a gradient scaler, as it trained
        pub_s, pub = run('published', static_padding=True, cache_cnn=False, **({'amp_dtype': 'float16'} if gpu else {}))
        pub_s += decode_s
        for multiple in args.audio_pad_multiples.split(','):
            pad = dict(audio_pad_multiple=None if multiple == 'default' else int(multiple))
            def_s, dfl = run('default', **pad)
            grp_s, grp = run('grouped', group_by_length=True, **pad)
            rows.append({'method': method, 'device': args.device, 'backbones': args.backbones, 'segments': len(df), 'epochs': args.epochs,
                         'audio_pad_multiple': multiple,
                         'published s (decode s)': f'{pub_s:.1f} ({decode_s:.1f})', 'default s': round(def_s, 1), 'grouped s': round(grp_s, 1),
                         'default speed-up': round(pub_s / def_s, 2),
                         f'target {goal}x': 'met' if pub_s / def_s >= goal else 'NOT met',
                         'held back by (default)': '' if pub_s / def_s >= goal else held_back(pub, dfl, decode_s),
                         'imports s published / rsacfn': f"{imports['published']:.1f} / {imports['rsacfn']:.1f}",
                         'default speed-up with imports': round((pub_s + imports['published']) / (def_s + imports['rsacfn']), 2),
                         'grouped speed-up': round(pub_s / grp_s, 2),
                         **({} if gpu else {'target 5x': 'met' if pub_s / grp_s >= 5 else 'NOT met'}),
                         'training s published / default / grouped': f"{pub['train_s']:.1f} / {dfl['train_s']:.1f} / {grp['train_s']:.1f}",
                         'training speed-up default / grouped': f"{pub['train_s'] / dfl['train_s']:.2f} / {pub['train_s'] / grp['train_s']:.2f}",
                         'training s per epoch published; default; grouped': '; '.join(' / '.join(f'{e:.1f}' for e in x['epoch_s']) for x in (pub, dfl, grp)),
                         'setup / training / validation / checkpoints / rest s, published; default; grouped': f"{pub['parts']}; {dfl['parts']}; {grp['parts']}",
                         'weighted F1 published / default / grouped': f"{pub['weighted_f1']:.3f} / {dfl['weighted_f1']:.3f} / {grp['weighted_f1']:.3f}"})
            print(rows[-1], flush=True)
    print()
    table(rows)


PARTS = ('setup', 'train_epoch', 'evaluate', 'checkpoint', 'rest')
PUBLISHED_LIBS = 'import torch; from transformers import Wav2Vec2Model, RobertaModel'  # what the published pipeline imports


def held_back(pub, dfl, decode_s) -> str:
    "The part of the default run furthest over a third of the published run's same part (its decode counted as its rest)."
    names = ('setup', 'training loop', 'validation', 'checkpoints', 'rest')
    over = [(d - (p + (decode_s if n == 'rest' else 0)) / 3, n, d) for n, p, d in zip(names, pub['part_s'], dfl['part_s'])]
    excess, name, d = max(over)
    return f'{name}: {d:.1f} s, {excess:.1f} s over its third'


def loading(args):
    """Whole training runs (default settings, early_fusion unless --methods) with 0, 2 and 4 data-loading workers, with and
    without pinned host memory: the median of the logged epoch times after the first epoch (which starts the workers)."""
    import shutil
    from unittest import mock
    import torch.utils.data
    import rsacfn.training.loop as T
    from rsacfn.config import TrainConfig
    out = Path(args.out)/'loading'
    corpus, bb, sizes, heads = run_inputs(args, 'loading')
    rows = []
    for method in args.methods.split(',') if args.methods else ['early_fusion']:
        for workers in (0, 2, 4):
            for pin in ((False, True) if args.device == 'cuda' else (False,)):
                loader = lambda *a, _pin=pin, **k: torch.utils.data.DataLoader(*a, **dict(k, pin_memory=_pin))
                cfg = TrainConfig(data_path=str(corpus), wav_model=str(bb['audio']), text_model=str(bb['text']), method=method,
                                    epochs=args.epochs, head_sizes=heads(method), quiet=True, output_dir=str(out/'runs'), device=args.device,
                                    num_workers=workers, ver=f'{method}_{workers}_{pin}', **sizes)
                with mock.patch.object(T, 'DataLoader', loader):
                    r = T.train(cfg)
                epochs = [json.loads(l) for l in (Path(r['run_dir'])/'metrics.jsonl').read_text().splitlines()]
                shutil.rmtree(r['run_dir'])
                rows.append({'method': method, 'device': args.device, 'backbones': args.backbones, 'workers': workers, 'pinned memory': pin,
                             'epoch s': round(statistics.median(e['train_seconds'] for e in epochs[1:] or epochs), 2),
                             'segments / s': round(statistics.median(e['train_utts_per_s'] for e in epochs[1:] or epochs), 1)})
                print(rows[-1], flush=True)
    print()
    table(rows)


def shapes(args):
    """Why static padding can beat dynamic padding on a GPU: the trainer's own step (as in mfu) over the same 16 batches
    twice, their audio padded (a) to audio_max_lens (96000 samples in the paper), (b) to each batch's longest clip, (c) up to a whole second. The
    second pass repeats the first pass's shapes: where it is much faster than the first, the cost is per new shape
    (kernel selection, allocator growth), not per sample."""
    import torch, torch.nn.functional as F
    from rsacfn.training.presets import preset_config
    from rsacfn.evaluation.inference import model_inputs
    from rsacfn.training.precision import _accelerator
    from rsacfn.training.prepare import _load_data
    from rsacfn.training.loop import setup
    corpus, bb = run_inputs(args, 'shapes')[:2]
    rows = []
    for method in args.methods.split(',') if args.methods else ['early_fusion']:
        cfg = preset_config('paper' if args.backbones == 'paper' else 'demo', method=method, data_path=str(corpus), wav_model=str(bb['audio']),
                            text_model=str(bb['text']), output_dir=tempfile.mkdtemp(), device=args.device, quiet=True, epochs=1,
                            # waveform batches as long as their longest clip; padded below
                            audio_pad_multiple=1, cache_cnn=False)
        acc = _accelerator(cfg)
        s = setup(cfg, acc, *_load_data(cfg))
        s.trainable.train()
        it = iter(s.train_loader)
        batches = [next(it) for _ in range(min(16, len(s.train_loader)))]
        def padded(b, to):
            n = b['input_values'].shape[1]  # the audio and its attention mask, zero-padded on the right (text 2-d tensors are far shorter)
            return {k: F.pad(v, (0, to(n) - n)) if torch.is_tensor(v) and v.dim() == 2 and v.shape[1] == n else v for k, v in b.items()}
        def step(b):
            o = s.trainable(**model_inputs(b), labels=b['labels']); acc.backward(o.loss); s.optimizer.step(); s.optimizer.zero_grad()
        step(batches[-1]); sync(args.device)  # the run's first step (CUDA context, library handles) is nobody's
        for name, to in ((f'static {cfg.audio_max_lens}', lambda n: cfg.audio_max_lens), ('dynamic', lambda n: n),
                         ('dynamic, up to whole seconds', lambda n: max(n, min(-(-n // 16000) * 16000, cfg.audio_max_lens)))):
            bs = [padded(b, to) for b in batches]
            passes = []
            for _ in range(2):
                sync(args.device); t = time.perf_counter()
                for b in bs: step(b)
                sync(args.device); passes.append(time.perf_counter() - t)
            rows.append({'method': method, 'device': args.device, 'audio padding': name, 'shapes': len({b['input_values'].shape for b in bs}),
                         'mean samples': round(statistics.mean(b['input_values'].shape[1] for b in bs)),
                         'first pass s': round(passes[0], 2), 'second pass s (same shapes)': round(passes[1], 2)})
            print(rows[-1], flush=True)
    print()
    table(rows)


def checkpoint(args):
    """The resume state one epoch writes (`last.pt`) at the paper's sizes: the trainable model and AdamW's state after a
    step, for each method. Seconds the training loop waits for it: written in the loop (`save_atomic`, as before) and by
    `rsacfn.training.state.StateWriter` (the loop waits for the copy into host memory the writer keeps, from the second epoch on;
    the write overlaps the next epoch). Target: the
    loop waits at most a quarter of the write."""
    sys.path.insert(0, str(Path(__file__).parent))
    import torch
    from throughput import paper_size_backbones
    from rsacfn.models.tiny import tiny_backbones
    from rsacfn.models.multimodal import MultiModel
    from rsacfn.training.state import StateWriter, save_atomic
    bb, out, rows = paper_size_backbones(Path(args.out)/'paper_size_backbones', tiny_backbones(progress=False)), Path(args.out)/'checkpoint', []
    out.mkdir(parents=True, exist_ok=True)
    for method in (args.methods or 'early_fusion,rsa_cfn').split(','):
        model = MultiModel.from_backbones(method, bb['audio'], bb['text'])
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5)
        for p in params: p.grad = torch.zeros_like(p)
        opt.step()  # AdamW's two moments now exist, as after the first training step
        state = dict(epoch=0, trainable=model.state_dict(), optimizer=opt.state_dict())
        path = out/f'{method}.pt'
        t = time.perf_counter(); save_atomic(state, path); inline = time.perf_counter() - t
        writer = StateWriter()
        writer.save(state, path); writer.wait()  # the first epoch allocates the writer's host copy
        t = time.perf_counter(); writer.save(state, path); held = time.perf_counter() - t  # every later epoch
        writer.wait(); total = time.perf_counter() - t
        rows.append({'method': method, 'last.pt GB': round(path.stat().st_size / 1e9, 2), 'in the loop s (before)': round(inline, 2),
                     'StateWriter: loop waits s': round(held, 2), 'StateWriter: write ends after s': round(total, 2),
                     'target (wait <= write / 4)': 'met' if held <= inline / 4 else 'NOT met'})
        print(rows[-1], flush=True)
        path.unlink(); del model, opt, state, params, writer
    table(rows)


def demo_setup(args, method, folder, device, **kw):
    """The trainer's own setup (`rsacfn.training.loop.setup`) for `method` on the inputs of `run_inputs` (the demo preset,
    one epoch, quiet): (its configuration, the Accelerator, the `Setup`)."""
    from rsacfn.training.presets import preset_config
    from rsacfn.training.precision import _accelerator
    from rsacfn.training.prepare import _load_data
    from rsacfn.training.loop import setup
    corpus, bb, sizes, heads = run_inputs(args, folder)
    cfg = preset_config('demo', method=method, data_path=str(corpus), wav_model=str(bb['audio']), text_model=str(bb['text']),
                        output_dir=tempfile.mkdtemp(), device=device, quiet=True, **{'epochs': 1, **sizes, **kw},
                        head_sizes=heads(method))
    acc = _accelerator(cfg)
    return cfg, acc, setup(cfg, acc, *_load_data(cfg))


class _Batches:
    "The same collated batches every epoch, as the trainer's loader hands them out (data loading is left out of both)."
    def __init__(self, batches): self.batches = batches
    def set_epoch(self, epoch): pass
    def __iter__(self): return iter(self.batches)
    def __len__(self): return len(self.batches)


def step(args):
    """rsacfn's training step (`rsacfn.training.loop.train_epoch`: Accelerate, the loss read once per `log_every`, the
    schedule, the progress bar off) against a bare PyTorch loop (forward, loss, backward, fused AdamW step, zero_grad) on
    the same model weights, the same collated demo batches and the same optimizer, tiny backbones, in one process.
    Seconds per step: the median of 3 passes over the batches, taken in turns after a warm-up pass of each. Target: rsacfn at most 1.3x."""
    import copy
    import numpy as np, torch
    from rsacfn.evaluation.inference import model_inputs
    from rsacfn.training.loop import train_epoch
    rows = []
    for method in (args.methods or 'early_fusion,rsa_cfn').split(','):
        cfg, acc, s = demo_setup(args, method, 'step', args.device)
        batches = [b for _, b in zip(range(args.steps), s.train_loader)]
        bare = copy.deepcopy(acc.unwrap_model(s.trainable)).to(acc.device).train()
        opt = torch.optim.AdamW([p for p in bare.parameters() if p.requires_grad], lr=cfg.lr, fused=args.device in ('cpu', 'cuda'))
        def bare_pass():
            for b in batches:
                out = bare(**model_inputs({k: v.to(acc.device) if torch.is_tensor(v) else v for k, v in b.items()}),
                           labels=b['labels'].to(acc.device))
                out.loss.backward(); opt.step(); opt.zero_grad()
        s.train_loader = _Batches(batches)
        def rsacfn_pass(): train_epoch(cfg, acc, s, 0)
        passes = {'bare': bare_pass, 'rsacfn': rsacfn_pass}
        for run in passes.values(): torch.manual_seed(0); np.random.seed(0); run()  # warm-up: allocations, kernels
        timed = {name: [] for name in passes}
        for _ in range(3):  # taken in turns: a drift of the machine's speed reaches both alike
            for name, run in passes.items(): timed[name].append(_timed(run, args.device))
        times = {name: statistics.median(t) / len(batches) for name, t in timed.items()}
        ratio = times['rsacfn'] / times['bare']
        rows.append({'method': method, 'device': args.device, 'batch': cfg.batch_size, 'steps': len(batches),
                     'bare loop s/step': round(times['bare'], 4), 'rsacfn s/step': round(times['rsacfn'], 4),
                     'rsacfn / bare': round(ratio, 3), 'target (<= 1.3)': 'met' if ratio <= 1.3 else 'NOT met'})
        print(rows[-1], flush=True)
    table(rows)


def syncs(args):
    """Host-device synchronisations per training step on CUDA: `torch.cuda.set_sync_debug_mode('warn')` warns at each
    one; counted over `--steps` steps of `train_epoch` per method (tiny backbones, the demo's batches), after a warm-up
    epoch, in the default precision (bfloat16 where the GPU has it) and in float16 with its scaler. Target: fewer than
    one per step (the loss is read once per `log_every` steps, and once at the epoch's end)."""
    import warnings
    import torch
    if args.device != 'cuda': raise SystemExit('syncs counts CUDA synchronisations: run it with --device cuda')
    from rsacfn.training.loop import train_epoch
    rows = []
    methods = (args.methods or 'early_fusion,rsa_cfn').split(',')
    for method, dtype in [(m, d) for m in methods for d in ('auto', 'float16')]:
        cfg, acc, s = demo_setup(args, method, 'syncs', 'cuda', epochs=2, log_every=10 ** 6, amp_dtype=dtype)
        s.train_loader = _Batches([b for _, b in zip(range(args.steps), s.train_loader)])
        train_epoch(cfg, acc, s, 0)  # warm-up
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
            try: train_epoch(cfg, acc, s, 1)
            finally: torch.cuda.set_sync_debug_mode('default')
        n, steps = sum('synchroniz' in str(w.message) for w in seen), len(s.train_loader)
        where = sorted({f'{w.filename.split("site-packages/")[-1]}:{w.lineno}' for w in seen if 'synchroniz' in str(w.message)})[:5]
        rows.append({'method': method, 'precision': acc.mixed_precision, 'steps': steps, 'synchronisations': n,
                     'per step': round(n / steps, 2),
                     'first places': '; '.join(where), 'target (< 1 per step)': 'met' if n < steps else 'NOT met'})
        print(rows[-1], flush=True)
    table(rows)


FIRST_STEP = """
import json, sys, time
t0 = time.perf_counter()
import rsacfn.training.loop as T
from rsacfn.config import TrainConfig
from rsacfn.data.audio import load_audio
from rsacfn.evaluation.inference import model_inputs
from rsacfn.training.presets import resolve_config
t1 = time.perf_counter()
kw, published = json.loads(sys.argv[1]), sys.argv[2] == 'published'
cfg = resolve_config(TrainConfig(**kw, static_padding=published, cache_cnn=False if published else None))
data = T._load_data(cfg)
if published: [load_audio(w, max_len=cfg.audio_max_lens) for w in data[0].wav_path]  # its up-front decode
t2 = time.perf_counter()
model = T.build_model(cfg)
t3 = time.perf_counter()
T.build_model = lambda cfg: model
acc = T._accelerator(cfg)
s = T.setup(cfg, acc, *data)
batch = next(iter(s.train_loader))
t4 = time.perf_counter()
out = s.trainable(**model_inputs(batch), labels=batch['labels']); acc.backward(out.loss); s.optimizer.step(); out.loss.item()
t5 = time.perf_counter()
print(json.dumps(dict(imports=t1 - t0, corpus=t2 - t1, model=t3 - t2, loader=t4 - t3, step=t5 - t4)))
"""


def firststep(args):
    """From the command to the end of the first training step, in a fresh interpreter each time (the median of 3), split
    into imports (`import rsacfn.training.loop` and its libraries), the corpus (read and split; the published pipeline also
    decodes every clip first), the model (backbones loaded, head built), the loaders (Accelerate, the optimizer, the
    first batch) and the first step; the published pipeline's habits (static padding, the corpus decoded first) beside the
    defaults."""
    corpus, bb, sizes, heads = run_inputs(args, 'habits')
    method, rows = (args.methods or 'early_fusion').split(',')[0], []
    kw = dict(data_path=str(corpus), wav_model=str(bb['audio']), text_model=str(bb['text']), method=method, quiet=True,
              output_dir=tempfile.mkdtemp(), device=args.device, head_sizes=heads(method), **sizes)
    for habit in ('published', 'default'):
        cmd = [sys.executable, '-c', FIRST_STEP, json.dumps(kw), habit]
        subprocess.run(cmd, capture_output=True, check=True)  # untimed: warms the file cache
        parts = [json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
                 for _ in range(3)]
        med = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
        rows.append({'habits': habit, 'method': method, 'device': args.device, **{f'{k} s': round(v, 2) for k, v in med.items()},
                     'to the first step s': round(sum(med.values()), 2)})
        print(rows[-1], flush=True)
    table(rows)


DEMO_TARGET_S = 8 * 60  # issue 27, item 6: `make demo` on a fresh clone, install and pretraining included


def demo(args):
    """`make demo` on a fresh clone of this checkout's HEAD with an empty rsacfn cache (the install, the demo corpus, the
    tiny backbones' pretraining and the 30-run sweep), against the 8-minute target; every row of its table against the
    README's (the same to four decimals, or within its seed spread)."""
    import re
    import pandas as pd
    root = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix='rsacfn-demo-'))
    clone, cache = work/'clone', work/'cache'
    subprocess.run(['git', 'clone', '-q', str(root), str(clone)], check=True)
    cache.mkdir()
    t = time.time()
    done = subprocess.run(['make', 'demo'], cwd=clone, env=dict(os.environ, RSACFN_CACHE=str(cache)),
                          capture_output=True, text=True)
    total = time.time() - t
    if done.returncode: sys.exit(f'make demo failed ({done.returncode}): {done.stderr[-2000:]}')
    install = (clone/'.venv'/'bin'/'.installed-run').stat().st_mtime - t
    bar = re.findall(r'sweep \(\d+ runs\): 100%.*?\[(\d+):(\d+)<', done.stderr + done.stdout)
    sweep = int(bar[-1][0]) * 60 + int(bar[-1][1]) if bar else float('nan')
    got = pd.read_csv(clone/'results'/'demo_sweep'/'f1_table.csv').set_index('method')
    readme = (root/'README.md').read_text()
    rows = []
    for m, r in got.iterrows():
        shown = re.search(rf'^\| {m} \| (\S+) ± (\S+) \|', readme, re.M)
        mean, std = (float(shown[1]), float(shown[2])) if shown else (float('nan'), float('nan'))
        same = f'{r.weighted_f1_mean:.4f}' == f'{mean:.4f}'
        rows.append({'method': m, 'weighted F1 here': f'{r.weighted_f1_mean:.4f} ± {r.weighted_f1_std:.4f}',
                     "README's": f'{mean:.4f} ± {std:.4f}',
                     'within its seed spread': 'same' if same else ('yes' if abs(r.weighted_f1_mean - mean) <= max(std, r.weighted_f1_std) else 'NO')})
    table([{'make demo s': round(total), 'install s': round(install), 'corpus and pretraining s': round(total - install - sweep),
            'sweep s': sweep, 'target s': DEMO_TARGET_S, 'met': 'met' if total <= DEMO_TARGET_S else 'NOT met'}])
    table(rows)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('section', choices=('startup', 'mfu', 'precision', 'habits', 'loading', 'shapes', 'checkpoint', 'step', 'syncs',
                                       'firststep', 'demo'))
    p.add_argument('--device', choices=('cpu', 'cuda'), default='cpu', help='mfu, habits, loading: where to train (default: %(default)s)')
    p.add_argument('--backbones', choices=('tiny', 'paper'), default='tiny', help='mfu: backbone sizes (default: %(default)s)')
    p.add_argument('--methods', default=None, help='mfu: comma-separated methods (default: all); habits, loading: (default: early_fusion); checkpoint: (default: early_fusion,rsa_cfn)')
    p.add_argument('--method', default='early_fusion', help='precision: the method (default: %(default)s)')
    p.add_argument('--steps', type=int, default=3, help='mfu: timed steps per method and precision; step: batches per pass (default: %(default)s)')
    p.add_argument('--profile_methods', default=None, help='mfu: the methods whose step is profiled (default: all)')
    p.add_argument('--profile', type=int, default=5, help='mfu: operators listed per step (0: no profile; default: %(default)s)')
    p.add_argument('--size', default='default', help='habits, loading: demo corpus size (default: %(default)s)')
    p.add_argument('--segments', type=int, default=None, help="habits, loading: demo segments (default: the size's)")
    p.add_argument('--duration', default='1.0,2.5', help="habits, loading: the demo clips' range of lengths in seconds, e.g. 0.6,1.0 for short clips (default: %(default)s)")
    p.add_argument('--audio_pad_multiples', default='default', help="habits: comma-separated audio_pad_multiple settings the default and grouped runs take ('default': the device's; default: %(default)s)")
    p.add_argument('--epochs', type=int, default=4, help='habits, loading: epochs per run (default: %(default)s)')
    p.add_argument('--out', default='results/benchmarks', help='work folder (default: %(default)s)')
    args = p.parse_args(argv)
    header(argv)
    print(machine(args.device))
    print()
    dict(startup=startup, mfu=mfu, precision=precision, habits=habits, loading=loading, shapes=shapes,
         checkpoint=checkpoint, step=step, syncs=syncs, firststep=firststep, demo=demo)[args.section](args)


if __name__ == '__main__':
    main()
