"The notebooks are committed with their outputs, which are documentation: no progress bars, no stray values."
import json, re, subprocess, sys
from pathlib import Path
import pytest

NBS = sorted((Path(__file__).parents[1]/'nbs').glob('*.ipynb'))


def _outputs(path):
    for cell in json.loads(path.read_text(encoding='utf-8'))['cells']:
        for out in cell.get('outputs', []):
            text = ''.join(out.get('text', '')) or ''.join(out.get('data', {}).get('text/plain', ''))
            yield cell.get('id'), text


@pytest.mark.parametrize('path', NBS, ids=[p.name for p in NBS])
def test_committed_outputs_hold_no_progress_bars_or_bare_booleans(path):
    "A progress bar frozen at 0 % or a lone `True` tells a reader nothing; `make notebooks` writes neither."
    bad = [(cid, text[:60]) for cid, text in _outputs(path)
           if 'it/s]' in text or 'Loading weights' in text or 'Writing model shards' in text
           or text.strip() in ('True', 'False')]
    assert not bad, f'{path.name}: cells with a progress bar or a bare boolean: {bad}'


def test_the_readme_method_table_is_the_registry():
    "The README's table of methods is `method_table()` of the registry, as `nbs/index.ipynb` shows it; never edited by hand."
    import rsacfn.models.heads, rsacfn.models.registry  # the heads register the paper's methods
    readme = (Path(__file__).parents[1]/'README.md').read_text(encoding='utf-8')
    start, end = '<!-- the method table: written by nbs/index.ipynb (method_table) -->', '<!-- end of the method table -->'
    assert start in readme and end in readme, 'the README has lost the markers around its method table'
    written = readme.split(start)[1].split(end)[0].strip()
    ours = [n for n, m in rsacfn.models.registry.METHODS.items() if m.head.__module__ == 'rsacfn.models.heads']  # not a test's plugin heads
    assert written == rsacfn.models.heads.method_table(methods=ours), 'the README method table differs from the registry: run nbs/index.ipynb, then make readme'


def test_the_readme_is_made_from_the_index_notebook_and_stays_short():
    "README.md is what `make readme` makes of nbs/index.ipynb (nbdev's way), at most 12,000 characters, and has no history."
    root = Path(__file__).parents[1]
    out = subprocess.run([sys.executable, root/'.ci'/'readme.py', '--check'], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    readme = (root/'README.md').read_text(encoding='utf-8')
    assert len(readme) <= 12_000, f'README.md is {len(readme):,} characters'
    hashes = re.findall(r'\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b', readme)
    assert not hashes, f'commit hashes in the README: {hashes}'
    for part in ('make demo', 'make test', '## The first minute', 'EmotionRecognizer', "## The demo's table"):
        assert part in readme
