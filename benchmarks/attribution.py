"""What attributions cost: the demo's validation split for one tiny model, and one segment at the paper's sizes.

    python benchmarks/attribution.py demo                   # train a tiny model on the demo, time explain and faithfulness
    python benchmarks/attribution.py memory                 # peak memory of explaining one segment at the paper's sizes

Every section prints a table preceded by the command that made it and the machine it ran on.

- **demo**: `early_fusion` and `rsa_cfn` trained on the demo corpus (`--preset demo`, random tiny backbones), then
  `explain` on the run's validation split (integrated gradients, `--n_steps`, batches of 8) and `faithfulness` on it;
  the seconds of each, the completeness error (|delta|: mean and largest) and which checks pass. Target: the
  attributions of the split in a few minutes on 2 cores (at most 180 s).
- **memory**: one segment of the paper's length (6 s, 256 tokens) through `explain` with random-weight backbones of the
  paper checkpoints' architecture (wav2vec 2.0 large, RoBERTa base), each method in a fresh process: its peak resident
  memory above the model's own, and the seconds, for `--n_steps` and `--rows` (IG's rows per forward pass).
"""
import argparse, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).parent))


def header(argv):
    import torch
    print(f'$ python benchmarks/attribution.py {" ".join(argv)}')
    print(f'{platform.node()}: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads\n')


def demo(args):
    import pandas as pd
    from rsacfn.evaluation.analysis import cue_groups
    from rsacfn.evaluation.attribution import explain
    from rsacfn.evaluation.faithfulness import faithfulness
    from rsacfn.models.multimodal import MultiModel
    from rsacfn.models.tiny import tiny_backbones
    from rsacfn.training.loop import train
    from rsacfn.training.prepare import load_split
    from rsacfn.training.presets import experiment_config
    tiny, rows = tiny_backbones(pretrain_clips=0, progress=False), []
    for method in args.methods.split(','):
        cfg = experiment_config('demo', work_dir=Path(args.out), method=method, quiet=True,
                                wav_model=str(tiny['audio']), text_model=str(tiny['text']))
        train(cfg)
        model, (_, valid) = MultiModel.from_pretrained(cfg.run_dir/'best'), load_split(cfg)
        t = time.perf_counter(); e = explain(model, valid, n_steps=args.n_steps, progress=False); te = time.perf_counter() - t
        t = time.perf_counter(); f = faithfulness(model, valid, e, cue_groups(cfg.data_path)); tf = time.perf_counter() - t
        d = e.segments.delta.abs()
        rows.append(dict(method=method, segments=len(valid), n_steps=args.n_steps, explain_s=round(te, 1),
                         faithfulness_s=round(tf, 1), delta_mean=round(d.mean(), 4), delta_max=round(d.max(), 4),
                         checks_passed=f'{int(f.passes.sum())}/{len(f)}',
                         target='explain <= 180 s: ' + ('met' if te <= 180 else 'NOT met')))
        print(f.drop(columns='method').round(3).to_string(index=False), '\n')
    print(pd.DataFrame(rows).to_markdown(index=False))


CHILD = r'''
import resource, sys, time, numpy as np, pandas as pd, torch, soundfile as sf
from rsacfn.models.multimodal import MultiModel
from rsacfn.evaluation.attribution import explain
method, audio, text, wav, n_steps, rows = sys.argv[1:7]
model = MultiModel.from_backbones(method, audio, text).eval()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
df = pd.DataFrame(dict(segment_id=['one'], wav_path=[wav], text=[' '.join(['정말 기뻐요 오늘 회의는 세 시에 시작해요'] * 40)]))
t = time.perf_counter()
e = explain(model, df, n_steps=int(n_steps), progress=False, internal_batch_size=int(rows))
print(round(time.perf_counter() - t, 1), before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      round(float(e.segments.delta.abs().max()), 4))
'''


def memory(args):
    import numpy as np
    import pandas as pd
    import soundfile as sf
    from throughput import paper_size_backbones
    from rsacfn.models.tiny import tiny_backbones
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    bb = paper_size_backbones(out/'paper_size_backbones', tiny_backbones(pretrain_clips=0, progress=False))
    wav = out/'six_seconds.wav'
    sf.write(wav, (0.1 * np.sin(np.arange(96_000) * 2 * np.pi * 220 / 16_000)).astype('float32'), 16_000)
    rows = []
    for method in args.methods.split(','):
        r = subprocess.run([sys.executable, '-c', CHILD, method, str(bb['audio']), str(bb['text']), str(wav),
                            str(args.n_steps), str(args.rows)], capture_output=True, text=True)
        if r.returncode: sys.exit(f'{method}: {r.stderr[-2000:]}')
        secs, before, peak, delta = r.stdout.split()[-4:]
        rows.append(dict(method=method, n_steps=args.n_steps, rows_per_pass=args.rows, seconds=float(secs),
                         model_MiB=round(int(before) / 1024), peak_MiB=round(int(peak) / 1024),
                         explain_MiB=round((int(peak) - int(before)) / 1024), delta_max=float(delta)))
    print(pd.DataFrame(rows).to_markdown(index=False))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('section', choices=('demo', 'memory'))
    p.add_argument('--methods', default=None, help='comma-separated (default: early_fusion,rsa_cfn)')
    p.add_argument('--n_steps', type=int, default=64, help='integrated gradients steps (default: %(default)s)')
    p.add_argument('--rows', type=int, default=8, help='memory: rows per forward pass (default: %(default)s)')
    p.add_argument('--out', default=None, help='work folder (default: a temporary one)')
    args = p.parse_args(argv)
    args.methods = args.methods or 'early_fusion,rsa_cfn'
    args.out = args.out or tempfile.mkdtemp(prefix='rsacfn-attribution-')
    header(argv)
    {'demo': demo, 'memory': memory}[args.section](args)


if __name__ == '__main__':
    main()
