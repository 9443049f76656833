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
