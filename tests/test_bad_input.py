"Every kind of bad input raises an error naming the file or row, or (skip mode) is listed in the report."
import csv
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from rsacfn.data.labels import CorpusError, SKIP_REPORT_COLUMNS
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.demo import demo_truth


def first_segment(root, session=1):
    with open(root/'annotation'/f'Sess{session:02d}_eval.csv', encoding='utf-8') as f: rows = list(csv.reader(f))
    return rows[2][3]


def damage_missing_wav(root, sid):
    (root/'wav'/'Session01'/f'{sid}.wav').unlink()
    return 'wav file not found', f'{sid}.wav', 'Check the corpus is complete, or pass on_error="skip"'

def damage_corrupt_wav(root, sid):
    (root/'wav'/'Session01'/f'{sid}.wav').write_bytes(b'RIFF\x00\x00\x00\x00WAVEjunk' + bytes(100))
    return 'wav file cannot be decoded', f'{sid}.wav', 'Re-extract it from the corpus archive, or pass on_error="skip"'

def damage_zero_length(root, sid):
    sf.write(root/'wav'/'Session01'/f'{sid}.wav', np.zeros(0, dtype=np.float32), 16000, subtype='PCM_16')
    return 'holds no audio', f'{sid}.wav', 'Remove the segment, or pass on_error="skip"'

def damage_empty_transcript(root, sid):
    (root/'wav'/'Session01'/f'{sid}.txt').write_bytes(b'\n')
    return 'transcript is empty', f'{sid}.txt', 'Fix or remove the segment, or pass on_error="skip"'

def damage_tags_only_transcript(root, sid):
    (root/'wav'/'Session01'/f'{sid}.txt').write_bytes('b/ n/'.encode('cp949'))
    return 'transcript is empty after cleaning', f'{sid}.txt', 'Fix or remove the segment, or pass on_error="skip"'

def damage_undecodable_transcript(root, sid):
    (root/'wav'/'Session01'/f'{sid}.txt').write_bytes(b'\xff\xfe\xff\x80')
    return 'neither UTF-8 nor cp949', f'{sid}.txt', 'Re-extract it from the corpus archive, or pass on_error="skip"'

def damage_missing_transcript(root, sid):
    (root/'wav'/'Session01'/f'{sid}.txt').unlink()
    return 'transcript file not found', f'{sid}.txt', 'Check the corpus is complete, or pass on_error="skip"'

def damage_unknown_label(root, sid):
    path = root/'annotation'/'Sess01_eval.csv'
    with open(path, encoding='utf-8') as f: rows = list(csv.reader(f))
    rows[2][4] = 'boredom'
    with open(path, 'w', newline='', encoding='utf-8') as f: csv.writer(f).writerows(rows)
    return "unknown emotion 'boredom'", 'Sess01_eval.csv, line 3', 'Fix the label, or pass on_error="skip"'


CASES = [damage_missing_wav, damage_corrupt_wav, damage_zero_length, damage_empty_transcript, damage_tags_only_transcript,
         damage_undecodable_transcript, damage_missing_transcript, damage_unknown_label]


@pytest.mark.parametrize('damage', CASES, ids=lambda f: f.__name__[7:])
def test_error_names_the_file_and_what_to_do(corpus_copy, damage):
    sid = first_segment(corpus_copy)
    what, where, advice = damage(corpus_copy, sid)
    with pytest.raises(CorpusError) as e: read_kemdy20(corpus_copy)
    msg = str(e.value)
    assert what in msg and where in msg, msg
    assert msg.endswith(f'. {advice}'), msg  # says what to do about this case


@pytest.mark.parametrize('damage', CASES, ids=lambda f: f.__name__[7:])
def test_skip_mode_reports_each_skipped_segment(corpus_copy, tmp_path, damage):
    sid = first_segment(corpus_copy)
    what, where, _ = damage(corpus_copy, sid)
    report = tmp_path/'skipped.csv'
    with pytest.warns(UserWarning, match='skipped 1 segment'):
        df = read_kemdy20(corpus_copy, on_error='skip', skip_report=report)
    rep = pd.read_csv(report)
    assert list(rep.columns) == SKIP_REPORT_COLUMNS
    assert rep.segment_id.tolist() == [sid] and what in rep.reason[0] and where in rep.file[0]
    truth = demo_truth(corpus_copy)
    assert sid not in set(df.segment_id)
    assert set(df.segment_id) | {sid} == set(truth.segment_id)  # nothing else dropped


def test_skip_mode_with_several_problems(corpus_copy, tmp_path):
    sids = pd.read_csv(corpus_copy/'demo_truth.csv').query('session == 1').segment_id[:3].tolist()
    damage_missing_wav(corpus_copy, sids[0]); damage_empty_transcript(corpus_copy, sids[1]); damage_zero_length(corpus_copy, sids[2])
    with pytest.warns(UserWarning, match='skipped 3 segment'):
        df = read_kemdy20(corpus_copy, on_error='skip', skip_report=tmp_path/'r.csv')
    assert sorted(pd.read_csv(tmp_path/'r.csv').segment_id) == sorted(sids)
    assert len(df) == len(demo_truth(corpus_copy)) - 3


def test_clean_corpus_writes_an_empty_report(tiny_corpus, tmp_path):
    df = read_kemdy20(tiny_corpus, on_error='skip', skip_report=tmp_path/'r.csv')
    assert len(pd.read_csv(tmp_path/'r.csv')) == 0 and len(df) == len(demo_truth(tiny_corpus))


@pytest.mark.parametrize('on_error', ['raise', 'skip'])
def test_missing_annotation_folder(corpus_copy, tmp_path, on_error):
    (corpus_copy/'annotation').rename(corpus_copy/'annotations_elsewhere')
    with pytest.raises(CorpusError, match=r'annotation: annotation folder not found\. Point root at'):
        read_kemdy20(corpus_copy, on_error=on_error, skip_report=tmp_path/'r.csv')
    assert not (tmp_path/'r.csv').exists()  # no report that looks like a finished read


def test_wrong_root_named(tmp_path):
    with pytest.raises(CorpusError, match=str(tmp_path/'nowhere')): read_kemdy20(tmp_path/'nowhere')


def test_bad_annotation_rows(corpus_copy):
    path = corpus_copy/'annotation'/'Sess01_eval.csv'
    with open(path, encoding='utf-8') as f: rows = list(csv.reader(f))
    bad = [r[:] for r in rows]; bad[3][5] = 'high'
    with open(path, 'w', newline='', encoding='utf-8') as f: csv.writer(f).writerows(bad)
    with pytest.raises(CorpusError, match="Sess01_eval.csv, line 4: valence 'high' is not a number"): read_kemdy20(corpus_copy)
    bad = [r[:] for r in rows]; bad.append(bad[2])
    with open(path, 'w', newline='', encoding='utf-8') as f: csv.writer(f).writerows(bad)
    with pytest.raises(CorpusError, match=r'is listed twice \(first at .*line 3\)'): read_kemdy20(corpus_copy)
    bad = [r[:] for r in rows]; bad[2][3] = 'not_an_id'
    with open(path, 'w', newline='', encoding='utf-8') as f: csv.writer(f).writerows(bad)
    with pytest.raises(CorpusError, match="line 3: segment id 'not_an_id' is not like"): read_kemdy20(corpus_copy)
    with open(path, 'w', newline='', encoding='utf-8') as f: csv.writer(f).writerows([['a', 'b']] + rows[2:])
    with pytest.raises(CorpusError, match="line 1: header lacks"): read_kemdy20(corpus_copy)
