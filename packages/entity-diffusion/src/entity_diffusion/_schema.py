"""Entities, schemas and the tensor encoding the model sees.

An entity is a nested record: ``{"phone": {"oem": "Acme", "launch": {"year": 2019}}}``. Each leaf
is a *property* named by its key path (``phone.launch.year``); internal nodes are composite
properties and carry no value of their own. A property may be absent from any entity: absence is
kept as such (never imputed beforehand) and the model treats it as permanently masked.

Tables (pandas DataFrames, CSV files) are entities whose column names are dotted key paths.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from entity_diffusion._errors import (
    EmptyTableError,
    MalformedRecordError,
    MixedTypeError,
    SchemaError,
    UnseenCategoryError,
)

NUMERICAL = "numerical"
CATEGORICAL = "categorical"
TEXT = "text"
KINDS = (NUMERICAL, CATEGORICAL, TEXT)

# text tokens (character level; no tokenizer download)
PAD, BOS, EOS, UNK = 0, 1, 2, 3
N_SPECIAL = 4

_QUANTILE_BOUND = 1e-7  # as scikit-learn's QuantileTransformer: keeps ndtri finite


# --------------------------------------------------------------------------------------- tables
def _flatten(record: Mapping[str, Any], prefix: str, out: dict[str, Any], where: str) -> None:
    for key, value in record.items():
        if not isinstance(key, str) or not key:
            raise MalformedRecordError(f"{where}: keys must be non-empty strings, got {key!r}")
        if "." in key:
            raise MalformedRecordError(
                f"{where}: key {key!r} contains '.', which separates levels of a key path; "
                "nest the record instead"
            )
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            _flatten(value, path, out, where)
        elif isinstance(value, list | tuple | set):
            raise MalformedRecordError(
                f"{where}: property {path!r} holds a list; expected a number, a string, a "
                "boolean, null or a nested object"
            )
        else:
            out[path] = value


def records_to_frame(records: Iterable[Any], *, source: str = "records") -> pd.DataFrame:
    """Flatten nested records into a DataFrame whose columns are dotted key paths."""
    rows = []
    for index, record in enumerate(records):
        where = f"{source}, record {index + 1}"
        if not isinstance(record, Mapping):
            raise MalformedRecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
        flat: dict[str, Any] = {}
        _flatten(record, "", flat, where)
        rows.append(flat)
    if not rows:
        raise EmptyTableError(f"{source}: no entity found (empty input)")
    return pd.DataFrame.from_records(rows).astype(object).where(lambda f: f.notna(), None)


def read_jsonl(path: str | Path) -> pd.DataFrame:
    """Read a JSON-lines file of (nested) records; blank lines are skipped."""
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise MalformedRecordError(
                    f"{path}, line {line_number}: not valid JSON ({error.msg} at column {error.colno})"
                ) from None
            if not isinstance(record, dict):
                raise MalformedRecordError(
                    f"{path}, line {line_number}: expected a JSON object, got {type(record).__name__}"
                )
            flat: dict[str, Any] = {}
            _flatten(record, "", flat, f"{path}, line {line_number}")
            rows.append(flat)
    if not rows:
        raise EmptyTableError(f"{path}: no record found (the file is empty)")
    return pd.DataFrame.from_records(rows).astype(object).where(lambda f: f.notna(), None)


def as_frame(data: Any) -> pd.DataFrame:
    """DataFrame, list of nested records, or a path to ``.csv`` / ``.jsonl`` / ``.json``."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            frame = read_jsonl(path)
        elif path.suffix.lower() in (".csv", ".tsv"):
            try:
                frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
            except pd.errors.EmptyDataError:
                raise EmptyTableError(f"{path}: the file is empty") from None
            except pd.errors.ParserError as error:
                raise MalformedRecordError(f"{path}: {error}") from None
        else:
            raise ValueError(f"{path}: expected a .csv, .tsv, .jsonl or .json file")
    elif isinstance(data, Sequence) or hasattr(data, "__iter__"):
        frame = records_to_frame(data)
    else:
        raise TypeError(f"expected a DataFrame, records or a file path, got {type(data).__name__}")
    if len(frame) == 0:
        raise EmptyTableError("the table has no rows")
    if frame.shape[1] == 0:
        raise EmptyTableError("the table has no columns")
    bad = [c for c in frame.columns if not isinstance(c, str) or not c]
    if bad:
        raise SchemaError(f"column names must be non-empty strings (dotted key paths), got {bad[:5]}")
    if frame.columns.duplicated().any():
        raise SchemaError(f"duplicated columns: {sorted(set(frame.columns[frame.columns.duplicated()]))}")
    return frame.reset_index(drop=True)


def frame_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Inverse of `records_to_frame`: missing properties are left out of each record."""
    records = []
    for row in frame.itertuples(index=False, name=None):
        record: dict[str, Any] = {}
        for column, value in zip(frame.columns, row):
            if _is_missing(value):
                continue
            node = record
            *parents, leaf = column.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value.item() if isinstance(value, np.generic) else value
        records.append(record)
    return records


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return False


def _value_type(value: Any) -> str:
    if isinstance(value, _dt.datetime | np.datetime64):  # pd.Timestamp is a datetime
        return "datetime"
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return "string"
        return "numeric-string"
    return type(value).__name__


# ------------------------------------------------------------------------------------- schema
@dataclass
class Property:
    """One leaf property: its key path, type, and what is needed to encode/decode its values."""

    name: str
    kind: str
    categories: list[Any] | None = None
    quantiles: list[float] | None = None  # numerical: reference quantiles of the training values
    mean: float = 0.0
    std: float = 1.0
    integer: bool = False
    discrete_values: list[float] | None = None  # <= 32 integer values: round to the nearest one
    vocab: list[str] | None = None  # text: characters (ids start at N_SPECIAL)
    max_len: int = 0  # text: characters kept
    datetime: bool = False  # numerical property holding timestamps (seconds since 1970 inside)
    note: str | None = None  # why inference chose this kind, when it was not obvious

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))

    @property
    def n_categories(self) -> int:
        return len(self.categories or [])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.note:
            out["note"] = self.note
        if self.kind == NUMERICAL:
            out.update(quantiles=self.quantiles, mean=self.mean, std=self.std, integer=self.integer,
                       discrete_values=self.discrete_values, datetime=self.datetime)
        elif self.kind == CATEGORICAL:
            out["categories"] = self.categories
        else:
            out.update(vocab=self.vocab, max_len=self.max_len)
        return out


@dataclass
class Schema:
    """Ordered properties (numerical, then categorical, then text) and the numeric transform."""

    properties: list[Property]
    numeric_transform: str = "quantile"
    _category_index: list[dict[Any, int]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        order = {kind: i for i, kind in enumerate(KINDS)}
        self.properties = sorted(self.properties, key=lambda p: order[p.kind])  # stable
        self._category_index = [
            {c: i for i, c in enumerate(p.categories)} for p in self.categorical
        ]
        if self.numeric_transform not in ("quantile", "standard"):
            raise SchemaError(f"numeric_transform must be 'quantile' or 'standard', got {self.numeric_transform!r}")

    # views
    @property
    def names(self) -> list[str]:
        return [p.name for p in self.properties]

    @property
    def numerical(self) -> list[Property]:
        return [p for p in self.properties if p.kind == NUMERICAL]

    @property
    def categorical(self) -> list[Property]:
        return [p for p in self.properties if p.kind == CATEGORICAL]

    @property
    def text(self) -> list[Property]:
        return [p for p in self.properties if p.kind == TEXT]

    def __len__(self) -> int:
        return len(self.properties)

    def __getitem__(self, name: str) -> Property:
        for p in self.properties:
            if p.name == name:
                return p
        raise KeyError(f"no property {name!r}; the schema has {self.names}")

    # serialisation
    def to_json(self) -> str:
        return json.dumps(
            {"numeric_transform": self.numeric_transform, "properties": [p.to_dict() for p in self.properties]},
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Schema:
        raw = json.loads(text)
        props = [Property(**p) for p in raw["properties"]]
        return cls(props, numeric_transform=raw.get("numeric_transform", "quantile"))

    # inference
    @classmethod
    def infer(
        cls,
        data: Any,
        *,
        overrides: Mapping[str, str] | None = None,
        max_categories: int = 50,
        max_text_len: int = 48,
        numeric_transform: str = "quantile",
        n_quantiles: int = 1000,
    ) -> Schema:
        """Infer property types from data; ``overrides`` maps a property name to a kind.

        Numbers -> numerical; booleans -> categorical; strings -> categorical when a property has
        at most ``max_categories`` distinct values, else text. A property mixing numbers and
        strings raises `MixedTypeError` unless ``overrides`` names its kind.
        """
        frame = as_frame(data)
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(frame.columns))
        if unknown:
            raise SchemaError(f"schema overrides name properties not in the data: {unknown}; data has {list(frame.columns)}")
        for name, kind in overrides.items():
            if kind not in KINDS:
                raise SchemaError(f"override for {name!r}: kind must be one of {KINDS}, got {kind!r}")
        properties = []
        for name in frame.columns:
            column = frame[name]
            present = [v for v in column.tolist() if not _is_missing(v)]
            if not present:
                raise SchemaError(f"property {name!r} has no observed value; drop it or give data for it")
            kind = overrides.get(name) or _infer_kind(name, column, present, max_categories)
            prop = _build_property(name, kind, present, max_text_len, n_quantiles)
            if kind == TEXT and name not in overrides and all(isinstance(v, str) for v in present):
                n_unique = len(set(present))
                prop.note = (f"inferred as free text: {n_unique} distinct strings > max_categories={max_categories}")
                warnings.warn(f"property {name!r}: {n_unique} distinct strings (more than max_categories="
                              f"{max_categories}), so it is modelled as free text; pass schema_overrides="
                              f"{{{name!r}: 'categorical'}} or a larger max_categories to keep it categorical",
                              UserWarning, stacklevel=2)
            properties.append(prop)
        return cls(properties, numeric_transform=numeric_transform)

    # encoding
    def encode(self, data: Any, *, allow_missing_columns: bool = True) -> Encoded:
        """Tensors for the model. Absent columns are missing everywhere; unknown columns are errors."""
        frame = as_frame(data)
        extra = sorted(set(frame.columns) - set(self.names))
        if extra:
            raise SchemaError(f"properties not in the schema: {extra}; the schema has {self.names}")
        if not allow_missing_columns:
            absent = [n for n in self.names if n not in frame.columns]
            if absent:
                raise SchemaError(f"missing columns {absent}")
        n = len(frame)
        num = np.zeros((n, len(self.numerical)), dtype=np.float32)
        cat = np.zeros((n, len(self.categorical)), dtype=np.int64)
        texts = []
        present = np.zeros((n, len(self)), dtype=bool)
        for j, prop in enumerate(self.properties):
            if prop.name not in frame.columns:
                continue
            values = frame[prop.name].tolist()
            mask = np.array([not _is_missing(v) for v in values], dtype=bool)
            present[:, j] = mask
            if prop.kind == NUMERICAL:
                k = j
                raw = np.zeros(n, dtype=np.float64)
                for i in np.flatnonzero(mask):
                    raw[i] = _to_float(prop.name, values[i], i, datetime=prop.datetime)
                bad = mask & ~np.isfinite(raw)
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise SchemaError(f"property {prop.name!r}, row {i}: value {values[i]!r} is not finite; "
                                      "use NaN/null for a missing value")
                num[:, k] = np.where(mask, self.transform(prop, raw), 0.0)
            elif prop.kind == CATEGORICAL:
                k = j - len(self.numerical)
                lookup = self._category_index[k]
                for i in np.flatnonzero(mask):
                    value = _category_key(values[i])
                    if value not in lookup:
                        shown = prop.categories[:10] + (["..."] if prop.n_categories > 10 else [])
                        raise UnseenCategoryError(
                            f"property {prop.name!r}, row {i}: category {values[i]!r} was not seen in "
                            f"training; known categories: {shown}"
                        )
                    cat[i, k] = lookup[value]
            else:
                tokens = np.full((n, prop.max_len + 2), PAD, dtype=np.int64)
                char_id = {c: t + N_SPECIAL for t, c in enumerate(prop.vocab)}
                tokens[:, 0] = BOS
                tokens[:, 1] = EOS
                too_long = sum(len(str(values[i])) > prop.max_len for i in np.flatnonzero(mask))
                if too_long:
                    warnings.warn(f"property {prop.name!r}: {too_long} text values longer than {prop.max_len} "
                                  "characters are cut to that length (the schema's max_len; set "
                                  "KBFormerConfig.max_text_len higher before fitting to keep more)",
                                  UserWarning, stacklevel=2)
                for i in np.flatnonzero(mask):
                    s = str(values[i])[: prop.max_len]
                    ids = [char_id.get(c, UNK) for c in s]
                    tokens[i, 1 : 1 + len(ids)] = ids
                    tokens[i, 1 + len(ids)] = EOS
                texts.append(torch.from_numpy(tokens))
        return Encoded(torch.from_numpy(num), torch.from_numpy(cat), texts, torch.from_numpy(present))

    def decode(self, encoded: Encoded, *, nested: bool = False) -> pd.DataFrame | list[dict[str, Any]]:
        """Values back in data units (numbers rounded as in training); missing -> NaN / None."""
        columns: dict[str, Any] = {}
        present = encoded.present.cpu().numpy()
        for j, prop in enumerate(self.properties):
            mask = present[:, j]
            if prop.kind == NUMERICAL:
                z = encoded.num[:, j].detach().cpu().double().numpy()
                values = np.where(mask, self.inverse_transform(prop, z), np.nan)
                columns[prop.name] = seconds_to_datetimes(values) if prop.datetime else values
            elif prop.kind == CATEGORICAL:
                k = j - len(self.numerical)
                idx = encoded.cat[:, k].cpu().numpy()
                columns[prop.name] = pd.Series(
                    [prop.categories[i] if m else None for i, m in zip(idx, mask)], dtype=object
                )
            else:
                k = j - len(self.numerical) - len(self.categorical)
                columns[prop.name] = pd.Series(
                    [decode_text(prop, row) if m else None for row, m in zip(encoded.text[k].tolist(), mask)],
                    dtype=object,
                )
        frame = pd.DataFrame(columns)
        return frame_to_records(frame) if nested else frame

    # numeric transforms (float64 numpy in, float64 numpy out)
    def transform(self, prop: Property, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.numeric_transform == "standard":
            return (x - prop.mean) / prop.std
        q = np.asarray(prop.quantiles)
        ref = np.linspace(0.0, 1.0, len(q))
        # average of forward and backward interpolation: ties in q map to the middle of their range
        u = 0.5 * (np.interp(x, q, ref) - np.interp(-x, -q[::-1], -ref[::-1]))
        u = np.clip(u, _QUANTILE_BOUND, 1 - _QUANTILE_BOUND)
        return torch.special.ndtri(torch.from_numpy(u)).numpy()

    def inverse_transform(self, prop: Property, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if self.numeric_transform == "standard":
            x = z * prop.std + prop.mean
        else:
            q = np.asarray(prop.quantiles)
            u = torch.special.ndtr(torch.from_numpy(z)).numpy()
            x = np.interp(u, np.linspace(0.0, 1.0, len(q)), q)
        if prop.discrete_values is not None:
            grid = np.asarray(prop.discrete_values)
            x = grid[np.abs(x[:, None] - grid[None, :]).argmin(axis=1)]
        elif prop.integer:
            x = np.round(x)
        return x


@dataclass
class Encoded:
    """A batch of entities as tensors. ``present[:, j]`` is False where property j is missing."""

    num: torch.Tensor  # (B, Dn) float32, transformed
    cat: torch.Tensor  # (B, Dc) int64
    text: list[torch.Tensor]  # Dt tensors (B, L_t) int64: BOS chars EOS PAD...
    present: torch.Tensor  # (B, D) bool

    def __len__(self) -> int:
        return self.present.shape[0]

    def to(self, device: torch.device | str) -> Encoded:
        return Encoded(self.num.to(device), self.cat.to(device), [t.to(device) for t in self.text],
                       self.present.to(device))

    def index(self, rows: torch.Tensor) -> Encoded:
        return Encoded(self.num[rows], self.cat[rows], [t[rows] for t in self.text], self.present[rows])

    def clone(self) -> Encoded:
        return Encoded(self.num.clone(), self.cat.clone(), [t.clone() for t in self.text], self.present.clone())

    def repeat(self, times: int) -> Encoded:
        """Each entity repeated ``times`` times, consecutively (for several samples per entity)."""
        return Encoded(self.num.repeat_interleave(times, 0), self.cat.repeat_interleave(times, 0),
                       [t.repeat_interleave(times, 0) for t in self.text],
                       self.present.repeat_interleave(times, 0))


def decode_text(prop: Property, tokens: list[int]) -> str:
    chars = []
    for t in tokens[1:]:
        if t in (EOS, PAD):
            break
        if t == BOS:
            continue
        chars.append("\N{REPLACEMENT CHARACTER}" if t == UNK else prop.vocab[t - N_SPECIAL])
    return "".join(chars)


def _category_key(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 1.0 and 1 are the same category
    return value


def seconds_to_datetimes(seconds: np.ndarray) -> pd.Series:
    """Seconds since 1970-01-01 (NaN = missing) -> datetime64[ns] (NaT)."""
    return pd.Series(pd.to_datetime(np.asarray(seconds, dtype=float), unit="s")).dt.round("us")


def datetimes_to_seconds(values: Any) -> np.ndarray:
    """Timestamps (NaT / None = missing) -> float seconds since 1970-01-01 (NaN)."""
    stamps = pd.to_datetime(pd.Series(values, dtype=object).where(lambda v: v.notna(), None))
    if stamps.dt.tz is not None:
        raise SchemaError("timezone-aware datetimes are not supported; convert them to naive UTC first")
    out = stamps.astype("int64").to_numpy().astype(np.float64) / 1e9
    out[stamps.isna().to_numpy()] = np.nan
    return out


def _to_float(name: str, value: Any, row: int, *, datetime: bool = False) -> float:
    if datetime:
        if not isinstance(value, _dt.datetime | np.datetime64 | str):
            raise MixedTypeError(f"property {name!r}, row {row}: expected a date/time, got {value!r}")
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise MixedTypeError(f"property {name!r}, row {row}: expected a date/time, got {value!r}") from None
        if stamp.tzinfo is not None:
            raise SchemaError(f"property {name!r}, row {row}: timezone-aware datetimes are not supported; "
                              "convert them to naive UTC first")
        return stamp.value / 1e9
    if isinstance(value, _dt.datetime | np.datetime64):
        raise MixedTypeError(f"property {name!r}, row {row}: a date/time {value!r} in a numerical property")
    if isinstance(value, bool | np.bool_):
        raise MixedTypeError(f"property {name!r}, row {row}: boolean {value!r} in a numerical property")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MixedTypeError(
            f"property {name!r}, row {row}: expected a number (numerical property), got {value!r}"
        ) from None


def _infer_kind(name: str, column: pd.Series, present: list[Any], max_categories: int) -> str:
    types: dict[str, Any] = {}
    for v in present:
        types.setdefault(_value_type(v), v)
    if set(types) in ({"number"}, {"datetime"}):
        return NUMERICAL
    if set(types) == {"bool"}:
        return CATEGORICAL
    if set(types) <= {"string", "numeric-string"} and not (
        "string" in types and "numeric-string" in types
    ):
        n_unique = len({str(v) for v in present})
        return CATEGORICAL if n_unique <= max_categories else TEXT
    shown = ", ".join(f"{t} (e.g. {v!r})" for t, v in types.items())
    raise MixedTypeError(
        f"property {name!r} mixes value types: {shown}; expected one type per property. Clean the "
        f"column or set its kind with a schema override, e.g. {{{name!r}: 'categorical'}}"
    )


def _build_property(name: str, kind: str, present: list[Any], max_text_len: int, n_quantiles: int) -> Property:
    if kind == NUMERICAL:
        is_datetime = all(isinstance(v, _dt.datetime | np.datetime64) for v in present)
        if is_datetime and any(pd.Timestamp(v).tzinfo is not None for v in present):
            raise SchemaError(f"property {name!r}: timezone-aware datetimes are not supported; convert them to "
                              "naive UTC first")
        x = np.array([_to_float(name, v, i, datetime=is_datetime) for i, v in enumerate(present)], dtype=np.float64)
        if not np.isfinite(x).all():
            raise SchemaError(f"property {name!r}: infinite values; use NaN/null for a missing value")
        qs = np.quantile(x, np.linspace(0, 1, min(n_quantiles, len(x)))) if len(x) > 1 else np.array([x[0], x[0]])
        integer = bool(np.all(np.equal(np.round(x), x)))
        uniq = np.unique(x)
        std = float(x.std()) if x.std() > 0 else 1.0
        return Property(
            name, NUMERICAL, quantiles=[float(v) for v in qs], mean=float(x.mean()), std=std,
            integer=integer, discrete_values=[float(v) for v in uniq] if integer and len(uniq) <= 32 else None,
            datetime=is_datetime, note="date/time, modelled as seconds since 1970-01-01" if is_datetime else None,
        )
    if kind == CATEGORICAL:
        keys = sorted({_category_key(v) for v in present}, key=lambda v: (str(type(v)), str(v)))
        return Property(name, CATEGORICAL, categories=[v.item() if isinstance(v, np.generic) else v for v in keys])
    strings = [str(v) for v in present]
    vocab = sorted({c for s in strings for c in s})
    longest = max(len(s) for s in strings)
    if longest > max_text_len:
        cut = sum(len(s) > max_text_len for s in strings)
        warnings.warn(f"property {name!r}: {cut} text values longer than max_text_len={max_text_len} characters "
                      f"(longest {longest}) will be cut to {max_text_len}; raise KBFormerConfig.max_text_len to keep "
                      "them whole", UserWarning, stacklevel=3)
    return Property(name, TEXT, vocab=vocab, max_len=max(1, min(longest, max_text_len)))


def describe(schema: Schema) -> str:
    """One line per property, for logs and ``--help``-style summaries."""
    lines = []
    for p in schema.properties:
        if p.kind == CATEGORICAL:
            extra = f"{p.n_categories} categories"
        elif p.kind == TEXT:
            extra = f"{len(p.vocab or [])} characters, max length {p.max_len}"
        else:
            lo, hi = (p.quantiles or [math.nan])[0], (p.quantiles or [math.nan])[-1]
            extra = f"range [{lo:g}, {hi:g}]" + (", integer" if p.integer else "")
        if p.note:
            extra += f"; {p.note}"
        lines.append(f"{p.name}: {p.kind} ({extra})")
    return "\n".join(lines)
