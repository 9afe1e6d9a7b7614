"Packaging for lmlab. Every setting lives in settings.ini (nbdev's convention); nothing is configured here."
from configparser import ConfigParser
import shlex
import setuptools

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'apache2': 'Apache-2.0'}  # SPDX expression
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable']
min_minor = int(cfg['min_python'].split('.')[1])
py_versions = [f'3.{m}' for m in range(min_minor, 14)]

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    keywords=cfg['keywords'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    license=licenses[cfg['license']],
    classifiers=['Development Status :: ' + statuses[int(cfg['status']) - 1],
                 'Intended Audience :: ' + cfg['audience'],
                 'Natural Language :: ' + cfg['language']]
                + ['Programming Language :: Python :: ' + v for v in py_versions],
    url=cfg['git_url'],
    # Only the library: tests/, nbs/ and scripts/ are not shipped.
    # namespace packages too: lmlab/tasks holds lm-eval's task files, data without an __init__.py
    packages=setuptools.find_namespace_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True,
    install_requires=shlex.split(cfg.get('requirements', '')),
    # each `<name>_requirements` of settings.ini is the extra `lmlab[<name>]`
    extras_require={key[:-len('_requirements')]: shlex.split(value) for key, value in cfg.items()
                    if key.endswith('_requirements') and key != 'requirements'},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
)
