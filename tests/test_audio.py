"Decoding, downmixing and resampling, on the scipy path here and the torchaudio path where it imports."
import os, subprocess, sys, types
import numpy as np
import pytest
import soundfile as sf
import rsacfn.data.audio as data
from rsacfn.data.audio import SAMPLE_RATE, audio_backend, load_audio, resample
from rsacfn.data.kemdy import read_kemdy20


def sine_file(path, sr, hz=440.0, seconds=1.0, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    wav = 0.5 * np.sin(2 * np.pi * hz * t)
    sf.write(path, np.stack([wav] * channels, 1) if channels > 1 else wav, sr, subtype='PCM_16')
    return path


def peak_hz(w): return np.abs(np.fft.rfft(w * np.hanning(len(w)))).argmax() * SAMPLE_RATE / len(w)


@pytest.fixture
def fresh_backend():
    data._torchaudio_resample.cache_clear()
    yield
    data._torchaudio_resample.cache_clear()


@pytest.mark.parametrize('sr', [8000, 22050, 44100, 48000, 16000])
def test_scipy_resampling_keeps_pitch_and_length(tmp_path, sr):
    w = load_audio(sine_file(tmp_path/'s.wav', sr), backend='scipy')
    assert w.dtype == np.float32 and w.ndim == 1
    assert abs(len(w) - SAMPLE_RATE) <= 1
    assert abs(peak_hz(w) - 440) < 2
    assert abs(np.sqrt((w[2000:-2000] ** 2).mean()) - 0.5 / np.sqrt(2)) < 0.01  # level kept


@pytest.mark.parametrize('sr', [8000, 22050, 44100, 48000])
def test_torchaudio_resampling_matches_scipy(tmp_path, sr):
    pytest.importorskip('torchaudio', reason='torchaudio does not import here (CPU torch); runs in the conda environment')
    data._torchaudio_resample.cache_clear()
    assert audio_backend() == 'torchaudio'
    path = sine_file(tmp_path/'s.wav', sr)
    a, b = load_audio(path, backend='torchaudio'), load_audio(path, backend='scipy')
    assert abs(len(a) - len(b)) <= 1 and abs(peak_hz(a) - 440) < 2
    n = min(len(a), len(b)) - 400
    assert np.corrcoef(a[200:n], b[200:n])[0, 1] > 0.99


def test_falls_back_to_scipy_when_torchaudio_fails(tmp_path, monkeypatch, fresh_backend):
    monkeypatch.setitem(sys.modules, 'torchaudio', None)  # `import torchaudio` now raises ImportError
    monkeypatch.setitem(sys.modules, 'torchaudio.functional', None)  # and so does the submodule, where a test imported it already
    assert audio_backend() == 'scipy'
    w = load_audio(sine_file(tmp_path/'s.wav', 44100))  # 'auto' works
    assert abs(peak_hz(w) - 440) < 2
    with pytest.raises(ImportError, match="backend='scipy'"): resample(np.zeros(100, np.float32), 8000, backend='torchaudio')


def test_auto_uses_torchaudio_where_it_imports(tmp_path, monkeypatch, fresh_backend):
    calls = []
    def fake_resample(x, orig, new):
        calls.append((orig, new)); return data.torch.from_numpy(resample(x.numpy(), orig, new, backend='scipy'))
    ta = types.ModuleType('torchaudio'); ta.functional = types.ModuleType('torchaudio.functional')
    ta.functional.resample = fake_resample
    monkeypatch.setitem(sys.modules, 'torchaudio', ta); monkeypatch.setitem(sys.modules, 'torchaudio.functional', ta.functional)
    assert audio_backend() == 'torchaudio'
    load_audio(sine_file(tmp_path/'s.wav', 22050))
    assert calls == [(22050, 16000)]
    load_audio(sine_file(tmp_path/'t.wav', 16000))
    assert calls == [(22050, 16000)]  # nothing to resample at 16 kHz


@pytest.mark.parametrize('how', ['absent', 'broken'])
def test_import_without_a_working_torchaudio(tmp_path, how):
    if how == 'absent':  # as on a machine without it: imports fail, availability probes say no
        code, env = "import sys; sys.modules['torchaudio'] = None\n", dict(os.environ)
    else:  # as with the registry's CUDA-only build next to CPU torch: the import itself blows up
        (tmp_path/'torchaudio').mkdir()
        (tmp_path/'torchaudio'/'__init__.py').write_text("raise OSError('libcudart.so.12: cannot open shared object file')\n")
        code, env = '', dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(tmp_path), os.environ.get('PYTHONPATH')))))
    code += 'import rsacfn, rsacfn.data, rsacfn.models, rsacfn.training.loop, rsacfn.cli\nprint(rsacfn.data.audio.audio_backend())\n'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == 'scipy'


def test_stereo_is_downmixed(tmp_path):
    t = np.arange(16000) / 16000
    sf.write(tmp_path/'s.wav', np.stack([0.6 * np.sin(2 * np.pi * 300 * t), np.zeros_like(t)], 1), 16000, subtype='PCM_16')
    w = load_audio(tmp_path/'s.wav')
    assert w.shape == (16000,) and abs(np.abs(w).max() - 0.3) < 0.01


def test_truncation_reads_only_what_is_kept(tmp_path, monkeypatch):
    path = sine_file(tmp_path/'long.wav', 44100, seconds=10)
    frames = []
    real = data.sf.SoundFile.read
    monkeypatch.setattr(data.sf.SoundFile, 'read', lambda self, n, **k: (frames.append(n), real(self, n, **k))[1])
    w = load_audio(path, max_len=16000)
    assert len(w) == 16000 and frames[0] < 44100 * 1.1  # about one second read, not ten


def test_demo_corpus_files_decode_to_16k_mono(tiny_corpus):
    df = read_kemdy20(tiny_corpus)
    rates = {sf.info(p).samplerate for p in df.wav_path}
    chans = {sf.info(p).channels for p in df.wav_path}
    assert len(rates) > 1 and chans == {1, 2}  # the demo exercises resampling and downmixing
    for p, d in zip(df.wav_path, df.duration):
        w = load_audio(p)
        assert w.ndim == 1 and abs(len(w) - d * SAMPLE_RATE) <= 2


@pytest.mark.slow
def test_a_16k_corpus_never_imports_the_resampler(tiny_corpus):
    "scipy.signal (1 s of imports) loads only for a clip not at 16 kHz: reading and decoding the demo corpus never pays it."
    code = ('import sys, rsacfn.training.loop; from rsacfn.data.audio import load_audio; from rsacfn.data.kemdy import read_kemdy20; '
            f'df = read_kemdy20({str(tiny_corpus)!r}); load_audio(df.wav_path[0]); print("scipy.signal" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == 'False', out.stdout
