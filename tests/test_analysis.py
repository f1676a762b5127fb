"Beyond the paper: valence and arousal, modality reliance, cross-corpus scoring, significance, and the commands for saved models."
import json, os
import numpy as np
import pandas as pd
import pytest
pytestmark = pytest.mark.slow  # `make test-quick` leaves this file out
from rsacfn.evaluation.analysis import cue_groups, reliance
from rsacfn.data.readers import read_corpus
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.demo import make_demo_corpus
from rsacfn.models.multimodal import MultiModel
from rsacfn.evaluation.inference import predict
from rsacfn.evaluation.stats import confusion_metrics, confusions, paired_bootstrap
from rsacfn.experiments.table import metric_order, sweep_title, table_markdown, summarize
from rsacfn.config import METRICS, TrainConfig
from rsacfn.evaluation.metrics import frame_metrics
from rsacfn.training.prepare import load_split
from rsacfn.training.loop import train

os.environ['HF_HUB_OFFLINE'] = '1'


@pytest.fixture(scope='module')
def trained(default_corpus, tiny_backbones, tmp_path_factory):
    "early_fusion with the valence/arousal output, trained on the default demo corpus (random tiny backbones, 4 epochs)."
    cfg = TrainConfig(data_path=str(default_corpus), wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']),
                      audio_max_lens=40_000, text_max_lens=64, lr=1e-3, batch_size=16, epochs=4, quiet=True, method='early_fusion',
                      va_weight=1.0, output_dir=str(tmp_path_factory.mktemp('runs')), ver='early_fusion')
    return cfg, train(cfg)


def test_reliance_shows_where_the_demo_puts_each_emotion(trained):
    cfg, _ = trained
    _, valid = load_split(cfg)
    rel = reliance(MultiModel.from_pretrained(cfg.run_dir/'best'), valid, groups=cue_groups(cfg.data_path))
    acc = pd.DataFrame(rel['by_group'])
    lost = {c: acc['intact'] - acc[c] for c in ('audio removed', 'text removed')}
    assert lost['audio removed'].idxmax() == 'voice only', acc   # removing audio hurts the voice-only group most
    assert lost['text removed'].idxmax() == 'words only', acc    # removing text hurts the words-only group most


def test_valence_and_arousal_are_learnt(trained):
    cfg, result = trained
    assert result['ccc_valence'] > .3 and result['ccc_arousal'] > .3, result
    pred = pd.read_csv(cfg.run_dir/'predictions.csv')
    assert {'valence', 'pred_valence', 'arousal', 'pred_arousal'} <= set(pred.columns) and pred.pred_valence.notna().all()
    rows = [json.loads(l) for l in (cfg.run_dir/'metrics.jsonl').read_text().splitlines()]
    assert all(r['ccc_valence'] is not None for r in rows)


def test_va_weight_without_ratings_is_refused(tiny_corpus, tiny_backbones, tmp_path):
    df = read_kemdy20(tiny_corpus)
    manifest = tmp_path/'m.csv'
    df[['wav_path', 'text', 'emotion', 'speaker', 'session']].to_csv(manifest, index=False)  # no valence, arousal columns
    cfg = TrainConfig(data_path=str(manifest), wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']),
                      method='early_fusion', va_weight=0.5, epochs=1, output_dir=str(tmp_path/'runs'), quiet=True)
    with pytest.raises(ValueError, match='holds no valence or arousal ratings'): train(cfg)
    assert not (tmp_path/'runs'/'baseline').exists()


def test_predict_command_writes_every_readable_clip_and_reports_the_damaged_one(trained, default_corpus, tmp_path, rsacfn_cli):
    cfg, _ = trained
    clips = read_kemdy20(default_corpus).head(21).reset_index(drop=True)
    damaged = tmp_path/'damaged.wav'
    damaged.write_bytes(b'RIFF\x00\x00\x00\x00WAVEjunk' * 10)
    paths = clips.wav_path.tolist()[:20] + [str(damaged)]
    pd.DataFrame(dict(wav_path=paths, text=clips.text)).to_csv(tmp_path/'new.csv', index=False)  # no emotion column
    out = rsacfn_cli('predict', cfg.run_dir/'best', tmp_path/'new.csv', '--out', tmp_path/'p.csv', '--on_error', 'skip', '--quiet')
    assert out.returncode == 0, out.stderr[-3000:]
    got = pd.read_csv(tmp_path/'p.csv')
    assert len(got) == 20 and got.wav_path.tolist() == paths[:20]
    assert {'predicted', 'valence', 'arousal', *(f'p_{c}' for c in ('neutral', 'happy'))} <= set(got.columns)
    assert 'emotion' not in got  # the manifest gives no label: none is made up
    report = pd.read_csv(tmp_path/'p_skipped.csv')
    assert len(report) == 1 and report.file[0] == str(damaged) and 'cannot be decoded' in report.reason[0]
    expected = predict(MultiModel.from_pretrained(cfg.run_dir/'best'), paths[:20], clips.text[:20].tolist())
    assert got.predicted.tolist() == expected.emotion.tolist()
    np.testing.assert_allclose(got.valence, expected.valence, atol=1e-5)
    # without --on_error skip the damaged clip stops the command with one line naming it
    out = rsacfn_cli('predict', cfg.run_dir/'best', tmp_path/'new.csv', '--out', tmp_path/'q.csv', '--quiet')
    assert out.returncode == 2 and str(damaged) in out.stderr and len(out.stderr.strip().splitlines()) == 1 and not (tmp_path/'q.csv').exists()


def test_evaluate_command_scores_a_saved_model_on_another_corpus(trained, tmp_path, rsacfn_cli):
    cfg, _ = trained
    k19 = make_demo_corpus(tmp_path/'k19', size='tiny', layout='kemdy19', progress=False)
    out = rsacfn_cli('evaluate', cfg.run_dir/'best', '--data_path', k19, '--out', tmp_path/'ev', '--reliance', '--quiet')
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((tmp_path/'ev'/'metrics.json').read_text())
    labelled = read_corpus(k19).label.notna().sum()
    assert m['n'] == labelled == len(pd.read_csv(tmp_path/'ev'/'predictions.csv'))
    assert {'confusion.png', 'dimensions.png', 'reliance.png'} <= {p.name for p in (tmp_path/'ev').iterdir()}
    assert m['reliance']['conditions'] == ['intact', 'audio removed', 'text removed'] and m['ccc_valence'] is not None
    # the numbers, recomputed from the written predictions with scikit-learn (macro averages over the classes present)
    from sklearn.metrics import f1_score, recall_score
    pred = pd.read_csv(tmp_path/'ev'/'predictions.csv')
    present = sorted(set(pred.emotion))
    assert m['weighted_f1'] == pytest.approx(f1_score(pred.emotion, pred.predicted, average='weighted'))
    assert m['macro_f1'] == pytest.approx(f1_score(pred.emotion, pred.predicted, labels=present, average='macro'))
    assert m['uar'] == pytest.approx(recall_score(pred.emotion, pred.predicted, labels=present, average='macro'))
    assert m['accuracy'] == pytest.approx((pred.emotion == pred.predicted).mean())
    assert m['reliance']['summary']['intact']['macro_f1'] == pytest.approx(m['macro_f1'])  # 'intact' is the model as scored above


def test_train_on_kemdy19_layout_and_score_on_kemdy20_layout_in_one_command(tiny_corpus, tiny_backbones, tmp_path, rsacfn_cli):
    k19 = make_demo_corpus(tmp_path/'k19', size='tiny', layout='kemdy19', progress=False)
    assert not set(read_corpus(k19).speaker) & set(read_kemdy20(tiny_corpus).speaker)
    out = rsacfn_cli('train', '--preset', 'demo', '--method', 'early_fusion', '--epochs', '1', '--data_path', k19,
                     '--eval_data_path', tiny_corpus, '--wav_model', tiny_backbones['audio'], '--text_model',
                     tiny_backbones['text'], '--output_dir', tmp_path/'runs', '--ver', 'early_fusion', '--quiet')
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path/'runs'/'early_fusion'/'result.json').read_text())
    labelled = int(read_kemdy20(tiny_corpus).label.notna().sum())
    assert result['eval_n'] == labelled and result['eval_data_path'] == str(tiny_corpus) and 'eval_macro_f1' in result
    assert len(pd.read_csv(tmp_path/'runs'/'early_fusion'/'eval_predictions.csv')) == labelled
    assert f"on {tiny_corpus}" in out.stdout
    ident = json.loads((tmp_path/'runs'/'early_fusion'/'identity.json').read_text())
    assert ident['eval_corpus_fingerprint'] and ident['config']['eval_data_path'] == str(tiny_corpus)


def test_paired_bootstrap_of_a_method_against_itself_and_against_a_worse_one():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 7, 300)
    good = np.where(rng.random(300) < .8, y, rng.integers(0, 7, 300))
    worse = np.where(rng.random(300) < .55, y, rng.integers(0, 7, 300))
    same = paired_bootstrap([(y, good, good)], 7, B=500)
    assert all(r['diff'] == r['low'] == r['high'] == 0 and r['p'] == 1 for r in same.values()), same  # [0, 0], p = 1
    better = paired_bootstrap([(y, good, worse)] * 2, 7, B=500)
    assert all(r['low'] > 0 and r['p'] < .01 for r in better.values()), better
    noisy = paired_bootstrap([(y[:40], worse[:40], np.where(rng.random(40) < .5, worse[:40], y[:40]))], 7, B=500)
    assert all(r['low'] <= r['diff'] <= r['high'] for r in noisy.values())


def test_confusion_metrics_match_the_trainers():
    from rsacfn.evaluation.metrics import classification_metrics
    rng = np.random.default_rng(4)
    y, p = rng.integers(0, 6, 200), rng.integers(0, 7, 200)
    m, ref = confusion_metrics(confusions(y, p, 7), np.bincount(y, minlength=7) > 0), classification_metrics(y, p)
    for k in ('weighted_f1', 'macro_f1', 'uar', 'accuracy'): assert abs(m[k] - ref[k]) < 1e-12


def test_the_protocol_names_the_table_and_orders_its_metrics():
    assert metric_order('speaker-independent')[:2] == ('macro_f1', 'uar') and metric_order('paper')[0] == 'weighted_f1'
    runs = pd.DataFrame([dict(method='rsa', status='ok', error='', weighted_f1=.9, macro_f1=.5, uar=.4, accuracy=.9,
                              pred_counts=[1] * 7, label_transform=False, setting='a')])
    md = table_markdown(summarize(runs), protocol='speaker-independent', title=sweep_title('speaker-independent', [42, 43, 44], [0, 1, 2, 3, 4]))
    assert md.startswith('**Protocol: speaker-independent (session folds 0, 1, 2, 3, 4 x seeds 42, 43, 44)')
    header = next(l for l in md.splitlines() if l.startswith('| method'))
    assert header.index('macro F1') < header.index('UAR') < header.index('weighted F1')
    assert 'one standard deviation over the runs' in md and 'chosen on the validation split the table scores' in md  # the paper's way, said
    dev = table_markdown(summarize(runs.assign(select_epoch='dev')), protocol='speaker-independent')
    assert 'chosen on a development split held out of the training data' in dev


@pytest.mark.parametrize('method', ['early_fusion', 'mlp_mixer'])  # pooled features kept from one pass; sequences run twice
def test_reliance_intact_condition_is_the_models_own_prediction(tiny_corpus, tiny_backbones, method):
    from rsacfn.evaluation.analysis import removed_logits
    from rsacfn.data.splits import split_corpus
    from rsacfn.evaluation.scoring import score
    _, valid = split_corpus(read_kemdy20(tiny_corpus))
    model = MultiModel.from_backbones(method, tiny_backbones['audio'], tiny_backbones['text'], audio_max_lens=40_000, text_max_lens=32,
                                      head_sizes=dict(mixer_dim=16, mixer_hidden=16) if method == 'mlp_mixer' else {}).eval()
    logits = removed_logits(model, valid, batch_size=8)
    assert list(logits) == ['intact', 'audio removed', 'text removed'] and all(v.shape == (len(valid), 7) for v in logits.values())
    probs = score(model, valid, batch_size=8).filter(like='p_').values
    np.testing.assert_allclose(np.exp(logits['intact']) / np.exp(logits['intact']).sum(1, keepdims=True), probs, atol=1e-5)
    assert not np.allclose(logits['audio removed'], logits['intact'])  # the audio features were really replaced


def test_cue_groups_keep_emotional_segments_without_a_cue_out_of_the_neutral_group(default_corpus):
    from rsacfn.data.demo import demo_truth
    truth = demo_truth(default_corpus).set_index('segment_id')
    g = cue_groups(default_corpus)
    assert (g == 'neutral').sum() == (truth.emotion == 'neutral').sum()               # neutral: the raters' single label only
    emotional_no_cue = truth.index[(truth.emotion != 'neutral') & (truth.cue == 'none')]
    assert len(emotional_no_cue) and (g[emotional_no_cue] == 'neither').all()        # an emotion shown nowhere is 'neither'


def test_train_report_writes_what_the_sweep_reads(tiny_corpus, tiny_backbones, tmp_path, rsacfn_cli):
    "`rsacfn train --report`: the experiment function's figures, attention, reliance and record beside the run."
    from rsacfn.evaluation.figures import load_attention
    r = rsacfn_cli('train', '--report', '--method', 'rsa', '--epochs', '1', '--data_path', tiny_corpus, '--audio_max_lens', 32000,
                   '--text_max_lens', 64, '--wav_model', tiny_backbones['audio'], '--text_model', tiny_backbones['text'],
                   '--output_dir', tmp_path/'runs', '--ver', 'rsa', '--quiet', '--explain_segments', 3, '--explain_steps', 4)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path/'runs'/'rsa'
    said = json.loads((run/'attributions.json').read_text())
    assert (said['segments'], said['n_steps']) == (3, 4)  # as many segments and steps as asked
    record = json.loads((run/'experiment.json').read_text())
    result = record['result']  # what the sweep reads (`finished_row`, `summarize`): the run's identity and scores
    assert result['identity'] == json.loads((run/'identity.json').read_text())['hash']
    scored = frame_metrics(pd.read_csv(run/'predictions.csv'), MultiModel.from_pretrained(run/'best').config.class_names)
    assert {k: result[k] for k in METRICS} == pytest.approx({k: scored[k] for k in METRICS})  # the predictions' own scores
    assert result['epoch'] == json.loads((run/'result.json').read_text())['epoch'] == 1
    assert record['figures'] == ['curves.png', 'confusion.png', 'attention_features.png', 'attention_profile.png', 'reliance.png']
    assert all((run/f).stat().st_size > 1000 for f in record['figures']) and record['reliance'] == 'reliance.json'
    arrays = load_attention(run/record['attention'])
    assert arrays['features_by_emotion'].shape[0] == 7 and len(arrays['labels']) == record['result']['n']
    rel = json.loads((run/'reliance.json').read_text())
    assert rel['summary']['intact']['macro_f1'] == pytest.approx(record['result']['macro_f1'])  # intact: the best epoch's own score
    assert f"the record: {run/'experiment.json'}" in r.stdout


def test_predict_command_on_a_corpus_folder_gives_every_segment(trained, tiny_corpus, tmp_path, rsacfn_cli):
    "A KEMDy20 folder as predict's input: one row per segment the reader finds, the model's own prediction for each."
    cfg, _ = trained
    r = rsacfn_cli('predict', cfg.run_dir/'best', tiny_corpus, '--out', tmp_path/'p.csv', '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    got, corpus = pd.read_csv(tmp_path/'p.csv'), read_kemdy20(tiny_corpus)
    assert got.wav_path.tolist() == corpus.wav_path.tolist()
    expected = predict(MultiModel.from_pretrained(cfg.run_dir/'best'), corpus.wav_path.tolist(), corpus.text.tolist())
    # the model's answer as `predicted` (as in evaluate's predictions.csv); `emotion` stays the corpus' own label
    assert got.predicted.tolist() == expected.emotion.tolist() and got.emotion.tolist() == corpus.emotion.tolist()
    assert 'label' not in got  # a predicted id beside a corpus' `label` would read as the truth's
    np.testing.assert_allclose(got.filter(like='p_').values, expected.filter(like='p_').values, atol=1e-5)


def test_the_sweep_says_whether_every_fusion_method_beats_the_unimodal_ones():
    "The README's claim about the demo table is the sweep's own line under it: checked on both outcomes here."
    from rsacfn.experiments.table import unimodal_line
    row = lambda m, f1: dict(method=m, status='ok', error='', weighted_f1=f1, macro_f1=f1 - .1, uar=.5, accuracy=.9,
                             pred_counts=[1] * 7, label_transform=False, setting='a')
    runs = pd.DataFrame([row('speech_only', .78), row('text_only', .75), row('early_fusion', .85), row('rsa_cfn', .9)])
    assert unimodal_line(summarize(runs)) == 'Every fusion method beats speech_only and text_only on mean weighted F1 and macro F1.'
    worse = unimodal_line(summarize(pd.concat([runs, pd.DataFrame([row('late_fusion', .76)])])))
    assert worse == 'Not every fusion method beats speech_only and text_only: late_fusion (weighted F1 0.7600 <= speech_only 0.7800); late_fusion (macro F1 0.6600 <= speech_only 0.6800).'
    assert unimodal_line(summarize(runs[runs.method != 'text_only'].query("method != 'speech_only'"))) == ''  # no unimodal run


def test_a_runs_attributions_are_set_like_any_other_field(tiny_backbones, rsacfn_cli):
    "explain_segments and explain_steps: checked as every field is, 0 segments is none, and only a value set changes the identity."
    import dataclasses
    from rsacfn.config import TrainConfig
    from rsacfn.experiments.experiment import explanation_step, needs_model
    r = rsacfn_cli('train', '--explain_steps', '1')
    assert r.returncode == 2 and '--explain_steps 1: must be 2 or more' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    cfg = dataclasses.replace(TrainConfig(method='text_only'), explain_segments=0)
    assert not needs_model(cfg) and explanation_step(cfg, None, None) is None  # no model scored again for nothing


def test_a_manifests_transcripts_are_read_alike_in_training_and_after(tiny_corpus, tiny_backbones, tmp_path, rsacfn_cli):
    "Ordinary text with slashes ('on/off', 'n/a') is not KEMDy's tags: training reads a manifest as evaluate does (raw)."
    from rsacfn.data.readers import read_corpus
    segs = read_corpus(tiny_corpus)
    manifest = tmp_path/'m.csv'
    segs.assign(text=segs.text + ' on/off n/a 3/4')[['segment_id', 'wav_path', 'text', 'emotion', 'speaker']].to_csv(manifest, index=False)
    r = rsacfn_cli('train', '--method', 'text_only', '--epochs', '1', '--data_path', manifest, '--text_max_lens', 64,
                   '--text_model', tiny_backbones['text'], '--output_dir', tmp_path/'runs', '--ver', 'm', '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    r = rsacfn_cli('evaluate', tmp_path/'runs'/'m'/'best', '--data_path', manifest, '--out', tmp_path/'ev', '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    trained_p = pd.read_csv(tmp_path/'runs'/'m'/'predictions.csv').set_index('segment_id')
    scored = pd.read_csv(tmp_path/'ev'/'predictions.csv').set_index('segment_id').loc[trained_p.index]
    p = [c for c in trained_p.columns if c.startswith('p_')]
    np.testing.assert_allclose(scored[p].to_numpy(), trained_p[p].to_numpy(), atol=1e-6)
    assert json.loads((tmp_path/'runs'/'m'/'identity.json').read_text())['config']['text_mode'] == 'raw'


def test_a_text_mode_named_in_training_travels_with_the_model(tiny_corpus, tiny_backbones, tmp_path, rsacfn_cli):
    "A text_mode named in training (here 'strip' on a manifest) is the model's: evaluate, predict and the recognizer read the manifest as training did."
    from rsacfn.data.readers import read_corpus
    from rsacfn.data.transcripts import clean_text
    from rsacfn.recognizer import EmotionRecognizer
    segs = read_corpus(tiny_corpus).assign(text=lambda d: d.text + ' on/off n/a 3/4')
    assert clean_text(segs.text.iloc[0], 'strip') != segs.text.iloc[0]  # the two readings differ
    manifest = tmp_path/'m.csv'
    segs[['segment_id', 'wav_path', 'text', 'emotion', 'speaker']].to_csv(manifest, index=False)
    r = rsacfn_cli('train', '--method', 'text_only', '--epochs', '1', '--data_path', manifest, '--text_max_lens', 64,
                   '--text_mode', 'strip', '--text_model', tiny_backbones['text'], '--output_dir', tmp_path/'runs',
                   '--ver', 's', '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    best = tmp_path/'runs'/'s'/'best'
    assert json.loads((best/'config.json').read_text())['text_mode'] == 'strip'
    trained_p = pd.read_csv(tmp_path/'runs'/'s'/'predictions.csv').set_index('segment_id')
    p = [c for c in trained_p.columns if c.startswith('p_')]
    r = rsacfn_cli('evaluate', best, '--data_path', manifest, '--out', tmp_path/'ev', '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    r = rsacfn_cli('predict', best, manifest, '--out', tmp_path/'p.csv', '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    recognized = EmotionRecognizer.from_pretrained(best)(manifest).set_index(segs.segment_id)
    typed = EmotionRecognizer.from_pretrained(best)(texts=segs.text.tolist()).set_index(segs.segment_id)  # as typed
    for got in (pd.read_csv(tmp_path/'ev'/'predictions.csv').set_index('segment_id'),
                pd.read_csv(tmp_path/'p.csv').set_index('segment_id'), recognized, typed):
        np.testing.assert_allclose(got.loc[trained_p.index, p].to_numpy(), trained_p[p].to_numpy(), atol=1e-6)
    r = rsacfn_cli('explain', best, '--data_path', manifest, '--out', tmp_path/'why', '--segments', 1, '--n_steps', 2,
                   '--no_faithfulness', '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    words = pd.read_csv(tmp_path/'why'/'words.csv').word.tolist()
    assert 'onoff' in words and 'on/off' not in words, words  # the words the model read
