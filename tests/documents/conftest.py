from pathlib import Path

import pytest

from app.core.config import Settings


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shared test settings, with a documents folder of this test's own."""
    return settings.model_copy(update={"documents_dir": tmp_path / "documents"})
