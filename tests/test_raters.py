"What the raters said: the votes read exactly from both KEMDy layouts and from a manifest."
import csv
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from rsacfn.data.kemdy import read_kemdy19, read_kemdy20
from rsacfn.data.labels import EMOTIONS, CorpusError, soft_targets, vote_columns
from rsacfn.data.manifest import read_manifest

# ten raters per segment who disagree, as the file writes them (KEMDy20 spells disgust 'disqust')
VOTES = {
    'Sess01_script01_User001F_001': ['happy'] * 6 + ['neutral'] * 3 + ['surprise'],
    'Sess01_script01_User002M_002': ['neutral'] * 5 + ['disqust'] * 5,
    'Sess01_script01_User001F_003': ['neutral'] * 8 + ['happy;neutral', ' '],  # the last rater gave none
}
TOTAL = {'Sess01_script01_User001F_001': 'happy', 'Sess01_script01_User002M_002': 'neutral;disqust',
         'Sess01_script01_User001F_003': 'neutral'}
EXPECTED = {  # votes_<class> in EMOTIONS order: neutral, happy, angry, surprise, sad, fear, disgust
    'Sess01_script01_User001F_001': [3, 6, 0, 1, 0, 0, 0],
    'Sess01_script01_User002M_002': [5, 0, 0, 0, 0, 0, 5],
    'Sess01_script01_User001F_003': [8.5, 0.5, 0, 0, 0, 0, 0],
}


def clip(path, text, encoding):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(1600, np.float32), 16_000)
    path.with_suffix('.txt').write_bytes(text.encode(encoding))


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', newline='', encoding='utf-8') as f: csv.writer(f).writerows(rows)


def kemdy20(root, votes=VOTES):
    raters = [f'Eval{k:02d}{"FM"[k % 2]}' for k in range(1, 11)]
    head = ['Numb', 'Wav', ' ', 'Segment ID', 'Total Evaluation', ' ', ' '] + [c for r in raters for c in (r, ' ', ' ')]
    sub = [' ', 'start', 'end', ' '] + ['Emotion', 'Valence', 'Arousal'] * 11
    body = [[str(i + 1), '0', '1', sid, TOTAL[sid], '3', '3'] + [c for v in vs for c in (v, '3', '3')]
            for i, (sid, vs) in enumerate(votes.items())]
    write_csv(root/'annotation'/'Sess01_eval.csv', [head, sub] + body)
    for sid in votes: clip(root/'wav'/'Session01'/f'{sid}.wav', '좋아요 정말', 'cp949')
    return root


def test_kemdy20_votes_read_exactly(tmp_path):
    df = read_kemdy20(kemdy20(tmp_path/'KEMDy20_v1_1'))
    got = {r.segment_id: list(r[vote_columns()]) for _, r in df.iterrows()}
    assert got == EXPECTED
    # the tie is a segment with its votes, beside no single label
    tie = df.set_index('segment_id').loc['Sess01_script01_User002M_002']
    assert pd.isna(tie.label) and tie.emotion == 'neutral;disgust'
    np.testing.assert_allclose(soft_targets(df)[0], np.array(EXPECTED['Sess01_script01_User001F_001']) / 10)


def test_kemdy19_votes_read_exactly(tmp_path):
    root = tmp_path/'KEMDy19'
    raters = [f'Eval{k:02d}' for k in range(1, 11)]
    head = (['Numb', 'Wav', '', 'ECG', '', 'E4-EDA', '', 'E4-TEMP', '', 'Segment ID', 'Total Evaluation', '', '']
            + [c for r in raters for c in (r, '', '')])
    sub = [''] + ['start', 'end'] * 4 + [''] + ['Emotion', 'Valence', 'Arousal'] * 11
    f_votes = ['sad'] * 4 + ['neutral'] * 4 + ['angry', 'fear']
    m_votes = ['happy'] * 10  # the other actor's turn, listed in the F file too: not this file's segment
    rows = [['1', '0', '1'] + [''] * 6 + ['Sess01_script01_F001', 'neutral;sad', '3', '3']
            + [c for v in f_votes for c in (v, '3', '3')],
            ['2', '1', '2'] + [''] * 6 + ['Sess01_script01_M001', 'happy', '3', '3']
            + [c for v in m_votes for c in (v, '3', '3')]]
    write_csv(root/'annotation'/'Session01_F_res.csv', [head, sub] + rows)
    clip(root/'wav'/'Session01'/'Sess01_script01'/'Sess01_script01_F001.wav', '슬퍼요', 'utf-8')
    df = read_kemdy19(root)
    assert df.segment_id.tolist() == ['Sess01_script01_F001']
    assert df[vote_columns()].iloc[0].tolist() == [4, 0, 1, 0, 4, 1, 0]


@pytest.mark.parametrize('on_error', ['raise', 'skip'])
def test_a_raters_unknown_emotion_names_file_row_and_rater(tmp_path, on_error):
    votes = dict(VOTES, **{'Sess01_script01_User001F_003': ['neutral'] * 6 + ['joy'] + ['neutral'] * 3})
    root = kemdy20(tmp_path/'KEMDy20_v1_1', votes)
    if on_error == 'raise':
        with pytest.raises(CorpusError, match=r"Sess01_eval\.csv, line 5: rater Eval07M \(column 26\): emotion 'joy' "
                                              r"is not one of: neutral, happy"):
            read_kemdy20(root)
    else:
        df = read_kemdy20(root, on_error='skip', skip_report=False)
        assert df.segment_id.tolist() == list(VOTES)[:2]
        assert 'Eval07M' in df.attrs['skipped'][0]['reason']


def test_manifest_votes_columns(tmp_path):
    for i in range(2): clip(tmp_path/f'{i}.wav', 'x', 'utf-8')
    m = tmp_path/'m.csv'
    m.write_text('wav_path,text,emotion,votes_neutral,votes_happy,votes_angry,votes_surprise,votes_sad,votes_fear,'
                 'votes_disgust\n0.wav,좋아,happy,2,8,0,0,0,0,0\n1.wav,음,neutral,10,0,0,0,0,0,0\n')
    df = read_manifest(m)
    assert df[vote_columns()].to_numpy().tolist() == [[2, 8, 0, 0, 0, 0, 0], [10, 0, 0, 0, 0, 0, 0]]
    # without votes the columns are there, empty, and soft labels say what is missing
    (tmp_path/'n.csv').write_text('wav_path,text,emotion\n0.wav,좋아,happy\n')
    plain = read_manifest(tmp_path/'n.csv')
    assert plain[vote_columns()].isna().all().all()
    with pytest.raises(ValueError, match="segment 0 has no raters' votes"): soft_targets(plain)
    # some classes' votes but not all: one line naming what is missing
    (tmp_path/'p.csv').write_text('wav_path,text,emotion,votes_happy\n0.wav,좋아,happy,3\n')
    with pytest.raises(CorpusError, match='votes_neutral'): read_manifest(tmp_path/'p.csv')
    (tmp_path/'q.csv').write_text(m.read_text().replace('2,8', 'two,8'))
    with pytest.raises(CorpusError, match=r"q\.csv, line 2: votes_neutral 'two' is not a number of raters"):
        read_manifest(tmp_path/'q.csv')


def test_demo_votes_agree_with_its_total_evaluation(tiny_corpus):
    df = read_kemdy20(tiny_corpus)
    v = df[vote_columns()].to_numpy()
    assert (v.sum(1) == 10).all()
    top = [set(np.array(EMOTIONS)[row == row.max()]) for row in v]
    assert top == [set(e.split(';')) for e in df.emotion]


def test_a_manifest_emotion_against_its_votes_is_said(tmp_path):
    for i in range(2): clip(tmp_path/f'{i}.wav', 'x', 'utf-8')
    m = tmp_path/'m.csv'
    m.write_text('wav_path,text,emotion,votes_neutral,votes_happy,votes_angry,votes_surprise,votes_sad,votes_fear,'
                 'votes_disgust\n0.wav,좋아,neutral,0,10,0,0,0,0,0\n1.wav,음,neutral,6,4,0,0,0,0,0\n')
    with pytest.warns(UserWarning, match=r"1 segment\(s\) whose emotion is not their raters' most chosen class, e\.g\. 0 "
                                         r'\(neutral; most votes: happy\)'):
        df = read_manifest(m)
    assert len(df) == 2  # read as written: the emotion is the label, the votes the soft target
