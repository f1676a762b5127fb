"""rsacfn as people type it: relative paths and every other spelling of a path, the Python API with the arguments people
pass, plugins, trackers, long clips. Each case was found by calling rsacfn the way its users do (issue 39); each test
failed before its fix. Commands run in this process (`rsacfn_cli`) from a working folder of their own."""
import json, os, re, shutil, socket, subprocess, sys, time, warnings
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from rsacfn.data.labels import CorpusError
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.manifest import read_manifest
from rsacfn.models.multimodal import MultiModel

from conftest import one_line, tree  # and the fixture model_dir: a saved early_fusion model

BIN = Path(sys.executable).parent


@pytest.fixture(scope='module')
def speech_model(tiny_backbones, tmp_path_factory):
    d = tmp_path_factory.mktemp('speech')/'best'
    MultiModel.from_backbones('speech_only', tiny_backbones['audio'], audio_max_lens=32_000).save_pretrained(d)
    return d


@pytest.fixture
def work(tmp_path, monkeypatch):
    "A fresh working folder, as a user's shell has one: every path below is typed relative to it."
    w = tmp_path/'work'; w.mkdir(); monkeypatch.chdir(w)
    return w


@pytest.fixture
def tiny_flags(tiny_backbones):
    return ['--wav_model', tiny_backbones['audio'], '--text_model', tiny_backbones['text'], '--audio_max_lens', '32000',
            '--text_max_lens', '64', '--lr', '1e-3', '--batch_size', '16', '--quiet', '--method', 'early_fusion']


def tiny_config(tiny_backbones, **kw):
    from rsacfn.config import TrainConfig
    return TrainConfig(**dict(dict(wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']),
                                   audio_max_lens=32_000, text_max_lens=64, lr=1e-3, batch_size=16, quiet=True,
                                   method='early_fusion', epochs=1), **kw))


def write_manifest(corpus, path, n=6, **columns):
    df = read_kemdy20(corpus).head(n)
    out = pd.DataFrame(dict(wav_path=df.wav_path, text=df.text, emotion=df.emotion))
    for k, v in columns.items(): out[k] = v
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return Path(path)


# ---------------------------------------------------------------- 1. paths as people spell them

def test_the_readmes_relative_output_dir_trains_past_the_first_epoch(tiny_corpus, work, tiny_flags, rsacfn_cli):
    shutil.copytree(tiny_corpus, work/'data'/'KEMDy20_v1_1')
    r = rsacfn_cli('train', '--data_path', 'data/KEMDy20_v1_1', '--output_dir', 'models', '--ver', 'rel', '--epochs', '2',
                   *tiny_flags)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (work/'models'/'rel'/'metrics.jsonl').read_text().splitlines()]
    assert [x['epoch'] for x in rows] == [1, 2] and (work/'models'/'rel'/'best'/'model.safetensors').is_file()
    assert 'use_amp' not in r.stdout + r.stderr  # --quiet: no note about a default (float32 on a CPU) nobody set


def test_train_in_python_with_relative_paths(tiny_corpus, work, tiny_backbones):
    from rsacfn import train
    shutil.copytree(tiny_corpus, work/'corpus')
    result = train(tiny_config(tiny_backbones, data_path='corpus', output_dir='models', ver='py', epochs=2))
    assert result['epochs_done'] == 2 and (work/'models'/'py'/'result.json').is_file()


def test_a_runs_config_json_trains_the_same_run_from_any_working_folder(tiny_corpus, work, tiny_flags, rsacfn_cli,
                                                                         monkeypatch):
    shutil.copytree(tiny_corpus, work/'corpus')
    assert rsacfn_cli('train', '--data_path', 'corpus', '--output_dir', 'models', '--ver', 'a', '--epochs', '1',
                      *tiny_flags).returncode == 0
    config = json.loads((work/'models'/'a'/'config.json').read_text())
    assert Path(config['data_path']) == work/'corpus' and Path(config['output_dir']) == work/'models', config
    elsewhere = work/'elsewhere'; elsewhere.mkdir(); monkeypatch.chdir(elsewhere)
    os.makedirs('corpus')  # a folder of the same name here must not be read instead
    r = rsacfn_cli('train', '--config', '../models/a/config.json', '--ver', 'again')
    assert r.returncode == 0, r.stderr
    ident = lambda v: json.loads((work/'models'/v/'identity.json').read_text())['hash']
    assert ident('again') == ident('a')


def spelled(kind:str, work:Path, name:str) -> tuple[str, Path]:
    "A path to `work/name` (a folder or file) as a user may type it: (what is typed, where it lies)."
    if kind == 'relative': return name, work/name
    if kind == 'dot': return f'./{name}', work/name
    if kind == 'dotdot': return f'../{work.name}/{name}', work/name
    if kind == 'tilde': return f'~/{name}', Path(os.environ['HOME'])/name
    if kind == 'slash': return f'{name}/', work/name
    if kind == 'space': return f'my {name}', work/f'my {name}'
    if kind == 'korean': return f'감정 {name}', work/f'감정 {name}'
    if kind == 'symlink':
        real = work.parent/'elsewhere'; real.mkdir(exist_ok=True)
        if not (work/'link').exists(): (work/'link').symlink_to(real, target_is_directory=True)
        return f'link/{name}', real/name
    raise ValueError(kind)


SPELLINGS = ['relative', 'dot', 'dotdot', 'tilde', 'slash', 'space', 'korean', 'symlink']


@pytest.mark.parametrize('kind', SPELLINGS)
def test_every_path_of_every_command_in_every_spelling(kind, tiny_corpus, model_dir, work, tiny_flags, rsacfn_cli,
                                                       monkeypatch, tmp_path):
    monkeypatch.setenv('HOME', str(tmp_path/'home')); (tmp_path/'home').mkdir()
    file = lambda n: spelled('dot' if kind == 'slash' else kind, work, n)  # a trailing slash names folders only
    corpus, corpus_at = spelled(kind, work, 'corpus')
    corpus_at.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tiny_corpus, corpus_at)
    models, models_at = spelled(kind, work, 'models')
    text_only = [*tiny_flags[:-1], 'text_only']  # the paths, not the audio: text alone trains in a second
    r = rsacfn_cli('train', '--data_path', corpus, '--output_dir', models, '--ver', 'run', '--epochs', '2', *text_only)
    assert r.returncode == 0 and (models_at/'run'/'result.json').is_file(), r.stderr
    best = f'{models.rstrip("/")}/run/best' + ('/' if kind == 'slash' else '')  # a text-only model: the manifest's texts
    manifest, manifest_at = file('clips.csv')
    write_manifest(corpus_at, manifest_at)
    out, out_at = file('predicted.csv')
    r = rsacfn_cli('predict', best, manifest, '--out', out, '--quiet')
    assert r.returncode == 0 and len(pd.read_csv(out_at)) == 6, r.stderr
    ev, ev_at = spelled(kind, work, 'scores')
    r = rsacfn_cli('evaluate', best, '--data_path', corpus, '--out', ev, '--quiet')
    assert r.returncode == 0 and (ev_at/'metrics.json').is_file(), r.stderr
    demo, demo_at = spelled(kind, work, 'demo')
    assert rsacfn_cli('demo-corpus', demo, '--size', 'tiny', '--quiet').returncode == 0
    assert (demo_at/'demo_corpus.json').is_file()
    stored = json.loads((models_at/'run'/'config.json').read_text())  # what the run means from any working folder
    for key, at in (('data_path', corpus_at), ('output_dir', models_at)):  # absolute, through the link as typed
        assert Path(stored[key]).is_absolute() and Path(stored[key]).resolve() == at.resolve(), stored
    assert not [p for p in work.rglob('~*')], 'a folder named ~ was made'


def test_the_python_api_takes_every_spelling_of_a_path(model_dir, tiny_corpus, work, monkeypatch, tmp_path):
    from rsacfn import EmotionRecognizer
    from rsacfn.evaluation.analysis import evaluate_model
    from rsacfn.data.readers import read_corpus
    monkeypatch.setenv('HOME', str(work))
    shutil.copytree(model_dir, work/'m')
    shutil.copytree(tiny_corpus, work/'c')
    write_manifest(work/'c', work/'clips.csv')
    for spelling in ('m', './m', 'm/', '~/m', Path('m')):
        rec = EmotionRecognizer.from_pretrained(spelling)
        assert len(rec('~/clips.csv' if isinstance(spelling, str) and spelling.startswith('~') else 'clips.csv')) == 6
    assert len(read_corpus('~/c')) == len(read_corpus('c/'))
    m = evaluate_model('~/m', '~/c', out='~/ev', progress=False)
    assert (work/'ev'/'metrics.json').is_file() and m['n'] > 0 and not (work/'~').exists()


def test_a_sweep_with_relative_paths_from_a_working_folder(tiny_corpus, work, tiny_backbones, rsacfn_cli):
    shutil.copytree(tiny_corpus, work/'corpus')
    r = rsacfn_cli('sweep', 'results/s', '--methods', 'text_only', '--set', 'data_path=corpus', '--set', 'epochs=1',
                   '--set', f'wav_model={tiny_backbones["audio"]}', '--set', f'text_model={tiny_backbones["text"]}',
                   '--set', 'preset=demo', '--set', 'valid_size=0.3')
    assert r.returncode == 0, r.stderr
    runs = pd.read_csv(work/'results'/'s'/'runs.csv')
    assert len(runs) == 1 and (runs.status == 'ok').all(), runs.error.tolist()
    # the table says the split the runs had, and calls it the paper's only when it is (80/20)
    title = (work/'results'/'s'/'f1_table.md').read_text(encoding='utf-8').splitlines()[0]
    assert 'random 70/30 split' in title and 'paper' not in title, title


# ---------------------------------------------------------------- 2. what rsacfn wrote is known from its own record

def test_overwrite_never_replaces_a_users_file_that_looks_like_rsacfns(model_dir, tiny_corpus, work, rsacfn_cli):
    write_manifest(tiny_corpus, work/'clips.csv')
    assert rsacfn_cli('predict', model_dir, 'clips.csv', '--out', 'probe.csv', '--quiet').returncode == 0
    header = (work/'probe.csv').read_text(encoding='utf-8').splitlines()[0]
    labelled = work/'labelled.csv'  # the user's own table, beginning with the columns a predictions table begins with
    labelled.write_text(header + ',my_notes\nx,a.wav,좋아,happy,checked by hand\n', encoding='utf-8')
    notes = work/'notes.csv'
    notes.write_text('segment_id,file,reason\nx,a.wav,my own reason\n', encoding='utf-8')
    before = tree(work)
    r = rsacfn_cli('predict', model_dir, 'clips.csv', '--out', 'labelled.csv', '--overwrite', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'labelled.csv' in r.stderr and 'not written by rsacfn' in r.stderr, r.stderr
    for extra in ([], ['--overwrite']):
        r = rsacfn_cli('predict', model_dir, 'clips.csv', '--out', 'p.csv', '--on_error', 'skip', '--skip_report',
                       'notes.csv', '--quiet', *extra)
        assert r.returncode == 2 and one_line(r) and 'notes.csv' in r.stderr, r.stderr
    assert tree(work) == before


def test_a_table_rsacfn_wrote_and_the_user_then_edited_is_theirs(model_dir, tiny_corpus, work, rsacfn_cli):
    write_manifest(tiny_corpus, work/'clips.csv')
    assert rsacfn_cli('predict', model_dir, 'clips.csv', '--out', 'p.csv', '--quiet').returncode == 0
    assert rsacfn_cli('predict', model_dir, 'clips.csv', '--out', 'p.csv', '--quiet', '--overwrite').returncode == 0
    edited = (work/'p.csv').read_text(encoding='utf-8') + 'my note\n'
    (work/'p.csv').write_text(edited, encoding='utf-8')
    r = rsacfn_cli('predict', model_dir, 'clips.csv', '--out', 'p.csv', '--quiet', '--overwrite')
    assert r.returncode == 2 and one_line(r) and 'changed since' in r.stderr, r.stderr
    assert (work/'p.csv').read_text(encoding='utf-8') == edited


def test_a_skip_report_never_replaces_a_users_csv_from_python(tiny_corpus, work):
    notes = work/'notes.csv'
    notes.write_text('segment_id,file,reason\nx,a.wav,my own reason\n', encoding='utf-8')
    with pytest.raises(FileExistsError, match='notes.csv'):
        read_kemdy20(tiny_corpus, on_error='skip', skip_report='notes.csv')
    assert 'my own reason' in notes.read_text(encoding='utf-8')
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); read_kemdy20(tiny_corpus, on_error='skip', skip_report='r.csv')
    read_kemdy20(tiny_corpus, on_error='skip', skip_report='r.csv')  # its own report, replaced by the next read


# ---------------------------------------------------------------- 3. a method's name cannot be taken by a plugin

def test_a_plugin_cannot_take_a_methods_name(tiny_corpus, work, tiny_flags, rsacfn_cli):
    (work/'evil.py').write_text(
        'from rsacfn.models.heads import EarlyFusion\nfrom rsacfn.models.registry import register_head\n'
        "@register_head('early_fusion')\nclass Mine(EarlyFusion): pass\n")
    r = rsacfn_cli('train', '--data_path', tiny_corpus, '--output_dir', 'models', '--plugins', 'evil.py', *tiny_flags)
    assert r.returncode == 2 and one_line(r) and "'early_fusion'" in r.stderr and 'taken' in r.stderr, r.stderr
    assert not (work/'models').exists()
    from rsacfn.models.registry import METHODS
    from rsacfn.models.heads import EarlyFusion
    assert METHODS['early_fusion'].head is EarlyFusion


def test_registering_the_same_class_again_is_allowed_and_another_is_not():
    from rsacfn.models.heads import FusionHead, EarlyFusion
    from rsacfn.models.registry import METHODS, register_head
    def define():
        class Again(FusionHead):
            def __init__(self, audio_dim, text_dim, num_classes=7): super().__init__()
        return Again
    register_head('again_head')(define())
    register_head('again_head')(define())  # a notebook cell run twice defines the class again
    with pytest.raises(ValueError, match="'again_head' is taken"):
        register_head('again_head')(type('Other', (FusionHead,), {}))
    with pytest.raises(ValueError, match="'rsa' is taken"):
        register_head('rsa')(type('Other', (FusionHead,), {}))
    assert METHODS['early_fusion'].head is EarlyFusion
    del METHODS['again_head']


PLUGIN = '''from rsacfn.models.heads import EarlyFusion
from rsacfn.models.registry import register_head
@register_head('my_gate')
class MyGate(EarlyFusion): pass
'''


def test_a_plugin_methods_model_says_which_plugin_to_load(tiny_corpus, work, tiny_flags, rsacfn_cli):
    (work/'gate.py').write_text(PLUGIN)
    flags = [f for f in tiny_flags]
    flags[flags.index('--method') + 1] = 'my_gate'
    assert rsacfn_cli('train', '--data_path', tiny_corpus, '--output_dir', 'models', '--ver', 'g', '--plugins', 'gate.py',
                      *flags).returncode == 0
    write_manifest(tiny_corpus, work/'clips.csv')
    from rsacfn.models.registry import METHODS
    METHODS.pop('my_gate')  # as in a fresh process: the plugin is not loaded
    for name in [m for m in sys.modules if m.startswith('rsacfn_plugin_gate_')]: del sys.modules[name]
    r = rsacfn_cli('predict', 'models/g/best', 'clips.csv', '--quiet')
    assert r.returncode == 2 and one_line(r) and '--plugins' in r.stderr and 'gate.py' in r.stderr, r.stderr
    r = rsacfn_cli('predict', 'models/g/best', 'clips.csv', '--out', 'p.csv', '--quiet', '--plugins', 'gate.py')
    assert r.returncode == 0 and len(pd.read_csv(work/'p.csv')) == 6, r.stderr
    METHODS.pop('my_gate')
    for name in [m for m in sys.modules if m.startswith('rsacfn_plugin_gate_')]: del sys.modules[name]
    from rsacfn import EmotionRecognizer
    with pytest.raises(ValueError, match=r"plugins=\["):
        EmotionRecognizer.from_pretrained('models/g/best')
    rec = EmotionRecognizer.from_pretrained('models/g/best', plugins=['gate.py'])
    assert rec.method == 'my_gate' and len(rec('clips.csv')) == 6


# ---------------------------------------------------------------- 4. silently wrong, now refused or said

def test_weights_that_are_not_finite_are_refused_on_load(model_dir, tmp_path, tiny_corpus, rsacfn_cli):
    from safetensors import safe_open
    from safetensors.torch import save_file
    m = Path(shutil.copytree(model_dir, tmp_path/'m'))
    with safe_open(str(m/'model.safetensors'), 'pt') as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    name = next(k for k in tensors if k.startswith('head.'))
    tensors[name] = tensors[name].clone(); tensors[name].view(-1)[0] = float('nan')
    save_file(tensors, str(m/'model.safetensors'), metadata=meta)
    with pytest.raises(ValueError, match=rf'NaN.*{name}'): MultiModel.from_pretrained(m)
    r = rsacfn_cli('evaluate', m, '--data_path', tiny_corpus, '--quiet')
    assert r.returncode == 2 and one_line(r) and 'NaN' in r.stderr, r.stderr


@pytest.mark.parametrize('kind, flag', [('audio', 'wav_model'), ('text', 'text_model')])
def test_a_backbone_folder_given_as_a_model_says_what_it_is(kind, flag, tiny_backbones, tiny_corpus, work, rsacfn_cli):
    "A pretrained backbone (a wav2vec2 or RoBERTa folder) where a trained model is expected: what it is and where it goes."
    from rsacfn.recognizer import EmotionRecognizer
    shutil.copytree(tiny_backbones[kind], 'backbone')
    for load in (MultiModel.from_pretrained, EmotionRecognizer.from_pretrained):
        with pytest.raises(ValueError, match=f'backbone is a .* checkpoint, a pretrained {kind} backbone, not a trained'
                                             f' rsacfn model.*{flag}='):
            load('backbone')
    for args in (('predict', 'backbone', tiny_corpus), ('evaluate', 'backbone', '--data_path', tiny_corpus),
                 ('explain', 'backbone', '--data_path', tiny_corpus), ('export', 'backbone', '--out', 'x')):
        r = rsacfn_cli(*args, '--quiet') if args[0] != 'export' else rsacfn_cli(*args)
        said = r.stderr.strip()
        assert r.returncode == 2 and one_line(r) and re.search(rf'--{flag} \S*backbone,', said) and 'plugins' not in said, said


def test_weights_of_the_wrong_shape_are_one_line_of_our_own(model_dir, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file
    m = Path(shutil.copytree(model_dir, tmp_path/'m'))
    with safe_open(str(m/'model.safetensors'), 'pt') as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    name = next(k for k in tensors if k.startswith('head.') and k.endswith('weight'))
    tensors[name] = tensors[name][:, :-1].contiguous()
    save_file(tensors, str(m/'model.safetensors'), metadata=meta)
    with pytest.raises(ValueError) as e: MultiModel.from_pretrained(m)
    assert name in str(e.value) and 'ignore_mismatched_sizes' not in str(e.value) and '\n' not in str(e.value), e.value


def test_model_files_follow_the_umask(tiny_backbones, tmp_path):
    old = os.umask(0o002)
    try:
        d = tmp_path/'shared'
        MultiModel.from_backbones('text_only', text_model=tiny_backbones['text']).save_pretrained(d)
    finally: os.umask(old)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in d.iterdir()}
    assert set(modes.values()) == {'0o664'}, modes


def test_one_string_of_texts_is_one_transcript_not_one_per_character(model_dir, tiny_corpus):
    from rsacfn import EmotionRecognizer
    from rsacfn.evaluation.inference import predict
    df = read_kemdy20(tiny_corpus).head(3)
    rec = EmotionRecognizer.from_pretrained(model_dir)
    one = rec(df.wav_path[0], texts=df.text[0])  # one clip, its transcript
    assert len(one) == 1 and one.transcript[0] == df.text[0]
    with pytest.raises(ValueError, match='one string.*3 clips'): rec(list(df.wav_path), texts='좋아')
    with pytest.raises(ValueError, match='one string'): predict(rec.model, list(df.wav_path[:2]), '좋아')


@pytest.mark.parametrize('texts, message', [
    (['정말 좋아', None, '싫어'], r'texts\[1\] is None'),
    (['정말 좋아', 3, '싫어'], r'texts\[1\] is 3'),
    (['정말 좋아', '', '싫어'], r"texts\[1\] is '', an empty transcript"),  # as a manifest's empty one is refused
    (['정말 좋아', '좋아', '  '], r"texts\[2\] is '  ', an empty transcript"),
])
def test_every_transcript_is_a_string(model_dir, tiny_corpus, texts, message):
    from rsacfn import EmotionRecognizer
    rec = EmotionRecognizer.from_pretrained(model_dir)
    with pytest.raises(ValueError, match=message): rec(list(read_kemdy20(tiny_corpus).wav_path[:3]), texts=texts)


def test_a_second_newcomers_trial(model_dir, tiny_corpus, tiny_backbones, work, monkeypatch):
    "~ in a clip's path, the recognizer's own arguments, a missing clip said once, a window of 0 s, a demo recording's folder."
    from rsacfn import EmotionRecognizer
    from rsacfn.data.demo import demo_recording
    df = read_kemdy20(tiny_corpus).head(1)
    monkeypatch.setenv('HOME', str(work)); shutil.copy(df.wav_path[0], 'clip.wav')
    rec = EmotionRecognizer.from_pretrained(model_dir)
    np.testing.assert_allclose(rec('~/clip.wav', texts='좋아').filter(like='p_').to_numpy(),
                               rec('clip.wav', texts='좋아').filter(like='p_').to_numpy(), atol=1e-6)
    with pytest.raises(CorpusError) as e: rec('~/missing.wav', texts='좋아')
    said = str(e.value)
    assert said.count('missing.wav') == 1 and said.count('Check') == 1 and "on_error='skip'" in said, said
    for kw, msg in ((dict(batch_size=0), 'batch_size=0: give the clips per batch'), (dict(batch_size=2.5), 'batch_size=2.5'),
                    (dict(device='tpu'), "device='tpu': give 'cpu', 'cuda'")):
        with pytest.raises(ValueError, match=msg): EmotionRecognizer.from_pretrained(model_dir, **kw)
    wav, _ = demo_recording('talk rec/talk.wav', minutes=0.1)  # its folder made, as --out's are
    assert wav.is_file()
    speech = EmotionRecognizer(MultiModel.from_backbones('speech_only', tiny_backbones['audio'], None))
    with pytest.raises(ValueError, match='window_s=0'): speech.timeline(wav, segments='windows', window_s=0)


def test_a_text_only_model_never_opens_the_audio(tiny_backbones, work, rsacfn_cli):
    "A manifest whose clips are gone: a model that only reads predicts, scores and explains it all the same."
    from rsacfn import EmotionRecognizer
    MultiModel.from_backbones('text_only', text_model=tiny_backbones['text']).save_pretrained('text_model')
    pd.DataFrame(dict(wav_path=['gone.wav', 'lost.wav'], text=['정말 기뻐요', '슬퍼요'], emotion=['happy', 'sad'])).to_csv('m.csv', index=False)
    r = rsacfn_cli('predict', 'text_model', 'm.csv', '--out', 'p.csv', '--quiet')
    assert r.returncode == 0 and len(pd.read_csv('p.csv')) == 2, r.stderr
    r = rsacfn_cli('evaluate', 'text_model', '--data_path', 'm.csv', '--out', 'ev', '--quiet')
    assert r.returncode == 0, r.stderr
    r = rsacfn_cli('explain', 'text_model', '--data_path', 'm.csv', '--out', 'why', '--no_faithfulness', '--n_steps', '2', '--quiet')
    assert r.returncode == 0, r.stderr
    assert len(EmotionRecognizer.from_pretrained('text_model')('m.csv')) == 2


def test_a_file_where_a_folder_goes_names_the_folder(model_dir, tiny_corpus, work, rsacfn_cli):
    "The model's weights file given as the model; a manifest given to explain as a clip."
    with pytest.raises(FileNotFoundError, match=f'model.safetensors is a file, not a model folder: its folder {model_dir} is'):
        MultiModel.from_pretrained(Path(model_dir)/'model.safetensors')
    pd.DataFrame(dict(wav_path=read_kemdy20(tiny_corpus).wav_path[:1], text=['좋아'])).to_csv('m.csv', index=False)
    r = rsacfn_cli('explain', model_dir, 'm.csv', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'm.csv is not an audio clip: give a manifest or corpus folder as --data_path m.csv' in r.stderr, r.stderr


def test_class_ids_in_a_manifest_are_said_to_be_read_in_rsacfns_order(tiny_corpus, work):
    wavs = read_kemdy20(tiny_corpus).wav_path[:2]
    pd.DataFrame(dict(wav_path=wavs, text=['가', '나'], emotion=['2', '0'])).to_csv('ids.csv', index=False)
    with pytest.warns(UserWarning, match=r"ids.csv: the emotion column gives class ids \(e.g. 2\), read in rsacfn's class order: 0 neutral, 1 happy, 2 angry"):
        df = read_manifest('ids.csv')
    assert df.emotion.tolist() == ['angry', 'neutral']


def test_an_output_inside_an_input_reached_through_a_symlink_is_refused(model_dir, tiny_corpus, work, rsacfn_cli):
    "A link to the model folder or the corpus is that folder: predict, evaluate and explain never write into it."
    shutil.copytree(model_dir, 'model'); shutil.copytree(tiny_corpus, 'corpus')
    os.symlink('model', 'model_link'); os.symlink('corpus', 'corpus_link')
    clip = os.path.relpath(read_kemdy20('corpus').wav_path[0])
    for args in (('predict', 'model_link', 'corpus', '--out', 'model/p.csv'),
                 ('predict', 'model', 'corpus_link', '--out', 'corpus/p.csv'),
                 ('evaluate', 'model_link', '--data_path', 'corpus', '--out', 'model/ev'),
                 ('evaluate', 'model', '--data_path', 'corpus_link', '--out', 'corpus/ev'),
                 ('explain', 'model_link', clip, '--texts', '좋아', '--out', 'model/ex'),
                 ('explain', 'model', '--data_path', 'corpus_link', '--out', 'corpus/ex')):
        r = rsacfn_cli(*args, '--quiet')
        assert r.returncode == 2 and one_line(r) and 'an input of this command' in r.stderr, (args, r.stderr)
    assert sorted(os.listdir('model')) == sorted(os.listdir(model_dir))
    assert not any(Path('corpus').glob('**/p.csv')) and not Path('corpus/ev').exists() and not Path('corpus/ex').exists()


def test_an_out_with_a_trailing_slash_is_a_folder_not_a_file(model_dir, tiny_corpus, work, rsacfn_cli):
    r = rsacfn_cli('predict', model_dir, tiny_corpus, '--out', 'p2/', '--quiet')
    assert r.returncode == 2 and one_line(r) and '--out p2/' in r.stderr and 'give the path of a file' in r.stderr, r.stderr
    assert not Path('p2').exists()


def test_a_finished_run_is_refused_before_training_is_announced(tiny_corpus, tiny_backbones, work, capsys):
    from rsacfn import train
    cfg = tiny_config(tiny_backbones, data_path=str(tiny_corpus), output_dir='models', ver='once', method='text_only',
                      quiet=False)
    train(cfg); capsys.readouterr()
    with pytest.raises(FileExistsError, match='holds a finished run'): train(cfg)
    assert 'training text_only ->' not in capsys.readouterr().out  # nothing said of a training that does not happen


def test_a_paper_flag_contradicted_names_the_flag_to_keep(rsacfn_cli):
    r = rsacfn_cli('train', '--use_wav', 'True', '--method', 'early_fusion')
    assert r.returncode == 2 and r.stderr.strip().endswith('give only --method'), r.stderr


def test_a_corpus_too_small_for_its_split_names_valid_size(tiny_corpus, work, tiny_flags, rsacfn_cli):
    "Eight clips of four emotions: 20 % validates two, fewer than four emotions; said with the flag, not scikit-learn's words."
    df = read_kemdy20(tiny_corpus)
    df = df[df.label.notna()]
    df = df[df.emotion.isin(df.emotion.value_counts().index[:4])].groupby('emotion').head(2)  # 2 each of 4 emotions
    df[['wav_path', 'text', 'emotion']].to_csv('small.csv', index=False)
    k = df.emotion.nunique()
    r = rsacfn_cli('train', '--data_path', 'small.csv', '--output_dir', 'models', *tiny_flags)
    assert r.returncode == 2 and one_line(r) and '--valid_size 0.2: 2 of the 8 single-label segments' in r.stderr, r.stderr
    assert f'each of their {k} emotions on both sides; give --valid_size 0.5' in r.stderr and 'test_size' not in r.stderr
    r = rsacfn_cli('train', '--data_path', 'small.csv', '--output_dir', 'models', '--valid_size', '0.6', *tiny_flags)
    assert r.returncode == 2 and '--valid_size 0.6: 5 of the 8' in r.stderr and 'test_size' not in r.stderr, r.stderr


def test_every_row_skipped_is_said_as_such_and_listed(model_dir, tiny_flags, work, rsacfn_cli):
    "A manifest whose clips are all missing, with --on_error skip: each command says so; predict lists them."
    pd.DataFrame(dict(wav_path=['gone.wav', 'lost.wav'], text=['가', '나'], emotion=['happy', 'sad'])).to_csv('m.csv', index=False)
    r = rsacfn_cli('predict', model_dir, 'm.csv', '--on_error', 'skip', '--out', 'p.csv', '--quiet')
    assert r.returncode == 2 and 'all 2 were skipped' in r.stderr and pd.read_csv('p_skipped.csv').file.tolist() == ['gone.wav', 'lost.wav']
    assert not Path('p.csv').exists()
    r = rsacfn_cli('evaluate', model_dir, '--data_path', 'm.csv', '--on_error', 'skip', '--out', 'ev', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'every segment was skipped (2), e.g. gone.wav' in r.stderr, r.stderr
    r = rsacfn_cli('train', '--data_path', 'm.csv', '--on_error', 'skip', '--output_dir', 'models', *tiny_flags)
    assert r.returncode == 2 and one_line(r) and 'every segment was skipped (2)' in r.stderr, r.stderr


def test_clips_as_people_pass_them(model_dir, tiny_corpus):
    from rsacfn import EmotionRecognizer
    df = read_kemdy20(tiny_corpus).head(3)
    rec = EmotionRecognizer.from_pretrained(model_dir)
    a = rec(list(df.wav_path), texts=list(df.text))
    b = rec((w for w in df.wav_path), texts=(t for t in df.text))  # generators
    c = rec(tuple(df.wav_path), texts=df.text)  # a tuple and a Series
    d = rec(np.array(df.wav_path), texts=np.array(df.text))
    for x in (b, c, d): pd.testing.assert_frame_equal(a, x)
    for bad in (5, 3.5, [1, 2]):
        with pytest.raises(TypeError, match='clips'): rec(bad, texts=['x', 'y'])
    with pytest.raises(ValueError, match="clips is a dict without 'array'"): rec({'a': 1}, texts=['x'])
    for wave in (np.zeros(16_000, np.float32), [np.zeros(16_000, np.float32)]):  # a waveform in memory needs its rate
        with pytest.raises(ValueError, match=r'is a waveform in memory: give its sampling_rate'): rec(wave, texts='가')


@pytest.mark.parametrize('columns, named', [
    ('wav_path,text,emotion,text', "'text'"),
    ('wav_path,Text,emotion,text', "'Text' and 'text'"),
    ('wav,wav_path,text,emotion', "'wav' and 'wav_path'"),
    ('wav_path,transcript,text,emotion', "'transcript' and 'text'"),
])
def test_an_ambiguous_manifest_is_refused_naming_the_columns(tiny_corpus, tmp_path, columns, named):
    df = read_kemdy20(tiny_corpus).head(2)
    names = columns.split(',')
    rows = [[{'wav_path': w, 'wav': w, 'emotion': e}.get(c.lower(), t) for c in names]
            for w, t, e in zip(df.wav_path, df.text, df.emotion)]
    path = tmp_path/'m.csv'
    path.write_text('\n'.join(','.join(r) for r in [names, *rows]) + '\n', encoding='utf-8')
    with pytest.raises(CorpusError, match=named): read_manifest(path)


def test_two_clips_of_one_stem_and_different_suffixes_are_two_clips(tiny_corpus, tmp_path):
    df = read_kemdy20(tiny_corpus).head(2)
    wav, _ = sf.read(df.wav_path[1])
    shutil.copy(df.wav_path[0], tmp_path/'a.wav'); sf.write(tmp_path/'a.flac', wav, 16_000)
    pd.DataFrame(dict(wav_path=['a.wav', 'a.flac'], text=['가', '나'], emotion=['happy', 'sad'])).to_csv(tmp_path/'m.csv', index=False)
    got = read_manifest(tmp_path/'m.csv')
    assert len(got) == 2 and got.segment_id.nunique() == 2, got.segment_id.tolist()


def test_a_folder_named_like_a_clip_is_called_a_folder(tiny_corpus, tmp_path):
    (tmp_path/'x.wav').mkdir()
    pd.DataFrame(dict(wav_path=['x.wav'], text=['가'], emotion=['happy'])).to_csv(tmp_path/'m.csv', index=False)
    with pytest.raises(CorpusError, match='x.wav.*is a folder, not an audio file'): read_manifest(tmp_path/'m.csv')


def test_a_speech_model_takes_a_manifest_without_transcripts(speech_model, tiny_corpus, work, rsacfn_cli):
    from rsacfn import EmotionRecognizer
    df = read_kemdy20(tiny_corpus).head(3)
    pd.DataFrame(dict(wav_path=df.wav_path)).to_csv(work/'clips.csv', index=False)
    r = rsacfn_cli('predict', speech_model, 'clips.csv', '--out', 'p.csv', '--quiet')
    assert r.returncode == 0 and len(pd.read_csv(work/'p.csv')) == 3, r.stderr
    assert len(EmotionRecognizer.from_pretrained(speech_model)('clips.csv')) == 3


def long_clips(tiny_corpus, folder, seconds=10.0):
    "Two clips of `seconds` that differ only after the model's 2 s, and a short one."
    folder.mkdir(parents=True, exist_ok=True)
    base, _ = sf.read(read_kemdy20(tiny_corpus).wav_path[0], dtype='float32')
    n = int(seconds * 16_000)
    start = np.resize(base, n)
    b = start.copy(); b[40_000:] = np.random.default_rng(0).normal(0, 0.3, n - 40_000)
    sf.write(folder/'long_a.wav', start, 16_000); sf.write(folder/'long_b.wav', b, 16_000)
    sf.write(folder/'short.wav', base[:16_000], 16_000)
    pd.DataFrame(dict(wav_path=['long_a.wav', 'long_b.wav', 'short.wav'], text=['좋아'] * 3)).to_csv(folder/'clips.csv', index=False)
    return folder/'clips.csv'


def test_no_clip_is_cut_without_saying_so(model_dir, tiny_corpus, work, rsacfn_cli):
    from rsacfn import EmotionRecognizer
    clips = long_clips(tiny_corpus, work/'long')
    r = rsacfn_cli('predict', model_dir, clips, '--out', 'p.csv', '--quiet')
    assert r.returncode == 0, r.stderr
    assert '2 of 3 clips' in r.stderr and 'long_a.wav' in r.stderr and '10.0 s' in r.stderr and '2.0 s' in r.stderr, r.stderr
    assert 'rsacfn predict MODEL RECORDING --segments' in r.stderr and 'rsacfn.recordings' not in r.stderr  # as typed
    rec = EmotionRecognizer.from_pretrained(model_dir)
    with pytest.warns(UserWarning, match=r'2 of 3 clips .* 10\.0 s') as said: rec(clips)
    with pytest.warns(UserWarning, match=r'1 of 1 clip') as said_too: rec(str(work/'long'/'long_b.wav'), texts='좋아')
    from rsacfn.evaluation.inference import predict
    with pytest.warns(UserWarning, match=r'2 of 3 clips') as said_by_predict: predict(
        rec.model, [str(work/'long'/n) for n in ('long_a.wav', 'long_b.wav', 'short.wav')], ['좋아'] * 3)
    # each said at the line that asked (here), not inside rsacfn or torch's no_grad wrapper
    assert {w.filename for w in [*said, *said_too, *said_by_predict]} == {__file__}


def test_rsacfn_predict_takes_clips_with_their_transcripts(model_dir, tiny_corpus, tiny_backbones, work, rsacfn_cli):
    "As explain and the recognizer take them: clips after MODEL_DIR with --texts; --texts alone for a text-only model."
    from rsacfn import EmotionRecognizer
    df = read_kemdy20(tiny_corpus).head(2)
    clips = [os.path.relpath(w) for w in df.wav_path]
    r = rsacfn_cli('predict', model_dir, *clips, '--texts', *df.text, '--out', 'p.csv', '--quiet')
    assert r.returncode == 0, r.stderr
    got, expected = pd.read_csv('p.csv'), EmotionRecognizer.from_pretrained(model_dir)(clips, texts=df.text)
    assert got.path.tolist() == clips and got.transcript.tolist() == df.text.tolist()
    np.testing.assert_allclose(got.filter(like='p_').to_numpy(), expected.filter(like='p_').to_numpy(), atol=1e-5)
    for args, said in [((), 'give what to predict after MODEL_DIR'),
                       ((*clips,), 'give --texts (one transcript per clip)'),  # two clips, no transcripts
                       ((clips[0],), 'give --texts with its transcript to predict it as one clip'),
                       ((*clips, '--texts', '하나'), '2 clips and 1 transcripts in --texts'),
                       ((*clips, '--texts', 'a', 'b', '--segments', 'vad'), '--segments is for one recording'),
                       ((*clips, '--texts', 'a', 'b', '--corpus', 'manifest'), '--corpus is for one recording or a manifest')]:
        bad = rsacfn_cli('predict', model_dir, *args, '--out', 'bad.csv', '--quiet')
        assert bad.returncode == 2 and one_line(bad) and said in bad.stderr and 'texts=' not in bad.stderr, bad.stderr
        assert not Path('bad.csv').exists()
    Path('broken.wav').write_bytes(b'not audio')
    r = rsacfn_cli('predict', model_dir, clips[0], 'broken.wav', '--texts', 'a', 'b', '--on_error', 'skip',
                   '--skip_report', 'lost.csv', '--out', 's.csv', '--quiet')
    assert r.returncode == 0 and len(pd.read_csv('s.csv')) == 1 and pd.read_csv('lost.csv').file.tolist() == ['broken.wav'], r.stderr
    MultiModel.from_backbones('text_only', text_model=tiny_backbones['text']).save_pretrained('text_model')
    r = rsacfn_cli('predict', 'text_model', '--texts', '정말 기뻐요', '슬퍼요', '--out', 't.csv', '--quiet')
    assert r.returncode == 0 and pd.read_csv('t.csv').transcript.tolist() == ['정말 기뻐요', '슬퍼요'], r.stderr
    for command in ('predict', 'explain'):  # a clip typed after --texts is read as a transcript
        late = rsacfn_cli(command, model_dir, '--texts', '좋아', clips[0], '--quiet')
        assert late.returncode == 2 and one_line(late) and 'an audio file: put the clips before --texts' in late.stderr, late.stderr
    heard = rsacfn_cli('predict', 'text_model', clips[0], '--texts', '좋아', '--quiet')
    assert heard.returncode == 2 and one_line(heard) and 'clips would not be heard: leave the clips out' in heard.stderr


def test_evaluate_and_training_report_the_clips_they_cut(model_dir, tiny_corpus, work, tiny_backbones, rsacfn_cli):
    from rsacfn import train
    r = rsacfn_cli('evaluate', model_dir, '--data_path', tiny_corpus, '--out', 'ev', '--quiet')
    assert r.returncode == 0, r.stderr
    cut = json.loads((work/'ev'/'metrics.json').read_text())['clips_cut']
    n_long = int((read_kemdy20(tiny_corpus).query('label == label').duration > 2.0).sum())
    assert cut['count'] == n_long and cut['longest_s'] > 2.0 and 'warning' in r.stderr and str(n_long) in r.stderr
    with pytest.warns(UserWarning, match='longer than audio_max_lens') as said:
        result = train(tiny_config(tiny_backbones, data_path=str(tiny_corpus), output_dir='models', ver='cut',
                                   audio_max_lens=16_000))
    assert result['clips_cut']['count'] > 0 and result['clips_cut']['longest'].endswith('.wav')
    assert [w.filename for w in said if 'audio_max_lens' in str(w.message)] == [__file__]  # the line that trained


# ---------------------------------------------------------------- 5. hangs and tracebacks: each known within seconds

def closed_port() -> int:
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    return port


def test_an_unreachable_mlflow_server_is_one_line_within_seconds(tiny_corpus, work, tiny_flags, rsacfn_cli, monkeypatch):
    monkeypatch.setenv('MLFLOW_TRACKING_URI', f'http://127.0.0.1:{closed_port()}')
    t = time.monotonic()
    r = rsacfn_cli('train', '--data_path', tiny_corpus, '--output_dir', 'models', '--report_to', 'mlflow', *tiny_flags)
    assert time.monotonic() - t < 30
    assert r.returncode == 2 and one_line(r) and 'MLflow' in r.stderr and '127.0.0.1' in r.stderr, r.stderr
    assert not (work/'models').exists()


def test_a_tracking_folder_that_cannot_be_written_is_one_line_before_training(tiny_corpus, work, tiny_flags, rsacfn_cli):
    (work/'afile').write_text('mine')
    r = rsacfn_cli('train', '--data_path', tiny_corpus, '--output_dir', 'models', '--report_to', 'tensorboard',
                   '--tracking_dir', 'afile/tb', *tiny_flags)
    assert r.returncode == 2 and one_line(r) and '--tracking_dir' in r.stderr and 'afile' in r.stderr, r.stderr
    assert 'AttributeError' not in r.stderr and not (work/'models').exists()


def test_a_yaml_alias_bomb_is_refused_at_once(work, rsacfn_cli):
    lines = ['a: &a ["x", "x", "x", "x", "x"]']
    lines += [f'{x}: &{x} [*{y}, *{y}, *{y}, *{y}, *{y}]' for x, y in zip('bcde', 'abcd')]
    (work/'bomb.yaml').write_text('\n'.join(lines) + '\nplugins: *e\n')  # small here; 1 kB of it takes gigabytes
    (work/'alias.yaml').write_text('epochs: &n 2\ngrad_accum: *n\n')
    for name in ('bomb.yaml', 'alias.yaml'):
        r = rsacfn_cli('train', '--config', name)
        assert r.returncode == 2 and one_line(r) and name in r.stderr and 'alias' in r.stderr, r.stderr


def test_a_config_files_bad_value_names_the_file_and_key_not_a_flag(work, rsacfn_cli):
    (work/'c.yaml').write_text('epochs: 0\n')
    r = rsacfn_cli('train', '--config', 'c.yaml')
    assert r.returncode == 2 and one_line(r) and 'c.yaml' in r.stderr and 'epochs' in r.stderr, r.stderr
    assert '--epochs' not in r.stderr
    (work/'d.yaml').write_text('split: randon\n')
    r = rsacfn_cli('train', '--config', 'd.yaml')
    assert r.returncode == 2 and one_line(r) and 'd.yaml' in r.stderr and "'random'" in r.stderr and '--split' not in r.stderr
    (work/'runs').mkdir()
    r = rsacfn_cli('train', '--config', 'runs')
    assert r.returncode == 2 and one_line(r) and 'runs: a folder, not a configuration file' in r.stderr, r.stderr
    (work/'e.yaml').write_text('data_path: nowhere/corpus\n')  # a value that parses, but names nothing
    r = rsacfn_cli('train', '--config', 'e.yaml')
    assert r.returncode == 2 and one_line(r) and r.stderr.startswith('rsacfn train: error: e.yaml: data_path: '), r.stderr
    assert 'nowhere/corpus' in r.stderr and '--data_path' not in r.stderr


def test_train_takes_a_dict_and_refuses_other_things(tiny_corpus, work, tiny_backbones):
    from rsacfn import train
    cfg = tiny_config(tiny_backbones, data_path=str(tiny_corpus), output_dir='models', ver='d')
    import dataclasses
    settings = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    assert train(settings)['epochs_done'] == 1
    for bad in ('early_fusion', 42, None):
        with pytest.raises(TypeError, match=r'train\(TrainConfig'): train(bad)


@pytest.mark.parametrize('kwargs, message', [
    (dict(seeds=[]), r'seeds=\[\]: give at least one seed'),
    (dict(methods=[]), r'methods=\[\]: give at least one method'),
    (dict(folds=[]), r'folds=\[\]'),
    (dict(seeds=[42.5]), r'seeds.*42.5.*whole number'),
    (dict(seeds=['x']), r"seeds.*'x'.*whole number"),
    (dict(methods='early_fusion,nope'), r"unknown method 'nope'"),
    (dict(folds='some'), r"folds='some'.*'all'"),
    (dict(jobs='2'), r"jobs='2'"),
    (dict(params='epochs=1'), r'params=.*a dict'),
])
def test_run_sweep_checks_its_arguments_before_writing_anything(kwargs, message, tmp_path):
    from rsacfn import run_sweep
    with pytest.raises((ValueError, TypeError), match=message):
        run_sweep(tmp_path/'s', **dict(dict(methods=['text_only'], params=dict(demo_size='tiny', epochs=1),
                                            progress=False), **kwargs))
    assert not (tmp_path/'s').exists()


def test_run_sweep_takes_what_people_pass():
    from rsacfn.experiments.plan import sweep_runs
    runs = lambda **kw: [(r.method, r.seed, r.fold) for r in sweep_runs(**kw)]
    assert runs(methods='early_fusion', seeds=42) == [('early_fusion', 42, None)]
    assert runs(methods='early_fusion,text_only', seeds=(s for s in (1, 2))) == [
        ('early_fusion', 1, None), ('early_fusion', 2, None), ('text_only', 1, None), ('text_only', 2, None)]
    assert runs(methods=['rsa'], seeds=[np.int64(7)], folds='all', n_folds=3) == [('rsa', 7, 0), ('rsa', 7, 1), ('rsa', 7, 2)]
    assert runs(methods=('rsa',), folds=2) == [('rsa', 42, 2)]


# ---------------------------------------------------------------- 6. messages that say what is so

def test_no_message_offers_an_empty_list(rsacfn_cli, tiny_corpus, work, tiny_flags):
    r = rsacfn_cli('train', '--data_path', tiny_corpus, '--head_sizes', '{"proj_dim": 8}', *tiny_flags)
    assert r.returncode == 2 and one_line(r) and 'one of: )' not in r.stderr and 'takes none' in r.stderr, r.stderr
    from rsacfn.config import unknown_key
    assert 'one of: )' not in str(unknown_key('thing', 'x', []))


def test_an_output_below_a_file_is_said_so(model_dir, tiny_corpus, work, tiny_flags, rsacfn_cli):
    write_manifest(tiny_corpus, work/'clips.csv')
    (work/'afile').write_text('mine')
    r = rsacfn_cli('predict', model_dir, 'clips.csv', '--out', 'afile/p.csv', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'afile is a file' in r.stderr and 'Errno' not in r.stderr, r.stderr
    r = rsacfn_cli('train', '--data_path', tiny_corpus, '--output_dir', 'afile/models', *tiny_flags)
    assert r.returncode == 2 and one_line(r) and 'afile is a file' in r.stderr and 'Errno' not in r.stderr, r.stderr
    r = rsacfn_cli('evaluate', model_dir, '--data_path', tiny_corpus, '--out', 'afile/ev', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'afile is a file' in r.stderr, r.stderr
    r = rsacfn_cli('sweep', 'afile/s', '--methods', 'text_only')
    assert r.returncode == 2 and one_line(r) and 'afile is a file' in r.stderr, r.stderr
    assert (work/'afile').read_text() == 'mine'


def test_advice_names_only_arguments_the_call_takes(model_dir, tiny_corpus):
    from rsacfn import EmotionRecognizer
    rec = EmotionRecognizer.from_pretrained(model_dir)
    with pytest.raises(CorpusError) as e: rec(['missing.wav'], texts=['가'])
    assert 'missing.wav' in str(e.value) and "on_error='skip'" in str(e.value)
    df = read_kemdy20(tiny_corpus).head(2)
    with pytest.warns(UserWarning, match='skipped 1 clip'):
        got = rec(['missing.wav', df.wav_path[0]], texts=['가', df.text[0]], on_error='skip')
    assert got.path.tolist() == [df.wav_path[0]] and got.attrs['skipped'][0]['file'] == 'missing.wav'


# ---------------------------------------------------------------- 7. outputs inside an input: refused by every command

def test_train_never_writes_its_run_inside_the_corpus(corpus_copy, work, tiny_flags, rsacfn_cli):
    before = tree(corpus_copy)
    for out in (corpus_copy, corpus_copy/'wav'):
        r = rsacfn_cli('train', '--data_path', corpus_copy, '--output_dir', out, *tiny_flags)
        assert r.returncode == 2 and one_line(r) and 'input' in r.stderr and '--output_dir' in r.stderr, r.stderr
    r = rsacfn_cli('train', '--data_path', corpus_copy, '--output_dir', 'models', '--skip_report', corpus_copy/'s.csv',
                   '--on_error', 'skip', *tiny_flags)
    assert r.returncode == 2 and one_line(r) and '--skip_report' in r.stderr, r.stderr
    assert tree(corpus_copy) == before


def test_a_sweep_never_writes_inside_its_corpus(corpus_copy, rsacfn_cli, tiny_backbones):
    before = tree(corpus_copy)
    r = rsacfn_cli('sweep', corpus_copy/'results', '--methods', 'text_only', '--set', f'data_path={corpus_copy}',
                   '--set', f'text_model={tiny_backbones["text"]}', '--set', f'wav_model={tiny_backbones["audio"]}')
    assert r.returncode == 2 and one_line(r) and 'input' in r.stderr, r.stderr
    assert tree(corpus_copy) == before


# ---------------------------------------------------------------- 8. the set-up and the docs

def test_a_sweep_takes_trainconfigs_flags(tiny_corpus, work, rsacfn_cli):
    r = rsacfn_cli('sweep', 's', '--methods', 'text_only', '--data_path', 'nowhere', '--epochs', '1')
    assert r.returncode == 2 and one_line(r) and 'nowhere' in r.stderr and 'unrecognized' not in r.stderr, r.stderr
    assert 'unknown flag' not in r.stderr and not (work/'s').exists()


def test_a_sweeps_missing_corpus_is_one_line_before_any_download(work, rsacfn_cli, monkeypatch):
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)  # a download would be tried, and retried
    t = time.monotonic()
    r = rsacfn_cli('sweep', 's', '--methods', 'text_only', '--set', 'data_path=data/KEMDy20_v1_1')
    assert time.monotonic() - t < 20
    assert r.returncode == 2 and one_line(r) and 'data/KEMDy20_v1_1' in r.stderr, r.stderr
    assert not (work/'s').exists()


def test_train_help_says_what_each_flag_means_and_its_choices(rsacfn_cli):
    import dataclasses
    from rsacfn.config import CHOICES, TrainConfig
    from rsacfn.commands.arguments import parser
    sub = parser().commands['train']
    helps = {a.dest: a.help for a in sub._actions if a.option_strings}
    for f in dataclasses.fields(TrainConfig):
        text = helps[f.name]
        assert not text.startswith('(default'), (f.name, text)
        for choice in CHOICES.get(f.name, ()): assert repr(choice) in text or choice in text, (f.name, text)
    assert 'stratified' in helps['split'] and 'session' in helps['split']


def test_the_demo_preset_from_python(work):
    import rsacfn
    cfg = rsacfn.experiment_config(preset='demo', demo_size='tiny', method='text_only', work_dir='demo_work', epochs=1)
    assert Path(cfg.data_path).is_dir() and Path(cfg.data_path).is_relative_to(work/'demo_work')
    assert cfg.lr == 1e-3 and cfg.epochs == 1


def test_setup_py_prints_no_licence_banners(tmp_path):
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, 'setup.py', '-q', 'egg_info', '--egg-base', str(tmp_path)], cwd=root,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'License classifiers are deprecated' not in r.stderr and 'license' not in r.stderr.lower(), r.stderr


def test_progress_into_a_file_is_lines_not_carriage_returns(tmp_path):
    log = tmp_path/'log.txt'
    with open(log, 'w') as f:
        r = subprocess.run([BIN/'rsacfn', 'demo-corpus', tmp_path/'demo', '--size', 'tiny'], stdout=f, stderr=subprocess.STDOUT,
                           env=dict(os.environ, HF_HUB_OFFLINE='1'))
    text = log.read_text()
    assert r.returncode == 0, text
    assert '\r' not in text and len(text.splitlines()) < 30, text
    assert 'demo corpus' in text.lower()


def test_the_recognizer_takes_a_tsv_manifest_and_a_corpus_folder_under_home(model_dir, tiny_corpus, work, monkeypatch):
    "Whatever the corpus readers take, the recognizer takes: a .tsv or .tab manifest, and `~` in a folder's path."
    from rsacfn import EmotionRecognizer
    monkeypatch.setenv('HOME', str(work))
    shutil.copytree(tiny_corpus, work/'corpus')
    df = read_kemdy20(work/'corpus').head(4)
    rows = ''.join(f'{w}\t{t}\n' for w, t in zip(df.wav_path, df.text))
    (work/'clips.tsv').write_text('wav_path\ttext\n' + rows, encoding='utf-8')
    (work/'clips.tab').write_text('wav_path\ttext\n' + rows, encoding='utf-8')
    rec = EmotionRecognizer.from_pretrained(model_dir)
    for manifest in ('clips.tsv', 'clips.tab', '~/clips.tsv'):
        got = rec(manifest)
        assert got.transcript.tolist() == df.text.tolist(), manifest
    assert len(rec('~/corpus')) == len(read_kemdy20(work/'corpus'))


@pytest.mark.parametrize('command', ['predict', 'evaluate'])
def test_a_plugin_given_twice_says_so_on_every_command(model_dir, work, rsacfn_cli, command):
    (work/'a.py').write_text('x = 1\n')
    where = ['clips.csv'] if command == 'predict' else ['--data_path', 'corpus']
    r = rsacfn_cli(command, model_dir, *where, '--plugins', 'a.py,a.py')
    assert r.returncode == 2 and 'given twice' in r.stderr and '<lambda>' not in r.stderr, r.stderr
    r = rsacfn_cli('train', '--plugins', 'a.py,./a.py', '--epochs', '1')
    assert r.returncode == 2 and 'given twice' in r.stderr, r.stderr
