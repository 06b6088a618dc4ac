"""Every stored figure records the precision its network ran in; a store written before precisions existed opens
with every old figure fp32."""

from __future__ import annotations

import sqlite3

from bench.results.store import ResultKey, ResultsStore


def test_a_store_written_before_precisions_opens_with_every_figure_fp32(tmp_path):
    db = tmp_path / "results.sqlite"
    with sqlite3.connect(db) as con:  # the results table as earlier versions created it
        con.execute("CREATE TABLE results (method TEXT NOT NULL, variant TEXT NOT NULL, weights_hash TEXT NOT NULL, "
                    "dataset TEXT NOT NULL, image_id TEXT NOT NULL, metric TEXT NOT NULL, profile TEXT NOT NULL, "
                    "value REAL, implementation TEXT, run_id TEXT, created REAL, "
                    "PRIMARY KEY (method, variant, weights_hash, dataset, image_id, metric, profile))")
        con.execute("INSERT INTO results VALUES ('m','v','h','d','1','psnr','matlab-y',30.5,'bench','r',1.0)")
    with ResultsStore(db) as store:
        assert store.results()[["value", "precision"]].values.tolist() == [[30.5, "fp32"]]
        assert store.done_images(ResultKey("m", "v", "h", "d")) == {"1": {("psnr", "matlab-y")}}
        assert store.done_images(ResultKey("m", "v", "h", "d", "bf16")) == {}
        store.put_image(ResultKey("m", "v", "h", "d", "bf16"), "1", [("psnr", "matlab-y", 30.4, "bench")], "r2")
        assert sorted(store.results()["precision"]) == ["bf16", "fp32"]
