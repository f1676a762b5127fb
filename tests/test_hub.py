"The Hugging Face Hub: a model card the Hub's metadata checks accept, a Hub id to `from_pretrained`, `rsacfn publish`."
import re
import shutil
import numpy as np
import pytest
from rsacfn.config import TrainConfig

CLASSES = ['neutral', 'happy', 'angry', 'surprise', 'sad', 'fear', 'disgust']


def _card(cfg, n=40):
    from rsacfn.training.card import model_card
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, n)
    return model_card(cfg, {'epoch': 1}, y, np.where(rng.random(n) < .7, y, 0), CLASSES, 120)


def _no_local_path(text, *folders):
    assert not re.search(r'(?:^|[\s`\'"(])/\w', text), re.search(r'(?:^|[\s`\'"(])/\w.*', text).group(0)
    for f in folders: assert str(f) not in text and f.name not in text  # not even the cache folder's own name


@pytest.fixture(scope='module')
def demo_card(tiny_corpus, tiny_backbones):
    cfg = TrainConfig(method='early_fusion', data_path=str(tiny_corpus), wav_model=str(tiny_backbones['audio']),
                      text_model=str(tiny_backbones['text']))
    return _card(cfg)


@pytest.fixture(scope='module')
def published(model_dir, demo_card, tmp_path_factory):
    "A copy of the saved tiny model with the demo corpus' card, as a run's best/ holds it."
    d = shutil.copytree(model_dir, tmp_path_factory.mktemp('pub')/'best')
    (d/'README.md').write_text(demo_card, encoding='utf-8')
    return d


def test_a_demo_model_card_passes_the_hubs_metadata_checks_and_names_no_local_path(demo_card, tiny_corpus,
                                                                                   tiny_backbones):
    from rsacfn.training.card import check_card
    data = check_card(demo_card)  # the checks that run without the network (ModelCard.validate posts to the Hub)
    assert (data.license, data.license_name, data.base_model) == ('apache-2.0', None, None)  # tiny: from no Hub model
    assert data.pipeline_tag is None  # speech with its transcript: none of the Hub's tasks takes both
    assert data.eval_results[0].dataset_name == 'the rsacfn demo corpus (synthetic)'
    assert 'tiny offline backbone built from a config (not pretrained)' in demo_card
    assert 'KEMDy20_v1_1' not in demo_card  # the demo corpus' folder name is no corpus name
    _no_local_path(demo_card, tiny_corpus, tiny_backbones['audio'].parent)
    assert 'pip install' in demo_card


def test_a_tiny_backbone_through_a_symlink_is_still_the_tiny_one(tiny_backbones, tmp_path):
    from rsacfn.models.hub import TINY_BACKBONE, backbone_text
    (tmp_path/'tinyT').symlink_to(tiny_backbones['text'])
    assert backbone_text(tmp_path/'tinyT') == backbone_text(tiny_backbones['text']) == TINY_BACKBONE


def test_a_kemdy20_model_card_names_the_corpus_its_licence_and_its_hub_backbones():
    from rsacfn.training.card import check_card
    card = _card(TrainConfig(method='rsa_cfn', data_path='/secret/corpora/KEMDy20_v1_1'))  # as on a training machine
    data = check_card(card)
    assert data.base_model == ['facebook/wav2vec2-large-960h-lv60-self', 'klue/roberta-base']
    assert (data.license, data.license_name) == ('other', 'kemdy20-license')
    assert data.license_link.startswith('https://nanum.etri.re.kr/')
    assert data.eval_results[0].dataset_name == 'KEMDy20 v1.1'
    _no_local_path(card)
    speech = check_card(_card(TrainConfig(method='speech_only', data_path='/x/KEMDy19')))
    text = check_card(_card(TrainConfig(method='text_only', data_path='/x/my_clips.csv', corpus='manifest')))
    assert (speech.pipeline_tag, text.pipeline_tag) == ('audio-classification', 'text-classification')
    assert speech.license_name == 'kemdy19-license' and text.eval_results[0].dataset_name == 'the manifest my_clips.csv'
    assert "the paper's stratified random split (20% validation" in card  # 80/20 is the paper's; 50/50 is not
    assert "a stratified random split (50% validation" in _card(TrainConfig(method='rsa_cfn', data_path='/x/KEMDy20_v1_1',
                                                                         valid_size=0.5))
    # the usage snippet gives each method what it takes: transcripts alone to a text-only model, clips alone to speech
    assert "recognize(texts=['its transcript'])" in _card(TrainConfig(method='text_only', data_path='/x/KEMDy19'))
    assert "recognize(['clip.wav'])" in _card(TrainConfig(method='speech_only', data_path='/x/KEMDy19'))
    # KEMDy and the demo are Korean; a manifest's language is not known, so the card claims none
    assert (data.language, speech.language, text.language) == (['ko'], ['ko'], None)
    manifest_card = _card(TrainConfig(method='text_only', data_path='/x/my_clips.csv', corpus='manifest'))
    assert 'Korean' not in manifest_card and 'Korean' in card


def test_check_card_refuses_what_the_hub_would():
    from rsacfn.training.card import check_card
    good = _card(TrainConfig(method='text_only', data_path='/x/KEMDy20_v1_1'))
    with pytest.raises(ValueError, match='license: other needs license_name and license_link'):
        check_card(good.replace('license_name: kemdy20-license\n', ''))
    with pytest.raises(ValueError, match="base_model 'klue//roberta-base' is not a Hub model id"):
        check_card(good.replace('- klue/roberta-base', '- klue//roberta-base'))
    with pytest.raises(ValueError, match="pipeline_tag 'emotion' is none of the Hub's tasks"):
        check_card(good.replace('pipeline_tag: text-classification', 'pipeline_tag: emotion'))


def test_the_cards_usage_snippet_runs_as_the_card_says(published, tiny_corpus, tmp_path, monkeypatch):
    from rsacfn.training.card import FOLDER_PLACEHOLDER
    text = (published/'README.md').read_text(encoding='utf-8')
    code = re.search(r'```python\n(.*?)```', text, re.S).group(1)
    assert FOLDER_PLACEHOLDER in code and f'Replace `{FOLDER_PLACEHOLDER}`' in text
    shutil.copy(next((tiny_corpus/'wav').rglob('*.wav')), tmp_path/'clip.wav')
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(code.replace(FOLDER_PLACEHOLDER, str(published)), scope)
    rows = scope['rows']
    assert len(rows) == 1 and rows.emotion[0] in CLASSES


def _fake_cache(root, repo_id, folder, sha='0123456789abcdef0123456789abcdef01234567'):
    "A Hugging Face cache holding `folder` as `repo_id`'s main revision, laid out as huggingface_hub lays it out."
    repo = root/f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo/'snapshots'/sha)
    (repo/'refs').mkdir(); (repo/'refs'/'main').write_text(sha)
    return repo/'snapshots'/sha


def test_from_pretrained_takes_a_hub_id_from_the_cache_offline(model_dir, tmp_path, monkeypatch):
    import huggingface_hub
    from rsacfn.models.multimodal import MultiModel
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path/'hub'))
    snap = _fake_cache(tmp_path/'hub', 'someone/tiny-emotion', model_dir)
    monkeypatch.chdir(tmp_path)
    model = MultiModel.from_pretrained('someone/tiny-emotion')
    assert model.config.method == 'early_fusion' and model.tokenizer is not None
    assert model.name_or_path == str(snap)
    (tmp_path/'someone'/'tiny-emotion').mkdir(parents=True)  # a folder of that name here wins, as in transformers
    with pytest.raises(FileNotFoundError, match='someone/tiny-emotion is not a saved model: no config.json in it'):
        MultiModel.from_pretrained('someone/tiny-emotion')
    with pytest.raises(FileNotFoundError) as e: MultiModel.from_pretrained('someone/other-model')
    assert str(e.value) == (
        "'someone/other-model' is no folder here, and as a Hub id it is not in the Hugging Face cache while downloads "
        "are off (HF_HUB_OFFLINE=1): download it where there is network (`hf download someone/other-model "
        "--local-dir DIR`) and give DIR, or unset HF_HUB_OFFLINE")


def test_publish_uploads_the_folder_with_its_card_through_huggingface_hub(published, rsacfn_cli, monkeypatch):
    from huggingface_hub import HfApi
    calls = []
    monkeypatch.setenv('HF_HUB_OFFLINE', '0')
    monkeypatch.setattr(HfApi, 'create_repo', lambda self, repo_id, **kw: calls.append(('create', repo_id, kw))
                        or type('Url', (), {'repo_id': repo_id})())
    def upload_folder(self, *, repo_id, folder_path, **kw):
        from pathlib import Path
        files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        calls.append(('upload', repo_id, files, kw))
    monkeypatch.setattr(HfApi, 'upload_folder', upload_folder)
    r = rsacfn_cli('publish', published, 'someone/tiny-emotion', '--private')
    assert r.returncode == 0, r.stderr
    (_, repo, kw), (_, repo2, files, _) = calls
    assert repo == repo2 == 'someone/tiny-emotion' and kw['private'] is True and kw['exist_ok'] is True
    assert sorted(files) == sorted(p.name for p in published.iterdir())
    assert files['model.safetensors'] == (published/'model.safetensors').read_bytes()
    card = files['README.md'].decode()
    assert "from_pretrained('someone/tiny-emotion')" in card  # the snippet names where it now is
    assert 'https://huggingface.co/someone/tiny-emotion' in r.stdout


def test_publish_refuses_a_folder_that_names_the_training_machines_paths(published, tmp_path, rsacfn_cli,
                                                                          monkeypatch):
    from huggingface_hub import HfApi
    monkeypatch.setattr(HfApi, 'upload_folder', lambda *a, **k: pytest.fail('uploaded'))
    monkeypatch.setattr(HfApi, 'create_repo', lambda *a, **k: pytest.fail('created a repo'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '0')
    d = shutil.copytree(published, tmp_path/'best')
    card = (d/'README.md').read_text()
    (d/'README.md').write_text(card.replace('## Training', '## Training\n\nCorpus `/home/me/KEMDy20_v1_1`.'))
    r = rsacfn_cli('publish', d, 'someone/tiny-emotion')
    assert r.returncode != 0 and r.stderr.strip().splitlines() == [
        f"rsacfn publish: error: {d/'README.md'} names a folder of this machine (/home/me/KEMDy20_v1_1): it would be "
        "published with it; take it out, or train again with this rsacfn (its cards name no local path)"]
    (d/'README.md').write_text(card.replace('license: apache-2.0', 'license: other'))
    r = rsacfn_cli('publish', d, 'someone/tiny-emotion')
    assert 'license: other needs license_name and license_link' in r.stderr
    r = rsacfn_cli('publish', published, 'some one/x')
    assert r.returncode != 0 and "REPO_ID 'some one/x'" in r.stderr
