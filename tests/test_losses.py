"Minority classes and soft labels: each loss's gradient as its formula says, and soft labels reaching training."
import json
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from rsacfn.config import LOSSES, TrainConfig
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.labels import EMOTIONS, soft_targets, vote_columns
from rsacfn.models.losses import CB_BETA, FOCAL_GAMMA, LA_TAU, ClassLoss

B, C = 5, 7
COUNTS = np.array([50, 10, 8, 5, 5, 3, 2], np.float64)


def grad(loss, z, labels=None, soft=None):
    z = z.clone().requires_grad_(True)
    loss(z, labels, soft).backward()
    return z.grad


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(B, C, generator=g) * 2
    y = torch.tensor([0, 1, 2, 6, 0])
    q = torch.rand(B, C, generator=g) ** 3; q = q / q.sum(1, keepdim=True)
    return z, y, q


def test_cross_entropy_on_labels_and_on_the_raters_distribution(batch):
    z, y, q = batch
    p, onehot = z.softmax(1), F.one_hot(y, C).float()
    torch.testing.assert_close(grad(ClassLoss('ce'), z, y), (p - onehot) / B)
    # soft targets: the gradient pulls p towards the votes' distribution (fails if the votes were ignored)
    torch.testing.assert_close(grad(ClassLoss('ce'), z, y, q), (p - q) / B)


def test_class_balanced_weights_each_segment_by_its_class_effective_number(batch):
    z, y, _ = batch
    w = (1 - CB_BETA) / (1 - CB_BETA ** COUNTS); w = torch.tensor(w * C / w.sum(), dtype=torch.float32)
    expected = w[y][:, None] * (z.softmax(1) - F.one_hot(y, C).float()) / B
    torch.testing.assert_close(grad(ClassLoss('class_balanced', COUNTS), z, y), expected)


def test_logit_adjusted_loss_adds_the_log_prior_to_the_logits(batch):
    z, y, _ = batch
    prior = torch.tensor(COUNTS / COUNTS.sum(), dtype=torch.float32)
    expected = ((z + LA_TAU * prior.log()).softmax(1) - F.one_hot(y, C).float()) / B
    torch.testing.assert_close(grad(ClassLoss('logit_adjusted', COUNTS), z, y), expected)


def test_focal_loss_gradient_as_derived_by_hand(batch):
    z, y, _ = batch
    w = torch.tensor(1 / COUNTS, dtype=torch.float32); w = w * C / w.sum()
    p = z.softmax(1); py = p.gather(1, y[:, None])[:, 0]; g = FOCAL_GAMMA
    # FL = -w_y (1 - p_y)^g log p_y;  dFL/dp_y = w_y (g (1 - p_y)^(g-1) log p_y - (1 - p_y)^g / p_y);  dp_y/dz_j = p_y (1[j=y] - p_j)
    dfl_dpy = w[y] * (g * (1 - py) ** (g - 1) * py.log() - (1 - py) ** g / py)
    expected = (dfl_dpy * py)[:, None] * (F.one_hot(y, C).float() - p) / B
    torch.testing.assert_close(grad(ClassLoss('focal', COUNTS), z, y), expected)


def test_every_loss_is_checked_here():
    assert set(LOSSES) == {'ce', 'class_balanced', 'focal', 'logit_adjusted'}


@pytest.mark.parametrize('frozen', [False, True])
def test_soft_labels_reach_the_training_step(tiny_corpus, tiny_backbones, tmp_path, monkeypatch, frozen):
    "What the loss receives in training: each segment's votes as a distribution, tied segments included."
    seen = {}
    forward = ClassLoss.forward
    def recording(self, logits, labels=None, soft=None):
        seen.setdefault('soft', []).append(None if soft is None else soft.detach().cpu().numpy())
        return forward(self, logits, labels, soft)
    monkeypatch.setattr(ClassLoss, 'forward', recording)
    import rsacfn.training.loop as loop
    batches = []
    step = loop.model_inputs
    monkeypatch.setattr(loop, 'model_inputs', lambda b: (batches.append(list(b['segment_ids'])), step(b))[1])
    cfg = TrainConfig(data_path=str(tiny_corpus), wav_model=str(tiny_backbones['audio']),
                      text_model=str(tiny_backbones['text']), method='text_only', audio_max_lens=40_000, text_max_lens=32,
                      lr=1e-3, batch_size=16, val_batch_size=64, epochs=1, quiet=True, output_dir=str(tmp_path),
                      ver='soft', label_mode='soft', freeze_backbones=frozen)  # frozen: the head on cached features
    loop.train(cfg)
    df = read_kemdy20(tiny_corpus).set_index('segment_id')
    targets = dict(zip(df.index, soft_targets(df.reset_index())))
    got = {sid: row for ids, q in zip(batches, seen['soft']) for sid, row in zip(ids, q)}
    assert got and all(np.allclose(row, targets[sid]) for sid, row in got.items())
    assert any(df.label.isna()[sid] for sid in got)  # tied segments train on their votes
    assert any(0.2 < row.max() < 0.95 for row in got.values())  # the votes disagree: not one-hot


def test_soft_labels_need_votes_and_say_so(tmp_path, tiny_corpus):
    from rsacfn.data.splits import split_targets
    train = read_kemdy20(tiny_corpus).dropna(subset=['label'])
    with pytest.raises(ValueError, match="segment .* has no raters' votes: label_mode='soft'"):
        split_targets(train.assign(**{c: 0.0 for c in vote_columns()}), 7, 'soft')
    with pytest.raises(ValueError, match='raters voted for .* which the model would not have'):
        split_targets(train, 2, 'soft')
    q, counts = split_targets(train, 7, 'soft')
    assert np.allclose(q.sum(1), 1) and np.isclose(counts.sum(), len(train))
    _, hard = split_targets(train)
    assert hard.tolist() == np.bincount(train.label.astype(int), minlength=7).tolist()


def test_label_mode_and_the_papers_flag_are_one_setting():
    assert TrainConfig(label_transform=True).label_mode == 'transform'
    assert TrainConfig(label_mode='transform').label_transform is True
    assert TrainConfig().label_mode == 'majority' and TrainConfig().label_transform is False
    with pytest.raises(ValueError, match="label_transform=True and label_mode='soft' disagree"):
        TrainConfig(label_mode='soft', label_transform=True)
    with pytest.raises(ValueError, match="unknown label_mode 'votes'"):
        TrainConfig(label_mode='votes')


@pytest.fixture(scope='module')
def session_run(tiny_corpus, tiny_backbones, tmp_path_factory):
    "A tiny run under the speaker-independent protocol: fold 3 scored, the next fold (0) its development split."
    from rsacfn.training.loop import train
    r = train(TrainConfig(data_path=str(tiny_corpus), wav_model=str(tiny_backbones['audio']),
                          text_model=str(tiny_backbones['text']), method='early_fusion', audio_max_lens=40_000,
                          text_max_lens=32, lr=1e-3, batch_size=16, val_batch_size=64, epochs=1, split='session',
                          n_folds=4, fold=3, select_epoch='dev', quiet=True, output_dir=str(tmp_path_factory.mktemp('runs')),
                          ver='si'))
    return Path(r['run_dir'])


def test_posthoc_tau_is_chosen_on_the_development_split_not_the_scored_one(session_run, monkeypatch):
    import rsacfn.evaluation.adjustment as adj
    from rsacfn.evaluation.scoring import config_split, read_config_corpus
    tables, table = [], adj.tau_table
    def recording(probs, labels, *a, **k):
        tables.append(np.asarray(labels).tolist())
        return table(probs, labels, *a, **k)
    monkeypatch.setattr(adj, 'tau_table', recording)
    scored, scores = [], adj._scores
    monkeypatch.setattr(adj, '_scores', lambda model, df, *a: (scored.append(df.segment_id.tolist()), scores(model, df, *a))[1])
    rec = adj.adjust_run(session_run, progress=False)
    cfg = adj._run_config(session_run)
    _, valid, dev = config_split(cfg, read_config_corpus(cfg), dev=True)
    # the probabilities tau is chosen from are the development split's, never the scored fold's
    assert scored[0] == dev.segment_id.tolist() and set(scored[0]).isdisjoint(valid.segment_id)
    assert tables == [dev.label.astype(int).tolist()]
    assert rec['held_out'] and rec['dev_segments'] == len(dev) and rec['tau'] in adj.TAUS


def test_a_model_folder_with_an_adjustment_applies_it_after_loading(model_dir, tiny_corpus, tmp_path):
    from rsacfn.data.kemdy import read_kemdy20
    from rsacfn.models.multimodal import MultiModel
    from rsacfn.recognizer import EmotionRecognizer
    plain = MultiModel.from_pretrained(model_dir)
    log_prior = np.log(np.array([.6, .1, .1, .05, .05, .05, .05]))
    plain.config.logit_adjustment = dict(tau=1.5, log_prior=log_prior.tolist())
    plain.save_pretrained(tmp_path/'adjusted')
    plain.config.logit_adjustment = None
    df = read_kemdy20(tiny_corpus).dropna(subset=['label']).head(6)
    from rsacfn.data.audio import load_audio
    batch = plain.collator()([dict(label=0, segment_id=s, audio=load_audio(p, 32_000), text=t)
                              for s, p, t in zip(df.segment_id, df.wav_path, df.text)])
    adjusted = MultiModel.from_pretrained(tmp_path/'adjusted').eval()
    with torch.no_grad():
        raw = plain.eval()(**{k: v for k, v in batch.items() if k not in ('labels', 'segment_ids')}).logits
        got = adjusted(**{k: v for k, v in batch.items() if k not in ('labels', 'segment_ids')}).logits
    torch.testing.assert_close(got, raw - 1.5 * torch.tensor(log_prior, dtype=raw.dtype))
    # the recognizer (as predict and evaluate) loads the folder: its probabilities are the adjusted ones
    table = EmotionRecognizer.from_pretrained(tmp_path/'adjusted', device='cpu')(df.wav_path.tolist(), texts=df.text.tolist())
    probs = table.filter(like='p_').to_numpy()
    np.testing.assert_allclose(probs, got.softmax(1).numpy(), atol=1e-5)
    # in training the logits stay the model's own (the loss sees what the head makes)
    inputs = {k: v for k, v in batch.items() if k not in ('labels', 'segment_ids')}
    with torch.no_grad():
        torch.manual_seed(0); np.random.seed(0); trained = adjusted.train()(**inputs).logits  # the same random draws
        torch.manual_seed(0); np.random.seed(0); torch.testing.assert_close(trained, plain.train()(**inputs).logits)


def test_rsacfn_adjust_writes_the_model_folder_and_says_what_changed(session_run, rsacfn_cli):
    r = rsacfn_cli('adjust', session_run, '--taus', '0,0.5,1', '--quiet')
    assert r.returncode == 0, r.stderr
    cfg = json.loads((session_run/'best'/'config.json').read_text())
    assert cfg['logit_adjustment']['tau'] in (0, .5, 1)
    assert f"logit adjustment tau = {cfg['logit_adjustment']['tau']:g}" in r.stdout and 'validation: macro_f1' in r.stdout
    bad = rsacfn_cli('adjust', session_run/'best')
    assert bad.returncode != 0 and 'not a finished run' in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    twice = rsacfn_cli('adjust', session_run, '--taus', '0.5,0.5')
    assert twice.returncode == 2 and 'is given twice' in twice.stderr and len(twice.stderr.splitlines()) == 1
    given = rsacfn_cli('adjust', session_run, '--tau', '1.5', '--quiet')
    assert given.returncode == 0 and 'tau = 1.5 (given' in given.stdout
    again = rsacfn_cli('adjust', session_run, '--taus', '0,0.5,1', '--quiet')  # what it replaces is said
    assert again.returncode == 0 and 'it replaces the adjustment the folder held: tau = 1.5' in again.stdout


def test_bad_taus_in_python_are_one_error_naming_taus(session_run):
    from rsacfn.evaluation.adjustment import adjust_run
    for taus, said in (([float('nan')], 'nan is not a number from 0 to 10'), ([], 'give at least one tau'),
                       (1.0, 'taus=1.0: give a list of numbers'), ([-1], '-1 is not a number from 0 to 10')):
        with pytest.raises(ValueError, match=said): adjust_run(session_run, taus=taus, progress=False)


def test_a_hand_edited_adjustment_is_refused_naming_what_changed(session_run, tiny_corpus, tmp_path, rsacfn_cli):
    import shutil
    from rsacfn.models.multimodal import MultiModel, check_model_folder
    folder = tmp_path/'best'; shutil.copytree(session_run/'best', folder)
    cfg = json.loads((folder/'config.json').read_text())
    tau = cfg['logit_adjustment']['tau']
    cfg['logit_adjustment']['tau'] = tau + 2
    (folder/'config.json').write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=rf'logit_adjustment.tau is {tau + 2} in config.json, {tau} when its weights'):
        check_model_folder(folder)
    cfg['logit_adjustment'] = 5
    (folder/'config.json').write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match='logit_adjustment 5'): MultiModel.from_pretrained(folder)
    r = rsacfn_cli('evaluate', folder, '--data_path', tiny_corpus, '--out', tmp_path/'ev')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "logit_adjustment 5 in the model's config.json is not what rsacfn adjust writes" in r.stderr


def test_a_runs_result_says_its_calibration_and_agreement_with_the_raters(session_run, tiny_corpus):
    from rsacfn.data.kemdy import read_kemdy20
    result = json.loads((session_run/'result.json').read_text())
    pred = pd.read_csv(session_run/'predictions.csv')
    votes = read_kemdy20(tiny_corpus).set_index('segment_id').loc[pred.segment_id, vote_columns()].to_numpy()
    p = pred.filter(like='p_').to_numpy()
    q = votes / votes.sum(1, keepdims=True)
    share = q[np.arange(len(q)), p.argmax(1)].mean()  # the raters who chose what the model predicts
    m = (p + q) / 2
    with np.errstate(divide='ignore', invalid='ignore'):
        kl = lambda a, b: np.nansum(np.where(a > 0, a * np.log2(a / b), 0), 1)
    jsd = (kl(p, m) / 2 + kl(q, m) / 2).mean()
    assert result['rated'] == len(pred)
    assert np.isclose(result['rater_share'], share) and np.isclose(result['rater_jsd'], jsd, atol=1e-6)
    conf, right = p.max(1), p.argmax(1) == pred.emotion.map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy()
    bins = np.minimum((conf * 15).astype(int), 14)
    ece = sum(abs(conf[bins == b].mean() - right[bins == b].mean()) * (bins == b).sum() for b in set(bins)) / len(p)
    assert np.isclose(result['ece'], ece)


def test_rsacfn_evaluate_writes_agreement_and_a_reliability_figure(session_run, tiny_corpus, tmp_path, rsacfn_cli):
    r = rsacfn_cli('evaluate', session_run/'best', '--data_path', tiny_corpus, '--out', tmp_path/'ev', '--quiet')
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path/'ev'/'metrics.json').read_text())
    assert 0 <= m['ece'] <= 1 and 0 <= m['rater_jsd'] <= 1 and 0 < m['rater_share'] <= 1
    assert (tmp_path/'ev'/'reliability.png').stat().st_size > 10_000
    tau = json.loads((session_run/'best'/'config.json').read_text())['logit_adjustment']['tau']
    assert m['logit_adjustment_tau'] == tau and f"logit adjustment applied: tau = {tau:g}" in r.stdout
    result = json.loads((session_run/'result.json').read_text())
    assert (result['label_mode'], result['loss']) == ('majority', 'ce')


def test_adjusting_a_run_that_trained_on_its_development_split_says_so(tiny_corpus, tiny_backbones, tmp_path):
    from rsacfn.evaluation.adjustment import adjust_run
    from rsacfn.training.loop import train
    r = train(TrainConfig(data_path=str(tiny_corpus), wav_model=str(tiny_backbones['audio']),
                          text_model=str(tiny_backbones['text']), method='text_only', text_max_lens=32, lr=1e-3,
                          batch_size=16, epochs=1, quiet=True, output_dir=str(tmp_path), ver='paper_way'))
    with pytest.warns(UserWarning, match=r'its select_epoch is valid.*part of its training data'):
        rec = adjust_run(r['run_dir'], progress=False)
    assert rec['held_out'] is False
