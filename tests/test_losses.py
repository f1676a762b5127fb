"Minority classes and soft labels: each loss's gradient as its formula says, and soft labels reaching training."
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from rsacfn.config import LOSSES, TrainConfig
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.labels import LABEL2ID, soft_targets, vote_columns
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


def test_soft_labels_reach_the_training_step(tiny_corpus, tiny_backbones, tmp_path, monkeypatch):
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
                      ver='soft', label_mode='soft')
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
