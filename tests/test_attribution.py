"Attributions per word and per audio frame: complete for every method, one row per word and frame, faithful on a trained model."
import dataclasses, re
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from rsacfn.data.readers import read_corpus
from rsacfn.evaluation.attribution import Explanation, explain, frame_seconds
from rsacfn.evaluation.faithfulness import deletion, design_checks, faithfulness, rank_agreement
from rsacfn.models.multimodal import MultiModel
from rsacfn.models.registry import METHODS, register_head

WORDS, FRAMES = ['segment_id', 'word_index', 'word', 'attribution'], ['segment_id', 'start_s', 'end_s', 'attribution']


def untrained(method, tiny_backbones):
    torch.manual_seed(0)
    return MultiModel.from_backbones(method, str(tiny_backbones['audio']), str(tiny_backbones['text']),
                                     audio_max_lens=32_000, text_max_lens=64)


@pytest.fixture(scope='module')
def segments(tiny_corpus):
    return read_corpus(tiny_corpus).head(3)


def check_complete(model, df, e:Explanation):
    "IG's completeness: each segment's attributions add up to p(input) - p(baseline), up to Captum's delta, in the tables as written."
    s = e.segments.set_index('segment_id')
    assert s.delta.abs().max() < 0.02, s.delta
    total = (e.words.groupby('segment_id').attribution.sum().reindex(s.index, fill_value=0)
             + e.frames.groupby('segment_id').attribution.sum().reindex(s.index, fill_value=0))
    np.testing.assert_allclose(total - (s.p - s.p_baseline), s.delta, atol=2e-4)  # no word or frame left out of the tables
    mods = model.head.modalities
    assert (s.audio_share == 1.0).all() if mods == ('audio',) else (s.audio_share == 0.0).all() if mods == ('text',) else s.audio_share.between(0, 1).all()


@pytest.mark.parametrize('method', sorted(METHODS))
def test_attributions_are_complete_for_every_method(method, tiny_backbones, segments):
    model = untrained(method, tiny_backbones)
    e = explain(model, segments, n_steps=128, progress=False)
    check_complete(model, segments, e)


def test_one_row_per_word_as_written_and_per_20_ms_frame(tiny_backbones, segments):
    model = untrained('early_fusion', tiny_backbones)
    e = explain(model, segments, n_steps=8, progress=False)
    assert list(e.words.columns) == WORDS and list(e.frames.columns) == FRAMES
    for r in segments.itertuples():
        w = e.words[e.words.segment_id == r.segment_id]
        assert w.word.tolist() == r.text.split() and w.word_index.tolist() == list(range(len(w)))  # tags removed, as the model reads it
        f = e.frames[e.frames.segment_id == r.segment_id]
        samples = min(int(round(r.duration * 16000)), model.config.audio_max_lens)
        assert len(f) == model.audio_frames(samples, add_adapter=False)
        np.testing.assert_allclose(f.start_s.values, np.arange(len(f)) * 0.02, atol=1e-9)
        assert frame_seconds(model) == 0.02 and (f.end_s - f.start_s).round(6).eq(0.02).all()
    assert set(e.segments.explained_emotion) <= set(model.config.class_names)
    assert (e.segments.explained_emotion == e.segments.predicted_emotion).all()  # by default, the predicted class


def test_any_class_can_be_explained_and_bad_arguments_are_refused(tiny_backbones, segments):
    model = untrained('early_fusion', tiny_backbones)
    e = explain(model, segments, target='sad', n_steps=8, progress=False)
    assert (e.segments.explained_emotion == 'sad').all()
    for kwargs, says in [(dict(target='joy'), "target='joy': give one of neutral"), (dict(n_steps=1), 'n_steps=1: give a whole number'),
                         (dict(target=['sad']), 'target has 1 classes for 3 segments: give one per segment'),
                         (dict(target=1.5), 'target=1.5: give a class name')]:
        with pytest.raises(ValueError, match=re.escape(says)): explain(model, segments, progress=False, **kwargs)
    with pytest.raises(ValueError, match="df has no text column"): explain(model, segments.drop(columns='text'), progress=False)
    twice = pd.concat([segments.head(1), segments.head(1)])
    with pytest.raises(ValueError, match=re.escape(f"df has 1 duplicate segment_id value(s), e.g. {twice.segment_id.iloc[0]!r}")):
        explain(model, twice, progress=False)
    each = explain(model, segments, target=['sad', 'happy', 0], n_steps=8, progress=False)  # one class per segment
    assert each.segments.explained_emotion.tolist() == ['sad', 'happy', 'neutral']


def test_ids_as_people_give_them_and_nothing_to_attribute(tiny_backbones, segments):
    "Segment ids that are numbers come back as strings in every table, shares included; an empty transcript still gets its row and figure."
    from rsacfn.evaluation.attribution import plot_explanation
    from rsacfn.evaluation.faithfulness import deletion
    model = untrained('early_fusion', tiny_backbones)
    e = explain(model, segments.assign(segment_id=range(3)), n_steps=8, progress=False)
    assert e.segments.segment_id.tolist() == ['0', '1', '2'] and e.segments.audio_share.notna().all()
    assert set(e.words.segment_id) == set(e.frames.segment_id) == {'0', '1', '2'} and len(e.top_words(1)) == 3
    assert len(deletion(model, segments.assign(segment_id=range(3)), e, n_random=1)) == 6
    with pytest.raises(ValueError, match="expl lacks 2 segment"): deletion(model, segments.assign(segment_id=range(3)), dataclasses.replace(
        e, segments=e.segments.head(1)))
    text = untrained('text_only', tiny_backbones)
    empty = explain(text, segments.head(1).assign(text=''), n_steps=8, progress=False)
    assert len(empty.words) == 0 and len(empty.segments) == 1
    assert len(plot_explanation(empty, empty.segments.segment_id[0]).axes) == 1  # says there is nothing to attribute


def test_a_long_transcripts_words_stay_in_their_panel_and_every_character_is_drawn(tiny_backbones, segments):
    "However many lines the words take, none covers the frames' time axis or leaves the figure; a character no font has is named."
    import warnings
    from rsacfn.evaluation.attribution import plot_explanation
    words = ('그 영화는 두 시간짜리예요 정말 기뻐요 😊 ' * 9 + '좋아🫠').split()  # 😊 is in DejaVu Sans, 🫠 in no font here
    e = explain(untrained('early_fusion', tiny_backbones), segments.head(1).assign(text=' '.join(words)), n_steps=2,
                progress=False)
    sid = e.segments.segment_id[0]
    with warnings.catch_warnings(): warnings.simplefilter('error', UserWarning); fig = plot_explanation(e, sid, segments.wav_path[0])
    fig.canvas.draw(); r = fig.canvas.get_renderer()
    axis = next(a for a in fig.axes if a.get_xlabel() == 'seconds').get_tightbbox(r)  # ticks and label included
    boxes = [t.get_bbox_patch().get_window_extent(r) for t in fig.axes[-1].texts]
    assert len(boxes) == len(words)
    assert all(b.y1 <= axis.y0 and b.y0 >= 0 and b.x0 >= 0 and b.x1 <= fig.bbox.x1 for b in boxes)
    assert len({round(b.y0) for b in boxes}) >= 3  # wrapped over several lines
    drawn = [t.get_text() for t in fig.axes[-1].texts]
    assert drawn[words.index('😊')] == '😊' and drawn[-1] == '좋아 U+1FAE0'


def test_a_word_the_model_never_reads_is_missing_not_zero(tiny_backbones, segments):
    model = untrained('text_only', tiny_backbones)
    model.config.text_max_lens = 4  # <s>, two tokens, </s>
    df = segments.head(1).assign(text='정말 기뻐요 오늘 회의는 세 시에 시작해요')
    with pytest.warns(UserWarning, match='never read'): e = explain(model, df, n_steps=8, progress=False)
    assert len(e.words) == 7 and e.words.attribution.isna().sum() >= 5


PLUGIN_HEAD = 'gated_sum_fusion'


@pytest.fixture
def plugin_head():
    "A head registered the way a plugin registers one: no attribution code of its own."
    from torch import nn
    from rsacfn.models.heads import FusionHead

    @register_head(PLUGIN_HEAD, 'early', batch_size=8)
    class GatedSum(FusionHead):
        def __init__(self, audio_dim, text_dim, num_classes=7):
            super().__init__()
            self.a, self.t, self.gate = nn.Linear(audio_dim, num_classes), nn.Linear(text_dim, num_classes), nn.Linear(audio_dim + text_dim, 1)
        def forward(self, audio, text, audio_mask=None, text_mask=None):
            g = torch.sigmoid(self.gate(torch.cat([audio, text], 1)))
            return g * self.a(audio) + (1 - g) * self.t(text), {}
    yield PLUGIN_HEAD
    METHODS.pop(PLUGIN_HEAD, None)


def test_a_plugin_head_is_explained_with_no_code_of_its_own(plugin_head, tiny_backbones, segments):
    model = untrained(plugin_head, tiny_backbones)
    e = explain(model, segments, n_steps=128, progress=False)
    check_complete(model, segments, e)
    assert len(e.words) and len(e.frames)


# a trained tiny early_fusion on the demo corpus: the checks need a model that learned the demo's design
@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_backbones):
    from rsacfn.evaluation.analysis import cue_groups
    from rsacfn.training.loop import train
    from rsacfn.training.prepare import load_split
    from rsacfn.training.presets import experiment_config
    cfg = experiment_config('demo', work_dir=tmp_path_factory.mktemp('trained'), method='early_fusion', quiet=True,
                            wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']))
    train(cfg)
    model = MultiModel.from_pretrained(cfg.run_dir/'best')
    _, valid = load_split(cfg)
    valid = valid.head(80)  # enough words-only and voice-only segments for the checks, at half the cost
    return model, valid, explain(model, valid, n_steps=32, progress=False), cue_groups(cfg.data_path)


def broken(e:Explanation, how:str) -> Explanation:
    "A deliberately broken explanation: attributions reversed, or shuffled within each segment."
    def redo(t):
        a = t.attribution.values.copy()
        if how == 'reversed': a = -a
        else:
            rng = np.random.default_rng(0)
            for idx in t.groupby('segment_id').indices.values(): a[idx] = a[rng.permutation(idx)]
        return t.assign(attribution=a)
    return dataclasses.replace(e, words=redo(e.words), frames=redo(e.frames))


def test_a_words_only_segments_top_word_is_a_cue_word(trained):
    model, valid, e, groups = trained
    row = {r['check']: r for r in design_checks(e, groups)}
    cue = row['cue word on top (words-only segments)']
    assert cue['passes'] and cue['score'] > 2 * cue['reference'], cue
    assert row['audio share: voice-only over words-only segments']['passes']
    for how in ('reversed', 'shuffled'):  # the check fails on attributions that do not follow the model
        assert not {r['check']: r for r in design_checks(broken(e, how), groups)}['cue word on top (words-only segments)']['passes']


def test_deleting_the_most_attributed_first_beats_random_orders(trained):
    model, valid, e, _ = trained
    some = valid.head(32)
    d = deletion(model, some, e).groupby('modality')[['aopc', 'aopc_random']].mean()
    assert (d.aopc > d.aopc_random).all(), d
    r = deletion(model, some, broken(e, 'reversed')).groupby('modality')[['aopc', 'aopc_random']].mean()
    assert (r.aopc < r.aopc_random).all(), r  # reversed attributions remove the least important first


def test_redrawn_weights_change_the_attributions_and_the_table_says_which_checks_pass(trained):
    model, valid, e, groups = trained
    some = valid.head(32)
    part = dataclasses.replace(e, words=e.words[e.words.segment_id.isin(some.segment_id)],
                               frames=e.frames[e.frames.segment_id.isin(some.segment_id)],
                               segments=e.segments[e.segments.segment_id.isin(some.segment_id)])
    same = rank_agreement(part, broken(part, 'shuffled')).groupby('modality').spearman.mean()
    assert (same.abs() < 0.3).all()  # the measure sees a change: shuffled attributions do not agree with the originals
    assert (rank_agreement(part, part).spearman.dropna() > 0.999).all()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    f = faithfulness(model, some, part, groups)
    assert f.passes.all(), f.to_string()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # redrawn in a copy: the model explained is untouched
    assert {'deletion: attributed order over random', 'randomisation (head redrawn): rank correlation',
            'randomisation (head and top layers redrawn): rank correlation'} <= set(f.check)


def test_the_recognizer_explains_clips_given_as_relative_paths(tiny_backbones, tiny_corpus, tmp_path, monkeypatch):
    from rsacfn.recognizer import EmotionRecognizer
    import shutil
    rec = EmotionRecognizer(untrained('early_fusion', tiny_backbones), device='cpu')
    wav = sorted(Path(tiny_corpus).rglob('*.wav'))[0]
    monkeypatch.chdir(tmp_path); shutil.copy(wav, 'my clip.wav')
    e = rec.explain('my clip.wav', texts='정말 기뻐요 오늘은', n_steps=8)  # one clip: a path and one string
    assert e.words.word.tolist() == ['정말', '기뻐요', '오늘은'] and len(e.frames) > 0
    assert list(e.segments.segment_id) == ['0'] and 0 <= e.segments.audio_share[0] <= 1
    with pytest.raises(ValueError, match='one string but there are 2 clips'): rec.explain(['my clip.wav'] * 2, texts='정말 기뻐요')


def test_explain_command_from_a_working_folder(tiny_backbones, tiny_corpus, tmp_path, monkeypatch, rsacfn_cli):
    import json, os
    model = untrained('early_fusion', tiny_backbones); model.save_pretrained(tmp_path/'model')
    monkeypatch.chdir(tmp_path)
    corpus = os.path.relpath(tiny_corpus)
    r = rsacfn_cli('explain', 'model', '--data_path', corpus + '/', '--out', 'why', '--segments', '3', '--n_steps', '8', '--quiet')
    assert r.returncode == 0, r.stderr
    words, frames, segs = (pd.read_csv(f'why/{n}.csv') for n in ('words', 'frames', 'segments'))
    df = read_corpus(tiny_corpus).head(3)
    assert len(words) == sum(len(t.split()) for t in df.text) and set(frames.segment_id) == set(df.segment_id)
    assert len(list(Path('why/figures').glob('*.png'))) == 3 and len(pd.read_csv('why/faithfulness.csv'))
    said = json.loads(Path('why/explanation.json').read_text())
    assert Path(said['model']).is_absolute() and Path(said['data']) == Path(tiny_corpus).resolve()  # the same from any folder
    again = rsacfn_cli('explain', 'model', '--data_path', corpus, '--out', 'why', '--segments', '3', '--quiet')
    assert again.returncode != 0 and 'overwrite' in again.stderr and len(again.stderr.strip().splitlines()) == 1
    inside = rsacfn_cli('explain', 'model', '--data_path', corpus, '--out', corpus + '/why', '--quiet')
    assert inside.returncode != 0 and 'input' in inside.stderr and not (Path(tiny_corpus)/'why').exists()
    bad = rsacfn_cli('explain', 'model', '--data_path', corpus, '--target', 'joy', '--out', 'w2', '--quiet')
    assert bad.returncode != 0 and '--target' in bad.stderr and 'happy' in bad.stderr and not Path('w2').exists()
    says = rsacfn_cli('explain', 'model', os.path.relpath(df.wav_path[0]), '--out', 'w3', '--quiet')
    assert says.returncode != 0 and '--texts' in says.stderr and 'texts=' not in says.stderr and not Path('w3').exists()
    wav = os.path.relpath(df.wav_path[0])
    clips = rsacfn_cli('explain', 'model', wav, '--texts', '정말 기뻐요', '--out', 'clip', '--no_faithfulness', '--n_steps', '8', '--quiet')
    assert clips.returncode == 0, clips.stderr
    assert pd.read_csv('clip/words.csv').word.tolist() == ['정말', '기뻐요'] and not Path('clip/faithfulness.csv').exists()
    assert pd.read_csv('clip/segments.csv').segment_id.astype(str).tolist() == [Path(wav).stem]  # named as typed
    assert [p.name for p in Path('clip/figures').glob('*.png')] == [f'0000_{Path(wav).stem}.png']


def test_explain_command_skips_a_row_it_cannot_read_when_asked(tiny_backbones, tiny_corpus, tmp_path, monkeypatch, rsacfn_cli):
    "A manifest row with an empty transcript: named in one line in the flags' spelling; with --on_error skip, listed."
    untrained('text_only', tiny_backbones).save_pretrained(tmp_path/'model')
    monkeypatch.chdir(tmp_path)
    df = read_corpus(tiny_corpus).head(3)
    df.assign(text=['정말 기뻐요', '', '슬퍼요'])[['wav_path', 'text']].to_csv('m.csv', index=False)
    r = rsacfn_cli('explain', 'model', '--data_path', 'm.csv', '--out', 'why', '--no_faithfulness', '--n_steps', '2', '--quiet')
    assert r.returncode == 2 and '--on_error skip' in r.stderr and 'on_error=' not in r.stderr, r.stderr
    r = rsacfn_cli('explain', 'model', '--data_path', 'm.csv', '--out', 'why', '--no_faithfulness', '--n_steps', '2',
                   '--on_error', 'skip', '--quiet')
    assert r.returncode == 0 and '1 row(s) skipped' in r.stdout, r.stderr
    assert len(pd.read_csv('why/segments.csv')) == 2 and len(pd.read_csv('why/skipped.csv')) == 1


def test_faithfulness_says_nothing_again_of_what_explain_said(tiny_backbones, segments):
    "A clip the model hears only the start of is said once, by explain; the checks' own explanations do not repeat it."
    import warnings
    from rsacfn.evaluation.faithfulness import faithfulness
    model = untrained('early_fusion', tiny_backbones)
    model.config.audio_max_lens = 16_000  # every demo clip is longer than 1 s
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        e = explain(model, segments, n_steps=2, progress=False)
        faithfulness(model, segments, e, n_random=1)
    assert len([w for w in said if 'longer than audio_max_lens' in str(w.message)]) == 1, [str(w.message) for w in said]


def test_a_check_that_cannot_be_computed_is_not_a_failed_one(tiny_backbones, segments):
    "One-word transcripts have no ranking to correlate: randomisation's rows say n=0 and neither pass nor fail."
    from rsacfn.evaluation.faithfulness import faithfulness
    model = untrained('text_only', tiny_backbones)
    one = segments.assign(text=['좋아', '싫어', '그래'])
    f = faithfulness(model, one, explain(model, one, n_steps=2, progress=False), n_random=1)
    rows = f[f.check.str.startswith('randomisation')]
    assert len(rows) and (rows.n == 0).all() and rows.passes.isna().all(), rows.to_string()


def test_explain_command_on_transcripts_alone(tiny_backbones, tiny_corpus, tmp_path, monkeypatch, rsacfn_cli):
    "A text_only model is explained from --texts alone; clips given to it would not be heard, so they are refused."
    untrained('text_only', tiny_backbones).save_pretrained(tmp_path/'model')
    monkeypatch.chdir(tmp_path)
    r = rsacfn_cli('explain', 'model', '--texts', '정말 기뻐요', '오늘은 슬퍼요', '--out', 'why', '--no_faithfulness',
                   '--n_steps', '4', '--quiet')
    assert r.returncode == 0, r.stderr
    assert pd.read_csv('why/words.csv').word.tolist() == ['정말', '기뻐요', '오늘은', '슬퍼요']
    segs = pd.read_csv('why/segments.csv')  # said when the error is large against what it explains, as at 4 steps
    loose = (segs.delta.abs() > 0.1 * (segs.p - segs.p_baseline).abs()).any()
    assert ('--n_steps 16 makes it smaller' in r.stdout) == loose, r.stdout
    wav = sorted(Path(tiny_corpus).rglob('*.wav'))[0]
    heard = rsacfn_cli('explain', 'model', wav, '--texts', '정말 기뻐요', '--out', 'w2', '--quiet')
    assert heard.returncode == 2 and 'clips would not be heard' in heard.stderr and '--texts' in heard.stderr, heard.stderr
    assert len(heard.stderr.strip().splitlines()) == 1 and not Path('w2').exists()


@pytest.fixture(scope='module')
def other_backbones(tmp_path_factory, tiny_corpus):
    """Tiny backbones of other families than the demo's wav2vec 2.0 and RoBERTa, as checkpoints from elsewhere come: a
    HuBERT whose CNN normalises over time (feat_extract_norm='group', as HuBERT-base and wav2vec2-base do), and a
    DistilBERT (its width is `dim` in its config) with a WordPiece vocabulary, which reads a character it never saw as [UNK]."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import (BertTokenizerFast, DistilBertConfig, DistilBertModel, HubertConfig, HubertModel,
                              Wav2Vec2FeatureExtractor)
    root, texts = tmp_path_factory.mktemp('other'), read_corpus(tiny_corpus).text.tolist()
    torch.manual_seed(0)
    HubertModel(HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                             conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                             feat_extract_norm='group')).save_pretrained(root/'hubert')
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(root/'hubert')
    wp = Tokenizer(models.WordPiece(unk_token='[UNK]'))
    wp.normalizer, wp.pre_tokenizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False), pre_tokenizers.BertPreTokenizer()
    wp.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']))
    tok = BertTokenizerFast(tokenizer_object=wp, do_lower_case=False)
    DistilBertModel(DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=len(tok))).save_pretrained(root/'distilbert')
    tok.save_pretrained(root/'distilbert')
    return dict(audio=root/'hubert', text=root/'distilbert')


def test_backbones_of_other_families_are_explained_completely(other_backbones, tiny_backbones, segments):
    """DistilBERT's width is read as its encoder gives it (not as 0 from a config key it lacks). HuBERT's group-norm CNN
    gives all zeros for silence, and the layer norm after it is flat along the path from there: its attributions cannot
    add up to the change in probability, whatever n_steps; the tables and the delta they report still say so exactly."""
    torch.manual_seed(0)
    model = MultiModel.from_backbones('early_fusion', str(tiny_backbones['audio']), str(other_backbones['text']),
                                      audio_max_lens=32_000, text_max_lens=64)
    check_complete(model, segments, explain(model, segments, n_steps=128, progress=False))
    model = MultiModel.from_backbones('early_fusion', str(other_backbones['audio']), str(other_backbones['text']),
                                      audio_max_lens=32_000, text_max_lens=64)
    e = explain(model, segments, n_steps=128, progress=False)
    s = e.segments.set_index('segment_id')
    total = (e.words.groupby('segment_id').attribution.sum() + e.frames.groupby('segment_id').attribution.sum()).reindex(s.index)
    np.testing.assert_allclose(total - (s.p - s.p_baseline), s.delta, atol=2e-4)  # the delta reported is the one there is


def test_a_word_the_tokenizer_reads_as_unknown_is_attributed(other_backbones, tiny_backbones, segments):
    "[UNK] is the word's own token, not a special one: the word gets an attribution, and the baseline replaces it."
    torch.manual_seed(0)
    model = MultiModel.from_backbones('text_only', None, str(other_backbones['text']), text_max_lens=64)
    df = segments.assign(text=segments.text + ' ☃☃')  # a character no transcript has
    assert model.tokenizer.unk_token_id in model.tokenizer(df.text[0])['input_ids']
    e = explain(model, df, n_steps=64, progress=False)
    last = e.words.groupby('segment_id').tail(1)
    assert (last.word == '☃☃').all() and last.attribution.notna().all() and (last.attribution != 0).all(), last
    check_complete(model, df, e)


def test_a_clips_attributions_do_not_depend_on_the_clips_beside_it(other_backbones, tiny_backbones, segments):
    "A CNN that normalises over time hears its batch's padding: each clip is then explained alone."
    for audio in (other_backbones['audio'], tiny_backbones['audio']):  # group norm, layer norm
        torch.manual_seed(0)
        model = MultiModel.from_backbones('speech_only', str(audio), None, audio_max_lens=48_000)
        together = explain(model, segments, n_steps=16, progress=False).frames
        alone = pd.concat([explain(model, segments.iloc[[i]], n_steps=16, progress=False).frames for i in range(len(segments))])
        np.testing.assert_allclose(alone.attribution, together.attribution, rtol=1e-3, atol=1e-6 * together.attribution.abs().max())


def test_a_slow_tokenizers_words_are_its_fast_ones_wherever_the_text_is_cut(tiny_backbones):
    "The slow path (no offsets) counts each word's pieces: the end token of a cut text is no word's."
    from transformers import AutoTokenizer
    from rsacfn.evaluation.attribution import word_tokens
    fast = AutoTokenizer.from_pretrained(tiny_backbones['text'])

    class Slow:  # the same tokenizer without offsets, as a Python tokenizer is
        is_fast = False
        def __getattr__(self, name): return getattr(fast, name)
    text = '정말 기뻐요 오늘 날씨가 너무 좋아서 산책을 했어요'
    full = fast(text)['input_ids']
    for n in range(3, len(full) + 1):
        ids = fast(text, truncation=True, max_length=n)['input_ids']
        assert word_tokens(Slow(), text, ids)[1].tolist() == word_tokens(fast, text, ids)[1].tolist(), n


def test_a_clips_prediction_does_not_depend_on_the_clips_beside_it(other_backbones, segments):
    "predict, predict_corpus and score (so the recognizer, evaluate, rsacfn predict, a run's scores) hear a group-norm CNN's clips one at a time."
    from rsacfn.evaluation.analysis import predict_corpus
    from rsacfn.evaluation.inference import predict
    torch.manual_seed(0)
    model = MultiModel.from_backbones('speech_only', str(other_backbones['audio']), None, audio_max_lens=48_000)
    p = [c for c in predict(model, segments.wav_path.tolist()).columns if c.startswith('p_')]
    alone = pd.concat([predict(model, [w]) for w in segments.wav_path])[p].to_numpy()
    np.testing.assert_allclose(predict(model, segments.wav_path.tolist())[p].to_numpy(), alone, atol=1e-6)
    np.testing.assert_allclose(predict_corpus(model, segments, progress=False)[0][p].to_numpy(), alone, atol=1e-6)
    from rsacfn.evaluation.scoring import score  # evaluate's and the best model's scoring
    np.testing.assert_allclose(score(model, segments.assign(label=0))[p].to_numpy(), alone, atol=1e-6)


def test_an_export_or_a_data2vec_audio_encoder_is_also_heard_a_clip_at_a_time(other_backbones):
    """clips_per_batch reads the model's config, which an ONNX export keeps too (its graph batches what it is given), and
    knows data2vec-audio's stacked positional convolutions, which carry the padding into the real frames."""
    from types import SimpleNamespace
    from rsacfn.evaluation.inference import clips_per_batch
    like = lambda mods, audio: SimpleNamespace(head=SimpleNamespace(modalities=mods), config=SimpleNamespace(audio_config=audio))
    hubert = MultiModel.from_backbones('speech_only', str(other_backbones['audio']), None).config.audio_config
    assert clips_per_batch(like(('audio',), hubert), 16) == 1  # an export of the group-norm model
    assert clips_per_batch(like(('audio', 'text'), {'model_type': 'data2vec-audio', 'feat_extract_norm': 'layer'}), 16) == 1
    assert clips_per_batch(like(('audio',), {'model_type': 'wavlm', 'feat_extract_norm': 'layer'}), 16) == 16
    assert clips_per_batch(like(('text',), hubert), 16) == 16  # no audio heard


def test_a_transcript_longer_than_the_model_reads_is_said_once_wherever_it_is_read(tiny_backbones, segments):
    "As a clip longer than audio_max_lens is: predict, predict_corpus (the recognizer, rsacfn predict) and evaluate's scoring."
    import warnings
    from rsacfn.evaluation.analysis import predict_corpus
    from rsacfn.evaluation.inference import predict
    model = MultiModel.from_backbones('text_only', None, str(tiny_backbones['text']), text_max_lens=16)
    df = segments.assign(text=[segments.text[0] + ' 그리고' * 30, *segments.text[1:]])
    for run in (lambda: predict(model, texts=df.text.tolist()), lambda: predict_corpus(model, df, progress=False)):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter('always'); run()
        cut = [str(w.message) for w in said if 'text_max_lens' in str(w.message)]
        over = sum(len(ids) > 16 for ids in model.tokenizer(df.text.tolist())['input_ids'])
        assert len(cut) == 1 and cut[0].startswith(f'{over} of 3 transcripts') and 'longer than text_max_lens=16 tokens' in cut[0], cut
        assert "the longest, '그 영화는 두 시간짜리예요 그리고" in cut[0] and cut[0].endswith(f"has {len(model.tokenizer(df.text[0])['input_ids'])}")
