"Bad input and faults: nothing silently wrong, nothing left looking complete, every user error one line naming the cause."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from conftest import ctrl_c_reaches
pytestmark = pytest.mark.slow  # `make test-quick` leaves this file out
import soundfile as sf
import torch
from rsacfn.data.labels import CorpusError
from rsacfn.data.audio import load_audio
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.models.multimodal import MultiModel
from rsacfn.evaluation.inference import predict
from rsacfn.files import short_hash, strict_json
from rsacfn.config import TrainConfig
from rsacfn.files import RunLocked
from rsacfn.training.state import NonFiniteLoss
from rsacfn.training.loop import train

os.environ['HF_HUB_OFFLINE'] = '1'
BIN = Path(sys.executable).parent
NAN_HEAD = '''
import torch
from torch import nn
from rsacfn.models.heads import FusionHead
from rsacfn.models.registry import register_head

@register_head('nan_head', batch_size=4)
class NaNHead(FusionHead):
    "A head whose logits are NaN: the loss of its first batch is NaN."
    def __init__(self, audio_dim, text_dim, num_classes=7):
        super().__init__()
        self.classifier = nn.Linear(audio_dim + text_dim, num_classes)
    def forward(self, audio, text, audio_mask=None, text_mask=None):
        return self.classifier(torch.cat([audio, text], 1)) * float('nan'), {}
'''


def cli(*args, **kw):
    "`rsacfn ARGS` as a program of its own (most tests run it in-process: the `rsacfn_cli` fixture)."
    return subprocess.run([str(BIN/'rsacfn'), *map(str, args)], capture_output=True, text=True, timeout=600, **kw)


def one_line(r) -> bool: return len(r.stderr.strip().splitlines()) == 1 and 'Traceback' not in r.stderr


def flags(cfg:dict) -> list:
    out = []
    for k, v in cfg.items(): out += [f'--{k}', json.dumps(v) if isinstance(v, dict) else str(v)]
    return out


@pytest.fixture
def base(tiny_corpus, tiny_backbones, tmp_path):
    return dict(data_path=str(tiny_corpus), wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']), epochs=1,
                audio_max_lens=32_000, text_max_lens=64, lr=1e-3, batch_size=16, quiet=True, output_dir=str(tmp_path/'runs'))


def nan_wav(corpus, value=np.nan):
    "Turn one segment's wav into float32 with a NaN (or `value`) in the middle; return its id and path."
    df = read_kemdy20(corpus)
    path = df.wav_path[0]
    wav, sr = sf.read(path, dtype='float32')
    wav[len(wav) // 2] = value
    sf.write(path, wav, sr, subtype='FLOAT')
    return df.segment_id[0], path


@pytest.mark.parametrize('value', [np.nan, np.inf, -np.inf], ids=['nan', 'inf', '-inf'])
def test_a_nan_wav_is_a_corpus_error_naming_the_file(corpus_copy, tmp_path, value):
    sid, path = nan_wav(corpus_copy, value)
    with pytest.raises(CorpusError, match='non-finite samples') as e: read_kemdy20(corpus_copy)
    assert path in str(e.value)
    with pytest.raises(CorpusError, match='non-finite samples'): load_audio(path)
    with pytest.warns(UserWarning, match='skipped 1 segment'):  # skippable like the others, and said so
        df = read_kemdy20(corpus_copy, on_error='skip', skip_report=tmp_path/'skipped.csv')
    assert sid not in set(df.segment_id) and pd.read_csv(tmp_path/'skipped.csv').segment_id.tolist() == [sid]


def test_train_on_a_nan_wav_stops_in_one_line_and_leaves_no_run(corpus_copy, base, rsacfn_cli):
    _, path = nan_wav(corpus_copy)
    r = rsacfn_cli('train', *flags(dict(base, data_path=str(corpus_copy), ver='nan')))
    assert r.returncode == 2 and one_line(r) and path in r.stderr and '--on_error skip' in r.stderr, r.stderr
    assert not (Path(base['output_dir'])/'nan').exists()
    r = rsacfn_cli('train', *flags(dict(base, data_path=str(corpus_copy), ver='skip', on_error='skip')))
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'non-finite' in (Path(base['output_dir'])/'skip'/'skipped_segments.csv').read_text()


def test_a_non_finite_loss_stops_the_run_naming_the_segments(base, tmp_path):
    plugin = tmp_path/'nan_head.py'; plugin.write_text(NAN_HEAD)
    with pytest.raises(NonFiniteLoss, match=r'the training loss is nan on the batch of segments Sess\d+_script'):
        train(TrainConfig(**base, ver='nan_loss', method='nan_head', plugins=[str(plugin)]))
    assert not (Path(base['output_dir'])/'nan_loss').exists()  # no best/, no last.pt, no result.json: nothing looks complete


@pytest.fixture(scope='module')
def model(tiny_backbones):
    return MultiModel.from_backbones('early_fusion', tiny_backbones['audio'], tiny_backbones['text']).eval()


def test_predict_refuses_non_finite_input_and_mends_short_or_stereo_clips(model):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(8_000) * .1).astype(np.float32)
    with pytest.raises(ValueError, match='audio input 1 holds 1 non-finite'): predict(model, [x, np.r_[x[:100], np.nan]], ['가', '나'])
    with pytest.raises(ValueError, match='audio input 0 is empty'): predict(model, [np.zeros(0, np.float32)], ['가'])
    short = predict(model, [x[:1], x[:160]], ['가', '나'])  # 1 sample, 10 ms: shorter than the CNN's 400-sample receptive field
    assert len(short) == 2 and np.isfinite(short.filter(like='p_').values).all()
    mono, stereo = predict(model, [x], ['가']), predict(model, [np.stack([x, x], 1)], ['가'])
    np.testing.assert_allclose(stereo.filter(like='p_').values, mono.filter(like='p_').values, atol=1e-6)


def test_resume_after_the_corpus_changed_is_refused(corpus_copy, base):
    cfg = dict(base, data_path=str(corpus_copy), ver='r')
    train(TrainConfig(**cfg))
    (corpus_copy/'annotation'/'Sess04_eval.csv').unlink()  # a session less: the validation split would change
    with pytest.raises(ValueError, match='holds a run of another configuration .*corpus_fingerprint: .*changed'):
        train(TrainConfig(**dict(cfg, epochs=2, resume=True)))
    assert len((Path(base['output_dir'])/'r'/'metrics.jsonl').read_text().splitlines()) == 1


def test_one_writer_per_run_folder(base, rsacfn_cli):
    run = Path(base['output_dir'])/'locked'; run.mkdir(parents=True)
    holder = subprocess.Popen(['sleep', '60'])
    try:
        (run/'.lock').write_text(f'{holder.pid} {os.uname().nodename}')
        with pytest.raises(RunLocked, match=f'being written by process {holder.pid}'): train(TrainConfig(**base, ver='locked'))
        r = rsacfn_cli('train', *flags(dict(base, ver='locked')))
        assert r.returncode == 2 and one_line(r) and f'process {holder.pid}' in r.stderr
        assert sorted(p.name for p in run.iterdir()) == ['.lock']  # the holder's folder untouched
    finally: holder.kill(); holder.wait()
    r = train(TrainConfig(**base, ver='locked'))  # the holder is dead: its lock is taken over
    assert r['epochs_done'] == 1 and not (run/'.lock').exists()


def test_a_model_folder_with_another_methods_weights_is_refused(tiny_backbones, tmp_path):
    MultiModel.from_backbones('rsa', tiny_backbones['audio'], tiny_backbones['text']).save_pretrained(tmp_path/'m')
    config = json.loads((tmp_path/'m'/'config.json').read_text()); config['method'] = 'residual'
    (tmp_path/'m'/'config.json').write_text(json.dumps(config))
    with pytest.raises(ValueError, match="method is 'residual' in config.json, 'rsa' when its weights were saved"): MultiModel.from_pretrained(tmp_path/'m')
    with pytest.raises(FileNotFoundError, match='is not a saved model: no such folder'): MultiModel.from_pretrained(tmp_path/'nothing')


@pytest.mark.parametrize('bad, message', [
    (dict(epochs=0), '--epochs 0: must be 1 or more'),
    (dict(epochs=-1), '--epochs -1: must be 1 or more'),
    (dict(grad_accum=0), '--grad_accum 0: must be 1 or more'),
    (dict(device='cuda'), '--device cuda: no CUDA device is visible here'),
    (dict(num_classes=2), '--num_classes 2: the corpus has label id'),
    (dict(split='sessions'), "unknown split 'sessions'; did you mean 'session'?"),
    (dict(head_sizes={'proj_dm': 8}, method='rsa_cfn'), "unknown head size for rsa_cfn 'proj_dm'; did you mean 'proj_dim'?"),
])
def test_bad_values_are_one_line_errors_and_leave_no_folder(base, bad, message, rsacfn_cli):
    r = rsacfn_cli('train', *flags(dict(base, ver='bad', **bad)))
    assert r.returncode == 2 and one_line(r) and message in r.stderr, r.stderr
    assert not (Path(base['output_dir'])/'bad').exists()


def test_run_files_are_strict_and_a_damaged_checkpoint_is_one_line(base, rsacfn_cli):
    r = train(TrainConfig(**base, ver='files', keep_resume_state=True))
    run = Path(r['run_dir'])
    state = torch.load(run/'last.pt', weights_only=True)  # tensors and plain values only
    assert state['epoch'] == 0
    refuse = lambda c: (_ for _ in ()).throw(ValueError(f'{c} is not JSON'))
    for f in ('result.json', 'config.json', 'identity.json', 'best/metrics.json'): json.loads((run/f).read_text(), parse_constant=refuse)
    assert strict_json({'loss': float('nan'), 'x': [1.0, float('inf')]}) == {'loss': None, 'x': [1.0, None]}
    data = (run/'last.pt').read_bytes(); (run/'last.pt').write_bytes(data[:len(data) // 2])
    out = rsacfn_cli('train', *flags(dict(base, ver='files', epochs=2, resume=True)))
    assert out.returncode == 2 and one_line(out) and 'last.pt cannot be read' in out.stderr, out.stderr


def test_ctrl_c_in_train_says_how_to_continue(base):
    run = Path(base['output_dir'])/'ctrl_c'
    proc = subprocess.Popen([str(BIN/'rsacfn'), 'train', *flags(dict(base, ver='ctrl_c', epochs=200))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches)
    deadline = time.time() + 300
    while not (run/'last.pt').is_file():  # an epoch is finished
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT); t0 = time.monotonic()
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - t0  # an epoch of the tiny corpus is about a second: the run stops at the next batch
    assert took < 10, f'Ctrl-C took {took:.1f} s to stop the run'
    assert proc.returncode == 130 and len(err.strip().splitlines()) == 1, err
    assert 'interrupted in epoch' in err and 'continue with --resume True' in err
    assert not (run/'result.json').exists() and (run/'last.pt').is_file()


def test_reader_messages_name_what_the_user_has(corpus_copy, tiny_corpus, tmp_path, model):
    ann = corpus_copy/'annotation'
    n = len(read_kemdy20(corpus_copy))
    (ann/'Sess01_eval.csv').rename(ann/'sess01_eval.csv')  # lower case: read, not silently ignored
    assert len(read_kemdy20(corpus_copy)) == n
    one, two = (ann/'sess01_eval.csv').read_text().splitlines(True), (ann/'Sess02_eval.csv').read_text().splitlines(True)
    (ann/'sess01_eval.csv').write_text(''.join(one[:2] + one[3:])); (ann/'Sess02_eval.csv').write_text(''.join(two + [one[2]]))
    moved = read_kemdy20(corpus_copy)  # a segment listed in another session's file: its wav is found under its own session
    assert len(moved) == n and moved.wav_path.map(os.path.isfile).all()
    df = read_kemdy20(corpus_copy)
    manifest = tmp_path/'m.csv'
    pd.DataFrame(dict(path=df.wav_path, text=df.text, emotion=df.emotion)).to_csv(manifest, index=False, encoding='cp949')
    from rsacfn.data.manifest import read_manifest
    from rsacfn.data.splits import split_corpus
    assert len(read_manifest(manifest)) == n  # cp949, as the KEMDy readers accept
    one = df[df.label.notna()].copy()
    fear = one.index[one.emotion == 'fear']
    with pytest.raises(ValueError, match=r'fear \(label 5: 1 segment\): fewer than 2 segments'): split_corpus(one.drop(index=fear[1:]))
    with pytest.raises(CorpusError, match=r'wav file not found \(audio input 0\)\. Check the path') as e:
        predict(model, [str(tmp_path/'missing.wav')], ['가'])
    assert 'on_error' not in str(e.value)  # predict has no such argument
    fresh = shutil.copytree(tiny_corpus, tmp_path/'fresh')  # as rsacfn wrote it: corpus_copy now holds the user's edits
    r = cli('demo-corpus', fresh, '--size', 'tiny', '--seed', '3', '--quiet')
    assert r.returncode == 2 and one_line(r) and '--overwrite' in r.stderr and 'overwrite=True' not in r.stderr, r.stderr


def test_ctrl_c_in_a_sweep_interrupts_the_running_notebook(tmp_path, tiny_backbones):
    out = tmp_path/'sweep'
    proc = subprocess.Popen([str(BIN/'rsacfn'), 'sweep', str(out), '--methods', 'text_only,early_fusion', '--set', 'demo_size=tiny',
                             '--set', 'epochs=300', '--set', f'wav_model={tiny_backbones["audio"]}', '--set', f'text_model={tiny_backbones["text"]}'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches)
    run = out/'runs'/'text_only-seed42'
    deadline = time.time() + 300
    while not (run/'last.pt').is_file():  # the first notebook has finished an epoch
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT); t0 = time.monotonic()
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - t0  # 300 epochs take many minutes: the sweep interrupted its kernel, and shut it down
    assert took < 20, f'Ctrl-C took {took:.1f} s to stop the sweep'
    assert proc.returncode == 130, err[-2000:]
    assert 'sweep interrupted: 0 of 2 runs are finished; run the same command again' in err and 'Traceback' not in err
    assert (run/'last.pt').is_file() and not (run/'result.json').exists() and not (out/'runs'/'early_fusion-seed42').exists()
    assert not list((out/'notebooks').glob('*.failed.ipynb'))  # an interrupted run is not a failed one


def test_a_clean_read_of_another_corpus_keeps_the_skip_report(corpus_copy, tiny_corpus, tmp_path, monkeypatch):
    import shutil, warnings
    monkeypatch.chdir(tmp_path)
    sid, _ = nan_wav(corpus_copy)
    other = shutil.copytree(tiny_corpus, tmp_path/'KEMDy19_like')
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); read_kemdy20(corpus_copy, on_error='skip')
    read_kemdy20(other, on_error='skip')  # clean
    assert pd.read_csv(tmp_path/f'skipped_segments_{corpus_copy.name}_{short_hash(corpus_copy)}.csv').segment_id.tolist() == [sid]
    assert pd.read_csv(tmp_path/f'skipped_segments_KEMDy19_like_{short_hash(other)}.csv').empty


def test_skip_mode_skips_a_short_row_and_a_non_numeric_valence(corpus_copy, tmp_path):
    path = corpus_copy/'annotation'/'Sess01_eval.csv'
    lines = path.read_text().splitlines(True)
    cells = lines[3].split(','); cells[5] = 'high'
    short, bad = lines[2].split(',')[3], cells[3]
    path.write_text(''.join(lines[:2] + [','.join(lines[2].split(',')[:5]) + '\n', ','.join(cells)] + lines[4:]))
    n = len(read_kemdy20(corpus_copy, on_error='skip', skip_report=tmp_path/'r.csv'))
    report = pd.read_csv(tmp_path/'r.csv')
    assert sorted(report.segment_id) == sorted([short, bad]) and report.reason.str.contains("columns|'high' is not a number").all()
    with pytest.raises(CorpusError, match='row has 5 columns'): read_kemdy20(corpus_copy)
    assert n > 100


def test_debug_shows_the_traceback(base):
    r = cli('train', *flags(dict(base, ver='bad', epochs=0)), '--debug')
    assert r.returncode != 0 and 'Traceback' in r.stderr and 'epochs=0: must be 1 or more' in r.stderr


def test_a_wav_broken_during_training_is_one_line_also_from_a_loading_worker(corpus_copy):
    "CUDA runs load with worker processes; torch re-raises a worker's error with its whole traceback as the message."
    from torch.utils.data import DataLoader
    from rsacfn.data.batching import EmotionDataset
    from rsacfn.data.splits import split_corpus
    train_df = split_corpus(read_kemdy20(corpus_copy))[0]
    Path(train_df.wav_path.iloc[0]).write_bytes(b'not a wav any more')  # broken after the corpus was read
    with pytest.raises(CorpusError) as direct: load_audio(train_df.wav_path.iloc[0])
    loader = DataLoader(EmotionDataset(train_df.iloc[:2]), batch_size=2, num_workers=1, collate_fn=lambda items: items)
    with pytest.raises(CorpusError) as e: next(iter(loader))
    assert str(e.value) == str(direct.value) and len(str(e.value).splitlines()) == 1, str(e.value)
    assert e.value.where == train_df.wav_path.iloc[0]
