from __future__ import annotations

import pytest

from app.reference.loader import load_bundle
from app.taxonomy import model as learned
from app.taxonomy.evaluate import index_from_bundle
from app.taxonomy.search import TaxonomyIndex
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def index() -> TaxonomyIndex:
    return index_from_bundle(load_bundle())


@pytest.fixture(scope="session")
def text_model(index: TaxonomyIndex) -> learned.TextModel:
    """The shipped model (no corrections), from the model folder or built once there."""
    items = [d.item for d in index.docs]
    path = learned.model_path(make_settings().model_dir, learned.shipped_fingerprint(items))
    model = learned.load(path)
    if model is None or model.corrections:
        model = learned.build(items)
        learned.save(model, path)
    return model
