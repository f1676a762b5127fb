"Dataset and collator: lazy decoding, dynamic padding to the batch's longest, masks, truncation."
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler
from conftest import word_tokenizer
from rsacfn.data.batching import Collator, EmotionDataset
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.labels import sample_weights
from rsacfn.data.splits import split_corpus


@pytest.fixture(scope='module')
def split(tiny_corpus):
    return split_corpus(read_kemdy20(tiny_corpus))


def test_dynamic_padding_and_masks(split):
    train, _ = split
    tok = word_tokenizer(train.text)
    items = [EmotionDataset(train)[i] for i in range(6)]
    batch = Collator(tok)(items)
    lens = [len(it['audio']) for it in items]
    assert batch['input_values'].shape == (6, max(lens)) and max(lens) < 96_000
    assert batch['audio_attention_mask'].sum(1).tolist() == lens
    for i, n in enumerate(lens):
        x = batch['input_values'][i]
        assert torch.all(x[n:] == 0)
        assert abs(x[:n].mean().item()) < 1e-4 and abs(x[:n].std(unbiased=False).item() - 1) < 1e-3
    ids = [tok(t)['input_ids'] for t in train.text[:6]]
    assert batch['input_ids'].shape == (6, max(map(len, ids)))
    assert batch['text_attention_mask'].sum(1).tolist() == [len(i) for i in ids]
    assert batch['labels'].tolist() == train.label[:6].tolist()
    assert batch['segment_ids'] == train.segment_id[:6].tolist()


def test_truncation(split):
    train, _ = split
    tok = word_tokenizer(train.text)
    ds = EmotionDataset(train, audio_max_lens=8000)
    items = [ds[i] for i in range(4)]
    assert all(len(it['audio']) == 8000 for it in items)  # every demo segment is longer than 0.5 s
    batch = Collator(tok, audio_max_lens=8000, text_max_lens=3)(items)
    assert batch['input_values'].shape == (4, 8000) and batch['input_ids'].shape[1] == 3
    # the collator truncates arrays it is handed too
    assert Collator(tok, audio_max_lens=100)([dict(items[0], audio=np.ones(500))])['input_values'].shape == (1, 100)


def test_static_padding_for_benchmarks(split):
    train, _ = split
    batch = Collator(word_tokenizer(train.text), audio_max_lens=40_000, text_max_lens=32, pad_to_max=True)(
        [EmotionDataset(train, audio_max_lens=40_000)[i] for i in range(3)])
    assert batch['input_values'].shape == (3, 40_000) and batch['input_ids'].shape == (3, 32)


def test_audio_padded_up_to_a_multiple(split):
    "audio_pad_multiple pads each batch's audio up to a whole multiple (fewer distinct shapes for a GPU), never past audio_max_lens; the real samples and masks are those of plain dynamic padding."
    train, _ = split
    items = [EmotionDataset(train)[i] for i in range(3)]
    plain = Collator(modality='audio')(items)
    n = plain['input_values'].shape[1]
    rounded = Collator(modality='audio', audio_pad_multiple=16000)(items)
    assert rounded['input_values'].shape == (3, -(-n // 16000) * 16000) and rounded['input_values'].shape[1] > n
    assert torch.equal(rounded['input_values'][:, :n], plain['input_values']) and torch.all(rounded['input_values'][:, n:] == 0)
    assert torch.equal(rounded['audio_attention_mask'].sum(1), plain['audio_attention_mask'].sum(1))
    capped = Collator(modality='audio', audio_max_lens=n + 1, audio_pad_multiple=16000)(items)
    assert capped['input_values'].shape == (3, n + 1)  # up to audio_max_lens, not past it
    with pytest.raises(ValueError, match='audio_pad_multiple=0'): Collator(modality='audio', audio_pad_multiple=0)(items)


def test_single_modalities(split):
    train, _ = split
    a = EmotionDataset(train, modality='audio')[0]; t = EmotionDataset(train, modality='text')[0]
    assert 'text' not in a and 'audio' not in t
    batch = Collator()([a])
    assert set(batch) == {'labels', 'segment_ids', 'input_values', 'audio_attention_mask', 'dims'}
    assert np.allclose(batch['dims'].numpy(), (train[['valence', 'arousal']].values[:1] - 3) / 2)  # the raters' means on [-1, 1]
    with pytest.raises(ValueError, match='needs a tokenizer'): Collator()([t])
    with pytest.raises(ValueError, match='modality must be one of'): EmotionDataset(train, modality='video')


def test_dataset_refuses_tied_votes(tiny_corpus):
    with pytest.raises(ValueError, match='split it with `split_corpus` first'): EmotionDataset(read_kemdy20(tiny_corpus))


def test_loader_with_weighted_sampler_balances_classes(split):
    train, _ = split
    w = sample_weights(train.label.astype(int))
    sampler = WeightedRandomSampler(w, num_samples=4000, replacement=True, generator=torch.Generator().manual_seed(0))
    drawn = np.bincount(train.label.astype(int).values[list(sampler)], minlength=7)
    assert drawn.min() > 0.6 * drawn.mean()  # about equal despite neutral being half the data
    loader = DataLoader(EmotionDataset(train, audio_max_lens=16000), batch_size=8, collate_fn=Collator(word_tokenizer(train.text), 16000))
    n = sum(len(b['labels']) for b in loader)
    assert n == len(train)


def test_collator_batches_only_its_modality(split):
    train, _ = split
    items = [EmotionDataset(train)[i] for i in range(2)]
    audio_only = Collator(modality='audio')(items)  # transcripts in the items are ignored, no tokenizer needed
    assert 'input_ids' not in audio_only and audio_only['input_values'].shape[0] == 2
    text_only = Collator(word_tokenizer(train.text), modality='text')(items)
    assert 'input_values' not in text_only and text_only['input_ids'].shape[0] == 2
    with pytest.raises(KeyError, match="holds no 'text'|hold no 'text'"):
        Collator(word_tokenizer(train.text), modality='both')([{k: v for k, v in it.items() if k != 'text'} for it in items])


def test_a_feature_extractor_for_another_rate_is_refused():
    from transformers import Wav2Vec2FeatureExtractor
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=8000, padding_value=0.0, do_normalize=True)
    with pytest.raises(ValueError, match='sampling rate'):  # the waveforms are 16 kHz: never fed to an 8 kHz extractor silently
        Collator(feature_extractor=fe, modality='audio')([dict(audio=np.zeros(16000, np.float32), label=0, segment_id='a')])
