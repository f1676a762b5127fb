"""The docs as tests: every command and code block of README.md, GUIDE.md and the notebooks' prose runs as written, from
a fresh working folder, or is marked illustrative with the reason (`tests/docs.py` names the tiny settings it runs with)."""
import subprocess, sys
from pathlib import Path
import pytest
from docs import DOCS, RUN, blocks

RUNNABLE = [d for d in DOCS if any(b['why'] is None and b['lang'] in RUN for b in blocks(d))]


@pytest.mark.parametrize('doc', DOCS)
def test_every_block_is_run_or_says_why_not(doc):
    for b in blocks(doc):
        assert b['lang'] in (*RUN, 'text'), f"{b['where']}: a block is `bash` or `python` (run) or `text` (output), not {b['lang']!r}"
        if b['why'] is not None:
            assert len(b['why'].split()) >= 3, f"{b['where']}: say why the block is illustrative (`<!-- illustrative: why -->`)"
            assert b['lang'] in RUN, f"{b['where']}: only a command or code block is illustrative; output is `text`"


def test_the_docs_have_runnable_blocks():
    assert {'README.md', 'GUIDE.md'} <= set(RUNNABLE), RUNNABLE


@pytest.mark.slow
def test_the_docs_run_as_written(tiny_corpus, tiny_backbones, tmp_path):
    """Each document's blocks, in order, in a fresh working folder of its own, as a user would type them after the
    install; the documents one after another in one process (its imports paid once)."""
    r = subprocess.run([sys.executable, Path(__file__).parent/'docs.py', tmp_path, tiny_corpus, tiny_backbones['audio'],
                        tiny_backbones['text'], *RUNNABLE], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, (r.stdout[-4000:] + r.stderr[-6000:])
    for doc in RUNNABLE: assert f'{doc}: every block ran' in r.stdout, r.stdout[-3000:]
