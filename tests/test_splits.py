"The paper's stratified split, the speaker-independent session split, and the label transform."
import pytest
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.splits import split_corpus
from rsacfn.data.labels import transformed_label


@pytest.fixture(scope='module')
def df(default_corpus): return read_kemdy20(default_corpus)


def test_random_split_is_stratified(df):
    train, valid = split_corpus(df)
    single = df[df.label.notna()]
    assert set(train.segment_id).isdisjoint(valid.segment_id)
    assert len(train) + len(valid) == len(single) and valid.label.notna().all()
    for c, n in single.label.value_counts().items():
        assert abs((valid.label == c).sum() - 0.2 * n) <= 1, c  # each class split 80/20 to within one segment


def test_random_split_is_deterministic(df):
    a, b, c = split_corpus(df)[1], split_corpus(df)[1], split_corpus(df, seed=7)[1]
    assert a.segment_id.tolist() == b.segment_id.tolist() != c.segment_id.tolist()


def test_session_folds_are_speaker_independent_and_cover_everything(df):
    seen = []
    for fold in range(5):
        train, valid = split_corpus(df, 'session', fold=fold, label_transform=True)
        assert set(train.speaker).isdisjoint(valid.speaker)
        assert set(train.session).isdisjoint(valid.session)
        seen += valid.segment_id.tolist()
        assert split_corpus(df, 'session', fold=fold)[1].segment_id.tolist() == valid.segment_id.tolist()
    assert sorted(seen) == sorted(df[df.label.notna()].segment_id)  # each single-label segment validates exactly once
    assert split_corpus(df, 'session', fold=0)[1].session.unique().tolist() == [1, 2]  # consecutive sessions


def test_label_transform_adds_neutral_ties_to_training_only(df):
    for method, kw in [('random', {}), ('session', dict(fold=2))]:
        train, valid = split_corpus(df, method, **kw)
        train_t, valid_t = split_corpus(df, method, label_transform=True, **kw)
        assert valid_t.segment_id.tolist() == valid.segment_id.tolist()
        added = train_t[~train_t.segment_id.isin(train.segment_id)]
        assert len(added) > 0 and (added.emotion.str.count(';') == 1).all() and added.emotion.str.contains('neutral').all()
        assert added.label.tolist() == [transformed_label(e) for e in added.emotion]
        assert (added.label != 0).all()
        if method == 'session': assert set(added.session).isdisjoint(valid.session)
    expected = sum(transformed_label(e) is not None for e in df.emotion)
    assert len(split_corpus(df, label_transform=True)[0]) - len(split_corpus(df)[0]) == expected


def test_soft_labels_keep_every_tied_segment_in_training_only(df):
    for method, kw in [('random', {}), ('session', dict(fold=2)), ('session', dict(fold=2, dev=True))]:
        plain, kept = split_corpus(df, method, **kw), split_corpus(df, method, keep_ties=True, **kw)
        assert [t.segment_id.tolist() for t in plain[1:]] == [t.segment_id.tolist() for t in kept[1:]]  # valid (and dev)
        added = kept[0][~kept[0].segment_id.isin(plain[0].segment_id)]
        assert len(added) > 0 and (added.emotion.str.contains(';')).all()  # ties of every kind, 'neutral;X' or not
        held = set().union(*(t.segment_id for t in plain[1:]))
        assert held.isdisjoint(added.segment_id)
        if method == 'session': assert set(added.session).isdisjoint(set().union(*(t.session for t in plain[1:])))
    ties_of_training = df[df.label.isna() & ~df.segment_id.isin(split_corpus(df)[1].segment_id)]
    assert len(split_corpus(df, keep_ties=True)[0]) - len(split_corpus(df)[0]) == len(ties_of_training)


def test_split_errors(df):
    with pytest.raises(ValueError, match='fold must be in 0..4'): split_corpus(df, 'session', fold=5)
    with pytest.raises(ValueError, match='n_folds must be between 2 and the 10 sessions'): split_corpus(df, 'session', n_folds=11)
    with pytest.raises(ValueError, match="unknown split 'speaker'"): split_corpus(df, 'speaker')
    leaky = df.copy(); leaky.loc[leaky.session == 1, 'speaker'] = leaky.loc[leaky.session == 10, 'speaker'].iloc[0]
    with pytest.raises(ValueError, match='appear in training and validation sessions'): split_corpus(leaky, 'session', fold=4)
    rare = df[(df.label != 6) | (df.index == df[df.label == 6].index[0])]
    with pytest.raises(ValueError, match=r'disgust \(label 6: 1 segment\): fewer than 2 segments'): split_corpus(rare)


def test_a_development_split_is_held_out_of_training_apart_from_the_validation_fold(df):
    train, valid = split_corpus(df, 'session', fold=1, label_transform=True)
    train_d, dev, valid_d = split_corpus(df, 'session', fold=1, label_transform=True, dev=True)
    assert valid_d.segment_id.tolist() == valid.segment_id.tolist()  # the scored fold is the same
    assert sorted(dev.session.unique()) == [5, 6]  # the next fold's sessions
    for a, b in ((train_d, dev), (train_d, valid_d), (dev, valid_d)):
        assert set(a.speaker).isdisjoint(b.speaker) and set(a.segment_id).isdisjoint(b.segment_id)
    left = train[~train.segment_id.isin(train_d.segment_id) & ~train.segment_id.isin(dev.segment_id)]
    assert len(left) and left.session.isin([5, 6]).all() and left.emotion.str.contains(';').all()  # the dev sessions' ties, not trained
    r_train, r_dev, r_valid = split_corpus(df, dev=True)
    assert r_valid.segment_id.tolist() == split_corpus(df)[1].segment_id.tolist() and dev.label.notna().all()
    assert set(r_train.segment_id).isdisjoint(r_dev.segment_id) and abs(len(r_dev) - .2 * (len(r_train) + len(r_dev))) <= 7
