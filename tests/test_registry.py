"""The lazy registry: nothing imported until used, typo suggestions, local plugin files."""

import subprocess
import sys

import pytest

from bench.errors import BadInputError, UnknownNameError
from bench.registry import Registry, load_plugin_file


def test_entries_are_not_imported_until_loaded():
    registry = Registry("widget")
    registry.register("json_decoder", "json.decoder:JSONDecoder")
    registry.register("broken", "no_such_module_xyz:Thing")
    assert "no_such_module_xyz" not in sys.modules
    assert registry.names() == ["broken", "json_decoder"]
    assert registry.load("json_decoder").__name__ == "JSONDecoder"
    with pytest.raises(BadInputError, match="no_such_module_xyz"):
        registry.load("broken")


def test_unknown_name_suggests_close_matches():
    registry = Registry("widget")
    registry.register("prenet", object())
    with pytest.raises(UnknownNameError, match="Did you mean 'prenet'"):
        registry.entry("prenett")


def test_listing_method_names_imports_no_plugin_module():
    code = ("import sys; from bench.methods.registry import METHODS; names = METHODS.names(); "
            "print(sorted(names)[:0], [m for m in sys.modules if m.startswith('methods.')], 'rainy' in names)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "[]", "True"]


def test_plugin_file_registers_its_methods(tmp_path):
    from bench.methods.registry import METHODS, create_method

    (tmp_path / "mine.py").write_text(
        "from bench.methods.api import DerainMethod, MethodInfo\n"
        "class Mine(DerainMethod):\n"
        "    info = MethodInfo(name='mine_local', paper='p', year=2024, kind='classical')\n"
        "    def derain(self, batch):\n        return batch\n")
    load_plugin_file(tmp_path / "mine.py")
    assert "mine_local" in METHODS
    assert create_method("mine_local").spec == "mine_local"
    with pytest.raises(BadInputError, match="not found"):
        load_plugin_file(tmp_path / "absent.py")
