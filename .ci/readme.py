"""README.md from nbs/index.ipynb, as `nbdev_readme` makes it with Quarto (GitHub Markdown, the notebook not run
again): markdown cells as they are; a code cell as a python block followed by its outputs (Markdown shown as Markdown,
text in a `text` block); `#| hide` cells left out, `#| echo: false` shows the output only.

`make readme` runs `nbdev_readme` where Quarto is installed, else this; `tests/test_outputs.py` checks that README.md is
what this makes of the committed notebook. Usage: python .ci/readme.py [--check]"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _directives(src: str) -> dict:
    return {k: v.strip() for k, v in re.findall(r'^#\|\s*([\w-]+):?[ \t]*(.*)$', src, re.M)}


def _outputs(cell: dict) -> list[str]:
    out = []
    for o in cell.get('outputs', []):
        data = o.get('data', {})
        if 'text/markdown' in data: out.append(''.join(data['text/markdown']).strip())
        elif o['output_type'] == 'stream': out.append('```text\n' + ''.join(o['text']).rstrip() + '\n```')
        elif 'text/plain' in data: out.append('```text\n' + ''.join(data['text/plain']).rstrip() + '\n```')
    return out


def render(path: Path = ROOT/'nbs'/'index.ipynb') -> str:
    "The README that `path` makes."
    parts = []
    for cell in json.loads(path.read_text(encoding='utf-8'))['cells']:
        src = ''.join(cell['source'])
        if cell['cell_type'] == 'markdown':
            parts.append(src.strip()); continue
        d = _directives(src)
        if 'hide' in d or d.get('include') == 'false': continue
        body = '\n'.join(line for line in src.splitlines() if not line.startswith('#|')).strip()
        if d.get('echo') != 'false' and body: parts.append(f'```python\n{body}\n```')
        parts += _outputs(cell)
    return '\n\n'.join(p for p in parts if p) + '\n'


if __name__ == '__main__':
    readme, text = ROOT/'README.md', render()
    if '--check' in sys.argv:
        sys.exit(0 if readme.read_text(encoding='utf-8') == text else 'README.md is not what nbs/index.ipynb makes: '
                 'run `make readme` and commit')
    readme.write_text(text, encoding='utf-8')
    print(f'README.md: {len(text):,} characters from nbs/index.ipynb')
