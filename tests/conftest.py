import os
import pathlib

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

DATA = pathlib.Path(__file__).parent / "data"
GOLDEN = DATA / "golden"


@pytest.fixture(scope="session")
def golden_dir() -> pathlib.Path:
    return GOLDEN
