"""Run the docs as a user types them: every fenced `bash` and `python` block of README.md, GUIDE.md and the notebooks'
prose, in order, from a fresh working folder, with relative paths as written. A block marked `<!-- illustrative: why -->`
on the line above it is not run; a `text` block is output. `python tests/docs.py ROOT CORPUS AUDIO TEXT DOC...` runs
each DOC's blocks in a fresh folder of its own under ROOT (after `prepare`), all in this one process, with the
substitutions below applied, and exits non-zero at the first failure, naming the block's line.

Everything a block is given that the docs do not write is named here and only here: the working folder's inputs
(`prepare`), the tiny backbones standing in for the paper's hub ids (`HUB_IDS`), the tiny settings (`TINY`) and the
tiny heads (`tiny_heads`)."""
import json, os, re, shlex, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ['README.md', 'GUIDE.md', *sorted(f'nbs/{p.name}' for p in (ROOT/'nbs').glob('[!_.]*.ipynb') if p.name != 'index.ipynb')]
# (nbs/index.ipynb is the README's source: `make readme` writes README.md from it, so its blocks are the README's)
FENCE = re.compile(r'(?:<!--\s*illustrative:\s*(?P<why>.*?)\s*-->[ \t]*\n)?^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```',
                   re.M | re.S)
RUN = ('bash', 'python')  # the languages run; `text` is output, and any other language is an error

# the paper's checkpoints, as the docs name them, served by the tiny backbones from a Hugging Face cache of their own
HUB_IDS = {'facebook/wav2vec2-large-960h-lv60-self': 'audio', 'klue/roberta-base': 'text'}
# the tiny settings: (pattern, replacement) applied to each block before it runs, so that the docs run in seconds
TINY = [
    (r'(\brsacfn train)\b', r'\1 --epochs 1'),
    (r'(\brsacfn demo-corpus \S+)', r'\1 --size tiny'),
    (r'(\brsacfn sweep \S+)', r'\1 --set epochs=1 --set demo_size=tiny'),
    (r'--seeds 42,43,44', '--seeds 42'),
    (r'-p epochs \d+', '-p epochs 1'),
    (r'\bTrainConfig\(', 'TrainConfig(epochs=1, '),
    (r'\bexperiment_config\(', "experiment_config(epochs=1, demo_size='tiny', "),
    (r'(?m)\brun_sweep\((.*)\)([ \t]*#.*)?$', r"run_sweep(\1, params={'epochs': 1, 'demo_size': 'tiny'}, progress=False)"),
    (r'seeds=\[42, 43, 44\]', 'seeds=[42]'),
    (r'\btiny_backbones\(\)', 'tiny_backbones(pretrain_clips=0)'),
    (r"split_corpus\(df, 'session', fold=0\)", "split_corpus(df, 'session', n_folds=4, fold=0)"),  # its 4 sessions
]


def sources(doc:str) -> list[tuple[str, str]]:
    "The prose of a document: (where, text) pairs, one per notebook markdown cell or one for a Markdown file."
    path = ROOT/doc
    if path.suffix != '.ipynb': return [(doc, path.read_text(encoding='utf-8'))]
    cells = json.loads(path.read_text(encoding='utf-8'))['cells']
    return [(f'{doc}, cell {i}', ''.join(c['source'])) for i, c in enumerate(cells) if c['cell_type'] == 'markdown']


def blocks(doc:str) -> list[dict]:
    "Every fenced block of `doc`: where (document and line), language, code, and the reason it is illustrative (or None)."
    out = []
    for where, text in sources(doc):
        for m in FENCE.finditer(text):
            line = text[:m.start('code')].count('\n') + 1
            out.append(dict(where=f'{where}, line {line}', lang=m['lang'], code=m['code'], why=m['why']))
    return out


def tiny_heads():
    """A run in this process that gives no head sizes gets its method's `tiny_sizes` instead of the paper's (rsa_cfn's and
    hybrid_fusion's paper heads hold 328 M parameters whatever the backbones: 35 s an epoch of the tiny corpus)."""
    import dataclasses
    import rsacfn.training.presets, rsacfn.training.loop
    from rsacfn.models.registry import METHODS
    paper = rsacfn.training.presets.resolve_config
    def resolve(cfg):
        out = paper(cfg)
        if out.head_sizes or not METHODS[out.method].tiny_sizes: return out
        small = dataclasses.replace(out, head_sizes=dict(METHODS[out.method].tiny_sizes))
        small.method_was_default = out.method_was_default
        return small
    rsacfn.training.presets.resolve_config = rsacfn.training.loop.resolve_config = resolve  # where train() finds it


def tiny(code:str) -> str:
    for pattern, replacement in TINY: code = re.sub(pattern, replacement, code)
    return code


def hub_cache(root:Path, backbones:dict):
    "A Hugging Face cache in `root` holding each of `HUB_IDS` as a snapshot of the tiny backbone that stands in for it."
    for hub_id, kind in HUB_IDS.items():
        repo = root/f"models--{hub_id.replace('/', '--')}"
        (repo/'refs').mkdir(parents=True, exist_ok=True)
        (repo/'refs'/'main').write_text('tiny')
        shutil.copytree(backbones[kind], repo/'snapshots'/'tiny', dirs_exist_ok=True)


def prepare(work:Path, corpus:Path, backbones:dict, doc:str):
    "The working folder the docs assume: the corpus where they name it, two clips and a manifest, a saved model."
    import pandas as pd
    from rsacfn.data.kemdy import read_kemdy20
    shutil.copytree(corpus, work/'data'/'KEMDy20_v1_1')
    segs = read_kemdy20(corpus)
    for name, i in (('a.wav', 0), ('b.wav', 1)): shutil.copy(segs.wav_path[i], work/name)
    pd.DataFrame(dict(wav_path=['a.wav', 'b.wav'], text=segs.text[:2])).to_csv(work/'clips.csv', index=False)
    new = work/'data'/'demo'/'new'; new.mkdir(parents=True)  # the GUIDE's new clips: 20 demo clips and a damaged file
    for i in range(20): shutil.copy(segs.wav_path[i], new/f'clip{i:02d}.wav')
    (new/'damaged.wav').write_bytes(b'RIFF\0\0\0\0WAVEnot audio')
    pd.DataFrame(dict(wav_path=[f'new/clip{i:02d}.wav' for i in range(20)] + ['damaged.wav'],
                      transcript=list(segs.text[:20]) + ['망가진 파일'])).to_csv(new.parent/'new_clips.csv', index=False)
    shutil.move(new/'damaged.wav', new.parent/'damaged.wav')
    if 'models/baseline/best' in (ROOT/doc).read_text(encoding='utf-8'):
        from rsacfn.models.multimodal import MultiModel
        MultiModel.from_backbones('early_fusion', backbones['audio'], backbones['text'], audio_max_lens=32_000,
                                  text_max_lens=64).save_pretrained(work/'models'/'baseline'/'best')
    (work/'nbs').symlink_to(ROOT/'nbs', target_is_directory=True)  # `papermill nbs/50_experiments/experiment.ipynb ...`


def bash(code:str, where:str):
    "A bash block, line by line: `NAME=value`, `$NAME`, `\\` continuations and comments; `rsacfn` runs in this process."
    from rsacfn.cli import main
    names = {}
    for line in code.replace('\\\n', ' ').splitlines():
        argv = shlex.split(re.sub(r'\$\{?(\w+)\}?', lambda m: names.get(m[1], os.environ.get(m[1], '')), line), comments=True)
        if not argv: continue
        if len(argv) == 1 and re.fullmatch(r'\w+=.*', argv[0]):
            k, v = argv[0].split('=', 1); names[k] = v; continue
        print(f'$ {" ".join(argv)}', flush=True)
        if Path(argv[0]).name == 'rsacfn': code = main(argv[1:])
        elif argv[0] == 'papermill': code = subprocess.run([Path(sys.executable).parent/'papermill', *argv[1:]]).returncode
        else: raise SystemExit(f'{where}: {argv[0]} is not run by the docs test; mark the block <!-- illustrative: why -->')
        if code: raise SystemExit(f'{where}: `{" ".join(argv)}` exited {code}')


def python(code:str, where:str):
    print(f'>>> {where}', flush=True)
    exec(compile(code, where, 'exec'), {'__name__': '__main__'})


def run(doc:str):
    import time
    for b in blocks(doc):
        if b['why'] is not None or b['lang'] not in RUN: continue
        t = time.perf_counter()
        (bash if b['lang'] == 'bash' else python)(tiny(b['code']), b['where'])
        print(f"{b['where']}: {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == '__main__':
    root, corpus, audio, text, *docs = sys.argv[1:]
    root, backbones = Path(root), dict(audio=audio, text=text)
    os.environ.update(HF_HUB_CACHE=str(root/'hub'), HF_HUB_OFFLINE='1')  # before any Hugging Face import
    hub_cache(root/'hub', backbones)
    tiny_heads()
    for doc in docs:
        work = root/re.sub(r'\W', '_', doc); work.mkdir()
        os.chdir(work)
        prepare(work, Path(corpus), backbones, doc)
        run(doc)
        print(f'{doc}: every block ran', flush=True)
