"Install rsacfn from the settings nbdev keeps in settings.ini."
from configparser import ConfigParser
from pathlib import Path
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

def _reqs(key): return cfg.get(key, '').split()

licenses = {'apache2': 'Apache-2.0'}  # an SPDX expression: setuptools warns, in a banner, at licence classifiers
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
lic = licenses[cfg['license']]
min_python = cfg['min_python']

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=(Path(__file__).parent/'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'],
    license=lic,
    url=cfg['git_url'],
    keywords=cfg['keywords'].split(),
    classifiers=[f'Development Status :: {statuses[int(cfg["status"]) - 1]}',
                 f'Intended Audience :: {cfg["audience"]}',
                 f'Natural Language :: {cfg["language"]}',
                 f'Programming Language :: Python :: {min_python}'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True,
    package_data={cfg['lib_name'] + '.experiments': ['experiment.ipynb']},  # a link to nbs/50_experiments/experiment.ipynb: the sweep runs it from an ordinary install
    python_requires=f'>={min_python}',
    install_requires=_reqs('requirements'),
    # optional extras: `pip install 'rsacfn[onnx]'` (rsacfn export, ONNX folders), `rsacfn[app]` (rsacfn app, Gradio)
    extras_require={'dev': _reqs('dev_requirements') + _reqs('onnx_requirements') + _reqs('app_requirements'),
                    'onnx': _reqs('onnx_requirements'), 'app': _reqs('app_requirements')},
    entry_points={'console_scripts': _reqs('console_scripts'),
                  'nbdev': [f'{cfg["lib_name"]}={cfg["lib_name"]}._modidx:d']},
    zip_safe=False,
)
