"The CUDA paths, where a GPU is visible (skipped elsewhere, so in CI): bfloat16 and float16 autocast, resume, no waits."
import os
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from rsacfn.config import METRICS, TrainConfig
from rsacfn.training.loop import train

os.environ['HF_HUB_OFFLINE'] = '1'
pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device here; the CPU tests cover the logic'),
              pytest.mark.slow]


@pytest.fixture
def cuda_setup(tiny_corpus, tiny_backbones, tmp_path):
    return dict(data_path=str(tiny_corpus), wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']), method='early_fusion',
                audio_max_lens=40_000, text_max_lens=64, lr=1e-3, batch_size=16, quiet=True, output_dir=str(tmp_path), device='cuda')


def _watch_dtypes(monkeypatch):
    "The dtypes a wav2vec 2.0 layer's output takes in every forward, and the device its weights are on."
    import rsacfn.training.loop as T
    seen, orig = set(), T.setup
    def watched(*a, **k):
        s = orig(*a, **k)
        s.model.audio_encoder.encoder.layers[0].feed_forward.intermediate_dense.register_forward_hook(lambda m, i, o: seen.add((o.dtype, o.device.type)))
        seen.add(('pinned', s.train_loader.pin_memory, s.valid_loader.pin_memory))
        enc = s.model.audio_encoder  # the step reads nothing back (`keep_on_device`)
        seen.add(('on device', '_mask_hidden_states' in vars(enc), enc.config._attn_implementation))
        return s
    monkeypatch.setattr(T, 'setup', watched)
    return seen


ON_DEVICE = ('on device', True, 'rsacfn_sdpa')


@pytest.mark.skipif(not torch.cuda.is_available() or not torch.cuda.is_bf16_supported(), reason='no bfloat16 GPU here')
def test_use_amp_trains_in_bfloat16_without_a_scaler_where_the_gpu_has_it(cuda_setup, monkeypatch):
    from rsacfn.models.multimodal import MultiModel
    seen = _watch_dtypes(monkeypatch)
    r = train(TrainConfig(**cuda_setup, ver='bf16', epochs=2, keep_resume_state=True))
    assert seen == {(torch.bfloat16, 'cuda'), ('pinned', True, True), ON_DEVICE}, seen
    rows = pd.read_json(Path(r['run_dir'])/'metrics.jsonl', lines=True)
    assert np.isfinite(rows[list(METRICS)].values).all() and rows.train_loss.iloc[1] < rows.train_loss.iloc[0]
    state = torch.load(Path(r['run_dir'])/'last.pt', weights_only=True)
    assert state['scaler'] is None and state['precision'] == 'bf16'
    assert {p.dtype for p in MultiModel.from_pretrained(Path(r['run_dir'])/'best').parameters()} == {torch.float32}


def test_amp_dtype_float16_trains_with_a_scaler_and_saves_float32_weights(cuda_setup, monkeypatch):
    from rsacfn.models.multimodal import MultiModel
    seen = _watch_dtypes(monkeypatch)
    r = train(TrainConfig(**cuda_setup, ver='fp16', amp_dtype='float16', epochs=2, keep_resume_state=True))
    # every forward ran on the GPU in float16; batches came from pinned memory
    assert seen == {(torch.float16, 'cuda'), ('pinned', True, True), ON_DEVICE}, seen
    rows = pd.read_json(Path(r['run_dir'])/'metrics.jsonl', lines=True)
    assert np.isfinite(rows[list(METRICS)].values).all() and rows.train_loss.iloc[1] < rows.train_loss.iloc[0]
    state = torch.load(Path(r['run_dir'])/'last.pt', weights_only=True)
    assert state['scaler'] is not None and state['scaler']['scale'] > 0  # Accelerate's float16 GradScaler was in use and saved
    assert {p.dtype for p in MultiModel.from_pretrained(Path(r['run_dir'])/'best').parameters()} == {torch.float32}


def test_without_use_amp_cuda_trains_in_float32(cuda_setup, monkeypatch):
    seen = _watch_dtypes(monkeypatch)
    r = train(TrainConfig(**cuda_setup, ver='fp32', use_amp=False, epochs=1, keep_resume_state=True))
    assert seen == {(torch.float32, 'cuda'), ('pinned', True, True), ON_DEVICE}, seen
    assert torch.load(Path(r['run_dir'])/'last.pt', weights_only=True)['scaler'] is None


def test_a_resumed_float16_run_restores_the_scaler(cuda_setup):
    "Resume on the GPU: the scaler's scale and step counters come back from last.pt; the run ends as an uninterrupted one does."
    half = dict(cuda_setup, amp_dtype='float16')
    whole = train(TrainConfig(**half, ver='whole', epochs=2, keep_resume_state=True))
    train(TrainConfig(**half, ver='resumed', epochs=1, keep_resume_state=True))
    resumed = train(TrainConfig(**half, ver='resumed', epochs=2, resume=True, keep_resume_state=True))
    sw, sr = (torch.load(Path(r['run_dir'])/'last.pt', weights_only=True) for r in (whole, resumed))
    assert sr['scaler'] == sw['scaler'], (sr['scaler'], sw['scaler'])
    # GPU kernels (cuDNN convolutions, atomics) need not be bit-reproducible: the metrics agree closely, not exactly
    for k in METRICS: assert abs(resumed[k] - whole[k]) <= 0.05, (k, resumed[k], whole[k])
