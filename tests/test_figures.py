"""Figures fit for a paper: methods by their paper names, axes and legends in a paper's words, what every error bar is,
which seed a one-model figure shows, attention on a scale where uniform looks uniform, no empty group, Korean text."""
import re
import warnings
import numpy as np
import pandas as pd
import pytest
import rsacfn.models.heads  # noqa: F401  registers the paper's methods, with the names the paper writes
from rsacfn.evaluation.figures import (attention_figures, p_text, plot_attention_by_emotion, plot_curves, plot_f1_bars,
                                       plot_intervals, plot_reliance, plot_reliance_sweep)
from rsacfn.experiments.table import summarize, table_markdown

NAMES = ['neutral', 'happy', 'angry', 'surprise', 'sad', 'fear', 'disgust']


def texts(ax) -> list[str]: return [t.get_text() for t in ax.get_xticklabels()]


def legend(x) -> list[str]:
    "The entries of an axes' legend, or of a figure's legend itself."
    x = x.get_legend() if hasattr(x, 'get_legend') else x
    return [t.get_text() for t in x.get_texts()] if x else []


def test_the_emotion_panels_share_one_colour_scale_ticked_at_feature_indices():
    rng = np.random.default_rng(0)
    maps = rng.random((7, 12, 12)) * np.arange(1, 8)[:, None, None]  # each emotion on a range of its own
    fig = plot_attention_by_emotion(maps, NAMES, boundary=5, title='RSA: features attention')
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 7
    assert len({id(ax.images[0].norm) for ax in panels}) == 1  # one scale for all
    norm = panels[0].images[0].norm
    assert (norm.vmin, norm.vcenter, norm.vmax) == pytest.approx((0, 1 / 12, maps.max()))  # from 0; uniform mid-scale
    assert sum(ax.get_label() == '<colorbar>' for ax in fig.axes) == 1  # one colour bar
    fig.canvas.draw()
    ticks = [t for t in texts(panels[-1]) if t]
    assert len(ticks) >= 3 and all(t.isdigit() and int(t) < 12 for t in ticks), ticks  # feature indices
    assert panels[0].get_ylabel() == 'attending feature'
    assert panels[-1].get_xlabel() == 'attended feature (audio 0-4 | text 5-11)'


def test_uniform_attention_is_drawn_as_uniform_and_a_pattern_as_a_pattern():
    "hybrid_fusion's maps span 0.028-0.036 around 1/32: all of it must look like one colour, uniform's."
    rng = np.random.default_rng(1)
    flat = 1 / 32 + rng.uniform(-.003, .005, (7, 32, 32))
    fig = plot_attention_by_emotion(flat, NAMES, title='Hybrid Fusion, seed 42: audio attention')
    im = next(ax for ax in fig.axes if ax.images).images[0]
    colours, white = im.cmap(im.norm(flat[0])), np.array(im.cmap(im.norm(1 / 32)))
    assert np.abs(colours - white).max() < .2  # near the colour of uniform attention everywhere
    assert np.abs(white[:3] - 1).max() < .1  # which is white (neutral) on the diverging scale
    title = fig.get_suptitle()
    assert 'uniform attention (1/32)' in title and re.search(r'largest deviation .*: 1[0-9] %', title), title
    peaked = flat.copy(); peaked[:, :, 3] = .5  # every feature attends to feature 3: a pattern
    im = next(ax for ax in plot_attention_by_emotion(peaked, NAMES).axes if ax.images).images[0]
    assert np.abs(np.array(im.cmap(im.norm(.5))) - white).max() > .5


def test_attention_titles_name_the_method_as_the_paper_does_and_the_seed():
    rng = np.random.default_rng(2)
    A = rng.dirichlet(np.ones(8), (3, 8))
    arrays = dict(labels=np.array([0, 1, 1]), class_names=np.array(NAMES[:3]), features_by_emotion=A,
                  features_profile=rng.dirichlet(np.ones(8), 3), features_boundary=np.array(4))
    figs = attention_figures(arrays, 'rsa', 'seed 43, validation split')
    assert figs['attention_features'].get_suptitle().startswith('RSA, seed 43, validation split: features attention')
    profile = figs['attention_profile'].axes[0]
    assert profile.get_title() == 'RSA, seed 43, validation split: attention each feature receives'
    assert 'uniform (1/8)' in legend(profile)


def _sig(one_seed:bool) -> pd.DataFrame:
    "A significance table of four methods against early_fusion (weighted F1), as `significance` writes it."
    methods = ['speech_only', 'early_fusion', 'rsa_cfn', 'hybrid_fusion']
    mean, p, mp = np.array([.78, .88, .90, .93]), [2 / 2001, 1., .0123, 2 / 2001], [.0008, 1., .2, .024]
    t = pd.DataFrame(dict(method=methods, B=1000, weighted_f1_mean=mean, weighted_f1_boot_low=mean - .03,
                          weighted_f1_boot_high=mean + .03, weighted_f1_seed_low=mean - .05,
                          weighted_f1_seed_high=mean + .05, diff_weighted_f1=mean - .88,
                          diff_weighted_f1_low=mean - .9, diff_weighted_f1_high=mean - .86, p_weighted_f1=p,
                          mdiff_weighted_f1=mean - .88, mdiff_weighted_f1_low=mean - .92,
                          mdiff_weighted_f1_high=mean - .84, mp_weighted_f1=mp))
    if one_seed:
        t.loc[:, [c for c in t if '_seed_' in c or c.startswith(('mdiff', 'mp_'))]] = np.nan
    return t


def test_p_values_are_written_one_way_to_three_decimals():
    assert [p_text(p, 2 / 2001) for p in (2 / 2001, .0123, 1.)] == ['p < 0.001', 'p = 0.012', 'p = 1.000']
    assert [p_text(p, 2 / 401) for p in (2 / 401, .0312, np.nan)] == ['p ≤ 0.005', 'p = 0.031', '']  # B = 200
    assert p_text(.0004) == 'p < 0.001'


def test_intervals_use_paper_names_readable_p_values_and_say_what_each_interval_is():
    fig = plot_intervals(_sig(one_seed=False), 'weighted_f1', 'early_fusion', 'Weighted F1 per method')
    left, right, column = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == ['Hybrid Fusion', 'RSA-CFN', 'Early Fusion', 'Speech Only']
    assert (left.get_xlabel(), right.get_xlabel()) == ('Weighted F1', 'Weighted F1 minus Early Fusion')
    ps = column.texts
    written = {t.get_text() for t in ps}
    assert {'p < 0.001', 'p = 0.012', 'p = 0.200', 'p = 0.024', '(baseline)'} <= written, written
    assert not [w for w in written if re.search(r'p[<=≤]|\d{4}', w)], written  # spaced, three decimals at most
    assert all(t.get_fontsize() >= 8 for t in ps)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ps]
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]  # no p on another
    assert all(fig.bbox.contains(b.x1, b.y1) and fig.bbox.contains(b.x0, b.y0) for b in boxes)  # none cut off
    entries = legend(fig.legends[0])
    assert len(entries) == 4 and '95 % interval over validation segments (percentile bootstrap, B = 1,000)' in entries
    assert '95 % interval over seeds and folds (t)' in entries
    low = min(ax.xaxis.label.get_window_extent().y0 for ax in (left, right))
    assert low - fig.legends[0].get_window_extent().y1 < .3 * fig.dpi  # the legend right under the axes: no empty band


def test_a_one_seed_sweeps_intervals_list_only_what_is_drawn_and_say_so():
    fig = plot_intervals(_sig(one_seed=True), 'weighted_f1', 'early_fusion', 'Weighted F1 per method')
    entries = legend(fig.legends[0])
    assert len(entries) == 2 and not [e for e in entries if 'seeds' in e or 'paired t' in e], entries
    assert 'one run per method: no interval over seeds and folds' in fig.get_suptitle()
    assert {t.get_text() for t in fig.axes[2].texts} == {'p, models', 'p < 0.001', 'p = 0.012', '(baseline)'}


def test_curves_name_their_metrics_and_have_whole_epoch_ticks_only():
    history = pd.DataFrame(dict(epoch=[1], train_loss=[1.2], weighted_f1=[.5], macro_f1=[.4], uar=[.4]))
    fig = plot_curves(history, 'RSA-CFN, seed 42')
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert legend(fig.axes[1]) == ['Weighted F1', 'Macro F1', 'UAR']
    assert fig.axes[1].get_ylabel() == 'score on the validation split'


def test_the_bars_use_paper_names_say_what_their_error_bars_are_and_a_korean_title_renders():
    table = pd.DataFrame(dict(method=['text_only', 'rsa_cfn', 'my_plugin'], runs=3, failed=0,
                              weighted_f1_mean=[.7, .9, .8], weighted_f1_std=[.01, .02, .03],
                              macro_f1_mean=[.6, .8, .7], macro_f1_std=[.02, .01, .03]))
    fig = plot_f1_bars(table, '방법별 F1 (weighted and macro F1 per method)', 'n = 3 seeds (42, 43, 44)')
    ax = fig.axes[0]
    assert legend(ax) == ['Weighted F1', 'Macro F1']
    assert texts(ax) == ['Text Only', 'RSA-CFN', 'my_plugin']  # a method registered without a title: its name
    assert ax.get_title() == 'bars: mean over n = 3 seeds (42, 43, 44); error bars: ± 1 standard deviation'
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # "Glyph 48169 missing from font(s) DejaVu Sans" would be a UserWarning
        fig.canvas.draw()
    one = plot_f1_bars(table.assign(runs=1, weighted_f1_std=np.nan, macro_f1_std=np.nan), 'one seed').axes[0]
    assert one.get_title() == 'a single run per method: no error bars'
    assert [c.errorbar for c in one.containers] == [None, None]  # and none drawn, not even at zero height


def test_reliance_draws_no_empty_group_and_shows_a_zero_as_zero():
    conds = ['intact', 'audio removed', 'text removed']
    result = dict(conditions=conds, group_sizes={'words only': 21, 'neither': 5, 'neutral': 79, 'voice only': 0},
                  by_group={c: {'words only': .5, 'neither': 0., 'neutral': 1., 'voice only': np.nan} for c in conds},
                  per_class={c: {'neutral': .9, 'happy': .5} for c in conds})
    fig = plot_reliance(result, 'Early Fusion, seed 42: intact, and with one modality replaced by its mean')
    groups = fig.axes[0]
    assert texts(groups) == ['words only\n(n=21)', 'neither\n(n=5)', 'neutral\n(n=79)']  # no bars for no segments
    assert [t.get_text() for t in groups.texts] == ['0', '0', '0']  # neither's three bars at zero, labelled


def test_the_sweeps_reliance_uses_paper_names_and_says_what_it_is_over():
    drops = pd.DataFrame(dict(method=['early_fusion'] * 3 + ['rsa_cfn'] * 3, drop_audio=[.1, .2, .15, .3, .2, .25],
                              drop_text=[.05, .1, .08, .1, .12, .11]))
    ax = plot_reliance_sweep(drops, 'Macro F1 lost without each modality', 'n = 3 seeds (42, 43, 44)').axes[0]
    assert texts(ax) == ['Early Fusion', 'RSA-CFN']
    assert ax.get_title() == 'bars: mean over n = 3 seeds (42, 43, 44); error bars: ± 1 standard deviation'


def test_the_sweep_table_says_its_class_columns_count_predictions_and_names_methods_as_the_paper_does():
    runs = pd.DataFrame([dict(method='rsa_cfn', status='ok', error='', weighted_f1=.9, macro_f1=.5, uar=.4, accuracy=.9,
                              pred_counts=[3, 1, 0, 0, 0, 0, 1], label_transform=True, setting='a')])
    md = table_markdown(summarize(runs))
    header = next(line for line in md.splitlines() if line.startswith('| method'))
    assert '| predicted neutral | predicted happy |' in header and '| neutral |' not in header
    assert '"predicted <class>": how many validation segments a run predicts as that class' in md
    assert '| RSA-CFN (`rsa_cfn`) | early |' in md
