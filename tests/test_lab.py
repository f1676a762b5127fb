"JupyterLab, the way in: its server runs a notebook on a kernel through the REST API, and a save leaves the notebook as committed."
import json, uuid
import pytest
pytestmark = pytest.mark.slow  # `make test-quick` leaves this file out
from lab import lab_server, scratch_copy

websocket = pytest.importorskip('websocket', reason='websocket-client comes with jupyterlab (make install)')

def run_cell(ws, code:str, timeout:float=300) -> list[dict]:
    "Execute `code` on the kernel behind `ws` (the kernel's channels); its iopub outputs in Jupyter's message form."
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps(dict(header=dict(msg_id=msg_id, msg_type='execute_request', username='test', session=uuid.uuid4().hex, version='5.3'),
                            parent_header={}, metadata={}, channel='shell',
                            content=dict(code=code, silent=False, store_history=True, user_expressions={}, allow_stdin=False))))
    outputs = []
    ws.settimeout(timeout)
    while True:
        msg = json.loads(ws.recv())
        if msg.get('parent_header', {}).get('msg_id') != msg_id or msg.get('channel') != 'iopub': continue
        kind = msg['header']['msg_type']
        if kind in ('stream', 'execute_result', 'display_data', 'error'): outputs.append(dict(msg['content'], output_type=kind))
        if kind == 'status' and msg['content']['execution_state'] == 'idle': return outputs

def test_lab_runs_a_notebook_and_saves_it_clean(tmp_path):
    name = '20_models/21_layers.ipynb'
    root = scratch_copy(tmp_path, [name])
    committed = (root/'nbs'/name).read_bytes()
    with lab_server(root) as lab:
        model = lab.api('GET', f'contents/{name}')
        nb = model['content']
        assert model['type'] == 'notebook' and nb['metadata']['kernelspec']['name'] == 'python3'
        session = lab.api('POST', 'sessions', dict(path=name, type='notebook', name=name, kernel=dict(name='python3')))
        ws = websocket.create_connection(f'ws://127.0.0.1:{lab.port}/api/kernels/{session["kernel"]["id"]}/channels?token={lab.token}')
        try:
            ran = compared = 0
            for cell in nb['cells']:
                if cell['cell_type'] != 'code' or 'nbdev_export' in ''.join(cell['source']): continue
                outs = run_cell(ws, ''.join(cell['source']))
                errors = [o for o in outs if o['output_type'] == 'error']
                assert not errors, f"cell {cell['id']} failed on the Lab kernel: {errors[0]['ename']}: {errors[0]['evalue']}"
                was = [o for o in cell['outputs'] if o['output_type'] == 'execute_result']
                now = [o for o in outs if o['output_type'] == 'execute_result']
                if was and 'torch.Size' in ''.join(was[0]['data']['text/plain']):  # shapes are deterministic: they must match what is committed
                    assert ''.join(was[0]['data']['text/plain']) == now[0]['data']['text/plain']
                    compared += 1
                ran += 1
            assert ran >= 5 and compared >= 1
        finally: ws.close()
        # what JupyterLab changes when it opens a notebook on its kernel, then saves it
        nb['metadata']['kernelspec']['display_name'] = 'Python 3 (ipykernel)'
        nb['metadata']['language_info'] = dict(name='python', version='3.11.7', mimetype='text/x-python', file_extension='.py',
                                               codemirror_mode=dict(name='ipython', version=3), pygments_lexer='ipython3', nbconvert_exporter='python')
        lab.api('PUT', f'contents/{name}', dict(type='notebook', format='json', content=nb))
        lab.api('DELETE', f'sessions/{session["id"]}')
    assert (root/'nbs'/name).read_bytes() == committed, 'a save from JupyterLab changed the notebook: is the nbdev save hook installed?'
    # nothing the save leaves beside the notebook is untracked in git's eyes (nbdev's .last_checked is ignored)
    import subprocess
    from lab import REPO
    made = [p for p in (root/'nbs').rglob('*') if p.is_file() and p.relative_to(root/'nbs').as_posix() not in (name, 'lab.log')]
    untracked = [p.name for p in made if subprocess.run(['git', 'check-ignore', '-q', f'nbs/{p.relative_to(root/"nbs")}'],
                                                        cwd=REPO).returncode != 0]
    assert not untracked, f'a save from JupyterLab leaves untracked files: {untracked}'
