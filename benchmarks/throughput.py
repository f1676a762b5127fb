"""Training throughput on the demo corpus: dynamic vs static padding, and head training from the feature cache.

    python benchmarks/throughput.py [--methods rsa_cfn,early_fusion] [--size default] [--out results/benchmarks]
    python benchmarks/throughput.py --backbones paper --segments 40 --epochs 1 --no-grouped --methods early_fusion,rsa_cfn

Every number comes from `rsacfn.training.loop.train` itself (the `train_seconds` and `train_utts_per_s` it logs
for each epoch), on the demo corpus. Static padding pads every batch to the paper's audio_max_lens=96000
samples and text_max_lens=256 tokens; dynamic padding pads to the batch's longest. The cache rows time a
head-only epoch on cached features against an end-to-end epoch.

`--backbones tiny` (the default) uses the tiny offline backbones with small heads (proj_dim 32), batch 16.
`--backbones paper` builds backbones with the architecture of the paper's checkpoints (wav2vec 2.0 large
lv60: 24 layers, 1024 wide, 512-channel CNN; KLUE RoBERTa base: 12 layers, 768 wide, 32,000 tokens) with
random weights, which cost exactly what the real ones cost, and uses the paper's head sizes and
per-method batch sizes; on a CPU use a few segments (`--segments`).
"""
import argparse, dataclasses, json, os, platform, resource, shutil, sys, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import pandas as pd
import torch
from rsacfn.data.audio import SAMPLE_RATE
from rsacfn.data.demo import make_demo_corpus
from rsacfn.models.tiny import tiny_backbones
from rsacfn.models.registry import METHODS, head_sizes
from rsacfn.config import TrainConfig
from rsacfn.training.presets import resolve_config
from rsacfn.training.prepare import load_split
from rsacfn.training.loop import train, train_sampler

SMALL_HEADS = dict(proj_dim=32)  # rsa_cfn / hybrid at proj_dim 128 are 330 M-parameter heads: too slow for a CPU sweep


def epoch_stats(cfg):
    """Train one configuration and return its epochs' median logged throughput, the first epoch left out when there are
    more (it warms up allocators and caches), and the share of the run's CPU time spent in the kernel (mostly page
    faults: glibc hands allocations over 32 MB straight to mmap, so big padded batches fault in fresh pages every step).
    The run's checkpoints are deleted."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    r = train(cfg)
    after = resource.getrusage(resource.RUSAGE_SELF)
    sys_s, user_s = after.ru_stime - before.ru_stime, after.ru_utime - before.ru_utime
    rows = [json.loads(l) for l in (Path(r['run_dir'])/'metrics.jsonl').read_text().splitlines()]
    shutil.rmtree(r['run_dir'])  # paper-size checkpoints with optimizer state are ~5 GB a run
    timed = pd.DataFrame(rows[1:] if len(rows) > 1 else rows)
    return dict({k: round(float(timed[k].median()), 3) for k in ('train_seconds', 'train_utts_per_s')},
                kernel_pct=round(100 * sys_s / max(sys_s + user_s, 1e-9)))


def audio_padding_bound(cfg, grouped:bool) -> float:
    """The most that dynamic padding can cut the audio backbone's work per epoch, if that work grows linearly with the
    padded length: samples fed with static padding over samples fed with padding to each batch's longest clip, for the
    batches the trainer's own sampler draws (epoch 0, same seed and batch size)."""
    cfg = resolve_config(dataclasses.replace(cfg, group_by_length=grouped))
    train_df = load_split(cfg)[0]
    dur = train_df.duration.clip(upper=cfg.audio_max_lens / SAMPLE_RATE).values
    order = torch.tensor(list(train_sampler(cfg, train_df, 'audio')))
    padded = sum(len(b) * dur[b.numpy()].max() for b in order.split(cfg.batch_size))
    return round(float(len(order) * cfg.audio_max_lens / SAMPLE_RATE / padded), 2)


def paper_size_backbones(root, tiny):
    "Random-weight backbones with the paper checkpoints' architecture (the tiny tokenizer, KLUE's vocabulary size)."
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel, Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model
    out = {'audio': Path(root)/'audio', 'text': Path(root)/'text'}
    if all((p/'config.json').is_file() for p in out.values()): return out
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                                 conv_dim=(512,) * 7, feat_extract_norm='layer', do_stable_layer_norm=True,
                                 num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, vocab_size=32)).save_pretrained(out['audio'])
    Wav2Vec2FeatureExtractor.from_pretrained(tiny['audio']).save_pretrained(out['audio'])
    tok = AutoTokenizer.from_pretrained(tiny['text'])
    RobertaModel(RobertaConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                               vocab_size=32_000, max_position_embeddings=514, pad_token_id=tok.pad_token_id,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(out['text'])
    tok.save_pretrained(out['text'])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--methods', default=','.join(METHODS), help='comma-separated methods (default: all)')
    p.add_argument('--size', default='default', help='demo corpus size (default: %(default)s)')
    p.add_argument('--out', default='results/benchmarks', help='work folder (default: %(default)s)')
    p.add_argument('--epochs', type=int, default=4, help='epochs per run; the median of all but the first is reported (default: %(default)s)')
    p.add_argument('--backbones', choices=('tiny', 'paper'), default='tiny', help='backbone sizes (default: %(default)s)')
    p.add_argument('--no-grouped', action='store_true', help='skip the group_by_length runs')
    p.add_argument('--segments', type=int, default=None, help="number of demo segments (default: the size's)")
    args = p.parse_args(argv)
    out = Path(args.out)
    corpus = make_demo_corpus(out/f'demo_{args.size}_{args.segments}', size=args.size, n_segments=args.segments, progress=False)
    tiny = tiny_backbones(progress=False)  # this machine's cached demo backbones
    stamp = time.strftime('%Y%m%d-%H%M%S')
    if args.backbones == 'tiny': bb, heads, sizes = tiny, SMALL_HEADS, dict(batch_size=16, val_batch_size=32)
    else: bb, heads, sizes = paper_size_backbones(out/'paper_size_backbones', tiny), {}, {}  # the paper's heads and batches
    base = TrainConfig(data_path=str(corpus), output_dir=str(out/'runs'/stamp), wav_model=str(bb['audio']),
                       text_model=str(bb['text']), epochs=args.epochs, lr=1e-3, quiet=True,
                       cache_dir=str(out/f'feature_cache_{args.backbones}'), **sizes)
    rows = []
    for m in args.methods.split(','):
        cfg = dataclasses.replace(base, method=m, head_sizes={k: v for k, v in heads.items() if k in head_sizes(m)})
        dyn = epoch_stats(dataclasses.replace(cfg, ver=f'{m}_dynamic'))
        grp = None if args.no_grouped else epoch_stats(dataclasses.replace(cfg, ver=f'{m}_grouped', group_by_length=True))
        sta = epoch_stats(dataclasses.replace(cfg, ver=f'{m}_static', static_padding=True))
        cache = epoch_stats(dataclasses.replace(cfg, ver=f'{m}_cached', freeze_backbones=True))
        rows.append({'method': m, 'static utt/s': sta['train_utts_per_s'], 'dynamic utt/s': dyn['train_utts_per_s'],
                     'dynamic / static': round(dyn['train_utts_per_s'] / sta['train_utts_per_s'], 2),
                     'audio bound': audio_padding_bound(cfg, False) if 'audio' in METHODS[m].modalities else None,
                     'static kernel %': sta['kernel_pct'], 'dynamic kernel %': dyn['kernel_pct'],
                     **({} if grp is None else {'grouped utt/s': grp['train_utts_per_s'],
                                                'grouped / static': round(grp['train_utts_per_s'] / sta['train_utts_per_s'], 2),
                                                'grouped audio bound': audio_padding_bound(cfg, True) if 'audio' in METHODS[m].modalities else None}),
                     'end-to-end epoch s': dyn['train_seconds'], 'cached epoch s': cache['train_seconds'],
                     'end-to-end / cached': round(dyn['train_seconds'] / max(cache['train_seconds'], 1e-9), 1)})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    cmd = 'python benchmarks/throughput.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    header = (f'command: {cmd}\nmachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, '
              f'{"cuda" if torch.cuda.is_available() else "cpu"}; demo corpus size {args.size}'
              f'{"" if args.segments is None else f" ({args.segments} segments)"}, {args.backbones} backbones, '
              f'head sizes {heads or "as in the paper"}, batch {sizes.get("batch_size", "as in the paper per method")}\n'
              'all runs at the paper lengths (audio_max_lens 96000, text_max_lens 256); '
              f'{"the median of epochs 2-" + str(args.epochs) if args.epochs > 1 else "one epoch"} per run; utt/s = training utterances per second; dynamic = padded to the batch\'s longest; '
              'grouped = dynamic with group_by_length; cached = head-only epoch on cached features; kernel % = share of the '
              'run\'s CPU time spent in the operating system (page faults), whole run; audio bound = static over dynamic '
              'padded audio samples for the epoch\'s batches, the most dynamic padding can save on work linear in the audio length')
    text = header + '\n\n' + table.to_markdown(index=False)
    print('\n' + text)
    (out/f'throughput-{stamp}.md').write_text(text + '\n')
    return table



if __name__ == '__main__': main()
