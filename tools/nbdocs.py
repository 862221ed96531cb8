"""README.md and the docs site from the notebooks: nbdev's processors, nbconvert, pandoc, KaTeX, checked in a browser"""

# The repository's docs tool, outside the package (`import selfdistil_nb` needs none of it); explained and tested by
# nbs/12_docs.ipynb. Needs the dev extra.
#   python tools/nbdocs.py --readme                 # rewrite README.md from nbs/index.ipynb
#   python tools/nbdocs.py --html _site --check     # the site in _site/, then every page in headless Chromium

from __future__ import annotations
import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
import nbformat
import yaml
from execnb.nbio import read_nb, write_nb
from fastcore.script import call_parse
from nbconvert import MarkdownExporter
from nbdev.config import get_config
from nbdev.processors import FilterDefaults

__all__ = ['cell_options', 'apply_directives', 'DocsToolMissing', 'page_name', 'site_pages', 'relink', 'render_page',
           'render_site', 'chromium_path', 'check_site', 'readme_text', 'render_readme', 'docs_cli']

def _processed(nb_path: Path) -> nbformat.NotebookNode:
    "Notebook at `nb_path` after nbdev's docs processors, its front matter turned into a title cell."
    nb = read_nb(nb_path)
    FilterDefaults()(nb)
    with tempfile.TemporaryDirectory() as d:
        write_nb(nb, Path(d) / 'nb.ipynb')
        nb = nbformat.read(Path(d) / 'nb.ipynb', as_version=4)
    cells = []
    for c in nb.cells:
        src = c.source.strip()
        if c.cell_type == 'raw' and src.startswith('---'):
            fm = yaml.safe_load(src.strip('-').strip()) or {}
            head = f"# {fm['title']}" if 'title' in fm else ''
            if fm.get('description'): head += f"\n\n> {fm['description']}"
            if head: cells.append(nbformat.v4.new_markdown_cell(head.strip()))
        else: cells.append(c)
    nb.cells = cells
    return nb

def cell_options(source: str) -> tuple[dict, str]:
    """The `#|` options at the top of a code cell (`hide` → `{'hide': True}`, `echo: false` → `{'echo': False}`) and
    the rest."""
    lines, opts = source.splitlines(), {}
    while lines and lines[0].startswith('#|'):
        key, sep, value = lines.pop(0)[2:].strip().partition(':')
        opts[key.strip()] = yaml.safe_load(value) if sep else True
    return opts, '\n'.join(lines)

def _output_text(o) -> str:
    "What an `output: asis` output contributes: its Markdown, else its plain text."
    if o.output_type == 'stream': return o.text
    data = o.get('data', {})
    return data.get('text/markdown') or data.get('text/plain') or ''

def apply_directives(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Quarto's cell options, as `nbdev_docs` would apply them: `hide` and `include: false` drop a cell, `echo: false`
    its code, `output: false` its outputs, `output: asis` turns its output into Markdown; stderr streams (progress bars)
    are dropped."""
    cells = []
    for c in nb.cells:
        if c.cell_type != 'code':
            cells.append(c)
            continue
        opts, body = cell_options(c.source)
        if opts.get('hide') or opts.get('include') is False: continue
        outputs = [o for o in c.get('outputs', []) if not (o.output_type == 'stream' and o.get('name') == 'stderr')]
        if opts.get('output') is False: outputs = []
        echo = opts.get('echo', True) is not False and body.strip() != ''
        if opts.get('output') == 'asis':
            if echo: cells.append(nbformat.v4.new_code_cell(body))
            text = '\n\n'.join(_output_text(o) for o in outputs).strip()
            if text: cells.append(nbformat.v4.new_markdown_cell(text))
            continue
        if not echo and not outputs: continue
        c.source, c.outputs = body, outputs
        if not echo: c.metadata.setdefault('tags', []).append('remove_input')
        cells.append(c)
    nb.cells = cells
    return nb

_KATEX_DIRS = ('/usr/share/javascript/katex', '/usr/share/nodejs/katex/dist')   # Debian's libjs-katex, npm's katex

class DocsToolMissing(RuntimeError):
    "A program the offline docs need (pandoc, KaTeX, Chromium) is not installed."

def page_name(nb_path) -> str:
    "The page a notebook becomes, named as nbdev names it: `01_model.ipynb` → `model`."
    return re.sub(r'^\d+[a-z]?_', '', Path(nb_path).stem)

def _title(nb_path: Path) -> str:
    "The notebook's title: its first `# ` heading."
    for c in read_nb(nb_path).cells:
        if c.cell_type == 'markdown' and c.source.startswith('# '):
            return re.sub(r'`([^`]*)`', r'\1', c.source.splitlines()[0][2:].strip())   # plain text, for the sidebar
    return page_name(nb_path)

def site_pages(nbs_path: Path | None = None) -> list[dict]:
    "The notebooks of the site in sidebar order (index first, then by file name), each with its page name and title."
    nbs_path = Path(nbs_path or get_config().nbs_path)
    nbs = sorted(p for p in nbs_path.glob('*.ipynb') if not p.name.startswith(('_', '.')))
    nbs.sort(key=lambda p: p.stem != 'index')
    return [{'notebook': p.name, 'page': page_name(p), 'title': _title(p)} for p in nbs]

def relink(text: str, target) -> str:
    """Point nbdev's Markdown links to the documentation host (`doc_host` + `doc_baseurl`) at `target(page, anchor)`
    instead; where `target` gives None (a page not in this site) the link becomes its text."""
    cfg = get_config()
    base = re.escape(cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/') + '/')
    def swap(m):
        url = target(m['page'], m['anchor'] or '')
        return m['text'] if url is None else f"[{m['text']}]({url})"
    return re.sub(r'\[(?P<text>[^\]]*)\]\(' + base + r'(?P<page>[\w.-]+)\.html(?P<anchor>#[\w.-]*)?\)', swap, text)

_TEMPLATE = '''<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$pagetitle$ – $site$</title>
<link rel="stylesheet" href="site.css">
$if(highlighting-css)$<style>
$highlighting-css$
</style>$endif$
$if(math)$$math$$endif$
</head>
<body>
<nav class="sidebar" id="sidebar"><a class="site" href="index.html">$site$</a>
$sidebar$
</nav>
<main>
$if(toc)$<nav class="toc" id="toc"><h2>On this page</h2>
$table-of-contents$
</nav>$endif$
$body$
</main>
</body>
</html>
'''

_CSS = '''body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529; }
.sidebar { position: fixed; top: 0; bottom: 0; left: 0; width: 15rem; overflow-y: auto; padding: 1rem;
           background: #f8f9fa; border-right: 1px solid #dee2e6; box-sizing: border-box; }
.sidebar .site { display: block; font-weight: 700; font-size: 1.15rem; margin-bottom: .75rem; color: #212529;
                 text-decoration: none; }
.sidebar ul { list-style: none; padding: 0; margin: 0; }
.sidebar li a { display: block; padding: .2rem .4rem; border-radius: .25rem; color: #495057; text-decoration: none; }
.sidebar li a:hover { background: #e9ecef; }
.sidebar li a.active { background: #2780e3; color: white; }
main { margin-left: 15rem; padding: 1rem 2.5rem 4rem; max-width: 60rem; }
.toc { float: right; width: 14rem; margin: 0 0 1rem 1.5rem; font-size: .85rem; border-left: 2px solid #dee2e6;
       padding-left: .75rem; }
.toc h2 { font-size: .9rem; margin: 0 0 .3rem; } .toc ul { padding-left: 1rem; margin: 0; }
h1, h2, h3 { line-height: 1.25; } h3 { border-top: 1px solid #dee2e6; padding-top: .75rem; }
blockquote { margin: 0 0 1rem; padding: .25rem 1rem; border-left: 4px solid #dee2e6; color: #6c757d; }
pre { background: #f6f8fa; padding: .75rem 1rem; overflow-x: auto; border-radius: .3rem; font-size: .85rem; }
code { font-size: .9em; }
p code, li code, td code { background: #f1f3f5; padding: .05rem .25rem; border-radius: .2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; display: block; max-width: 100%;
        overflow-x: auto; }
th, td { border: 1px solid #dee2e6; padding: .3rem .6rem; }
img { max-width: 100%; } hr { border: 0; }
'''

def _katex_dir() -> Path:
    for d in _KATEX_DIRS:
        if (Path(d) / 'katex.min.js').exists(): return Path(d)
    raise DocsToolMissing("KaTeX not found (looked in " + ', '.join(_KATEX_DIRS) + "): the site serves its own copy "
                          "so that math renders offline; install it with `apt-get install libjs-katex`")

def _pandoc() -> str:
    exe = shutil.which('pandoc')
    if exe is None: raise DocsToolMissing("pandoc not found: the offline site is rendered by pandoc; install it with "
                                          "`apt-get install pandoc` (or from pandoc.org), or use "
                                          "`nbdev_docs` where Quarto is installed")
    return exe

def _sidebar(pages: list[dict], current: str) -> str:
    items = []
    for p in pages:
        active = ' class="active"' if p['page'] == current else ''
        items.append(f'<li><a href="{p["page"]}.html"{active}>{html.escape(p["title"])}</a></li>')
    return '<ul>' + ''.join(items) + '</ul>'

def render_page(nb_path: Path, dest: Path, pages: list[dict], site_title: str) -> Path:
    """One notebook as `dest/<page>.html`: nbdev's processors, Quarto's cell options, nbconvert to Markdown, pandoc to
    HTML."""
    from traitlets.config import Config
    page = page_name(nb_path)
    nb = apply_directives(_processed(nb_path))
    exporter = MarkdownExporter(config=Config({'TagRemovePreprocessor': {'enabled': True,
                                                                         'remove_input_tags': {'remove_input'}}}))
    md, res = exporter.from_notebook_node(nb, resources={'metadata': {'path': str(nb_path.parent)},
                                                         'output_files_dir': f'{page}_files'})
    for name, data in res.get('outputs', {}).items():          # figures, as files next to the page
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
    def local_image(m):                                        # an image beside the notebooks (../figures/x.png)
        src = (nb_path.parent / m.group(2)).resolve()
        if not src.is_file(): return m.group(0)                # left as it is: the site check reports it
        rel = Path('images') / src.name
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / rel)
        return f"{m.group(1)}{rel.as_posix()})"
    md = re.sub(r'(!\[[^\]]*\]\()(\.\./[^)\s]+)\)', local_image, md)   # copied into the site, so it stands alone
    names = {p['page'] for p in pages}
    md = relink(md, lambda p,
                anchor: f"{p}.html{anchor}" if p in names and not anchor.startswith('#_') else None)  # private: no doc
    title = next(p['title'] for p in pages if p['page'] == page)
    with tempfile.NamedTemporaryFile('w', suffix='.html', delete=False) as t: t.write(_TEMPLATE)
    try:
        out = subprocess.run([_pandoc(), '--from', 'markdown-yaml_metadata_block', '--to', 'html5', '--standalone',
                              f'--template={t.name}',
                              '--katex=katex/', '--toc', '--toc-depth=2', '--metadata', f'pagetitle={title}',
                              '--variable', f'sidebar={_sidebar(pages, page)}', '--variable', f'site={site_title}'],
                             input=md, capture_output=True, text=True)
    finally: Path(t.name).unlink()
    if out.returncode: raise RuntimeError(f"pandoc failed on {nb_path.name}: {out.stderr.strip()[:500]}")
    target = dest / f'{page}.html'
    target.write_text(out.stdout, encoding='utf-8')
    return target

def render_site(dest: Path, nbs_path: Path | None = None) -> list[Path]:
    """The documentation site in `dest`: a page per notebook (not `_`-prefixed), sidebar in notebook order, KaTeX
    served locally."""
    nbs_path = Path(nbs_path or get_config().nbs_path)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    katex = _katex_dir()
    _pandoc()
    shutil.copytree(katex, dest / 'katex', dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns('*.mjs', 'contrib'))  # follows links
    (dest / 'site.css').write_text(_CSS)
    pages = site_pages(nbs_path)
    (dest / 'pages.json').write_text(json.dumps(pages, indent=1))
    return [render_page(nbs_path / p['notebook'], dest, pages, get_config().lib_name) for p in pages]

_PAGE_FACTS = r'''() => {
  const main = document.querySelector('main');
  const prose = main ? main.cloneNode(true) : document.createElement('main');
  prose.querySelectorAll('pre, code, script, style').forEach(e => e.remove());
  const math = [...document.querySelectorAll('span.math')];
  return {
    text: prose.textContent,
    code_directives: [...document.querySelectorAll('main pre')].map(p => p.innerText).filter(t => /^#\|/m.test(t))
                     .map(t => t.split('\n')[0]),
    sidebar: [...document.querySelectorAll('#sidebar li a')].map(a => a.getAttribute('href')),
    math: math.length, unrendered: math.filter(m => !m.querySelector('.katex')).map(m => m.textContent.slice(0, 60)),
    images: [...document.querySelectorAll('main img')]
            .map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
    links: [...document.querySelectorAll('main a[href], #sidebar a[href]')].map(a => a.getAttribute('href')),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    code: [...document.querySelectorAll('main pre')].length,
  };
}'''

def chromium_path() -> str:
    "The system Chromium (Playwright drives it; its own browser download is not needed)."
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name): return shutil.which(name)
    raise DocsToolMissing("Chromium not found: the docs' browser check needs it; install it "
                          "with `apt-get install chromium`")

def check_site(site: Path, screenshots: tuple = ('index', 'report')) -> list[str]:
    """Open every page of `site` in headless Chromium and return what a reader would see wrong: Quarto directives or raw
    markup shown, math left as TeX, a sidebar out of notebook order, broken local links or anchors, images that do not
    load, script errors or failed requests. Screenshots of `screenshots` land in `site/screenshots/`."""
    from playwright.sync_api import sync_playwright
    site = Path(site).resolve()
    pages = json.loads((site / 'pages.json').read_text())
    order = [f"{p['page']}.html" for p in pages]
    facts, problems, failed = {}, [], []
    (site / 'screenshots').mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=['--no-sandbox'])
        tab = browser.new_page(viewport={'width': 1280, 'height': 900})
        tab.on('requestfailed', lambda r: failed.append(r.url))
        tab.on('pageerror', lambda e: problems.append(f"script error: {e}"))
        for p in pages:
            tab.goto((site / f"{p['page']}.html").as_uri(), wait_until='load')
            facts[p['page']] = f = tab.evaluate(_PAGE_FACTS)
            if p['page'] in screenshots: tab.screenshot(path=str(site / 'screenshots' / f"{p['page']}.png"),
                                                        full_page=True)
        browser.close()
    for page, f in facts.items():
        where = f"{page}.html"
        for bad, what in [('#| ', 'a Quarto directive'), ('{target=', "show_doc's raw Quarto markup"),
                          ('<!-- WARNING', 'an HTML comment as text')]:
            if bad in f['text']: problems.append(f"{where}: shows {what} ({bad!r}) in its text")
        if f['code_directives']: problems.append(f"{where}: shows Quarto directives as code "
                                                 f"({f['code_directives'][0]!r})")
        if re.search(r'In \[\d*\]:', f['text']): problems.append(f"{where}: shows notebook prompts (In [..]:)")
        if f['unrendered']: problems.append(f"{where}: {len(f['unrendered'])} formulas not rendered, e.g. "
                                            f"{f['unrendered'][0]!r}")
        if f['sidebar'] != order: problems.append(f"{where}: sidebar {f['sidebar']} is not the notebook order {order}")
        problems += [f"{where}: image {i['src']} does not load" for i in f['images'] if not i['ok']]
        for href in f['links']:
            if re.match(r'^[a-z]+:', href): continue                  # http(s), mailto: not checked offline
            file, _, anchor = href.partition('#')
            target = file or where
            if not (site / target).exists(): problems.append(f"{where}: link {href} points to a missing page")
            elif anchor and target.endswith('.html') and anchor not in facts.get(target[:-5], {'ids': [anchor]})['ids']:
                problems.append(f"{where}: link {href} points to a missing anchor")
    problems += [f"request failed: {u}" for u in failed]
    return problems

def readme_text(nbs_path: Path | None = None) -> str:
    "The Markdown text of README.md, rendered from the `readme_nb` notebook; symbol links point to the notebooks."
    cfg = get_config()
    nbs_path = Path(nbs_path or cfg.nbs_path)
    body, _ = MarkdownExporter().from_notebook_node(apply_directives(_processed(nbs_path / cfg.readme_nb)))
    notebooks = {p['page']: p['notebook'] for p in site_pages(nbs_path)}
    rel = nbs_path.resolve().relative_to(cfg.config_path.resolve()).as_posix() if nbs_path.resolve().is_relative_to(
        cfg.config_path.resolve()) else nbs_path.as_posix()
    body = relink(body, lambda page, anchor: f"{rel}/{notebooks[page]}" if page in notebooks else None)
    body = re.sub(r'(!\[[^\]]*\]\()\.\./', r'\1', body)      # images beside the notebooks (../figures/…) from the root
    return body.strip() + '\n'

def render_readme(nbs_path: Path | None = None) -> Path:
    "Write README.md at the project root from the `readme_nb` notebook."
    dest = get_config().config_path / 'README.md'
    dest.write_text(readme_text(nbs_path), encoding='utf-8')
    return dest

@call_parse
def docs_cli(readme: bool = False,  # rewrite README.md from the index notebook
             html: str = None,      # build the documentation site into this folder
             check: bool = False):  # open every page of the site in headless Chromium; exit 1 on any problem
    "Build README.md and the documentation site without Quarto (nbdev's processors, nbconvert, pandoc, KaTeX)."
    if not readme and not html:
        print("nothing to do: pass --readme and/or --html DIR [--check]")
        return
    if readme: print(f"wrote {render_readme()}")
    if html:
        print(f"wrote {len(render_site(Path(html)))} pages to {html}")
        if check:
            problems = check_site(Path(html))
            for p in problems: print('  ' + p)
            print(f"browser check: {len(problems)} problems; screenshots in {Path(html) / 'screenshots'}")
            if problems: raise SystemExit(1)
