"Figures fit for a paper: one colour scale across a figure's emotion panels, labelled axes, whole epochs, titles that say what is drawn, Korean text."
import warnings
import numpy as np
import pandas as pd
import pytest
from rsacfn.evaluation.figures import plot_attention_by_emotion, plot_curves, plot_f1_bars

NAMES = ['neutral', 'happy', 'angry', 'surprise', 'sad', 'fear', 'disgust']


def test_the_emotion_panels_share_one_colour_scale_and_say_which_features_are_audio_and_text():
    rng = np.random.default_rng(0)
    maps = rng.random((7, 12, 12)) * np.arange(1, 8)[:, None, None]  # each emotion on a range of its own
    fig = plot_attention_by_emotion(maps, NAMES, boundary=5, title='rsa: features attention')
    panels = [ax for ax in fig.axes if ax.collections and ax.get_title()]
    assert len(panels) == 7
    assert len({ax.collections[0].get_clim() for ax in panels}) == 1  # one scale for all
    assert panels[0].collections[0].get_clim() == pytest.approx((maps.min(), maps.max()))
    assert sum(ax.get_label() == '<colorbar>' for ax in fig.axes) == 1  # one colour bar
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ['audio', 'text']
    assert panels[0].get_ylabel() == 'attending feature' and panels[-1].get_xlabel() == 'attended feature'


def test_curves_of_one_epoch_have_whole_epoch_ticks_only():
    history = pd.DataFrame(dict(epoch=[1], train_loss=[1.2], weighted_f1=[.5], macro_f1=[.4], uar=[.4]))
    fig = plot_curves(history, 'rsa_cfn, seed 42')
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_the_bars_are_named_by_metric_and_a_korean_title_renders():
    table = pd.DataFrame(dict(method=['text_only', 'rsa_cfn'], weighted_f1_mean=[.7, .9], weighted_f1_std=[.01, .02],
                              macro_f1_mean=[.6, .8], macro_f1_std=[.02, .01]))
    fig = plot_f1_bars(table, '방법별 F1 (weighted and macro F1 per method)')
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ['weighted F1', 'macro F1']
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # "Glyph 48169 missing from font(s) DejaVu Sans" would be a UserWarning
        fig.canvas.draw()
