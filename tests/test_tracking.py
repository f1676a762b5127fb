"`report_to`: a run's configuration, per-step loss and per-epoch metrics reach TensorBoard and MLflow, read back with their own readers."
import json
import pytest
from rsacfn.config import TrainConfig
from rsacfn.training.loop import train
pytestmark = pytest.mark.slow  # trains


def tiny(tiny_corpus, tiny_backbones, out, **kw):
    return TrainConfig(method='text_only', data_path=str(tiny_corpus), epochs=2, lr=1e-3, batch_size=16, text_max_lens=64,
                       wav_model=str(tiny_backbones['audio']), text_model=str(tiny_backbones['text']), output_dir=str(out),
                       log_every=1, quiet=True, **kw)


def history(run):
    return [json.loads(line) for line in (run/'metrics.jsonl').read_text().splitlines()]


def test_tensorboard_gets_every_steps_loss_every_epochs_metrics_and_the_configuration(tiny_corpus, tiny_backbones, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    result = train(tiny(tiny_corpus, tiny_backbones, tmp_path/'runs', ver='tb', report_to='tensorboard'))
    logs = tmp_path/'runs'/'tensorboard'/'tb'
    ea = EventAccumulator(str(logs)); ea.Reload()
    rows = history(tmp_path/'runs'/'tb')
    steps = [e.step for e in ea.Scalars('train/loss')]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) % 2 == 0 and len(steps) >= 4  # every step of both epochs
    losses = [e.value for e in ea.Scalars('train/loss')]
    half = len(steps) // 2  # each epoch's mean loss is the mean of its steps' (equal batches but the last)
    assert min(losses[:half]) <= rows[0]['train_loss'] <= max(losses[:half])
    f1 = ea.Scalars('epoch/weighted_f1')
    assert [e.step for e in f1] == [1, 2] and [e.value for e in f1] == pytest.approx([r['weighted_f1'] for r in rows])
    assert result['weighted_f1'] == pytest.approx(max(e.value for e in f1))
    # the configuration as hyper-parameters: TensorBoard's hparams plugin reads them from their own events
    from tensorboard.plugins.hparams import plugin_data_pb2
    [folder] = [p.parent for p in logs.glob('*/events.out.tfevents.*')]
    hp = EventAccumulator(str(folder)); hp.Reload()
    content = hp.SummaryMetadata('_hparams_/session_start_info').plugin_data.content
    values = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert values['method'].string_value == 'text_only' and values['lr'].number_value == pytest.approx(1e-3)
    assert values['epochs'].number_value == 2 and values['head_sizes'].string_value == '{}'


def test_mlflow_gets_the_same_into_a_local_file_store(tiny_corpus, tiny_backbones, tmp_path, monkeypatch):
    monkeypatch.delenv('MLFLOW_TRACKING_URI', raising=False); monkeypatch.setenv('MLFLOW_ALLOW_FILE_STORE', 'true')
    from mlflow.tracking import MlflowClient
    train(tiny(tiny_corpus, tiny_backbones, tmp_path/'runs', ver='ml', report_to='mlflow'))
    client = MlflowClient(tracking_uri=(tmp_path/'runs'/'mlruns').as_uri())
    [run] = client.search_runs([client.get_experiment_by_name('rsacfn').experiment_id])
    assert run.info.run_name == 'ml' and run.info.status == 'FINISHED'
    assert run.data.params['method'] == 'text_only' and float(run.data.params['lr']) == 0.001
    rows = history(tmp_path/'runs'/'ml')
    f1 = client.get_metric_history(run.info.run_id, 'epoch/weighted_f1')
    assert sorted((m.step, m.value) for m in f1) == [(r['epoch'], pytest.approx(r['weighted_f1'])) for r in rows]
    loss = client.get_metric_history(run.info.run_id, 'train/loss')
    assert sorted(m.step for m in loss) == list(range(1, len(loss) + 1)) and len(loss) >= 4


def test_an_unknown_tracker_is_refused_before_anything_runs(rsacfn_cli, tmp_path):
    r = rsacfn_cli('train', '--report_to', 'wandb', '--output_dir', tmp_path)
    assert r.returncode == 2 and "unknown report_to 'wandb'" in r.stderr and not any(tmp_path.iterdir())
