"The project's own shape: notebooks are the source of truth, README is made from index.ipynb, CI runs README's tests."
import configparser, re, subprocess, sys
import yaml
from conftest import BIN, ROOT, run


def _copy_of_repo(dst):
    "The working tree as git sees it (tracked and untracked-but-not-ignored files, symlinks kept)."
    files = subprocess.run(['git', 'ls-files', '-z', '-co', '--exclude-standard'], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(['tar', '--null', '-T', '-', '-cf', dst / 'repo.tar'], cwd=ROOT, input=files, check=True)
    (dst / 'repo').mkdir()
    subprocess.run(['tar', '-xf', dst / 'repo.tar', '-C', dst / 'repo'], check=True)
    return dst / 'repo', [f for f in files.decode().split('\0') if f]


def test_top_level_layout():
    for name in ['settings.ini', 'nbs', 'lmlab', 'tests', 'index.ipynb', '_quarto.yml', 'setup.py', 'README.md', '.ci/run', 'Makefile']:
        assert (ROOT / name).exists(), name
    # nbs/ sees the top-level index and quarto config through links, so the site has one source for each
    assert (ROOT / 'nbs/index.ipynb').resolve() == (ROOT / 'index.ipynb').resolve()
    assert (ROOT / 'nbs/_quarto.yml').resolve() == (ROOT / '_quarto.yml').resolve()


def test_export_and_clean_change_nothing(tmp_path):
    repo, files = _copy_of_repo(tmp_path)
    run([BIN / 'nbdev_export'], cwd=repo)
    run([BIN / 'nbdev_clean'], cwd=repo)
    changed = [f for f in files if (repo / f).is_file() and (repo / f).read_bytes() != (ROOT / f).read_bytes()]
    new = [str(p.relative_to(repo)) for p in (repo / 'lmlab').rglob('*.py') if not (ROOT / p.relative_to(repo)).exists()]
    assert not changed and not new, f"nbdev_export/nbdev_clean would change {changed + new}: edit the notebooks, export, clean, commit"


def test_readme_is_made_from_index():
    run([sys.executable, ROOT / 'scripts/docs.py', 'readme', '--check'])


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / 'README.md').read_text()
    block = re.search(r'## The two commands.*?```sh\n(.*?)```', readme, re.S).group(1)
    commands = [l.split('#')[0].strip() for l in block.splitlines() if l.split('#')[0].strip()]
    assert commands == ['make run', 'make test'], commands
    ci = (ROOT / '.ci/run').read_text()
    assert re.search(r'^(time )?make test$', ci, re.M), 'CI must run README\'s test command'


def test_sidebar_lists_every_notebook():
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    nbs = ROOT / cfg['DEFAULT']['nbs_path']
    side = yaml.safe_load((nbs / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    def flat(items):
        for it in items:
            if isinstance(it, dict): yield from flat(it['contents'])
            else: yield it
    listed = sorted(flat(side))
    present = sorted(str(p.relative_to(nbs)) for p in nbs.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    assert listed == present


def test_settings_pin_nbdev2_and_its_needs():
    reqs = configparser.ConfigParser(); reqs.read(ROOT / 'settings.ini')
    dev = reqs['DEFAULT']['dev_requirements'].split()
    for pin in ['nbdev==2.4.14', 'fastcore<2', 'execnb<0.2', 'ghapi<2']: assert pin in dev


def test_readme_links_resolve_in_the_repository():
    "README is read on GitHub and PyPI, where site pages are not files: each link is absolute, an anchor, or a file that exists."
    for target in re.findall(r'\]\(([^)\s]+)\)', (ROOT / 'README.md').read_text()):
        if re.match(r'[a-z]+://', target) or target.startswith('#'): continue
        assert (ROOT / target.split('#')[0]).exists(), f"README links to {target!r}, which is not in the repository"


def _freshness():
    sys.path.insert(0, str(ROOT / 'scripts'))
    import freshness
    return freshness


def test_committed_outputs_come_from_the_current_code():
    fr = _freshness()
    problems = fr.stale()
    assert not problems, fr.report(problems)


def test_freshness_check_notices_a_library_change(tmp_path, monkeypatch):
    "The check itself: a notebook stamped against one library reads as stale after an edit to lmlab/, then fresh again."
    import shutil
    fr = _freshness()
    (tmp_path / 'nbs').mkdir()
    shutil.copytree(ROOT / 'lmlab', tmp_path / 'lmlab')
    nb = tmp_path / 'nbs/00_data.ipynb'
    shutil.copy(ROOT / 'nbs/00_data.ipynb', nb)
    monkeypatch.setattr(fr, 'ROOT', tmp_path)
    fr.stamp([nb])
    assert fr.stale() == []
    with open(tmp_path / 'lmlab/model.py', 'a') as f: f.write('\n# an edit\n')
    assert fr.stale() == ['nbs/00_data.ipynb: outputs predate changes to the library (lmlab/)']
    text = nb.read_text().replace('"source": [', '"source": [\n    "x = 1\\n",', 1)  # a cell edited too (the first cell)
    nb.write_text(text)
    fr.stamp([nb])
    assert fr.stale() == []


def _lmlab_imports():
    "For each lmlab module, the lmlab modules it imports and the names it takes from each (module level and inside functions)."
    import ast
    out = {}
    for file in sorted((ROOT / 'lmlab').glob('*.py')):
        if file.name == '_modidx.py': continue
        me, taken = f'lmlab.{file.stem}', {}
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = ('lmlab.' + node.module if node.module else 'lmlab') if node.level else node.module or ''
                if mod.startswith('lmlab.') and mod != me: taken.setdefault(mod, set()).update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith('lmlab.') and a.name != me: taken.setdefault(a.name, set())
        out[me] = taken
    return out


def test_rooms_take_no_private_names_and_import_no_circle():
    imports = _lmlab_imports()
    private = [f'{me} takes {sorted(n for n in names if n.startswith("_"))} from {mod}'
               for me, taken in imports.items() for mod, names in taken.items() if any(n.startswith('_') for n in names)]
    assert not private, private
    def reaches(start, seen=()):
        for mod in imports.get(start, {}):
            if mod in seen: continue
            yield mod; yield from reaches(mod, (*seen, mod))
    circles = [me for me in imports if me in set(reaches(me))]
    assert not circles, f'these rooms import themselves through others: {circles}'


def test_the_scaling_maths_needs_no_trainer_and_the_model_no_kernels():
    imports = _lmlab_imports()
    assert not {'lmlab.train', 'lmlab.sweep', 'lmlab.lab'} & imports['lmlab.chinchilla'].keys(), imports['lmlab.chinchilla']
    model = (ROOT / 'lmlab/model.py').read_text()
    assert 'torch.autograd.Function' not in model, 'the autograd kernels live in lmlab/kernels.py'
