"""entity-diffusion: KBFormer (arXiv 2312.05253), absorbing-state diffusion over the properties of
structured entities: numerical, categorical, text and nested (composite) properties, any of them
possibly missing. Generation, conditional completion, imputation with sample-based intervals."""

from importlib.metadata import PackageNotFoundError as _NotFound
from importlib.metadata import version as _version

from entity_diffusion._api import EntityDiffusion, KBFormerConfig, resolve_device, train
from entity_diffusion._diffusion import MaskDraw, diffusion_loss, draw_mask, elbo_weight, masked_nll
from entity_diffusion._errors import (
    EmptyTableError,
    EntityDataError,
    MalformedRecordError,
    MixedTypeError,
    SchemaError,
    UnseenCategoryError,
)
from entity_diffusion._model import KBFormer, KeyPathEncoder, ModelConfig, gmm_log_prob, gmm_mean, sample_gmm
from entity_diffusion._sampler import UnmaskingSampler, empty_batch
from entity_diffusion._schema import (
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

try:
    __version__ = _version("entity-diffusion")
except _NotFound:  # a source checkout on PYTHONPATH
    __version__ = "0+unknown"

__all__ = [
    "CATEGORICAL", "NUMERICAL", "TEXT", "EmptyTableError", "Encoded", "EntityDataError", "EntityDiffusion",
    "KBFormer", "KBFormerConfig", "KeyPathEncoder", "MalformedRecordError", "MaskDraw", "MixedTypeError",
    "ModelConfig", "Property", "Schema", "SchemaError", "UnmaskingSampler", "UnseenCategoryError",
    "__version__", "as_frame", "diffusion_loss", "draw_mask", "elbo_weight", "empty_batch", "frame_to_records",
    "gmm_log_prob", "gmm_mean", "masked_nll", "read_jsonl", "records_to_frame", "resolve_device", "sample_gmm",
    "train",
]
