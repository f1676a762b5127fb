"""A JupyterLab server on loopback over a scratch copy of the notebooks, started as `make lab` starts it (in nbs/), for tests/test_lab.py and tests/lab_screenshot.py.

The copy holds settings.ini beside nbs/, so the server's nbdev save hook (installed into .venv by `make install`)
cleans every save exactly as in the repository, while nothing in the repository itself is touched."""
import json, os, secrets, shutil, socket, subprocess, sys, time, urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOOK = Path(sys.prefix)/'etc'/'jupyter'/'jupyter_server_config.json'

def scratch_copy(root:Path, names) -> Path:
    "`root` with settings.ini and the notebooks `names` of nbs/ (their images too)."
    (root/'nbs').mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO/'settings.ini', root/'settings.ini')
    for n in names:
        (root/'nbs'/n).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO/'nbs'/n, root/'nbs'/n)
    return root

def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

class Lab:
    "A running server: `url`, `token`, and `api(method, path, body)` for its REST API."
    def __init__(self, root:Path):
        if not HOOK.is_file(): raise FileNotFoundError(f'{HOOK} is missing: run `make install` (it installs the nbdev save hook)')
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        self.url = f'http://127.0.0.1:{self.port}'
        self.log = open(root/'lab.log', 'w')
        self.proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--ip', '127.0.0.1', '--port', str(self.port), '--no-browser',
                                      '--allow-root', f'--IdentityProvider.token={self.token}'],  # `make lab`'s flags and no more
                                     cwd=root/'nbs', stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ, HF_HUB_OFFLINE='1', TQDM_DISABLE='1'))
        for _ in range(240):
            try: self.api('GET', 'status'); return
            except OSError:
                if self.proc.poll() is not None: break
                time.sleep(0.25)
        self.close(); raise RuntimeError(f'JupyterLab did not start: {(root/"lab.log").read_text()[-2000:]}')

    def api(self, method:str, path:str, body=None):
        req = urllib.request.Request(f'{self.url}/api/{path}', method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={'Authorization': f'token {self.token}', 'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
            return json.loads(data) if data else None

    def close(self):
        self.proc.terminate()
        try: self.proc.wait(15)
        except subprocess.TimeoutExpired: self.proc.kill()
        self.log.close()

@contextmanager
def lab_server(root:Path):
    lab = Lab(root)
    try: yield lab
    finally: lab.close()
