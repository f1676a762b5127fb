"`rsacfn app`: the page's answer is the recognizer's, it asks only for what the model uses, and a browser gets it."
import os, signal, socket, subprocess, sys, time
import pytest
from conftest import ctrl_c_reaches, one_line

gr = pytest.importorskip('gradio', reason="gradio is an optional extra: pip install 'rsacfn[app]'")


@pytest.fixture(scope='module')
def rec(model_dir):
    from rsacfn.recognizer import EmotionRecognizer
    return EmotionRecognizer.from_pretrained(model_dir, device='cpu')


@pytest.fixture(scope='module')
def clip(tiny_corpus):
    from rsacfn.data.readers import read_corpus
    return read_corpus(tiny_corpus).iloc[0]


def test_the_page_answers_with_the_recognizers_own_probabilities(rec, clip):
    from rsacfn.app import app_outputs, build_app
    row = rec([clip.wav_path], texts=[clip.text]).iloc[0]
    expected = {c: float(row[f'p_{c}']) for c in rec.model.config.class_names}
    answer = next(iter(build_app(rec).fns.values())).fn  # what the page's Recognise button runs
    probs, notes, words, figure = answer(clip.wav_path, clip.text, False)
    assert probs == pytest.approx(expected, abs=1e-6) and max(probs, key=probs.get) == row.emotion
    shown = app_outputs(rec, clip.wav_path, clip.text, n_steps=4)  # with its explanation
    assert shown['emotion'] == row.emotion and shown['probabilities'] == pytest.approx(expected, abs=1e-6)
    assert [w for w, _ in shown['words'] if w != ' '] == clip.text.split() and shown['figure'].size[0] > 300
    with pytest.raises(gr.Error, match='upload a clip or record one'): answer(None, clip.text, False)


def test_the_page_serves_an_onnx_export_and_says_it_cannot_explain(rec, clip, model_dir, tmp_path):
    from rsacfn.app import app_outputs
    from rsacfn.models.export import export_onnx
    from rsacfn.recognizer import EmotionRecognizer
    export_onnx(model_dir, tmp_path/'onnx')
    shown = app_outputs(EmotionRecognizer.from_pretrained(tmp_path/'onnx'), clip.wav_path, clip.text)
    row = rec([clip.wav_path], texts=[clip.text]).iloc[0]
    assert shown['emotion'] == row.emotion and shown['figure'] is None and shown['words'] is None
    assert any('an ONNX export has no gradients to explain with' in n for n in shown['notes'])


@pytest.mark.parametrize('method, inputs', [('speech_only', ['Audio']), ('text_only', ['Textbox']),
                                            ('early_fusion', ['Audio', 'Textbox'])])
def test_the_page_asks_only_for_what_the_model_uses(tiny_backbones, method, inputs):
    from rsacfn.app import build_app
    from rsacfn.models.multimodal import MultiModel
    from rsacfn.recognizer import EmotionRecognizer
    model = MultiModel.from_backbones(method, tiny_backbones['audio'], tiny_backbones['text'], text_max_lens=64)
    page = build_app(EmotionRecognizer(model, 'cpu'))
    kinds = [type(b).__name__ for b in page.blocks.values()]
    assert [k for k in kinds if k in ('Audio', 'Textbox')] == inputs
    assert ('HighlightedText' in kinds) == ('Textbox' in inputs)  # words shaded only where there are words
    assert method in page.blocks[min(page.blocks)].value  # the title names the method


def test_without_gradio_the_command_says_what_to_install(model_dir, rsacfn_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, 'gradio', None)  # as if it were not installed
    r = rsacfn_cli('app', model_dir)
    assert r.returncode == 2 and one_line(r) and "pip install 'rsacfn[app]'" in r.stderr, r.stderr


def test_a_taken_port_is_one_line_naming_a_free_one(model_dir, rsacfn_cli):
    with socket.socket() as held:
        held.bind(('127.0.0.1', 0)); held.listen()
        port = held.getsockname()[1]
        r = rsacfn_cli('app', model_dir, '--port', port)
    assert r.returncode == 2 and one_line(r), r.stderr
    assert f'--port {port}: 127.0.0.1:{port} is in use' in r.stderr and 'give a free one, e.g. --port ' in r.stderr


@pytest.mark.slow
def test_a_browser_uploads_a_clip_and_reads_the_emotion(rec, clip, model_dir, tmp_path):
    import app_browser
    if not (app_browser.CHROMIUM and app_browser.DRIVER):
        pytest.skip('chromium and chromedriver are not installed (Debian: apt-get install -y chromium chromium-driver)')
    from rsacfn.commands.app import free_port
    port = free_port(None)
    log = open(tmp_path/'app.log', 'w+')
    # started as a user starts it, the model folder relative to the working folder
    proc = subprocess.Popen([sys.executable, '-m', 'rsacfn', 'app', model_dir.name, '--port', str(port)],
                            cwd=model_dir.parent, stdout=log, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, TQDM_DISABLE='1'), preexec_fn=ctrl_c_reaches)
    try:
        url = f'http://127.0.0.1:{port}/'
        for _ in range(240):
            if url in (tmp_path/'app.log').read_text() or proc.poll() is not None: break
            time.sleep(0.25)
        assert url in (tmp_path/'app.log').read_text(), (tmp_path/'app.log').read_text()[-2000:]
        driver = app_browser.chrome()
        try:
            shown = app_browser.recognise(driver, url, clip.wav_path, clip.text)
            outside = [u for u in app_browser.requested(driver) if not u.startswith(('http://127.0.0.1:', 'blob:', 'data:'))]
        finally: driver.quit()
        assert shown == rec([clip.wav_path], texts=[clip.text]).emotion.iloc[0]
        assert not outside, f'the page fetched from outside the machine: {outside}'
        proc.send_signal(signal.SIGINT)  # Ctrl-C stops it, as the command says
        assert proc.wait(30) == 0
        # closed, or given up on after STOP_WAIT_S (a server Gradio did not close): either way stopped, and said
        assert (tmp_path/'app.log').read_text().rstrip().splitlines()[-1].startswith('stopped')
    finally:
        if proc.poll() is None: proc.kill(); proc.wait()
        log.close()


STUCK = '''
import sys, time
import rsacfn.app, rsacfn.commands.app
class Stuck:
    "A page whose server never finishes closing: a browser holding its connection open, an answer still worked out."
    def close(self, verbose=True): time.sleep(600)
rsacfn.app.build_app = lambda rec, name, n_steps: Stuck()
rsacfn.app.serve = lambda page, port: f'http://127.0.0.1:{port}/'
rsacfn.commands.app.STOP_WAIT_S = 1
from rsacfn.cli import main
sys.exit(main(['app', sys.argv[1]]))
'''


@pytest.mark.slow
def test_ctrl_c_stops_the_command_even_when_its_server_does_not_close(model_dir, tmp_path):
    proc = subprocess.Popen([sys.executable, '-c', STUCK, str(model_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, TQDM_DISABLE='1'), preexec_fn=ctrl_c_reaches)
    try:
        assert 'http://127.0.0.1:' in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert 'stopped (its server had not closed within 1 s' in proc.stdout.read()
    finally:
        if proc.poll() is None: proc.kill(); proc.wait()
