"""`bench list` (one line per entry, 100 columns), `bench info` and the weights manager (status, fetch, verify)."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.parse

import pytest
from typer.testing import CliRunner

from bench.cli import app

WIDTH = {"COLUMNS": "100"}


def _invoke(args: list[str], env: dict | None = None):
    return CliRunner().invoke(app, args, env={**WIDTH, **(env or {})})


@pytest.mark.parametrize("what", ["methods", "datasets", "metrics", "task-models"])
def test_list_prints_one_line_per_entry_within_100_columns(what, tmp_path):
    args = ["list", what, "--data-root", str(tmp_path), "--weights-dir", str(tmp_path)]
    text = _invoke(args)
    assert text.exit_code == 0, text.output
    entries = json.loads(_invoke([*args, "--json"]).stdout)
    lines = text.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    body = [line for line in lines[1:] if not line.startswith(("*", "`"))]  # header, then footers (legend, hint)
    assert len(body) == len(entries)  # one line per entry: nothing wrapped onto a second line
    shown = [line.split()[0] for line in body]
    assert all(e["name"].startswith(name.rstrip("…")) for name, e in zip(shown, entries, strict=True))  # long: clipped
    assert all(e["status"] for e in entries)


def test_list_methods_names_every_variant_with_a_short_status(tmp_path):
    entries = {e["name"]: e for e in json.loads(_invoke(["list", "methods", "--weights-dir", str(tmp_path),
                                                          "--json"]).stdout)}
    assert {"prenet:rain100h", "prenet:rain100l", "prenet:ours", "sapnet:ours", "sapnet:official", "rainy"} <= set(entries)
    assert entries["sapnet:ours"]["status"] == "ready (shipped)" and entries["rainy"]["status"] == "ready"
    assert entries["sapnet:ours"]["extra"]["default"] and not entries["prenet:ours"]["extra"]["default"]
    assert entries["mprnet"]["status"] == "weights missing" and entries["mprnet"]["hint"] == "bench info mprnet"
    offline = {e["name"]: e for e in json.loads(_invoke(["list", "methods", "--weights-dir", str(tmp_path), "--json"],
                                                        {"BENCH_NO_DOWNLOAD": "1"}).stdout)}
    online = {e["name"]: e for e in json.loads(_invoke(["list", "methods", "--weights-dir", str(tmp_path), "--json"],
                                                       {"BENCH_NO_DOWNLOAD": "0"}).stdout)}
    assert offline["prenet:rain100l"]["status"] == "weights missing"
    assert online["prenet:rain100l"]["status"] == "download on first use"
    assert offline["prenet:rain100l"]["hint"] == "bench weights fetch prenet:rain100l"


def test_info_gives_download_instructions_urls_and_checksums(tmp_path):
    result = _invoke(["info", "effderain", "--weights-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "models_effderain.zip" in result.stdout and "no direct download" in result.stdout
    assert f"{tmp_path}/effderain/v3_rain100H.pth" in result.stdout
    # within 100 columns, apart from lines that carry the (arbitrarily long) weights-dir path itself
    assert max(len(line) for line in result.stdout.splitlines() if str(tmp_path) not in line) <= 100
    (prenet,) = json.loads(_invoke(["info", "prenet:rain100l", "--weights-dir", str(tmp_path), "--json"]).stdout)
    (variant,) = prenet["variants"]
    (wf,) = variant["weights"]
    assert variant["spec"] == "prenet:rain100l" and wf["state"] == "missing" and len(wf["sha256"]) == 64
    assert wf["url"].startswith("https://raw.githubusercontent.com/csdwren/PReNet/")
    assert "bench weights fetch prenet:rain100l" in variant["obtain"][0]
    kinds = [e["kind"] for e in json.loads(_invoke(["info", "moss", "--json"]).stdout)]
    assert kinds == ["method", "dataset"]  # one name, two kinds: both described
    unknown = _invoke(["info", "no-such-thing"])
    assert unknown.exit_code == 2 and "bench list" in unknown.output


PLUGIN = '''
from bench.methods.api import DerainMethod, MethodInfo, Variant, WeightsFile


class Fetched(DerainMethod):
    info = MethodInfo(name="fetched", paper="test", year=2024, kind="learned", variants={
        "good": Variant(weights=(WeightsFile("good.bin", url="{good_url}", sha256="{good_sha}"),)),
        "bad": Variant(weights=(WeightsFile("bad.bin", url="{good_url}", sha256="{wrong_sha}"),)),
        "manual": Variant(weights=(WeightsFile("manual.bin", how_to_get="ask the authors by e-mail"),)),
    }, default_variant="good")
'''


@pytest.fixture()
def fetch_setup(tmp_path):
    """A plugin whose weights come from a local file:// URL (one good sha256, one wrong, one without URL)."""
    source = tmp_path / "server" / "weights.bin"
    source.parent.mkdir()
    source.write_bytes(b"weights" * 1000)
    plugin = tmp_path / "fetched.py"
    good_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    plugin.write_text(PLUGIN.replace("{good_url}", source.as_uri()).replace("{good_sha}", good_sha)
                      .replace("{wrong_sha}", "0" * 64))
    return tmp_path / "weights", plugin


def test_weights_fetch_downloads_checks_sha256_and_explains_manual_files(fetch_setup):
    weights, plugin = fetch_setup
    common = ["--weights-dir", str(weights), "--plugin", str(plugin)]
    before = {e["name"]: e["status"] for e in json.loads(_invoke(["weights", "status", "--json", *common]).stdout)}
    assert before["fetched/good.bin"] == "missing"
    good = _invoke(["weights", "fetch", "fetched:good", *common])
    assert good.exit_code == 0, good.output
    assert (weights / "fetched" / "good.bin").read_bytes() == b"weights" * 1000
    bad = _invoke(["weights", "fetch", "fetched", *common])
    assert bad.exit_code == 1
    assert "sha256" in bad.output and not (weights / "fetched" / "bad.bin").exists()  # a bad download is not kept
    assert "ask the authors by e-mail" in bad.output and f"{weights}/fetched/manual.bin" in bad.output
    after = {e["name"]: e["status"] for e in json.loads(_invoke(["weights", "status", "--json", *common]).stdout)}
    assert after["fetched/good.bin"] == "present" and after["fetched/bad.bin"] == "missing"
    listed = {e["name"]: e["status"] for e in json.loads(_invoke(["list", "methods", "--json", *common]).stdout)}
    assert listed["fetched:good"] == "ready"
    assert _invoke(["weights", "verify", *common]).exit_code == 0
    (weights / "fetched" / "good.bin").write_bytes(b"corrupt")
    status = _invoke(["weights", "status", *common])
    assert "checksum mismatch" in status.stdout
    assert max(len(line) for line in status.stdout.splitlines()[1:]) <= 100  # the first line names the folder
    verify = _invoke(["weights", "verify", *common])
    assert verify.exit_code == 1 and "MISMATCH" in verify.stdout


def test_weights_fetch_offline_fails_fast_with_the_manual_route(fetch_setup, monkeypatch):
    weights, plugin = fetch_setup
    calls = []

    def offline(url, timeout):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("bench.methods.weights.urllib.request.urlopen", offline)
    start = time.monotonic()
    result = _invoke(["weights", "fetch", "all", "--weights-dir", str(weights), "--plugin", str(plugin)])
    assert time.monotonic() - start < 30
    assert result.exit_code == 1
    assert "offline?" in result.output and "put it at" in result.output and "not tried" in result.output
    hosts = [urllib.parse.urlparse(url).netloc or "file" for url in calls]
    assert "file" in hosts and len(hosts) == len(set(hosts))  # once a host did not answer, its other files are not tried
