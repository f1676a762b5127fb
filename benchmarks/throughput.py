"""Training throughput on the demo corpus: dynamic vs static padding, and head training from the feature cache.

    python benchmarks/throughput.py [--methods rsa_cfn,early_fusion] [--size default] [--out results/benchmarks]

Every number comes from `rsacfn.trainer.train` itself (the `train_seconds` and `train_utts_per_s` it logs
for each epoch), on the demo corpus with the tiny offline backbones. Static padding pads every batch to
the paper's audio_max_lens=96000 samples and text_max_lens=256 tokens; dynamic padding pads to the
batch's longest. The cache rows time a head-only epoch on cached features against an end-to-end epoch.
"""
import argparse, dataclasses, json, os, platform, sys, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import pandas as pd
import torch
from rsacfn.data import make_demo_corpus
from rsacfn.models import HEADS, make_tiny_backbones
from rsacfn.trainer import TrainConfig, train

SMALL_HEADS = dict(proj_dim=32)  # rsa_cfn / hybrid at proj_dim 128 are 330 M-parameter heads: too slow for a CPU sweep


def epoch_stats(cfg):
    "Train one configuration and return its last epoch's logged throughput."
    r = train(cfg)
    rows = [json.loads(l) for l in (Path(r['run_dir'])/'metrics.jsonl').read_text().splitlines()]
    return rows[-1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--methods', default=','.join(HEADS), help='comma-separated methods (default: all)')
    p.add_argument('--size', default='default', help='demo corpus size (default: %(default)s)')
    p.add_argument('--out', default='results/benchmarks', help='work folder (default: %(default)s)')
    p.add_argument('--epochs', type=int, default=2, help='epochs per run; the last one is reported (default: %(default)s)')
    args = p.parse_args(argv)
    out = Path(args.out)
    corpus = make_demo_corpus(out/f'demo_{args.size}', size=args.size, progress=False)
    tiny = make_tiny_backbones(out/'tiny_backbones')
    stamp = time.strftime('%Y%m%d-%H%M%S')
    base = TrainConfig(data_path=str(corpus), output_dir=str(out/'runs'/stamp), wav_model=str(tiny['audio']),
                       text_model=str(tiny['text']), head_sizes=SMALL_HEADS, batch_size=16, val_batch_size=32,
                       epochs=args.epochs, lr=1e-3, quiet=True, cache_dir=str(out/'feature_cache'))
    rows = []
    for m in args.methods.split(','):
        modality = {'speech_only': dict(modality='audio'), 'text_only': dict(modality='text')}.get(m, dict(modality='both', multimodal_method=m))
        cfg = dataclasses.replace(base, **modality)
        dyn = epoch_stats(dataclasses.replace(cfg, ver=f'{m}_dynamic'))
        grp = epoch_stats(dataclasses.replace(cfg, ver=f'{m}_grouped', group_by_length=True))
        sta = epoch_stats(dataclasses.replace(cfg, ver=f'{m}_static', static_padding=True))
        cache = epoch_stats(dataclasses.replace(cfg, ver=f'{m}_cached', feature_cache=True))
        rows.append({'method': m, 'static utt/s': sta['train_utts_per_s'], 'dynamic utt/s': dyn['train_utts_per_s'],
                     'dynamic / static': round(dyn['train_utts_per_s'] / sta['train_utts_per_s'], 2),
                     'grouped utt/s': grp['train_utts_per_s'], 'grouped / static': round(grp['train_utts_per_s'] / sta['train_utts_per_s'], 2),
                     'end-to-end epoch s': dyn['train_seconds'], 'cached epoch s': cache['train_seconds'],
                     'end-to-end / cached': round(dyn['train_seconds'] / max(cache['train_seconds'], 1e-9), 1)})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    cmd = 'python benchmarks/throughput.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    header = (f'command: {cmd}\nmachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, '
              f'{"cuda" if torch.cuda.is_available() else "cpu"}; demo corpus size {args.size}, tiny backbones, head sizes {SMALL_HEADS}\n'
              'all runs at the paper lengths (audio_max_lens 96000, text_max_lens 256), batch 16, the last of '
              f'{args.epochs} epochs; utt/s = training utterances per second; dynamic = padded to the batch\'s longest; '
              'grouped = dynamic with group_by_length; cached = head-only epoch on cached features')
    text = header + '\n\n' + table.to_markdown(index=False)
    print('\n' + text)
    (out/f'throughput-{stamp}.md').write_text(text + '\n')
    return table



if __name__ == '__main__': main()
