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
