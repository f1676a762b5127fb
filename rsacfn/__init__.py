"""rsacfn: the Residual Self-Attention Cross Fusion Network (RSA-CFN) and every baseline of its paper, for emotion
recognition from Korean speech and its transcripts (KEMDy20, KEMDy19).

The main entry points, each loaded when first used (importing rsacfn itself loads nothing heavy):

- `EmotionRecognizer`: a trained model folder in, one row of emotions per clip out (`rsacfn.recognizer`)
- `TrainConfig` and `train`: one training run (`rsacfn.config`, `rsacfn.training.loop`)
- `experiment_config`: a run's configuration from a preset, e.g. `experiment_config(preset='demo', method='rsa_cfn')`
  (the demo corpus and tiny offline backbones, written once) (`rsacfn.training.presets`)
- `run_sweep`: every method, seed and fold, then the F1 table and figures (`rsacfn.experiments.sweep`)
- `MultiModel`: the model itself, a Hugging Face `PreTrainedModel` (`rsacfn.models`)

The same from a shell: `rsacfn train`, `rsacfn sweep`, `rsacfn predict`, `rsacfn evaluate` (`rsacfn --help`).
"""
__version__ = "0.1.0"

# where each entry point lives; `rsacfn.X` imports its module on first use (PEP 562)
_LAZY = {'EmotionRecognizer': 'rsacfn.recognizer', 'TrainConfig': 'rsacfn.config', 'train': 'rsacfn.training.loop',
         'run_sweep': 'rsacfn.experiments.sweep', 'MultiModel': 'rsacfn.models.multimodal', 'experiment_config': 'rsacfn.training.presets'}
__all__ = ['__version__', *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # loaded once
        return value
    raise AttributeError(f"module 'rsacfn' has no attribute {name!r}")


def __dir__(): return sorted([*globals(), *_LAZY])
