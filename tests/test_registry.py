"A method of one's own: one class and its registration (written here, nowhere else) runs through train, predict, a sweep, the table and the figures."
import pytest
pytestmark = pytest.mark.slow  # `make test-quick` leaves this file out
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd
from rsacfn.data.kemdy import read_kemdy20
from rsacfn.models.multimodal import MultiModel
from rsacfn.evaluation.inference import predict
from rsacfn.models.registry import METHODS
from rsacfn.config import TrainConfig
from rsacfn.training.loop import train

os.environ['HF_HUB_OFFLINE'] = '1'
BIN = Path(sys.executable).parent
PLUGIN = '''
import torch
from torch import nn
from rsacfn.models.layers import FeatureSelfAttention
from rsacfn.models.heads import FusionHead
from rsacfn.models.registry import register_head

@register_head('gated_fusion', 'early', batch_size=8, lr=1e-3, attention=('gate',))
class GatedFusion(FusionHead):
    "x = LN(D)(cat[a, t]); a feature self-attention gates x; logits = Linear(D, C)(x * sigmoid(y)); returns the gate's map."
    def __init__(self, audio_dim, text_dim, num_classes=7, gate_hidden:int=4):
        super().__init__()
        D = audio_dim + text_dim
        self.norm, self.attention, self.classifier = nn.LayerNorm(D), FeatureSelfAttention(gate_hidden), nn.Linear(D, num_classes)
    def forward(self, audio, text, audio_mask=None, text_mask=None):
        x = self.norm(torch.cat([audio, text], 1))
        y, attn = self.attention(x)
        return self.classifier(x * torch.sigmoid(y)), {'gate': attn}
'''


def test_a_registered_head_runs_through_everything(tmp_path, tiny_corpus, tiny_backbones):
    plugin = tmp_path/'gated.py'; plugin.write_text(PLUGIN)
    models = dict(wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']))
    r = train(TrainConfig(data_path=str(tiny_corpus), **models, plugins=[str(plugin)], method='gated_fusion', head_sizes={'gate_hidden': 3},
                          epochs=1, audio_max_lens=32_000, text_max_lens=64, output_dir=str(tmp_path/'runs'), ver='g', quiet=True))
    assert r['method'] == 'gated_fusion' and METHODS['gated_fusion'].attention == ('gate',)
    config = json.loads((tmp_path/'runs'/'g'/'config.json').read_text())
    assert (config['batch_size'], config['lr'], config['head_sizes']) == (8, 1e-3, {'gate_hidden': 3})  # the registration's recipe
    model = MultiModel.from_pretrained(tmp_path/'runs'/'g'/'best')
    df = read_kemdy20(tiny_corpus).head(4)
    pred = predict(model, df.wav_path.tolist(), df.text.tolist())
    assert len(pred) == 4 and abs(pred.filter(like='p_').sum(axis=1) - 1).max() < 1e-5

    out = tmp_path/'sweep'
    sweep = subprocess.run([str(BIN/'rsacfn'), 'sweep', str(out), '--methods', 'text_only,gated_fusion', '--set', f'plugins=["{plugin}"]',
                            '--set', 'demo_size=tiny', '--set', 'epochs=1', '--set', 'head_sizes={"gate_hidden": 3}',
                            '--set', f'wav_model={models["wav_model"]}', '--set', f'text_model={models["text_model"]}'],
                           capture_output=True, text=True, timeout=900)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    table = pd.read_csv(out/'f1_table.csv')
    assert table.method.tolist() == ['text_only', 'gated_fusion'] and table.failed.sum() == 0
    assert table.set_index('method').fusion['gated_fusion'] == 'early' and '| gated_fusion | early |' in (out/'f1_table.md').read_text()
    assert (out/'figures'/'f1_bars.png').is_file() and (out/'figures'/'gated_fusion_attention_gate.png').is_file()
    assert json.loads((out/'runs'/'gated_fusion-seed42'/'config.json').read_text())['head_sizes'] == {'gate_hidden': 3}


def test_a_registered_head_that_is_not_a_fusion_head_is_refused_where_a_run_starts(tmp_path):
    "A plugin that registers something other than a FusionHead subclass is one clear error when the configuration is resolved."
    import pytest
    from rsacfn.training.presets import resolve_config
    plugin = tmp_path/'not_a_head.py'
    plugin.write_text("from rsacfn.models.registry import register_head\n@register_head('not_a_head')\nclass NotAHead: pass\n")
    try:
        with pytest.raises(ValueError, match="its head .* is not a `rsacfn.models.heads.FusionHead`"):
            resolve_config(TrainConfig(method='not_a_head', plugins=[str(plugin)]))
    finally: METHODS.pop('not_a_head', None)
