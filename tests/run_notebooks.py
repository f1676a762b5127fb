"""Run notebooks and keep their outputs, as the repository commits them: `python tests/run_notebooks.py nbs [NAME ...]`
(NAME as `10_data/11_labels`, relative to nbs).

Each notebook runs on a fresh kernel in its own folder (as `nbdev_test` runs it), cells marked `#| notest` are left
unrun (they are the slow, optional ones), progress bars are off (TQDM_DISABLE=1), and every PNG figure is
re-encoded with a 256-colour palette so that the notebooks stay small. `make notebooks` runs this on every notebook,
then `nbdev_clean`. Nothing is written unless every cell of a notebook ran without an error."""
import base64, io, os, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

def palette_png(png:bytes) -> bytes:
    "`png` re-encoded with a 256-colour palette, if that is smaller (figures and screenshots lose nothing visible)."
    from PIL import Image
    img = Image.open(io.BytesIO(png)).convert('RGB').quantize(256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO(); img.save(out, 'png', optimize=True)
    return out.getvalue() if out.tell() < len(png) else png

def _small_png(data:str) -> str: return base64.b64encode(palette_png(base64.b64decode(data))).decode()

def run(path:Path, timeout:int=1800) -> float:
    "Execute `path` in place; returns the seconds it took."
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}},
                            extra_arguments=['--IPKernelApp.log_level=CRITICAL'])
    t0 = time.perf_counter()
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != 'code': continue
            if cell.source.lstrip().startswith('#| notest') or '\n#| notest' in cell.source:
                cell.outputs = []; continue
            client.execute_cell(cell, i)  # raises CellExecutionError, naming the cell, on an error
    for cell in nb.cells:
        for o in cell.get('outputs', []):
            if 'image/png' in o.get('data', {}): o['data']['image/png'] = _small_png(o['data']['image/png'])
    nbformat.write(nb, path)
    return time.perf_counter() - t0

if __name__ == '__main__':
    os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('HF_HUB_DISABLE_PROGRESS_BARS', '1')  # transformers' own bars too
    folder, names = Path(sys.argv[1]), sys.argv[2:]
    every = sorted(p for p in folder.rglob('*.ipynb') if not any(x.startswith(('_', '.')) for x in p.relative_to(folder).parts))
    paths = every if not names else [folder/(n if n.endswith('.ipynb') else n + '.ipynb') for n in names]
    for p in paths:
        print(f'{p.relative_to(folder)}: ', end='', flush=True)
        print(f'{run(p):.0f} s, {p.stat().st_size / 1e3:.0f} kB', flush=True)
