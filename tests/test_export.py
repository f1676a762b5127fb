"ONNX export (`rsacfn export`, `export_onnx`) and `OnnxModel`: the same probabilities as PyTorch for every method, and the refusals."
import json, sys
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import one_line, tree
from rsacfn.evaluation.analysis import predict_corpus
from rsacfn.evaluation.inference import predict
from rsacfn.models.export import ONNX_FILE, ONNX_RECORD, OnnxModel, export_onnx, is_onnx_folder
from rsacfn.models.multimodal import MultiModel
from rsacfn.models.registry import METHODS

PAPER = ('speech_only', 'text_only', 'early_fusion', 'late_fusion', 'stack', 'residual', 'rsa', 'rsa_cfn',
         'hybrid_fusion', 'mlp_mixer')
LOG_PRIOR = np.log(np.array([40, 20, 10, 10, 10, 5, 5]) / 100).tolist()
# some models with valence and arousal beside the classes, some with a post-hoc logit adjustment (`rsacfn adjust`)
EXTRA = {'speech_only': dict(logit_adjustment=dict(tau=1.5, log_prior=LOG_PRIOR)),
         'text_only': dict(dimensions=('valence', 'arousal')),
         'rsa_cfn': dict(dimensions=('valence', 'arousal'), logit_adjustment=dict(tau=1.0, log_prior=LOG_PRIOR)),
         'mlp_mixer': dict(logit_adjustment=dict(tau=0.5, log_prior=LOG_PRIOR))}
LENGTHS = (32_000, 9_000, 200, 15_000)  # the longest the models hear, between, shorter than the CNN takes
TEXTS = ['정말 기뻐요, 너무 좋아요', '네', '오늘 회의는 세 시에 시작해요 ' * 20, '그래서요?']


def test_the_ten_methods_are_the_registry_s():
    assert set(PAPER) <= set(METHODS)


@pytest.fixture(scope='module')
def exported(tiny_backbones, tmp_path_factory):
    "method -> (the PyTorch model, its ONNX export loaded, onnx.json), each exported once (from memory)."
    done, root = {}, tmp_path_factory.mktemp('onnx')
    def get(method):
        if method not in done:
            model = MultiModel.from_backbones(method, tiny_backbones['audio'], tiny_backbones['text'],
                                              head_sizes=METHODS[method].tiny_sizes, audio_max_lens=32_000,
                                              text_max_lens=64, **EXTRA.get(method, {}))
            record = export_onnx(model, root/method)
            done[method] = model.eval(), OnnxModel.from_pretrained(root/method), record
        return done[method]
    return get


def _inputs(model):
    rng = np.random.default_rng(7)
    mods = model.head.modalities
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in LENGTHS] if 'audio' in mods else None
    return clips, (TEXTS if 'text' in mods else None)


@pytest.mark.parametrize('method', PAPER)
def test_every_method_gives_pytorch_s_probabilities(exported, method):
    model, onnx_model, record = exported(method)
    clips, texts = _inputs(model)
    want = predict(model, clips, texts, batch_size=3)  # batches of 3 and 1, clips of four lengths
    got = predict(onnx_model, clips, texts, batch_size=3)
    probs = [c for c in want if c.startswith('p_')]
    assert list(got.columns) == list(want.columns)
    assert np.abs(got[probs].values - want[probs].values).max() <= 1e-4
    assert (got.emotion == want.emotion).all()
    dims = list(model.config.dimensions)
    if dims: assert np.abs(got[dims].values - want[dims].values).max() <= 1e-4
    assert record['parity']['max_probability_diff'] <= 1e-4 and record['method'] == method
    assert [i['name'] for i in record['inputs']] == (['input_values', 'audio_attention_mask'] * ('audio' in model.head.modalities)
                                                     + ['input_ids', 'text_attention_mask'] * ('text' in model.head.modalities))
    assert [o['name'] for o in record['outputs']] == ['logits'] + ['dims'] * bool(dims)


def test_the_graph_applies_the_logit_adjustment(exported):
    model, onnx_model, record = exported('rsa_cfn')
    clips, texts = _inputs(model)
    got = predict(onnx_model, clips, texts).filter(like='p_').values
    assert record['logit_adjustment_tau'] == 1.0
    np.testing.assert_allclose(got, predict(model, clips, texts).filter(like='p_').values, atol=1e-5)
    adjustment, model.config.logit_adjustment = model.config.logit_adjustment, None
    try: plain = predict(model, clips, texts).filter(like='p_').values
    finally: model.config.logit_adjustment = adjustment
    assert np.abs(got - plain).max() > 1e-2  # without it, other probabilities


def test_predict_corpus_runs_an_onnx_model_on_wav_files(exported, tmp_path):
    model, onnx_model, _ = exported('early_fusion')
    clips, texts = _inputs(model)
    for i, c in enumerate(clips): sf.write(tmp_path/f'{i}.wav', c, 16_000)
    df = pd.DataFrame(dict(segment_id=[f's{i}' for i in range(4)], wav_path=[str(tmp_path/f'{i}.wav') for i in range(4)],
                           text=texts))
    want, _ = predict_corpus(model, df, batch_size=3, progress=False)
    got, skipped = predict_corpus(onnx_model, df, batch_size=3, progress=False)
    assert len(skipped) == 0 and list(got.segment_id) == list(df.segment_id)
    assert np.abs(got.filter(like='p_').values - want.filter(like='p_').values).max() <= 1e-4


def test_an_onnx_model_says_it_cannot_explain(exported):
    _, onnx_model, _ = exported('early_fusion')
    assert onnx_model.supports_gradients is False and getattr(MultiModel, 'supports_gradients', True)
    with pytest.raises(ValueError, match='without gradients, so it cannot explain'): onnx_model.encode()
    with pytest.raises(ValueError, match='cannot explain or train'): onnx_model.train()


def test_rsacfn_export_from_a_relative_path(rsacfn_cli, model_dir, tmp_path, monkeypatch):
    import shutil
    shutil.copytree(model_dir, tmp_path/'runs'/'best')
    monkeypatch.chdir(tmp_path)
    r = rsacfn_cli('export', 'runs/best', '--format', 'onnx', '--out', 'exported')
    assert r.returncode == 0, r.stderr
    assert 'exported: model.onnx (opset 17, early_fusion' in r.stdout
    assert 'largest difference in a class probability' in r.stdout and "OnnxModel.from_pretrained('exported')" in r.stdout
    record = json.loads((tmp_path/'exported'/ONNX_RECORD).read_text())
    assert record['source'] == str(tmp_path/'runs'/'best') and 'model.safetensors sha256' in record['source_fingerprint']
    assert {'config.json', 'tokenizer.json', 'preprocessor_config.json', ONNX_FILE} <= set(record['files'])
    assert is_onnx_folder('exported') and not is_onnx_folder('runs/best')
    model, onnx_model = MultiModel.from_pretrained('runs/best'), OnnxModel.from_pretrained('exported')
    clips, texts = _inputs(model)
    np.testing.assert_allclose(predict(onnx_model, clips[:3], texts[:3], batch_size=3).filter(like='p_').values,
                               predict(model, clips[:3], texts[:3], batch_size=3).filter(like='p_').values, atol=1e-4)
    # again: refused without --overwrite, replaced with it
    before = tree(tmp_path/'exported')
    r = rsacfn_cli('export', 'runs/best', '--out', 'exported')
    assert r.returncode == 2 and one_line(r) and 'exists and is not empty; pass --overwrite' in r.stderr
    assert tree(tmp_path/'exported') == before
    assert rsacfn_cli('export', 'runs/best', '--out', 'exported', '--overwrite').returncode == 0


def test_refusals_leave_everything_as_it_was(rsacfn_cli, model_dir, tmp_path, monkeypatch):
    import shutil
    shutil.copytree(model_dir, tmp_path/'best')
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('keep')
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    for args, said in ((['best', '--out', 'best/onnx'], 'is inside the model folder'),
                       (['best', '--out', 'best'], 'is the model folder'),
                       (['best', '--out', '.'], 'a folder holding the model folder'),
                       (['best', '--out', 'mine', '--overwrite'], 'holds files rsacfn did not write (notes.txt)'),
                       (['best', '--out', 'x', '--format', 'torchscript'], "invalid choice: 'torchscript'"),
                       (['nothing', '--out', 'x'], 'is not a saved model')):
        r = rsacfn_cli('export', *args)
        assert r.returncode != 0 and one_line(r) and said in r.stderr, (args, r.stderr)
        assert 'out_dir' not in r.stderr  # the command line's spelling: --out
    assert tree(tmp_path) == before


def test_a_failed_parity_check_writes_nothing(model_dir, tmp_path, monkeypatch):
    import rsacfn.models.export as ex
    monkeypatch.setattr(ex, 'parity', lambda *a, **k: dict(probability=3e-3, dimension=None))
    with pytest.raises(ValueError, match=r'differs from PyTorch by up to 3.0e-03 in a class probability'):
        export_onnx(model_dir, tmp_path/'onnx')
    assert not (tmp_path/'onnx').exists() and [p.name for p in tmp_path.iterdir()] == []


def test_a_changed_export_is_refused_on_loading(exported, tmp_path):
    import shutil
    _, onnx_model, _ = exported('text_only')
    folder = shutil.copytree(onnx_model.folder, tmp_path/'copy')
    (folder/'config.json').write_text((folder/'config.json').read_text().replace('"neutral"', '"calm"'))
    with pytest.raises(ValueError, match=r'config.json missing or changed since; use the folder as exported'):
        OnnxModel.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match='is not an ONNX model folder'): OnnxModel.from_pretrained(tmp_path)


def test_without_onnxruntime_one_line_says_what_to_install(rsacfn_cli, model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # `import onnxruntime` fails
    r = rsacfn_cli('export', model_dir, '--out', tmp_path/'onnx')
    assert r.returncode == 2 and one_line(r)
    assert "rsacfn export needs onnx and onnxruntime: pip install 'rsacfn[onnx]'" in r.stderr
    assert not (tmp_path/'onnx').exists()


PLUGIN = '''
import torch
from torch import nn
from rsacfn.models.heads import FusionHead
from rsacfn.models.registry import register_head

@register_head('onnx_gated', 'early')
class OnnxGated(FusionHead):
    "x = LN(D)(cat[a, t]); logits = Linear(D, C)(x * sigmoid(Linear(D, D)(x)))."
    def __init__(self, audio_dim, text_dim, num_classes=7):
        super().__init__()
        D = audio_dim + text_dim
        self.norm, self.gate, self.classifier = nn.LayerNorm(D), nn.Linear(D, D), nn.Linear(D, num_classes)
    def forward(self, audio, text, audio_mask=None, text_mask=None):
        x = self.norm(torch.cat([audio, text], 1))
        return self.classifier(x * torch.sigmoid(self.gate(x))), {}
'''


def test_a_plugin_s_head_exports_too(rsacfn_cli, tiny_backbones, tmp_path, monkeypatch):
    from rsacfn.models.registry import load_plugins
    (tmp_path/'gated.py').write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    load_plugins(['gated.py'])
    model = MultiModel.from_backbones('onnx_gated', tiny_backbones['audio'], tiny_backbones['text'], audio_max_lens=32_000,
                                      text_max_lens=64)
    model.save_pretrained('best')
    r = rsacfn_cli('export', 'best', '--out', 'onnx', '--plugins', 'gated.py')
    assert r.returncode == 0, r.stderr
    clips, texts = _inputs(model)
    np.testing.assert_allclose(predict(OnnxModel.from_pretrained('onnx'), clips, texts, batch_size=3).filter(like='p_').values,
                               predict(model, clips, texts, batch_size=3).filter(like='p_').values, atol=1e-4)


def test_the_recognizer_and_rsacfn_predict_run_an_export(rsacfn_cli, model_dir, tiny_corpus, tmp_path, monkeypatch):
    "An export is a model folder like any other for the recognizer and `rsacfn predict`; explaining it is one line."
    import shutil
    import pandas as pd
    from rsacfn.data.readers import read_corpus
    from rsacfn.recognizer import EmotionRecognizer
    shutil.copytree(model_dir, tmp_path/'best')
    monkeypatch.chdir(tmp_path)
    assert rsacfn_cli('export', 'best', '--out', 'best_onnx').returncode == 0
    clips = read_corpus(tiny_corpus).head(3)
    clips[['wav_path', 'text']].to_csv('clips.csv', index=False)
    torch_rows = EmotionRecognizer.from_pretrained('best', device='cpu')('clips.csv')
    onnx_rec = EmotionRecognizer.from_pretrained('best_onnx')
    np.testing.assert_allclose(onnx_rec('clips.csv').filter(like='p_').values, torch_rows.filter(like='p_').values,
                               atol=1e-4)
    with pytest.raises(ValueError, match='runs from an ONNX export, which has no gradients to explain with'):
        onnx_rec.explain('clips.csv')
    with pytest.raises(ValueError, match="device='cuda': an ONNX export runs in ONNX Runtime on the CPU"):
        EmotionRecognizer.from_pretrained('best_onnx', device='cuda')
    r = rsacfn_cli('explain', 'best_onnx', '--data_path', 'clips.csv', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'is an ONNX export' in r.stderr and 'gradients' in r.stderr, r.stderr
    assert 'EmotionRecognizer(early_fusion' in repr(onnx_rec) and 'ONNX Runtime on cpu' in repr(onnx_rec)
    r = rsacfn_cli('predict', 'best_onnx', 'clips.csv', '--out', 'onnx.csv', '--quiet')
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(pd.read_csv('onnx.csv').filter(like='p_').values, torch_rows.filter(like='p_').values,
                               atol=1e-4)
