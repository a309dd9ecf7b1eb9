"""``GET /v1/models``: the model and every alias the vendors use for it."""

from __future__ import annotations

from litestar import get

from core.request import CANONICAL_MODEL, MODEL_ALIASES, resolve_model
from proxy.api.openapi import Answer, documented
from proxy.api.schemas import ModelCard, ModelList
from proxy.api.security import PUBLIC


def _model(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 1708387200, "owned_by": "boltgate",
            "root": CANONICAL_MODEL}


@get("/v1/models", sync_to_thread=False,
     operation_class=documented(Answer(ModelList, "Every name served"), security=PUBLIC))
def list_models() -> dict[str, object]:
    names = [CANONICAL_MODEL, *sorted(MODEL_ALIASES - {CANONICAL_MODEL})]
    return {"object": "list", "data": [_model(name) for name in names]}


@get("/v1/models/{model:path}", sync_to_thread=False,
     operation_class=documented(Answer(ModelCard, "The model, under the name asked"), errors=(404, 500),
                                security=PUBLIC))
def retrieve_model(model: str) -> dict[str, object]:
    name = model.lstrip("/")
    resolve_model(name)  # an unknown name is a 404 model_not_found naming the ones served
    return _model(name)
