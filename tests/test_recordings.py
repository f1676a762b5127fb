"""Audio beyond clips in files, as users give it: waveforms in memory, and long recordings with subtitles, a CSV, voice
activity detection or fixed windows, from Python and from `rsacfn predict`, with relative paths."""
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from conftest import one_line
from rsacfn.data.audio import SAMPLE_RATE, load_audio, resample
from rsacfn.data.readers import read_corpus
from rsacfn.recognizer import EmotionRecognizer
import rsacfn.recordings as recordings


@pytest.fixture(scope='module')
def recognizer(model_dir):
    return EmotionRecognizer.from_pretrained(model_dir, device='cpu')


@pytest.fixture(scope='module')
def speech_only(tiny_backbones, tmp_path_factory):
    from rsacfn.models.multimodal import MultiModel
    d = tmp_path_factory.mktemp('speech')/'best'
    MultiModel.from_backbones('speech_only', tiny_backbones['audio'], None, audio_max_lens=32_000).save_pretrained(d)
    return EmotionRecognizer.from_pretrained(d, device='cpu')


@pytest.fixture(scope='module')
def clips(tiny_corpus):
    return read_corpus(tiny_corpus).head(3)


def probs(table): return table.filter(like='p_').to_numpy()


# waveforms in memory

def test_a_waveform_in_memory_gives_what_its_file_gives(recognizer, clips, tmp_path, monkeypatch):
    "An array, a tensor, a list, a datasets-style dict: at 44.1 kHz in stereo, the same probabilities as the file."
    monkeypatch.chdir(tmp_path)
    waves = [np.stack([resample(load_audio(w), SAMPLE_RATE, 44_100)] * 2, axis=1) for w in clips.wav_path]
    for i, w in enumerate(waves): sf.write(f'clip{i}.wav', w, 44_100, subtype='FLOAT')
    texts = clips.text.tolist()
    from_files = probs(recognizer([f'clip{i}.wav' for i in range(3)], texts=texts))
    np.testing.assert_allclose(probs(recognizer(waves, texts=texts, sampling_rate=44_100)), from_files, atol=1e-6)
    tensors = (torch.from_numpy(w.T) for w in waves)  # (channels, samples), given as a generator
    np.testing.assert_allclose(probs(recognizer(tensors, texts=texts, sampling_rate=44_100)), from_files, atol=1e-6)
    dicts = [{'array': w, 'sampling_rate': 44_100} for w in waves]
    np.testing.assert_allclose(probs(recognizer(dicts, texts=texts)), from_files, atol=1e-6)
    one = recognizer(waves[0], texts=texts[0], sampling_rate=44_100)  # one clip, not 2 x 44100 clips
    np.testing.assert_allclose(probs(one), from_files[:1], atol=1e-6)
    assert one.path.tolist() == [None]


@pytest.mark.parametrize('clip, rate, said', [
    (np.zeros(16_000, np.float32), None, 'clips is a waveform in memory: give its sampling_rate'),
    (np.zeros((3, 4, 16_000)), 16_000, 'clips has shape (3, 4, 16000)'),
    (np.zeros((100, 16_000)), 16_000, 'several clips as a list'),
    ([np.zeros(16_000), 'x'], None, 'clips[0] is a waveform in memory: give its sampling_rate'),
    ({'sampling_rate': 16_000}, None, "a dict without 'array'"),
    ({'array': np.zeros(100), 'sampling_rate': 8_000}, 16_000, 'says sampling_rate 8000 but sampling_rate=16000'),
    (np.zeros(16_000), -5, 'sampling_rate=-5: give the samples per second'),
    (np.zeros(16_000), '16000', "sampling_rate='16000': give the samples per second as a positive whole number"),
    (b'RIFF' + bytes(100_000), None, 'clips=<100,004 bytes>: give a path'),
    (np.array([np.nan] * 100), 16_000, '100 non-finite samples'),
    (np.zeros(0), 16_000, 'clips is empty'),
    (np.array(['a', 'b']), 16_000, 'sampling_rate=16000 is for waveforms in memory'),  # an array of paths
    (np.array([True, False]), 16_000, ': give each clip as a path (a str or pathlib.Path) or a waveform'),
])
def test_a_wrong_waveform_is_one_clear_line(recognizer, clip, rate, said):
    with pytest.raises((ValueError, TypeError)) as e: recognizer(clip, texts='좋아' if not isinstance(clip, list) else ['a', 'b'],
                                                                sampling_rate=rate)
    assert said in str(e.value) and '\n' not in str(e.value)


def test_a_sampling_rate_for_files_is_refused(recognizer, clips):
    with pytest.raises(ValueError, match='sampling_rate=44100 is for waveforms in memory'):
        recognizer(clips.wav_path.tolist(), texts=clips.text.tolist(), sampling_rate=44_100)


# long recordings

@pytest.fixture
def talk(clips, tmp_path, monkeypatch):
    "A recording of three demo clips with half a second between, and its SRT, VTT and CSV, in the working folder."
    monkeypatch.chdir(tmp_path)
    parts = [np.concatenate([load_audio(w), np.zeros(8_000, np.float32)]) for w in clips.wav_path]
    sf.write('talk.wav', np.concatenate(parts), SAMPLE_RATE, subtype='FLOAT')
    ends = np.cumsum([len(p) for p in parts]) / SAMPLE_RATE
    starts, stops = np.r_[0, ends[:-1]], ends - 0.5
    def stamp(s, sep): return f'00:{int(s // 60):02d}:{int(s % 60):02d}{sep}{round(s % 1 * 1000):03d}'
    cues = list(zip(starts, stops, clips.text))
    (tmp_path/'talk.srt').write_text('\n'.join(f'{i + 1}\n{stamp(a, ",")} --> {stamp(b, ",")}\n{t}\n'
                                               for i, (a, b, t) in enumerate(cues)), encoding='utf-8')
    (tmp_path/'talk.vtt').write_text('WEBVTT\n\n' + '\n'.join(f'{stamp(a, ".")} --> {stamp(b, ".")}\n{t}\n'
                                                              for a, b, t in cues), encoding='utf-8')
    pd.DataFrame(dict(start=starts, end=stops, text=clips.text)).to_csv('talk.csv', index=False)
    return starts, stops


def test_a_recording_with_subtitles_gives_one_row_per_cue(recognizer, clips, talk):
    starts, stops = talk
    exact = recognizer.timeline('talk.wav', segments='talk.csv')
    assert exact.transcript.tolist() == clips.text.tolist()
    np.testing.assert_allclose(exact[['start_s', 'end_s']].to_numpy(), np.c_[starts, stops])
    whole = (clips.duration <= recognizer.model.config.audio_max_lens / SAMPLE_RATE).to_numpy()
    alone = probs(recognizer(clips.wav_path, texts=clips.text))
    np.testing.assert_allclose(probs(exact)[whole], alone[whole], atol=1e-5)
    for subtitles in ('talk.srt', 'talk.vtt', './talk.srt'):  # milliseconds: within half of one
        rows = recognizer.timeline('talk.wav', segments=subtitles)
        np.testing.assert_allclose(rows[['start_s', 'end_s']].to_numpy(), np.c_[starts, stops], atol=6e-4)
        assert rows.transcript.tolist() == clips.text.tolist()


def test_transcripts_longer_than_the_model_reads_are_said_once_for_a_whole_recording(recognizer, talk):
    "More segments than one chunk of pieces (CHUNK): one warning for the recording, counting all of them, at the caller's line."
    import warnings
    from rsacfn.recordings import CHUNK
    n, words = CHUNK + 6, ' 그리고' * (recognizer.model.config.text_max_lens + 1)
    pd.DataFrame(dict(start=np.arange(n) * .07, end=np.arange(n) * .07 + .07, text=['좋아' + words] * n)).to_csv('many.csv', index=False)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always'); recognizer.timeline('talk.wav', segments='many.csv')
    cut = [w for w in said if 'text_max_lens' in str(w.message)]
    assert len(cut) == 1 and str(cut[0].message).startswith(f'{n} of {n} ') and cut[0].filename == __file__, [str(w.message) for w in cut]


def test_a_long_segment_is_heard_whole(speech_only, tmp_path, monkeypatch):
    "Two 10 s recordings that differ only after the model's 2 s: different probabilities (the whole is heard)."
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    a = rng.uniform(-.3, .3, 10 * SAMPLE_RATE).astype(np.float32)
    b = a.copy(); b[6 * SAMPLE_RATE:] = rng.uniform(-.3, .3, 4 * SAMPLE_RATE)
    ra, rb = (speech_only.timeline(w, [(0, 10)], sampling_rate=SAMPLE_RATE) for w in (a, b))
    assert len(ra) == 1 and np.abs(probs(ra) - probs(rb)).max() > 1e-4
    # the mean of the model's five 2 s pieces, weighted by their length
    pieces = speech_only([a[i:i + 32_000] for i in range(0, len(a), 32_000)], sampling_rate=SAMPLE_RATE)
    np.testing.assert_allclose(probs(ra)[0], probs(pieces).mean(0), atol=1e-6)


def test_windows_and_vad_for_a_model_that_only_hears(speech_only, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wave = np.zeros(int(130 * SAMPLE_RATE), np.float32)
    wave[50 * SAMPLE_RATE:70 * SAMPLE_RATE] = np.sin(np.arange(20 * SAMPLE_RATE) / 7) * .5  # over a 60 s block's edge
    wave[100 * SAMPLE_RATE:103 * SAMPLE_RATE] = .5
    sf.write('long.flac', wave, SAMPLE_RATE)
    rows = speech_only.timeline('long.flac', 'windows', window_s=30)
    assert rows[['start_s', 'end_s']].to_numpy().tolist() == [[0, 30], [30, 60], [60, 90], [90, 120], [120, 130]]
    def loud(w):  # a stand-in for silero-vad (the demo's voices are not speech to it): stretches of loud samples
        on = np.flatnonzero(np.abs(w) > .05)
        if not len(on): return []
        cut = np.flatnonzero(np.diff(on) > SAMPLE_RATE)
        return [(on[a], on[b] + 1) for a, b in zip(np.r_[0, cut + 1], np.r_[cut, len(on) - 1])]
    monkeypatch.setattr(recordings, '_silero_speech', loud)
    found = speech_only.timeline('long.flac')  # 'auto': speech found in the audio
    np.testing.assert_allclose(found[['start_s', 'end_s']].to_numpy(), [[50, 70], [100, 103]], atol=1e-3)


def test_silero_vad_runs_from_its_package_and_says_when_it_hears_no_speech(speech_only, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sf.write('hum.wav', (np.sin(np.arange(3 * SAMPLE_RATE) / 5) * .2).astype(np.float32), SAMPLE_RATE)
    with pytest.raises(ValueError, match="hum.wav: silero-vad finds no speech in it; give segments='windows'"):
        speech_only.timeline('hum.wav', 'vad')


@pytest.mark.parametrize('segments, said', [
    ('vad', "method 'early_fusion' reads each segment's transcript: give `segments` a subtitle file"),
    ('windows', "reads each segment's transcript"),
    ('talk.txt', "segments='talk.txt': give a subtitle file (.srt, .vtt)"),
    ('missing.srt', 'missing.srt: no such file'),
    ([(0, 1, '좋아'), (2, 99, '싫어')], "row 2: ends at 99 s, after the recording's end"),
    ([(0, 1, '좋아'), (2, 3)], "segment 2 (at 2 s) has no text"),
    ([(1, 1, '좋아')], 'row 1: 1-1 s; a segment starts at 0 s or later and ends after it starts'),
])
def test_bad_segments_are_one_clear_line(recognizer, talk, segments, said):
    with pytest.raises(ValueError) as e: recognizer.timeline('talk.wav', segments)
    assert said in str(e.value) and '\n' not in str(e.value)


def test_a_bad_subtitle_file_is_named_with_its_cue(recognizer, talk, tmp_path):
    (tmp_path/'bad.srt').write_text('1\n00:00:00,000 --> 00:00:01,000\n좋아\n\n2\n00:00:02,000 -> 00:00:03,000\n싫어\n',
                                    encoding='utf-8')
    with pytest.raises(ValueError, match="bad.srt, cue 2: not an SRT cue \\(its timing line reads '00:00:02,000 -> 00:00:03,000'\\)"):
        recognizer.timeline('talk.wav', 'bad.srt')
    (tmp_path/'bad.vtt').write_text('WEBVTT\n\n00:00.000 --> 00:01.000\n좋아\n\n00:02.000 -> 00:03.000\n싫어\n')
    with pytest.raises(ValueError, match='bad.vtt, cue 2: its timing line does not read'):
        recognizer.timeline('talk.wav', 'bad.vtt')


def test_rsacfn_predict_on_a_recording_with_subtitles(model_dir, clips, talk, rsacfn_cli, tmp_path):
    r = rsacfn_cli('predict', model_dir, 'talk.wav', '--segments', 'talk.srt', '--device', 'cpu', '--quiet')
    assert r.returncode == 0, r.stderr
    out = next(tmp_path.glob('timeline_talk_*.csv'))
    assert pd.read_csv(out).transcript.tolist() == clips.text.tolist()
    assert out.with_suffix('.png').stat().st_size > 10_000 and 'the timeline figure' in r.stdout
    again = rsacfn_cli('predict', model_dir, 'talk.wav', '--segments', 'talk.srt', '--quiet')
    assert again.returncode == 2 and one_line(again) and '--overwrite' in again.stderr, again.stderr
    for args, said in [(['--segments', 'vad'], "reads each segment's transcript: give --segments a subtitle file"),
                       (['--segments', 'talk.srt', '--window_s', '3'], "--window_s 3 is the length of --segments windows"),
                       ([], "give --texts with its transcript to predict it as one clip (or a manifest with wav_path,text "
                             "columns), or --segments a subtitle")]:
        r = rsacfn_cli('predict', model_dir, 'talk.wav', *args, '--out', 'other.csv', '--quiet')
        assert r.returncode == 2 and one_line(r) and said in r.stderr, r.stderr
    r = rsacfn_cli('predict', model_dir, 'talk.csv', '--segments', 'talk.srt', '--quiet')
    assert r.returncode == 2 and one_line(r) and '--segments and --window_s are for one recording' in r.stderr


def test_a_recording_in_memory_gives_what_its_file_gives(recognizer, clips, talk):
    "At 44.1 kHz in stereo, each piece resampled as the file's pieces are: the same timeline from memory as from the file."
    wave = np.stack([resample(sf.read('talk.wav', dtype='float32')[0], SAMPLE_RATE, 44_100)] * 2, axis=1)
    sf.write('talk44.wav', wave, 44_100, subtype='FLOAT')
    from_file = recognizer.timeline('talk44.wav', segments='talk.csv')
    in_memory = recognizer.timeline(wave, segments='talk.csv', sampling_rate=44_100)
    np.testing.assert_allclose(probs(in_memory), probs(from_file), atol=1e-6)


@pytest.mark.parametrize('recording, said', [
    ('nope.wav', 'nope.wav: no such file'), ('.', '. is a folder: give the recording'),
    (['talk.wav', 'talk.wav'], 'give one recording (a path or a waveform); call timeline once for each'),
    ('talk.srt', 'talk.srt: wav file cannot be decoded'),
])
def test_a_recording_that_is_not_one_is_one_clear_line(recognizer, talk, recording, said):
    with pytest.raises((ValueError, TypeError)) as e: recognizer.timeline(recording, 'talk.csv')
    assert said in str(e.value) and 'on_error' not in str(e.value) and '\n' not in str(e.value)


def test_subtitles_as_people_write_them(recognizer, talk, tmp_path):
    "Placement tags are not words; a cue a little past the end is read to the end (said); a bad number is named."
    starts, stops = talk
    (tmp_path/'tags.srt').write_text('1\n00:00:00,000 --> 00:00:01,000\n{\\an8}<i>정말</i> 좋아요\n', encoding='utf-8')
    assert recognizer.timeline('talk.wav', 'tags.srt').transcript.tolist() == ['정말 좋아요']
    end = sf.info('talk.wav').duration
    pd.DataFrame(dict(start=[0, end - 1], end=[1, end + 0.4], text=['a', 'b'])).to_csv('late.csv', index=False)
    with pytest.warns(UserWarning, match="late.csv: 1 row end after the recording's end .* by at most 0.40 s: read to"):
        rows = recognizer.timeline('talk.wav', 'late.csv')
    assert rows.end_s.iloc[-1] == pytest.approx(end)
    pd.DataFrame(dict(start=['0', 'abc'], end=[1, 2], text=['a', 'b'])).to_csv('typo.csv', index=False)
    with pytest.raises(ValueError, match="typo.csv, row 2: start 'abc' is not a number of seconds"):
        recognizer.timeline('talk.wav', 'typo.csv')


def test_a_float_recording_is_never_decoded_whole(recognizer, talk, monkeypatch):
    "A FLOAT file's pieces are read alone: nothing reads the whole recording (an hour would be decoded per piece)."
    def whole(*a, **k): raise AssertionError('the whole recording was decoded')
    monkeypatch.setattr(sf, 'read', whole)  # talk.wav is written as FLOAT: checking it whole used sf.read
    rows = recognizer.timeline('talk.wav', segments='talk.csv')
    assert len(rows) == 3
