"""Report features from stores the tests write: one canonical spec per method (old short specs still read),
the same images for every row, the compact "Not evaluated" table and the reproduction check."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report.absent import absent_rows
from bench.report.published import load_published
from bench.report.render import ReportOptions, render
from bench.report.summary import read_snapshot, summarise
from bench.report.tables import build_tables
from bench.results.store import ANY, ResultKey, ResultsStore


def _store(path: Path, methods: dict[tuple[str, str, str], dict[str, dict[tuple[str, str], list[float]]]],
           labels: dict[str, str] | None = None, kinds: dict[str, str] | None = None) -> Path:
    """methods: (name, variant, stored spec) -> dataset -> (metric, profile) -> per-image values (ids 0, 1, ...)."""
    with ResultsStore(path) as store:
        store.start_run("r1", {"command": "test", "device": "cpu"})
        for (name, variant, spec), datasets in methods.items():
            store.record_method(name, variant, f"h-{name}-{variant}", spec=spec, label=(labels or {}).get(name, name),
                                kind=(kinds or {}).get(name, "learned"), paper="", note="", weights={}, run_id="r1")
            for dataset, figures in datasets.items():
                count = max(len(v) for v in figures.values())
                for i in range(count):
                    values = [(m, p, v[i], "bench") for (m, p), v in figures.items() if i < len(v)]
                    store.put_image(ResultKey(name, variant, f"h-{name}-{variant}", dataset), str(i), values, "r1")
        store.finish_run("r1")
    return path


def _csv(path: Path, **kwargs) -> list[dict]:
    with ResultsStore(path) as store:
        return list(csv.DictReader(io.StringIO(render(store, "csv", "matlab-y", **kwargs))))


def test_canonical_spec_in_every_format_and_old_short_specs_still_read(tmp_path):
    rng = np.random.default_rng(1)
    figures = {"rain100l": {("psnr", "matlab-y"): list(rng.normal(37, 1, 5)), ("ssim", "matlab-y"): [0.97] * 5}}
    db = _store(tmp_path / "old.sqlite", {
        ("prenet", "rain100h", "prenet"): figures,  # written before specs carried the default variant
        ("prenet", "rain100l", "prenet:rain100l"): figures,
        ("rainy", "default", "rainy"): {"rain100l": {("psnr", "matlab-y"): [26.0] * 5}},
    }, labels={"prenet": "PReNet", "rainy": "Rainy"}, kinds={"rainy": "identity"})
    rows = _csv(db)
    assert {(r["method"], r["label"]) for r in rows} == {("prenet:rain100h", "PReNet (rain100h)"),
                                                         ("prenet:rain100l", "PReNet (rain100l)"), ("rainy", "Rainy")}
    short, full = _csv(db, methods=["prenet"]), _csv(db, methods=["prenet:rain100h"])
    assert short == full and {r["method"] for r in short} == {"prenet:rain100h"}  # same rows either way
    with ResultsStore(db) as store:
        md = render(store, "md", "matlab-y")
        html = render(store, "html", "matlab-y")
        tex = render(store, "latex", "matlab-y")
    assert "| PReNet (rain100h) | `prenet:rain100h` |" in md
    assert "<td>PReNet (rain100h)</td><td class=\"spec\"><code>prenet:rain100h</code></td>" in html
    assert r"PReNet (rain100h) & \texttt{prenet:rain100h}" in tex


def _limited(tmp_path: Path) -> Path:
    """Rainy measured on 100 images, SAPNet on the first 3 (as `--limit 3`)."""
    rainy = [20.0] * 3 + [30.0] * 97  # the 3 shared images are much harder than the rest
    return _store(tmp_path / "limited.sqlite", {
        ("rainy", "default", "rainy"): {"rain100l": {("psnr", "matlab-y"): rainy, ("ssim", "matlab-y"): [0.8] * 100}},
        ("sapnet", "ours", "sapnet"): {"rain100l": {("psnr", "matlab-y"): [25.0, 26.0, 27.0],
                                                     ("ssim", "matlab-y"): [0.9] * 3}},
        ("okay", "default", "okay"): {"rain100l": {("psnr", "matlab-y"): [24.0] * 100, ("ssim", "matlab-y"): [0.85] * 100}},
    }, labels={"rainy": "Rainy", "sapnet": "SAPNet", "okay": "Okay"}, kinds={"rainy": "identity"})


def test_a_table_compares_rows_on_the_images_they_share(tmp_path):
    db = _limited(tmp_path)
    rows = {r["method"]: r for r in _csv(db) if r["metric"] == "psnr"}
    assert float(rows["rainy"]["mean"]) == pytest.approx(20.0)  # over the 3 shared images, not over 100
    assert (rows["rainy"]["n"], rows["rainy"]["common_n"], rows["sapnet:ours"]["n"]) == ("100", "3", "3")
    assert float(rows["okay"]["mean"]) == pytest.approx(24.0)
    with ResultsStore(db) as store:
        snapshot = read_snapshot(store)
        (table,) = [t for t in build_tables(snapshot, summarise(snapshot), "matlab-y") if t.kind == "full-reference"]
        md = render(store, "md", "matlab-y")
    cells = {r.spec: r.cells[0] for r in table.rows}
    assert cells["sapnet:ours"].rank == 1 and cells["okay"].rank == 2
    note = table.footnotes[cells["sapnet:ours"].footnote - 1]
    assert "measured on 3 of the 100 images" in note and "compared on the 3 images" in note
    assert "rain100l 3 (of 100 measured)" in " ".join(table.notes) and "rain100l 3 (of 100 measured)" in md


def test_with_all_images_a_cell_over_fewer_images_is_marked_and_not_ranked(tmp_path):
    db = _limited(tmp_path)
    rows = {r["method"]: r for r in _csv(db, options=ReportOptions(images="all")) if r["metric"] == "psnr"}
    assert float(rows["rainy"]["mean"]) == pytest.approx(29.7) and rows["rainy"]["common_n"] == "3"
    with ResultsStore(db) as store:
        snapshot = read_snapshot(store)
        (table,) = [t for t in build_tables(snapshot, summarise(snapshot, images="all"), "matlab-y", images="all")
                    if t.kind == "full-reference"]
    cells = {r.spec: r.cells[0] for r in table.rows}
    assert cells["sapnet:ours"].partial and cells["sapnet:ours"].rank is None
    assert "mean over 3 of the 100 images" in table.footnotes[cells["sapnet:ours"].footnote - 1]
    assert cells["okay"].rank is None  # the one comparable learned row has nothing to be ranked against


OFFLINE = ("method {name}: weights file {file} not found at /w/{name}/{file} and the download failed (URLError: "
           "<urlopen error [Errno -2] Name or service not known>); download it from https://example.org/{file} (see "
           "the README) and put it in /w/{name}/, or set BENCH_WEIGHTS_DIR / --weights-dir")
DRIVE = ("method {name}: weights file {file} not found at /w/{name}/{file}; it has no direct download (Google Drive "
         "only: a very long explanation of mirrors and archive layouts) and put it in /w/{name}/, or set BENCH_WEIGHTS_DIR")


def test_not_evaluated_groups_identical_reasons_into_short_rows():
    rows = [(n, "rain100h" if n == "prenet" else "default", ANY, OFFLINE.format(name=n, file=f"{n}.pth"), "method")
            for n in ("ddn", "prenet", "rescan", "prn")]
    rows += [(n, "default", ANY, DRIVE.format(name=n, file=f"{n}.pth"), "method") for n in ("mprnet", "mspfn")]
    rows += [(ANY, "", "rain12", "rain12: not found under data/rain12; run `bench datasets fetch rain12`", "dataset"),
             (ANY, "", "metric:unique", "unique: UNIQUE.pt not found; download it from https://x and put it in w/unique/",
              "metric")]
    table = pd.DataFrame(rows, columns=["method", "variant", "dataset", "reason", "kind"])
    absent = absent_rows(table)
    assert len(absent) == 4
    offline, drive, dataset, metric = absent
    assert offline.what == "ddn, prenet:rain100h, rescan, prn" and offline.fix == "`bench weights fetch all` when online"
    assert "offline" in offline.why and len(offline.why) < 60
    assert drive.what == "mprnet, mspfn" and "bench info" in drive.fix and "mirrors" not in drive.why + drive.fix
    assert (dataset.what, dataset.why, dataset.fix) == ("dataset rain12", "not found under data/rain12",
                                                        "run `bench datasets fetch rain12`")
    assert metric.what == "metric unique" and metric.why == "UNIQUE.pt not found"
    single = absent_rows(table.iloc[[0]])[0]
    assert single.fix.startswith("`bench weights fetch ddn` when online, or download https://example.org/ddn.pth")


def test_not_evaluated_is_a_collapsed_table_in_html(tmp_path):
    db = _limited(tmp_path)
    with ResultsStore(db) as store:
        for n in ("ddn", "rescan", "prn"):
            store.put_unavailable(n, "default", ANY, OFFLINE.format(name=n, file=f"{n}.pth"), "method", "r1")
        html = render(store, "html", "matlab-y")
        md = render(store, "md", "matlab-y")
        only_rainy = render(store, "md", "matlab-y", methods=["rainy"])
    assert "Not evaluated" not in only_rainy  # the methods that could not run are listed when asked for
    section = html.split('id="not-evaluated"')[1].split("</details>")[0]
    assert "<details class=\"absent\">" in section and "<details class=\"absent\" open" not in section
    assert section.count("<tr>") == 2  # header and one grouped row
    assert md.split("## Not evaluated")[1].count("\n|") == 3  # header, rule, one row


def test_reproduction_check_against_the_published_figures(tmp_path):
    figures, tolerances = load_published()
    assert tolerances["psnr"] == 0.05 and tolerances["ssim"] == 0.002
    table3 = {(f.method, f.dataset, f.metric): f.value for f in figures if f.source.id == "sapnet-table3"}
    assert table3[("rainy", "rain100l", "psnr")] == 25.52 and table3[("sapnet", "rain100l", "ssim")] == 0.973
    assert all(f.source.citation and f.source.convention for f in figures)

    def around(mean: float, n: int = 100) -> list[float]:
        return list(mean + np.linspace(-0.5, 0.5, n))

    db = _store(tmp_path / "repro.sqlite", {
        ("rainy", "default", "rainy"): {"rain100l": {("psnr", "rgb"): around(25.53), ("ssim", "rgb"): around(0.8249, 100)}},
        ("sapnet", "official-2021-09-12", "sapnet:official-2021-09-12"): {
            "rain100l": {("psnr", "rgb"): around(34.60), ("ssim", "rgb"): around(0.9726)}},
        ("prenet", "rain100l", "prenet:rain100l"): {"rain100l": {("psnr", "prenet-y"): around(37.46),
                                                                 ("ssim", "prenet-y"): around(0.9792)}},
        ("prenet", "rain100h", "prenet"): {"rain100l": {("psnr", "prenet-y"): around(30.0, 3)}},
    })
    with ResultsStore(db) as store:
        rows = list(csv.DictReader(io.StringIO(render(store, "csv", "matlab-y", options=ReportOptions(published_only=True)))))
        md = render(store, "md", "matlab-y")
    verdict = {(r["source"], r["method"], r["metric"], r["profile"]): r["verdict"] for r in rows}
    assert verdict[("sapnet-table3", "rainy", "psnr", "rgb")] == "reproduced"
    assert verdict[("sapnet-table3", "rainy", "ssim", "rgb")] == "reproduced"
    assert verdict[("sapnet-table3", "sapnet:official-2021-09-12", "psnr", "rgb")] == "not reproduced"  # 0.17 dB off
    assert verdict[("sapnet-table3", "sapnet:official-2021-09-12", "ssim", "rgb")] == "reproduced"
    assert verdict[("prenet-cvpr2019", "prenet:rain100l", "psnr", "prenet-y")] == "reproduced"
    assert verdict[("prenet-cvpr2019", "prenet:rain100l", "ssim", "prenet-y")] == "reproduced"
    assert verdict[("sapnet-table3", "prenet:rain100l", "psnr", "rgb")].startswith("not measured under rgb")
    assert verdict[("sapnet-table3", "prenet:rain100h", "psnr", "rgb")].startswith("not measured under rgb")
    assert ("prenet-cvpr2019", "prenet:rain100h", "psnr", "prenet-y") not in verdict  # its figure is for Rain100H
    row = next(r for r in rows if r["method"] == "sapnet:official-2021-09-12" and r["metric"] == "psnr")
    assert float(row["published"]) == 34.77 and float(row["difference"]) == pytest.approx(-0.17, abs=1e-6)
    assert "## Reproduction check" in md and "Zheng, Lu, Wu, Gupta" in md and "**reproduced**" in md


def test_reproduction_check_says_when_a_run_is_partial(tmp_path):
    db = _store(tmp_path / "partial.sqlite", {
        ("rainy", "default", "rainy"): {"rain100l": {("psnr", "rgb"): [25.52] * 3, ("ssim", "rgb"): [0.825] * 3}}})
    with ResultsStore(db) as store:
        rows = list(csv.DictReader(io.StringIO(render(store, "csv", "matlab-y", options=ReportOptions(published_only=True)))))
    assert {r["verdict"] for r in rows} == {"partial: 3 of 100 images"}
