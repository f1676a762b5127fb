"`rsacfn.EmotionRecognizer` on a trained model folder, and the model card that folder carries."
import subprocess, sys
import numpy as np
import pandas as pd
import pytest
from rsacfn.config import TrainConfig
from rsacfn.data.readers import read_corpus
from rsacfn.training.loop import train
pytestmark = pytest.mark.slow  # trains a model


@pytest.fixture(scope='module')
def trained(tiny_corpus, tiny_backbones, tmp_path_factory):
    "One epoch of early fusion (both modalities) on the tiny corpus: its best/ folder and the run's predictions."
    out = tmp_path_factory.mktemp('runs')
    train(TrainConfig(method='early_fusion', data_path=str(tiny_corpus), epochs=1, lr=1e-3, batch_size=16, audio_max_lens=32000,
                      text_max_lens=64, wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']),
                      output_dir=str(out), ver='ef', quiet=True))
    return out/'ef'


def test_one_row_per_clip_with_its_path_transcript_emotion_and_probabilities(trained, tiny_corpus):
    from rsacfn import EmotionRecognizer
    recognize = EmotionRecognizer.from_pretrained(trained/'best', batch_size=3)
    pred = pd.read_csv(trained/'predictions.csv').set_index('segment_id')  # the trainer's own, on its validation split
    corpus = read_corpus(tiny_corpus)
    clips = corpus[corpus.segment_id.isin(pred.index)].head(7)
    assert len(clips) == 7
    rows = recognize(clips.wav_path.tolist(), texts=clips.text.tolist())
    names = recognize.model.config.class_names
    assert list(rows.columns) == ['path', 'transcript', 'emotion', *(f'p_{c}' for c in names)]
    assert rows.path.tolist() == clips.wav_path.tolist() and rows.transcript.tolist() == clips.text.tolist()
    assert np.allclose(rows[[f'p_{c}' for c in names]].sum(axis=1), 1, atol=1e-5)
    assert (rows.emotion == [names[i] for i in rows[[f'p_{c}' for c in names]].to_numpy().argmax(1)]).all()
    # the same probabilities as the trainer wrote for these segments (batched otherwise, so to padding's rounding)
    assert np.allclose(rows[[f'p_{c}' for c in names]].to_numpy(),
                       pred.loc[clips.segment_id, [f'p_{c}' for c in names]].to_numpy(), atol=1e-3)


def test_a_manifest_is_an_input_too(trained, tiny_corpus, tmp_path):
    from rsacfn.recognizer import EmotionRecognizer
    recognize = EmotionRecognizer.from_pretrained(trained/'best')
    clips = read_corpus(tiny_corpus).head(5)
    clips[['wav_path', 'text']].to_csv(tmp_path/'clips.csv', index=False)
    by_manifest = recognize(tmp_path/'clips.csv')
    by_list = recognize(clips.wav_path.tolist(), texts=clips.text.tolist())
    pd.testing.assert_frame_equal(by_manifest, by_list)


def test_a_fusion_model_without_texts_is_one_clear_line(trained, tiny_corpus):
    from rsacfn.recognizer import EmotionRecognizer
    recognize = EmotionRecognizer.from_pretrained(trained/'best')
    wavs = read_corpus(tiny_corpus).wav_path.head(2).tolist()
    with pytest.raises(ValueError) as e: recognize(wavs)
    assert str(e.value) == ("method 'early_fusion' reads each clip's transcript too: give texts=[...] (one per clip), "
                            "or a manifest with wav_path and text columns")
    with pytest.raises(ValueError, match='2 clips and 1 texts: give one transcript per clip'): recognize(wavs, texts=['x'])


def test_the_model_folder_carries_a_hub_model_card_with_its_scores(trained):
    from huggingface_hub import ModelCard
    import json
    card = ModelCard.load(trained/'best'/'README.md')
    best = json.loads((trained/'best'/'metrics.json').read_text())
    assert card.data.library_name == 'rsacfn' and 'early_fusion' in card.data.tags
    scores = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert scores['weighted F1'] == pytest.approx(best['weighted_f1'], abs=1e-4)  # the best epoch's own score
    assert scores['macro F1'] == pytest.approx(best['macro_f1'], abs=1e-4)
    for section in ('## Backbones', '## Training', '95 % bootstrap interval', '## Intended use and limits'):
        assert section in card.text
    assert 'stratified random split (20% validation, seed 42)' in card.text


def test_import_rsacfn_is_instant_and_offers_its_entry_points():
    code = ("import sys, rsacfn; print(sorted(set(rsacfn.__all__) - {'__version__'}), bool(rsacfn.__doc__), "
            "[m for m in ('torch', 'pandas', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['EmotionRecognizer', 'MultiModel', 'TrainConfig', 'experiment_config', 'run_sweep', 'train'] True []"
    import rsacfn
    from rsacfn.recognizer import EmotionRecognizer
    assert rsacfn.EmotionRecognizer is EmotionRecognizer
    with pytest.raises(AttributeError, match="no attribute 'Recognizer'"): _ = rsacfn.Recognizer
