"""What the raters' votes and the minority-class losses change, in the package's own speaker-independent protocol.

    python benchmarks/raters.py                                  # the study: 5 folds x 3 seeds, early_fusion and rsa_cfn
    python benchmarks/raters.py --seeds 42 --folds 0,1 --out /tmp/r   # a quick look

One `rsacfn sweep --protocol speaker-independent` of the demo corpus (`--preset demo`: tiny offline backbones, the
default demo size) per training setting, all with the same methods, seeds and folds:

- majority + CE: the majority labels and cross-entropy (the package's default, the baseline);
- soft labels: `label_mode='soft'`, the raters' votes as the target (tied segments trained on too);
- class-balanced, focal, logit-adjusted loss: `loss=...` (`rsacfn.models.losses`);
- post-hoc adjustment: the majority + CE runs, each adjusted by `rsacfn adjust` (tau chosen on the run's development
  split, the next session fold) and scored again on its validation fold.

Per run: macro F1, UAR, weighted F1, the mean Jensen-Shannon divergence to the raters' votes, the raters' share for the
predicted class, and the expected calibration error, all on the run's validation fold. The table gives each metric's
mean with its 95 % interval over folds, and each setting's paired difference from majority + CE (same method, seed
and fold) with its p (`rsacfn.experiments.significance.compare_settings`). It writes runs.csv (one row per run and
setting), table.md and settings.png into --out, and copies runs.csv to --runs_csv (the notebook's and the guide's
source) when given.
"""
import argparse, json, os, platform, shutil, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')

SETTINGS = {'majority + CE': {}, 'soft labels': dict(label_mode='soft'), 'class-balanced': dict(loss='class_balanced'),
            'focal': dict(loss='focal'), 'logit-adjusted loss': dict(loss='logit_adjusted')}
BASELINE, POSTHOC = 'majority + CE', 'post-hoc adjustment'
METRICS = ('macro_f1', 'uar', 'weighted_f1', 'rater_jsd', 'rater_share', 'ece')


def slug(name: str) -> str: return ''.join(c if c.isalnum() else '_' for c in name).strip('_')


def run_rows(sweep: Path, setting: str) -> list:
    "One row per finished run of a sweep folder, from its result.json."
    rows = []
    for f in sorted((sweep/'runs').glob('*/result.json')):
        r = json.loads(f.read_text())
        rows.append(dict(setting=setting, method=r['method'], seed=r['seed'], fold=r['fold'], run=f.parent.name,
                         **{m: r.get(m) for m in METRICS}))
    return rows


def posthoc_rows(sweep: Path, out: Path, progress: bool) -> list:
    "The baseline's runs, copied and adjusted: their validation scores after the adjustment."
    from rsacfn.evaluation.adjustment import adjust_run
    rows = []
    for f in sorted((sweep/'runs').glob('*/result.json')):
        r, run = json.loads(f.read_text()), out/f.parent.name
        if not (run/'adjustment.json').is_file():
            shutil.rmtree(run, ignore_errors=True); shutil.copytree(f.parent, run)
            adjust_run(run, progress=False)
        a = json.loads((run/'adjustment.json').read_text())
        rows.append(dict(setting=POSTHOC, method=r['method'], seed=r['seed'], fold=r['fold'], run=run.name,
                         tau=a['tau'], **{m: a['valid_after'].get(m) for m in METRICS}))
        if progress: print(f"  {run.name}: tau {a['tau']:g}", flush=True)
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--methods', default='early_fusion,rsa_cfn')
    p.add_argument('--seeds', default='42,43,44')
    p.add_argument('--folds', default=None, help='comma-separated session folds (default: all five)')
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--out', default=None, help='work folder (default: a temporary one)')
    p.add_argument('--runs_csv', default=None, help='also copy runs.csv here')
    args = p.parse_args(argv)
    import pandas as pd, torch
    from rsacfn.evaluation.figures import plot_settings, save_figure
    from rsacfn.experiments.significance import compare_settings, settings_markdown
    from rsacfn.experiments.sweep import run_sweep
    out = Path(args.out or tempfile.mkdtemp(prefix='rsacfn-raters-')).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f'$ python benchmarks/raters.py {" ".join(argv)}')
    print(f'{platform.node()}: {os.cpu_count()} cores, torch {torch.__version__}\n', flush=True)
    methods, seeds = args.methods.split(','), [int(s) for s in args.seeds.split(',')]
    folds = [int(f) for f in args.folds.split(',')] if args.folds else None
    rows, t0 = [], time.perf_counter()
    for name, params in SETTINGS.items():
        t = time.perf_counter()
        run_sweep(out/slug(name), methods=methods, seeds=seeds, folds=folds, protocol='speaker-independent',
                  params=dict(preset='demo', **params), jobs=args.jobs, progress=False)
        rows += run_rows(out/slug(name), name)
        print(f'{name}: {time.perf_counter() - t:.0f} s', flush=True)
    rows += posthoc_rows(out/slug(BASELINE), out/slug(POSTHOC), progress=True)
    runs = pd.DataFrame(rows)
    runs.to_csv(out/'runs.csv', index=False)
    if args.runs_csv: runs.to_csv(args.runs_csv, index=False)
    cmp = compare_settings(runs, BASELINE, METRICS)
    md = settings_markdown(cmp, BASELINE, METRICS)
    (out/'table.md').write_text(md + '\n')
    save_figure(plot_settings(cmp, BASELINE, title='The demo corpus, speaker-independent: settings against majority + CE'),
                out/'settings.png')
    print(f'\n{len(runs)} runs in {(time.perf_counter() - t0) / 60:.1f} minutes; {out}\n')
    print(md)


if __name__ == '__main__':
    main()
