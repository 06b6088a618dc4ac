"""Reports from a results store the test writes itself: tables, Markdown, CSV, LaTeX and HTML."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.config import load_settings
from bench.images import to_uint16, write_png8, write_png16
from bench.report.render import ReportOptions, render
from bench.report.summary import read_snapshot, summarise
from bench.report.tables import build_tables
from bench.results.store import ANY, ResultKey, ResultsStore

IDS = [f"{i}" for i in range(1, 21)]
# method, variant, label, kind, PSNR per image on rain100l
METHODS = [("rainy", "default", "Rainy", "identity"), ("good_net", "default", "Good_Net 100%", "learned"),
           ("okay", "default", "Okay", "learned"), ("close", "default", "Close", "learned")]


def _key(method: str, dataset: str) -> ResultKey:
    return ResultKey(method, "default", f"hash-{method}", dataset)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A store with rain100l (paired, on disk), my_set (paired, not on disk), moss (real) and efficiency."""
    root = tmp_path_factory.mktemp("report")
    data, out = root / "data", root / "results"
    rng = np.random.default_rng(0)
    psnr = {"rainy": rng.normal(25, 1, 20), "good_net": rng.normal(35, 1, 20), "okay": rng.normal(30, 1, 20),
            "close": None}
    psnr["close"] = psnr["good_net"] - 0.5
    near = rng.normal(31, 1, 20)  # my_set: good_net and close are indistinguishable there
    for i in IDS:
        clean = rng.uniform(0.2, 0.8, (48, 64, 3))
        write_png8(data / "rain100l" / "target" / f"{i}.png", clean)
        rainy = np.clip(clean + (rng.uniform(0, 1, clean.shape) > 0.97) * 0.5, 0, 1)
        write_png8(data / "rain100l" / "input" / f"{i}.png", rainy)
        for method in ("good_net", "okay"):
            folder = out / "outputs" / method / "default" / f"hash-{method}" / "rain100l"
            write_png16(folder / f"{i}.png", to_uint16(np.clip(clean + rng.normal(0, 0.02, clean.shape), 0, 1)))
    with ResultsStore(out / "results.sqlite") as store:
        store.start_run("run-1", {"command": "bench run", "git_commit": "abc1234", "versions": {"torch": "9.9"},
                                  "config": {"data_root": str(data)}, "device": "cpu"})
        for method, variant, label, kind in METHODS:
            store.record_method(method, variant, f"hash-{method}", spec=method, label=label, kind=kind, paper="",
                                note="", weights={"w.pth": f"/w/{method}.pth"}, run_id="run-1")
            for n, i in enumerate(IDS):
                store.put_image(_key(method, "rain100l"), i, [("psnr", "matlab-y", psnr[method][n], "bench"),
                                                              ("ssim", "matlab-y", 0.8 + psnr[method][n] / 1000, "bench")],
                                "run-1")
                if method != "okay":
                    jitter = rng.normal(0, 0.3) if method != "rainy" else -5.0
                    store.put_image(_key(method, "my_set"), i, [("psnr", "matlab-y", near[n] + jitter, "bench")], "run-1")
                else:
                    store.put_failure(_key(method, "my_set"), i, "method", f"{i}.png", "out of memory", "run-1")
                if method != "close":
                    store.put_image(_key(method, "moss"), i, [("brisque", "-", 40 - 5 * len(method) + rng.normal(),
                                                               "pyiqa brisque (LIVE release model)")], "run-1")
            if method != "close":  # downstream: one dataset-level figure per method
                store.put_image(_key(method, "coco150"), ANY, [("map", "-", 50.0 + 10 * len(method), "ultralytics")],
                                "run-1")
            if method != "rainy":
                store.put_image(_key(method, ANY), ANY, [
                    (m, "cpu", v, "torch") for m, v in (("params", 1e5 * len(method)), ("flops", 2.0 * len(method)),
                                                        ("ms_per_image", 10.0 * len(method)),
                                                        ("input_height", 321.0), ("input_width", 481.0))], "run-1")
        store.put_unavailable(ANY, "", "metric:niqe", "NIQE model file niqe_pris_params.npz missing", "metric", "")
        store.finish_run("run-1")
    return out, data, psnr


def _tables(out: Path):
    with ResultsStore(out / "results.sqlite") as store:
        snapshot = read_snapshot(store)
        return build_tables(snapshot, summarise(snapshot), "matlab-y")


def test_tables_rank_mark_and_explain(results) -> None:
    out, _, psnr = results
    tables = {t.kind: t for t in _tables(out)}
    assert list(tables) == ["full-reference", "no-reference", "downstream", "efficiency"]
    fr = tables["full-reference"]
    assert fr.rows[0].spec == "rainy" and fr.rows[0].reference
    col = next(j for j, c in enumerate(fr.columns) if (c.dataset, c.metric) == ("rain100l", "psnr"))
    cells = {r.spec: r.cells[col] for r in fr.rows}
    assert cells["good_net"].rank == 1 and cells["close"].rank == 2 and cells["rainy"].rank is None
    assert cells["good_net"].value == pytest.approx(psnr["good_net"].mean())
    assert not cells["good_net"].dagger and cells["good_net"].p_value < 0.05  # 0.5 dB better on every image
    my = next(j for j, c in enumerate(fr.columns) if c.dataset == "my_set")
    best = next(r.cells[my] for r in fr.rows if r.cells[my].rank == 1)
    assert best.dagger and best.p_value >= 0.05
    okay = next(r.cells[my] for r in fr.rows if r.spec == "okay")
    assert okay.text == "n/a" and "failed" in fr.footnotes[okay.footnote - 1]
    nr = tables["no-reference"]
    assert [c.header for c in nr.columns] == ["BRISQUE", "NIQE"]
    brisque = {r.spec: r.cells[0] for r in nr.rows}
    assert brisque["good_net"].rank == 1  # lowest BRISQUE (40 - 5*8) wins: lower is better
    niqe = nr.rows[1].cells[1]
    assert niqe.text == "n/a" and "niqe_pris_params.npz" in nr.footnotes[niqe.footnote - 1]
    assert any("pyiqa brisque (LIVE release model)" in n for n in nr.notes)
    ds = tables["downstream"]
    assert [(c.group, c.header) for c in ds.columns] == [("coco150", "mAP (%)")]
    maps = {r.spec: r.cells[0] for r in ds.rows}
    assert maps["good_net"].rank == 1 and maps["okay"].rank == 2 and not maps["good_net"].dagger  # no per-image test
    assert "close" not in maps  # a table lists the methods with a figure in it
    eff = tables["efficiency"]
    assert [c.header for c in eff.columns] == ["Params (M)", "GFLOPs", "ms/image"]
    assert "481x321" in eff.caption
    assert {r.spec: r.cells[0].text for r in eff.rows}["okay"] == "0.400"


def test_markdown_and_csv(results) -> None:
    out, _, psnr = results
    with ResultsStore(out / "results.sqlite") as store:
        md = render(store, "md", "matlab-y")
        csv = render(store, "csv", "matlab-y")
    assert f"**{psnr['good_net'].mean():.2f}**" in md and "<u>" in md and "†" in md
    assert "profile matlab-y" in md
    lines = csv.strip().splitlines()
    assert lines[0] == "method,label,dataset,metric,profile,n,common_n,mean,ci_low,ci_high"
    row = next(line.split(",") for line in lines if line.startswith("okay,Okay,rain100l,psnr,matlab-y"))
    assert int(row[5]) == 20 and int(row[6]) == 20 and float(row[7]) == pytest.approx(psnr["okay"].mean(), rel=1e-5)
    assert float(row[8]) < float(row[7]) < float(row[9])


def _pdflatex(folder: Path, name: str) -> None:
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", name], cwd=folder,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (folder / name.replace(".tex", ".pdf")).stat().st_size > 1000


def test_latex_fragments_and_standalone_document(results, tmp_path) -> None:
    out, _, psnr = results
    with ResultsStore(out / "results.sqlite") as store:
        tex = render(store, "latex", "matlab-y")
        doc = render(store, "latex", "matlab-y", options=ReportOptions(standalone=True))
    assert r"\documentclass" not in tex and r"\begin{document}" not in tex  # fragments to paste into a paper
    labels = re.findall(r"\\label\{tab:([\w-]+)\}", tex)
    assert labels[:4] == ["full-reference", "no-reference", "downstream", "efficiency"]
    assert tex.count(r"\begin{table}") == tex.count(r"\toprule") == tex.count(r"\bottomrule") == len(labels)
    assert rf"\textbf{{{psnr['good_net'].mean():.2f}}}" in tex
    assert rf"\underline{{{psnr['close'].mean():.2f}}}" in tex
    assert r"Good\_Net 100\%" in tex and r"\texttt{good\_net}" in tex  # label beside the canonical spec
    assert r"$^\dagger$" in tex and r"\multicolumn{2}{c}{rain100l}" in tex
    needed = re.search(r"^% (\\usepackage\{\w+\}(?: \\usepackage\{\w+\})*)$", tex, re.M)
    assert needed and "booktabs" in needed.group(1)
    assert r"\label{tab:not-evaluated}" in tex and "NIQE model file" in tex
    assert doc.startswith(r"\documentclass") and tex in doc and doc.rstrip().endswith(r"\end{document}")
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (Debian texlive-latex-base, texlive-latex-recommended); structure checked, "
                    "compilation not")
    (tmp_path / "tables.tex").write_text(tex)
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\n" + needed.group(1) + "\n\\begin{document}\n"
                                        "\\input{tables}\n\\end{document}\n")
    _pdflatex(tmp_path, "paper.tex")
    (tmp_path / "report.tex").write_text(doc)
    _pdflatex(tmp_path, "report.tex")


@pytest.fixture(scope="module")
def html(results) -> str:
    out, data, _ = results
    with ResultsStore(out / "results.sqlite") as store:
        return render(store, "html", "matlab-y", settings=load_settings(None, data_root=data, output_dir=out))


def test_html_is_self_contained_with_grid_and_provenance(html: str) -> None:
    assert html.count('<table class="results"') == 4
    assert not re.search(r'(src|href)="(?!data:)', html) and "<script" not in html and "<link" not in html
    grid = html.split("Visual comparison")[1].split("</div>")[0]
    assert re.findall(r"<figcaption>([^<]+)", grid) == ["Rainy input", "Good_Net 100%", "Okay", "Ground truth"]
    assert grid.count('src="data:image/png;base64,') == 4
    assert "Quality against cost" in html and "Per-image distributions" in html
    footer = html.split("<footer>")[1]
    assert "abc1234" in footer and "hash-good_net" in footer and "torch 9.9" in footer and "matlab-y" in footer
    assert 'class="best"' in html and 'class="second"' in html and "&dagger;" in html


def test_html_in_a_real_browser(html: str, tmp_path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (Debian package `chromium`); the HTML was checked as text only")
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(html)
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()], capture_output=True,
                   timeout=120, check=False)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280) and pixels.std() > 20  # not a blank page
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False).stdout
    assert dom.count('<table class="results"') == 4 and "Good_Net 100%" in dom and "<img" in dom
