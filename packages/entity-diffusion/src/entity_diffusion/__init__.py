"""entity-diffusion: KBFormer (arXiv 2312.05253), absorbing-state diffusion over the properties of
structured entities: numerical, categorical, text and nested (composite) properties, any of them
possibly missing. Generation, conditional completion, imputation with sample-based intervals.

Names are resolved lazily (PEP 562), so ``import entity_diffusion`` does not import torch or pandas.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError as _NotFound
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

try:
    __version__ = _version("entity-diffusion")
except _NotFound:  # a source checkout on PYTHONPATH
    __version__ = "0+unknown"

_EXPORTS = {
    "entity_diffusion._api": ["EntityDiffusion", "KBFormerConfig", "TrainingHistory", "held_out_loss",
                             "order_statistic_rank", "resolve_device", "train"],
    "entity_diffusion._imputer": ["KBFormerImputer", "preset_config"],
    "entity_diffusion._diffusion": ["MaskDraw", "diffusion_loss", "draw_mask", "elbo_weight", "masked_nll"],
    "entity_diffusion._errors": ["EmptyTableError", "EntityDataError", "MalformedRecordError", "MixedTypeError",
                                 "SchemaError", "UnseenCategoryError"],
    "entity_diffusion._model": ["KBFormer", "KeyPathEncoder", "ModelConfig", "gmm_log_prob", "gmm_mean", "sample_gmm"],
    "entity_diffusion._sampler": ["UnmaskingSampler", "empty_batch"],
    "entity_diffusion._schema": ["CATEGORICAL", "NUMERICAL", "TEXT", "Encoded", "Property", "Schema", "as_frame",
                                 "frame_to_records", "read_jsonl", "records_to_frame"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted([*_WHERE, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'entity_diffusion' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # static analysers see the real names
    from entity_diffusion._api import (  # noqa: F401
        EntityDiffusion,
        KBFormerConfig,
        TrainingHistory,
        held_out_loss,
        order_statistic_rank,
        resolve_device,
        train,
    )
    from entity_diffusion._diffusion import (  # noqa: F401
        MaskDraw,
        diffusion_loss,
        draw_mask,
        elbo_weight,
        masked_nll,
    )
    from entity_diffusion._errors import (  # noqa: F401
        EmptyTableError,
        EntityDataError,
        MalformedRecordError,
        MixedTypeError,
        SchemaError,
        UnseenCategoryError,
    )
    from entity_diffusion._imputer import KBFormerImputer, preset_config  # noqa: F401
    from entity_diffusion._model import (  # noqa: F401
        KBFormer,
        KeyPathEncoder,
        ModelConfig,
        gmm_log_prob,
        gmm_mean,
        sample_gmm,
    )
    from entity_diffusion._sampler import UnmaskingSampler, empty_batch  # noqa: F401
    from entity_diffusion._schema import (  # noqa: F401
        CATEGORICAL,
        NUMERICAL,
        TEXT,
        Encoded,
        Property,
        Schema,
        as_frame,
        frame_to_records,
        read_jsonl,
        records_to_frame,
    )
