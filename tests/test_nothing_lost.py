"""Nothing a user owns is lost, nothing is counted twice, no user error is a traceback: each case a hostile user tried.
Every command here runs in this process (`rsacfn_cli`) unless it needs a process of its own."""
import csv, json, os, pickle, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from rsacfn.data.labels import CorpusError
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.manifest import read_manifest
from rsacfn.files import OUTPUTS
from rsacfn.models.multimodal import MultiModel

os.environ['HF_HUB_OFFLINE'] = '1'
BIN = Path(sys.executable).parent


from conftest import one_line, tree  # and the fixture model_dir: a saved early_fusion model


@pytest.fixture
def model_copy(model_dir, tmp_path):
    return Path(shutil.copytree(model_dir, tmp_path/'model'))


@pytest.fixture
def manifest(tiny_corpus, tmp_path):
    "A labelled manifest of six demo clips."
    df = read_kemdy20(tiny_corpus).head(6)
    path = tmp_path/'man.csv'
    df[['wav_path', 'text', 'emotion']].to_csv(path, index=False)
    return path


@pytest.fixture
def base(tiny_corpus, tiny_backbones, tmp_path):
    return dict(data_path=str(tiny_corpus), wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']), epochs=1,
                audio_max_lens=32_000, text_max_lens=64, lr=1e-3, batch_size=16, quiet=True, output_dir=str(tmp_path/'runs'))


def flags(cfg:dict) -> list:
    out = []
    for k, v in cfg.items(): out += [f'--{k}', json.dumps(v) if isinstance(v, (dict, list)) else str(v)]
    return out


def sweep_args(small:dict) -> list:
    return [a for k, v in small.items() for a in ('--set', f'{k}={v}')]


@pytest.fixture
def small(tiny_backbones):
    return dict(demo_size='tiny', epochs=1, wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']))


# ---------------------------------------------------------------- 1. no command writes over what it did not make

def test_predict_never_writes_over_an_input(model_dir, manifest, rsacfn_cli):
    before = manifest.read_bytes()
    wav = pd.read_csv(manifest).wav_path[0]
    model_files = tree(model_dir)
    for out, flag in ((manifest, '--out'), (manifest, '--skip_report'), (wav, '--out'), (model_dir/'config.json', '--out')):
        for extra in ([], ['--overwrite']):
            args = ['predict', model_dir, manifest, flag, out, '--quiet', *extra]
            if flag == '--skip_report': args += ['--on_error', 'skip', '--out', manifest.with_name('p.csv')]
            r = rsacfn_cli(*args)
            assert r.returncode == 2 and one_line(r) and 'input' in r.stderr and str(Path(out).name) in r.stderr, r.stderr
    assert manifest.read_bytes() == before and tree(model_dir) == model_files
    assert sf.info(wav).frames > 0 and not manifest.with_name('p.csv').exists()


def test_predict_refuses_an_existing_file_without_overwrite_and_replaces_only_its_own(model_dir, manifest, tmp_path, rsacfn_cli):
    mine = tmp_path/'notes.csv'; mine.write_text('my,own\n1,2\n')
    r = rsacfn_cli('predict', model_dir, manifest, '--out', mine, '--quiet')
    assert r.returncode == 2 and one_line(r) and '--overwrite' in r.stderr, r.stderr
    r = rsacfn_cli('predict', model_dir, manifest, '--out', mine, '--quiet', '--overwrite')  # not a table rsacfn predict wrote
    assert r.returncode == 2 and one_line(r) and 'not written by rsacfn' in r.stderr, r.stderr
    assert mine.read_text() == 'my,own\n1,2\n'
    out = tmp_path/'p.csv'
    assert rsacfn_cli('predict', model_dir, manifest, '--out', out, '--quiet').returncode == 0
    assert rsacfn_cli('predict', model_dir, manifest, '--out', out, '--quiet').returncode == 2  # its own earlier result: the flag is needed
    r = rsacfn_cli('predict', model_dir, manifest, '--out', out, '--quiet', '--overwrite')
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(out)) == 6


def test_predict_default_names_differ_for_inputs_of_the_same_name(model_dir, manifest, tmp_path, rsacfn_cli, monkeypatch):
    other = tmp_path/'b'/'man.csv'; other.parent.mkdir(); shutil.copy(manifest, other)
    work = tmp_path/'work'; work.mkdir(); monkeypatch.chdir(work)
    assert rsacfn_cli('predict', model_dir, manifest, '--quiet').returncode == 0
    assert rsacfn_cli('predict', model_dir, other, '--quiet').returncode == 0
    written = sorted(p.name for p in work.iterdir() if p.name != OUTPUTS)  # beside them, rsacfn's record of them
    assert len(written) == 2 and all(n.startswith('predictions_man') for n in written), written


def test_evaluate_default_folders_differ_for_corpora_of_the_same_name(model_dir, tiny_corpus, tmp_path, rsacfn_cli):
    a, b = (Path(shutil.copytree(tiny_corpus, tmp_path/x/'KEMDy20_v1_1')) for x in ('a', 'b'))
    model = Path(shutil.copytree(model_dir, tmp_path/'m'/'best'))
    for corpus in (a, b): assert rsacfn_cli('evaluate', model, '--data_path', corpus, '--quiet').returncode == 0
    folders = sorted(p for p in model.parent.iterdir() if p.name.startswith('evaluate_'))
    assert len(folders) == 2 and all((f/'metrics.json').is_file() for f in folders), folders
    assert {json.loads((f/'metrics.json').read_text())['data_path'] for f in folders} == {str(a), str(b)}
    r = rsacfn_cli('evaluate', model, '--data_path', a, '--quiet')  # the same again: its earlier result is kept unless asked
    assert r.returncode == 2 and one_line(r) and '--overwrite' in r.stderr, r.stderr
    assert rsacfn_cli('evaluate', model, '--data_path', a, '--quiet', '--overwrite').returncode == 0


def test_evaluate_never_writes_into_a_folder_of_the_users_or_an_input(model_dir, tiny_corpus, tmp_path, rsacfn_cli):
    mine = tmp_path/'thesis'; (mine/'sub').mkdir(parents=True)
    (mine/'notes.txt').write_text('mine'); (mine/'metrics.json').write_text('{"mine": 1}'); (mine/'sub'/'chapter1.tex').write_text('x')
    before = tree(mine)
    for extra in ([], ['--overwrite']):
        r = rsacfn_cli('evaluate', model_dir, '--data_path', tiny_corpus, '--out', mine, '--quiet', *extra)
        assert r.returncode == 2 and one_line(r) and 'rsacfn did not write' in r.stderr, r.stderr
    assert tree(mine) == before
    model_files = tree(model_dir)
    for out in (model_dir, tiny_corpus, tiny_corpus/'wav'):
        r = rsacfn_cli('evaluate', model_dir, '--data_path', tiny_corpus, '--out', out, '--quiet')
        assert r.returncode == 2 and one_line(r) and 'input' in r.stderr, r.stderr
    assert tree(model_dir) == model_files and not (tiny_corpus/'metrics.json').exists()


def test_evaluate_overwrite_keeps_the_users_files_beside_its_own(model_dir, tiny_corpus, tmp_path, rsacfn_cli):
    out = tmp_path/'ev'
    assert rsacfn_cli('evaluate', model_dir, '--data_path', tiny_corpus, '--out', out, '--quiet').returncode == 0
    (out/'my_notes.txt').write_text('mine')
    r = rsacfn_cli('evaluate', model_dir, '--data_path', tiny_corpus, '--out', out, '--quiet', '--overwrite')
    assert r.returncode == 0, r.stderr
    assert (out/'my_notes.txt').read_text() == 'mine' and (out/'metrics.json').is_file()


def test_demo_corpus_overwrite_removes_only_what_rsacfn_wrote(tmp_path, rsacfn_cli):
    mine = tmp_path/'mine'; (mine/'sub').mkdir(parents=True)
    (mine/'notes.txt').write_text('mine'); (mine/'sub'/'chapter1.tex').write_text('x')
    before = tree(mine)
    r = rsacfn_cli('demo-corpus', mine, '--size', 'tiny', '--overwrite', '--quiet')  # never held a corpus
    assert r.returncode == 2 and one_line(r) and 'notes.txt' in r.stderr and 'rsacfn did not write' in r.stderr, r.stderr
    assert tree(mine) == before
    corpus = tmp_path/'corpus'
    assert rsacfn_cli('demo-corpus', corpus, '--size', 'tiny', '--quiet').returncode == 0
    (corpus/'wav'/'Session01'/'my_recording.txt').write_text('mine')  # a file of the user's inside the corpus
    r = rsacfn_cli('demo-corpus', corpus, '--size', 'tiny', '--seed', '3', '--overwrite', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'my_recording.txt' in r.stderr, r.stderr
    (corpus/'wav'/'Session01'/'my_recording.txt').unlink()
    r = rsacfn_cli('demo-corpus', corpus, '--size', 'tiny', '--seed', '3', '--overwrite', '--quiet')  # rsacfn's own: replaced
    assert r.returncode == 0, r.stderr
    assert json.loads((corpus/'demo_corpus.json').read_text())['seed'] == 3
    r = rsacfn_cli('demo-corpus', mine/'notes.txt', '--size', 'tiny', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'is a file' in r.stderr, r.stderr


def test_train_never_writes_into_a_folder_of_the_users(base, rsacfn_cli):
    mine = Path(base['output_dir'])/'chapter'; mine.mkdir(parents=True)
    (mine/'config.json').write_text('{"mine": true}'); (mine/'notes.txt').write_text('mine')
    before = tree(mine)
    r = rsacfn_cli('train', *flags(dict(base, ver='chapter')))
    assert r.returncode == 2 and one_line(r) and 'rsacfn did not write' in r.stderr and '--ver' in r.stderr, r.stderr
    assert tree(mine) == before


@pytest.mark.parametrize('ver', ['../escaped', 'a/b', '..', '/tmp/elsewhere', ''])
def test_a_run_name_cannot_leave_its_folder(base, ver, rsacfn_cli):
    r = rsacfn_cli('train', *flags(dict(base, ver=ver)))
    assert r.returncode == 2 and one_line(r) and '--ver' in r.stderr, r.stderr
    assert not Path(base['output_dir']).exists() and not (Path(base['output_dir']).parent/'escaped').exists()


def test_a_method_name_cannot_leave_the_sweep_folder():
    from rsacfn.models.heads import FusionHead
    from rsacfn.models.registry import register_head
    with pytest.raises(ValueError, match='method name'):
        register_head('../../evil')(type('Evil', (FusionHead,), {}))


def test_a_sweep_into_a_folder_in_use_is_refused_at_once_naming_the_holder(tmp_path, small, rsacfn_cli):
    out = tmp_path/'sweep'; out.mkdir()
    holder = subprocess.Popen(['sleep', '60'])
    try:
        (out/'.lock').write_text(f'{holder.pid} {os.uname().nodename}')
        r = rsacfn_cli('sweep', out, '--methods', 'text_only', *sweep_args(small))
        assert r.returncode == 2 and one_line(r) and f'process {holder.pid}' in r.stderr, r.stderr
        assert sorted(p.name for p in out.iterdir()) == ['.lock']
    finally: holder.kill(); holder.wait()


def test_a_sweep_never_writes_into_a_folder_of_the_users(tmp_path, small, rsacfn_cli):
    out = tmp_path/'results'; out.mkdir()
    (out/'runs.csv').write_text('my,runs\n'); (out/'notes.md').write_text('mine')
    before = tree(out)
    r = rsacfn_cli('sweep', out, '--methods', 'text_only', *sweep_args(small))
    assert r.returncode == 2 and one_line(r) and 'rsacfn did not write' in r.stderr, r.stderr
    assert tree(out) == before


# ---------------------------------------------------------------- 2. nothing silently wrong, nothing counted twice

@pytest.mark.parametrize('args, message', [
    (['--seeds', '42,42'], '--seeds 42 is given twice'),
    (['--seeds', '42,042'], '--seeds 42 is given twice'),
    (['--methods', 'text_only,early_fusion,text_only'], '--methods text_only is given twice'),
    (['--folds', '0,1,0'], '--folds 0 is given twice'),
    (['--folds', '0,00'], '--folds 0 is given twice'),
    (['--seeds', 'None'], "--seeds takes comma-separated whole numbers"),
    (['--seeds', ''], "--seeds takes comma-separated whole numbers"),  # not the default seed, silently
    (['--folds', 'x'], "--folds takes 'all' or comma-separated fold numbers"),
    (['--folds', '7'], '--folds 7'),
    (['--jobs', '0'], '--jobs 0'),
    (['--n_folds', '1'], '--n_folds 1'),
    (['--set', 'plugins=a.py,./a.py'], 'is given twice'),
    (['--methods', 'rsa_cfn', '--set', 'head_sizes={"proj_dim": 8, "proj_dim": 16}'], "'proj_dim' is given twice"),
])
def test_duplicates_and_impossible_list_options_are_one_line_errors_before_any_work(tmp_path, small, args, message, rsacfn_cli,
                                                                                  monkeypatch):
    out = tmp_path/'sweep'
    (tmp_path/'a.py').write_text('')
    monkeypatch.chdir(tmp_path)
    methods = [] if '--methods' in args else ['--methods', 'text_only']
    r = rsacfn_cli('sweep', out, *methods, *args, *sweep_args(small))
    assert r.returncode == 2 and one_line(r) and message in r.stderr, r.stderr
    assert not out.exists()


def test_run_sweep_refuses_duplicate_seeds_in_python(tmp_path):
    from rsacfn.experiments.sweep import run_sweep
    with pytest.raises(ValueError, match='seeds.*42.*twice'):
        run_sweep(tmp_path/'s', methods=['text_only'], seeds=[42, 42], params=dict(demo_size='tiny', epochs=1), progress=False)
    assert not (tmp_path/'s').exists()


def test_a_flag_given_twice_is_refused(base, rsacfn_cli):
    r = rsacfn_cli('train', *flags(dict(base, ver='twice')), '--epochs', '5')
    assert r.returncode == 2 and one_line(r) and '--epochs is given twice (1 and 5)' in r.stderr, r.stderr


def rewrite_rating(root, line, column, value):
    path = root/'annotation'/'Sess01_eval.csv'
    with open(path, encoding='utf-8') as f: rows = list(csv.reader(f))
    rows[line - 1][column] = value
    with open(path, 'w', newline='', encoding='utf-8') as f: csv.writer(f).writerows(rows)
    return rows[line - 1][3]


@pytest.mark.parametrize('column, value', [(5, '42'), (6, '-7'), (5, '0.5'), (6, '5.01'), (5, 'inf'), (6, 'nan')])
def test_ratings_off_kemdys_scale_are_corpus_errors_and_skippable(corpus_copy, tmp_path, column, value):
    sid = rewrite_rating(corpus_copy, 4, column, value)
    name = 'valence' if column == 5 else 'arousal'
    with pytest.raises(CorpusError, match=rf"Sess01_eval.csv, line 4: {name} '?{value}'? .*1-5"): read_kemdy20(corpus_copy)
    with pytest.warns(UserWarning, match='skipped 1 segment'): df = read_kemdy20(corpus_copy, on_error='skip', skip_report=tmp_path/'r.csv')
    assert sid not in set(df.segment_id) and pd.read_csv(tmp_path/'r.csv').segment_id.tolist() == [sid]


def test_manifest_ratings_off_the_scale_are_corpus_errors(tiny_corpus, tmp_path):
    df = read_kemdy20(tiny_corpus).head(3)
    m = df[['wav_path', 'text', 'emotion', 'valence', 'arousal']].copy()
    m.loc[1, 'arousal'] = 9
    m.to_csv(tmp_path/'m.csv', index=False)
    with pytest.raises(CorpusError, match=r"m.csv, line 3: arousal '?9.0'? .*1-5"): read_manifest(tmp_path/'m.csv')


def test_manifest_duplicates_are_judged_by_the_file_not_its_name(tiny_corpus, tmp_path):
    df = read_kemdy20(tiny_corpus).head(2)
    for d in ('a', 'b'): (tmp_path/d).mkdir(); shutil.copy(df.wav_path[0 if d == 'a' else 1], tmp_path/d/'clip.wav')
    pd.DataFrame(dict(wav_path=['a/clip.wav', 'b/clip.wav'], text=['가', '나'], emotion=['happy', 'sad'])).to_csv(tmp_path/'m.csv', index=False)
    got = read_manifest(tmp_path/'m.csv')  # two files with the same stem are two segments
    assert len(got) == 2 and got.segment_id.nunique() == 2
    pd.DataFrame(dict(wav_path=['a/clip.wav', './a/../a/clip.wav'], text=['가', '가'], emotion=['happy', 'happy'])).to_csv(tmp_path/'d.csv', index=False)
    with pytest.raises(CorpusError, match=r'd.csv, line 3: .*listed twice \(first at .*line 2\)'): read_manifest(tmp_path/'d.csv')
    pd.DataFrame(dict(id=['x', 'y'], wav_path=['a/clip.wav', str(tmp_path/'a'/'clip.wav')], text=['가', '가'],
                      emotion=['happy', 'happy'])).to_csv(tmp_path/'i.csv', index=False)
    with pytest.raises(CorpusError, match=r'i.csv, line 3: .*listed twice'): read_manifest(tmp_path/'i.csv')


def edit_config(folder, **changes):
    c = json.loads((folder/'config.json').read_text())
    c.update(changes)
    (folder/'config.json').write_text(json.dumps(c))


@pytest.mark.parametrize('field, value', [('method', 'stack'), ('class_names', ['happy', 'neutral', 'angry', 'surprise', 'sad', 'fear', 'disgust']),
                                          ('pooling_mode', 'max'), ('audio_max_lens', 16_000), ('dimensions', ['valence', 'arousal'])])
def test_a_model_folder_whose_config_was_edited_is_refused_naming_the_field(model_copy, field, value, rsacfn_cli, manifest):
    old = json.loads((model_copy/'config.json').read_text())[field]
    edit_config(model_copy, **{field: value})
    with pytest.raises(ValueError, match=rf"{field}") as e: MultiModel.from_pretrained(model_copy)
    assert repr(old)[:20] in str(e.value) or str(old)[:20] in str(e.value), str(e.value)
    r = rsacfn_cli('predict', model_copy, manifest, '--out', manifest.with_name('p.csv'), '--quiet')
    assert r.returncode == 2 and one_line(r) and field in r.stderr, r.stderr


def test_a_model_folder_with_an_edited_tokenizer_or_foreign_weights_is_refused(model_copy, tiny_backbones, tmp_path):
    tok = model_copy/'tokenizer.json'
    original = tok.read_bytes(); tok.write_bytes(original + b'\n')
    with pytest.raises(ValueError, match='tokenizer.json'): MultiModel.from_pretrained(model_copy)
    other = tmp_path/'other'
    MultiModel.from_backbones('rsa_cfn', tiny_backbones['audio'], tiny_backbones['text'], head_sizes={'proj_dim': 8}).save_pretrained(other)
    shutil.copy(other/'model.safetensors', tmp_path/'model'/'model.safetensors')  # another save's weights beside this config
    tok.write_bytes(original)
    with pytest.raises(ValueError, match="method.*'rsa_cfn'") as e: MultiModel.from_pretrained(model_copy)
    assert 'ignore_mismatched_sizes' not in str(e.value)


def test_a_model_folder_without_safetensors_is_refused_and_never_unpickled(model_copy, tmp_path, manifest, rsacfn_cli):
    marker = tmp_path/'unpickled'
    class Payload:
        def __reduce__(self): return (Path.write_text, (marker, 'code ran'))
    (model_copy/'model.safetensors').unlink()
    with open(model_copy/'pytorch_model.bin', 'wb') as f: pickle.dump(Payload(), f)
    with pytest.raises(ValueError, match='model.safetensors'): MultiModel.from_pretrained(model_copy)
    r = rsacfn_cli('predict', model_copy, manifest, '--out', tmp_path/'p.csv', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'model.safetensors' in r.stderr and 'weights_only' not in r.stderr, r.stderr
    assert not marker.exists()


# ---------------------------------------------------------------- 3. every value checked, for every command, before any work

@pytest.mark.parametrize('value, message', [
    ('epochs=abc', "epochs=abc: must be a whole number"),
    ('epochs=1.5', "epochs=1.5: must be a whole number"),
    ('lr=abc', "lr=abc: must be a number"),
    ('lr=-1', "lr=-1"),
    ('lr=nan', "lr=nan"),
    ('weight_decay=-0.1', 'weight_decay=-0.1'),
    ('use_amp=maybe', 'use_amp=maybe: must be true or false'),
    ('head_sizes=abc', 'head_sizes=abc: must be a JSON object'),
    ('head_sizes={"proj_dim": "big"}', "head_sizes: proj_dim='big' must be a whole number"),
    ('valid_size=2', 'valid_size=2'),
])
def test_every_sweep_value_is_checked_before_any_work(tmp_path, value, message, rsacfn_cli):
    out = tmp_path/'sweep'
    r = rsacfn_cli('sweep', out, '--methods', 'rsa_cfn', '--set', value)
    assert r.returncode == 2 and one_line(r) and f'--set {message}' in r.stderr, r.stderr
    assert not out.exists()


@pytest.mark.parametrize('bad, message', [
    (dict(method='rsa_cfn', head_sizes={'proj_dim': 'big'}), "--head_sizes"),
    (dict(method='rsa_cfn', head_sizes={'proj_dim': 0}), "proj_dim"),
    (dict(method='rsa_cfn', head_sizes={'residual_dropout': 1.5}), "residual_dropout"),
    (dict(seed=-1), '--seed -1'),
    (dict(lr=0), '--lr 0'),
    (dict(lr='nan'), '--lr nan'),
    (dict(log_every=0), '--log_every 0'),
])
def test_every_train_value_is_checked_before_any_work(base, bad, message, rsacfn_cli):
    r = rsacfn_cli('train', *flags(dict(base, ver='bad', **bad)))
    assert r.returncode == 2 and one_line(r) and message in r.stderr, r.stderr
    assert not Path(base['output_dir']).exists()


def test_python_settings_are_checked_when_made():
    from rsacfn.config import TrainConfig
    with pytest.raises(ValueError, match="lr='abc': must be a number"): TrainConfig(lr='abc')
    with pytest.raises(ValueError, match="epochs=1.5: must be a whole number"): TrainConfig(epochs=1.5)
    with pytest.raises(ValueError, match="head_sizes='abc': must be a JSON object"): TrainConfig(head_sizes='abc')
    assert TrainConfig(lr=1, epochs=2.0).epochs == 2  # a whole float is a whole number, an int a number


@pytest.mark.parametrize('args, message', [
    (['predict', '{model}', '{manifest}', '--batch_size', '0'], '--batch_size 0'),
    (['evaluate', '{model}', '--data_path', '{manifest}', '--batch_size', '-1'], '--batch_size -1'),
    (['demo-corpus', '{tmp}/d', '--seed', '-1'], '--seed -1'),
])
def test_every_command_checks_its_values(model_dir, manifest, tmp_path, args, message, rsacfn_cli):
    args = [a.format(model=model_dir, manifest=manifest, tmp=tmp_path) for a in args]
    r = rsacfn_cli(*args, '--quiet')
    assert r.returncode == 2 and one_line(r) and message in r.stderr, r.stderr
    assert not (tmp_path/'d').exists() and [p.name for p in tmp_path.iterdir()] == ['man.csv']


def test_a_backbone_of_the_wrong_kind_is_one_line(base, rsacfn_cli):
    r = rsacfn_cli('train', *flags(dict(base, ver='kind', method='speech_only', wav_model=base['text_model'])))
    assert r.returncode == 2 and one_line(r) and 'not a wav2vec 2.0-family audio encoder' in r.stderr, r.stderr
    for method in ('text_only', 'early_fusion'):  # and the other way round: an audio checkpoint as the text model
        r = rsacfn_cli('train', *flags(dict(base, ver=f'kind_{method}', method=method, text_model=base['wav_model'])))
        assert r.returncode == 2 and one_line(r) and 'is a wav2vec2 model, an audio encoder, not a text encoder' in r.stderr, r.stderr
        assert not (Path(base['output_dir'])/f'kind_{method}').exists()


# ---------------------------------------------------------------- 4. refuse first, write after (skip mode too)

def test_skip_mode_leaves_no_folder_when_the_run_is_refused(corpus_copy, base, rsacfn_cli):
    (corpus_copy/'wav'/'Session01'/f'{read_kemdy20(corpus_copy).segment_id[0]}.txt').unlink()  # one segment to skip
    r = rsacfn_cli('train', *flags(dict(base, data_path=str(corpus_copy), ver='refused', on_error='skip', num_classes=2)))
    assert r.returncode == 2 and '--num_classes 2' in r.stderr, r.stderr
    assert not Path(base['output_dir']).exists()


# ---------------------------------------------------------------- 5. messages in the spelling of the interface in use

def test_session_split_without_sessions_names_the_split_flag(tiny_corpus, base, tmp_path, rsacfn_cli):
    df = read_kemdy20(tiny_corpus)
    df[['wav_path', 'text', 'emotion']].to_csv(tmp_path/'m.csv', index=False)
    r = rsacfn_cli('train', *flags(dict(base, data_path=str(tmp_path/'m.csv'), ver='s', split='session')))
    assert r.returncode == 2 and one_line(r) and '--split random' in r.stderr and '--method' not in r.stderr, r.stderr
    assert not Path(base['output_dir']).exists()  # refused before anything is written


def test_evaluate_on_an_unlabelled_manifest_names_what_a_shell_user_can_do(model_dir, manifest, tmp_path, rsacfn_cli):
    pd.read_csv(manifest)[['wav_path', 'text']].to_csv(tmp_path/'u.csv', index=False)
    r = rsacfn_cli('evaluate', model_dir, '--data_path', tmp_path/'u.csv', '--out', tmp_path/'ev', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'emotion' in r.stderr and 'columns=' not in r.stderr, r.stderr


def test_predict_on_one_clip_says_how_to_give_it(model_dir, manifest, rsacfn_cli):
    wav = pd.read_csv(manifest).wav_path[0]
    r = rsacfn_cli('predict', model_dir, wav, '--quiet')
    assert r.returncode == 2 and one_line(r) and 'audio clip' in r.stderr and 'wav_path,text' in r.stderr, r.stderr
    assert 'UTF-8' not in r.stderr


def test_an_uncached_hub_id_online_does_not_blame_offline_mode(monkeypatch):
    from transformers import AutoConfig
    from rsacfn.models.backbones import BackboneNotFound, load_pretrained
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.setenv('HF_ENDPOINT', 'http://127.0.0.1:9')  # nothing listens: the download fails at once
    with pytest.raises(BackboneNotFound) as e: load_pretrained(AutoConfig, 'nobody-here/no-such-model')
    assert 'HF_HUB_OFFLINE=1' not in str(e.value) and 'no-such-model' in str(e.value), str(e.value)


def test_a_one_sample_clip_is_padded_in_training_and_scoring_too(tiny_corpus, model_dir, tmp_path):
    from rsacfn.evaluation.scoring import score
    df = read_kemdy20(tiny_corpus)
    df = df[df.label.notna()].head(2).reset_index(drop=True)
    short = tmp_path/'one.wav'; sf.write(short, np.array([0.1], np.float32), 16000)
    df.loc[0, 'wav_path'] = str(short)
    pred = score(MultiModel.from_pretrained(model_dir), df, batch_size=1)
    assert len(pred) == len(df)


def test_skip_mode_warnings_are_one_line_in_the_shell(corpus_copy, base, rsacfn_cli):
    (corpus_copy/'wav'/'Session01'/f'{read_kemdy20(corpus_copy).segment_id[0]}.txt').unlink()
    r = rsacfn_cli('train', *flags(dict(base, data_path=str(corpus_copy), ver='skip', on_error='skip')))
    assert r.returncode == 0, r.stderr
    warned = [l for l in r.stderr.splitlines() if 'skipped 1 segment' in l]
    assert len(warned) == 1 and warned[0].startswith('rsacfn train: warning: ') and 'UserWarning' not in r.stderr, r.stderr
    assert 'warnings.warn' not in r.stderr and 'data.py' not in r.stderr


# ---------------------------------------------------------------- more of each class

def test_overwrite_never_replaces_another_kind_of_rsacfn_result(model_dir, tiny_corpus, tmp_path, rsacfn_cli):
    from rsacfn.files import atomic_write, claim
    sweep, run = tmp_path/'sweep', tmp_path/'run'
    for folder, kind in ((sweep, 'sweep'), (run, 'run')):
        claim(folder, kind, 'x')
        with atomic_write(folder/'f1_table.md') as f: f.write('a result')
    r = rsacfn_cli('demo-corpus', sweep, '--size', 'tiny', '--overwrite', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'holds no demo corpus but a sweep' in r.stderr, r.stderr
    r = rsacfn_cli('evaluate', model_dir, '--data_path', tiny_corpus, '--out', run, '--overwrite', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'holds a run that rsacfn wrote, not an evaluation' in r.stderr, r.stderr
    assert (sweep/'f1_table.md').read_text() == (run/'f1_table.md').read_text() == 'a result'


@pytest.mark.parametrize('bad, message', [
    (dict(text_max_lens=1000), '--text_max_lens 1000: the text backbone takes at most 512 tokens'),
    (dict(text_max_lens=1000, on_error='skip'), '--text_max_lens 1000'),  # refused once the run began: its skip report goes too
    (dict(audio_max_lens=100, method='early_fusion'), '--audio_max_lens 100: the audio encoder needs at least 400 samples'),
    (dict(plugins='no_such_module_here'), "plugin 'no_such_module_here': no module of that name"),
    (dict(plugins='{tmp}/broken.py'), 'broken.py: importing it failed (SyntaxError'),
])
def test_values_a_backbone_or_plugin_cannot_take_are_one_line(base, bad, message, tmp_path, rsacfn_cli):
    (tmp_path/'broken.py').write_text('def (:\n')
    bad = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in bad.items()}
    r = rsacfn_cli('train', *flags(dict(base, ver='bad', **bad)))
    assert r.returncode == 2 and one_line(r) and message in r.stderr, r.stderr
    assert not (Path(base['output_dir'])/'bad').exists()


def test_a_damaged_weights_file_is_one_line(model_copy, manifest, tmp_path, rsacfn_cli):
    w = model_copy/'model.safetensors'
    w.write_bytes(w.read_bytes()[:len(w.read_bytes()) // 2])
    r = rsacfn_cli('predict', model_copy, manifest, '--out', tmp_path/'p.csv', '--quiet')
    assert r.returncode == 2 and one_line(r) and 'model.safetensors cannot be read' in r.stderr, r.stderr


def test_a_skip_report_never_replaces_another_file(corpus_copy, manifest, base, rsacfn_cli):
    before = manifest.read_bytes()
    (corpus_copy/'wav'/'Session01'/f'{read_kemdy20(corpus_copy).segment_id[0]}.txt').unlink()
    r = rsacfn_cli('train', *flags(dict(base, data_path=str(corpus_copy), ver='rep', on_error='skip', skip_report=str(manifest))))
    assert r.returncode == 2 and one_line(r) and '--skip_report' in r.stderr and 'not written by rsacfn' in r.stderr, r.stderr
    assert manifest.read_bytes() == before and not (Path(base['output_dir'])/'rep').exists()


def test_an_unknown_demo_size_is_named_before_any_work(tmp_path, rsacfn_cli):
    r = rsacfn_cli('sweep', tmp_path/'s', '--methods', 'text_only', '--set', 'demo_size=huge')
    assert r.returncode == 2 and one_line(r) and "unknown demo_size 'huge'" in r.stderr, r.stderr
    assert not (tmp_path/'s').exists()


def test_a_sweep_refuses_a_backbone_of_the_wrong_kind_before_any_run(tmp_path, small, rsacfn_cli):
    out = tmp_path/'sweep'
    r = rsacfn_cli('sweep', out, '--methods', 'speech_only', *sweep_args(dict(small, wav_model=small['text_model'])))
    last = r.stderr.strip().splitlines()[-1]  # after the demo corpus' progress bar: the demo inputs are written first
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'not a wav2vec 2.0-family audio encoder' in last, r.stderr
    assert '--set wav_model=' in last and not (out/'runs').exists() and not (out/'notebooks').exists()


def test_a_recorded_folder_leaves_rsacfns_own_bookkeeping_out_of_its_record(tmp_path):
    "A lock or a half-written file inside a recorded folder is rsacfn's bookkeeping: never a result to remove later."
    from rsacfn.files import claim, record, remove_written, written
    run = tmp_path/'run'; run.mkdir(); claim(run, 'run', 'train into a new or empty folder')
    (run/'best').mkdir(); (run/'best'/'.lock').write_text(''); (run/'best'/'w.bin').write_text('w')
    (run/'best'/'.w.bin.partial').write_text('half')
    record(run/'best')
    assert sorted(written(run)) == ['best/w.bin']
    remove_written(run)
    assert sorted(p.name for p in (run/'best').iterdir()) == ['.lock', '.w.bin.partial']
