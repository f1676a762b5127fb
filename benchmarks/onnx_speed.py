"""Inference speed on the CPU: PyTorch against ONNX Runtime, clips per second, for models exported by `rsacfn export`.

    python benchmarks/onnx_speed.py [--methods early_fusion,rsa_cfn] [--clips 48] [--batch_size 8] [--threads 2]
    python benchmarks/onnx_speed.py --backbones paper --methods early_fusion --clips 16 --batch_size 4

Both run `rsacfn.evaluation.inference.predict` on the same clips (random speech-band noise of `--seconds` seconds,
so every batch is `--seconds` long: the paper's static 6 s) and transcripts, in batches of `--batch_size`: the
PyTorch model (`MultiModel`, torch's CPU threads set to `--threads`) and its export (`OnnxModel`, ONNX Runtime's
CPU provider with as many intra-op threads). One batch of each warms up first; the median of `--repeats` timed
passes is reported. Each export is also checked as `rsacfn export` checks it (the parity column).

`--backbones tiny` (the default) uses the tiny offline backbones with the registry's tiny heads; `--backbones paper`
uses the paper's backbones if they are in the Hugging Face cache (facebook/wav2vec2-large-960h-lv60-self,
klue/roberta-base), else random-weight backbones of the same architecture (`throughput.paper_size_backbones`: they
cost what the real ones cost), with the paper's head sizes.
"""
import argparse, os, platform, shlex, statistics, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np
import torch
from rsacfn.evaluation.inference import predict
from rsacfn.models.export import OnnxModel, export_onnx
from rsacfn.models.multimodal import MultiModel
from rsacfn.models.registry import METHODS
from rsacfn.models.tiny import tiny_backbones

TEXTS = ('정말 기뻐요, 너무 좋아요', '오늘 회의는 세 시에 시작해요', '네, 알겠습니다', '그게 무슨 말이에요? 정말 화가 나네요')


def paper_backbones(work:Path, tiny:dict) -> tuple:
    "(backbones, what they are): the paper's if cached here, else random ones of their architecture."
    from huggingface_hub import try_to_load_from_cache
    ids = {'audio': 'facebook/wav2vec2-large-960h-lv60-self', 'text': 'klue/roberta-base'}
    if all(isinstance(try_to_load_from_cache(i, 'config.json'), str) for i in ids.values()):
        return ids, 'the paper\'s checkpoints (cached)'
    sys.path.insert(0, str(Path(__file__).parent))
    from throughput import paper_size_backbones
    return paper_size_backbones(work/'paper_size_backbones', tiny), ('random weights with the paper checkpoints\' '
                                                                     'architecture (the checkpoints are not cached here)')


def timed(model, clips, texts, batch_size:int, repeats:int) -> float:
    "Clips per second of `predict`: the median of `repeats` passes after a warm-up batch."
    head = lambda x: x[:batch_size] if x is not None else None
    predict(model, head(clips), head(texts), batch_size=batch_size)
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        predict(model, clips, texts, batch_size=batch_size)
        runs.append(time.perf_counter() - t)
    return len(clips or texts) / statistics.median(runs)


def bench(method:str, bb:dict, paper:bool, args, work:Path) -> dict:
    sizes = {} if paper else METHODS[method].tiny_sizes
    lens = dict(audio_max_lens=int(args.seconds * 16_000), text_max_lens=128 if paper else 64)
    model = MultiModel.from_backbones(method, bb['audio'], bb['text'], head_sizes=sizes, **lens).eval()
    t = time.perf_counter()
    record = export_onnx(model, work/method)
    export_s = time.perf_counter() - t
    onnx_model = OnnxModel.from_pretrained(work/method, threads=args.threads)
    mods, rng = model.head.modalities, np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(lens['audio_max_lens'])).astype(np.float32) for _ in range(args.clips)]
    texts = [TEXTS[i % len(TEXTS)] for i in range(args.clips)] if 'text' in mods else None
    clips = clips if 'audio' in mods else None
    torch_cps = timed(model, clips, texts, args.batch_size, args.repeats)
    onnx_cps = timed(onnx_model, clips, texts, args.batch_size, args.repeats)
    mb = sum(f.stat().st_size for f in (work/method).iterdir() if f.name.startswith('model.onnx')) / 2**20
    return dict(method=method, torch=torch_cps, onnx=onnx_cps, export_s=export_s, mb=mb,
                parity=record['parity']['max_probability_diff'])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--methods', default='speech_only,text_only,early_fusion,rsa_cfn,mlp_mixer',
                   help='comma-separated methods (default: %(default)s)')
    p.add_argument('--backbones', choices=('tiny', 'paper'), default='tiny', help='(default: %(default)s)')
    p.add_argument('--clips', type=int, default=48, help='clips per timed pass (default: %(default)s)')
    p.add_argument('--seconds', type=float, default=6.0, help='each clip\'s length (default: %(default)s, the paper\'s)')
    p.add_argument('--batch_size', type=int, default=8, help='(default: %(default)s)')
    p.add_argument('--threads', type=int, default=2, help='CPU threads for both runtimes (default: %(default)s)')
    p.add_argument('--repeats', type=int, default=3, help='timed passes; the median is reported (default: %(default)s)')
    p.add_argument('--work', default=None, help='folder for the exports (default: a temporary one)')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix='onnx_speed_'))
    tiny = tiny_backbones(pretrain_clips=0, progress=False)
    bb, what = (paper_backbones(work, tiny) if args.backbones == 'paper' else
                (tiny, 'the tiny offline backbones (hidden size 32, 2 layers)'))
    import onnxruntime, transformers
    print(' '.join(['$ python benchmarks/onnx_speed.py', shlex.join(sys.argv[1:] if argv is None else argv)]).rstrip())
    print(f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, {args.threads} thread(s); '
          f'torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, transformers {transformers.__version__}')
    print(f'backbones: {what}; {args.clips} clips of {args.seconds:g} s, batches of {args.batch_size}, '
          f'median of {args.repeats}\n')
    print('| method | PyTorch clips/s | ONNX Runtime clips/s | ONNX / PyTorch | export s | model.onnx MB | parity |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for m in args.methods.split(','):
        r = bench(m, bb, args.backbones == 'paper', args, work)
        print(f"| {m} | {r['torch']:.1f} | {r['onnx']:.1f} | {r['onnx'] / r['torch']:.2f}x | {r['export_s']:.1f} | "
              f"{r['mb']:.1f} | {r['parity']:.1e} |", flush=True)


if __name__ == '__main__':
    main()
