import os, shutil, subprocess, sys, warnings
# One thread per process: the tests run on two workers (`make test`: pytest-xdist) and start training processes and kernels
# of their own, all on the machine's cores; two threads each oversubscribe them (a tiny epoch: 8.5 s against 1.0 s).
# Set before torch is imported here or in any child process, which inherits it.
for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): os.environ.setdefault(_var, '1')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import pytest
from rsacfn.data.demo import make_demo_corpus
from rsacfn.models.tiny import tiny_backbones as cached_tiny_backbones


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: trains a model, runs a notebook, a sweep or a process; `make test-quick` leaves it out')


# the longest files first (their times with --durations=0 on 2026-12-02: sweep 230 s, about 310 s with the SLURM test;
# notebooks 203, trainer 121, analysis 87, faults 47, registry 42, install 38, audio 22, readers 20; the rest under 15
# each), so that two workers end together:
# `--dist loadfile --no-loadscope-reorder` hands out whole files in this order (xdist's own reorder, by the number of
# tests in a file, put the many quick parametrised ones first)
FIRST = ('test_sweep.py', 'test_notebooks.py', 'test_docs.py', 'test_trainer.py', 'test_attribution.py',
         'test_as_typed.py', 'test_analysis.py', 'test_faults.py', 'test_registry.py', 'test_install.py', 'test_audio.py',
         'test_readers.py')


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: the order within a file is kept


@pytest.fixture(scope='session')
def tiny_corpus(tmp_path_factory):
    "A tiny demo corpus in KEMDy20 layout, written once; do not modify it (copy it with `corpus_copy`)."
    return make_demo_corpus(tmp_path_factory.mktemp('tiny')/'KEMDy20_v1_1', size='tiny', progress=False)


@pytest.fixture(scope='session')
def default_corpus(tmp_path_factory):
    return make_demo_corpus(tmp_path_factory.mktemp('default')/'KEMDy20_v1_1', progress=False)


@pytest.fixture(scope='session')
def tiny_backbones(tmp_path_factory):
    "Tiny random backbones from the machine's cache (no pretext pretraining: the tests check mechanics, not how well they hear)."
    return cached_tiny_backbones(pretrain_clips=0, progress=False)


def ctrl_c_reaches():
    """`preexec_fn` of a child a test sends Ctrl-C: SIGINT's default, as in a terminal. A shell's background job
    (`make test &`) starts with SIGINT ignored, its children inherit that, and Python then never raises KeyboardInterrupt."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def one_line(r) -> bool:
    "Whether a command's error is one line, and no traceback."
    return len(r.stderr.strip().splitlines()) == 1 and 'Traceback' not in r.stderr


def tree(root) -> dict:
    "Every file under `root` and its bytes: what a command must leave untouched."
    from pathlib import Path
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def model_dir(tiny_backbones, tmp_path_factory):
    "A saved early_fusion model (untrained tiny backbones: the commands' mechanics, not their accuracy)."
    from rsacfn.models.multimodal import MultiModel
    d = tmp_path_factory.mktemp('model')/'best'
    MultiModel.from_backbones('early_fusion', tiny_backbones['audio'], tiny_backbones['text'], audio_max_lens=32_000,
                              text_max_lens=64).save_pretrained(d)
    return d


@pytest.fixture
def corpus_copy(tiny_corpus, tmp_path):
    "A private copy of the tiny corpus that a test may damage."
    return shutil.copytree(tiny_corpus, tmp_path/'KEMDy20_v1_1')


def word_tokenizer(texts):
    "A tiny word-level Hugging Face tokenizer over `texts` (the collator accepts any HF tokenizer)."
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    words = sorted({w for t in texts for w in t.replace(',', ' ').split()})
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(['[PAD]', '[UNK]'] + words)}, unk_token='[UNK]'))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token='[PAD]', unk_token='[UNK]')


@pytest.fixture
def rsacfn_cli(capfd):
    """`rsacfn ARGS` run in this process: a `CompletedProcess` with its exit status and everything written to the file
    descriptors 1 and 2 meanwhile (libraries' log handlers and warnings included, as a terminal would show them). Saves the ~10 s of
    imports a fresh process pays. The program itself still runs as a process in the tests of --debug, Ctrl-C, `python -m rsacfn`, the
    registered-head sweep (in-process its plugin would already be loaded), the page (`rsacfn app`) and the wheel install."""
    def run(*args):
        from rsacfn.cli import main
        capfd.readouterr()  # what came before is not this command's
        with warnings.catch_warnings():  # warnings printed to stderr as a fresh process prints them, not collected by pytest
            warnings.showwarning = lambda m, c, f, n, file=None, line=None: sys.stderr.write(warnings.formatwarning(m, c, f, n, line))
            warnings.simplefilter('default')
            for quiet in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning): warnings.simplefilter('ignore', quiet)
            try: code = main([str(a) for a in args])
            except SystemExit as e: code = e.code  # argparse's own errors
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(['rsacfn', *map(str, args)], code, out, err)
    return run
