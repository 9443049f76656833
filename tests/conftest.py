from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from memvault import Vault


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    """A real SQLite-backed vault with the deterministic hash embedder."""
    v = Vault(tmp_path / "vault.db", embedder="hash")
    yield v
    v.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vault.db"


@pytest.fixture(scope="session")
def local_llm():
    """The bundled SmolLM2, loaded once per test session (tens of seconds), one torch thread."""
    import torch

    from memvault.models.local import load_local_llm

    torch.set_num_threads(1)
    return load_local_llm()


@pytest.fixture(scope="session")
def general_cache(tmp_path_factory) -> Path:
    """Where distillations in this session keep the base model's general-knowledge answers
    (minutes to compute; the same for every adapter on one model)."""
    return tmp_path_factory.mktemp("general-answers")
