"""Error types: every bad input names the property (and line or row) and what was expected."""

from __future__ import annotations


class EntityDataError(ValueError):
    """Base class for problems with the entities given to entity-diffusion."""


class EmptyTableError(EntityDataError):
    """The table or record file holds no entity (or no observed value at all)."""


class MixedTypeError(EntityDataError):
    """One property holds values of incompatible types (numbers and strings, say)."""


class MalformedRecordError(EntityDataError):
    """A JSON-lines record could not be parsed or is not a (nested) object."""


class UnseenCategoryError(EntityDataError):
    """A categorical value at completion time that the model never saw in training."""


class SchemaError(EntityDataError):
    """The schema and the data disagree (unknown property, bad override, no observed value)."""
