"""Data model: nested records, schema inference and overrides, encoding round trips, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from entity_diffusion import (
    CATEGORICAL,
    NUMERICAL,
    TEXT,
    EmptyTableError,
    MalformedRecordError,
    MixedTypeError,
    Schema,
    SchemaError,
    UnseenCategoryError,
    as_frame,
    frame_to_records,
    read_jsonl,
)

PHONES = [
    {"phone": {"model": "Galaxy S10", "oem": "Samsung", "weight": 157.0, "launch": {"year": 2019, "month": 3}}},
    {"phone": {"model": "iPhone 11", "oem": "Apple", "weight": 194.0, "launch": {"year": 2019}}},
    {"phone": {"model": "Pixel 4", "oem": "Google", "launch": {"year": 2019, "month": 10}}},
    {"phone": {"model": "Nokia 3310", "oem": "Nokia", "weight": 133.0, "launch": {"year": 2000, "month": 9}}},
]


def test_nested_records_flatten_to_key_paths_with_native_missing() -> None:
    frame = as_frame(PHONES)
    assert set(frame.columns) == {"phone.model", "phone.oem", "phone.weight", "phone.launch.year", "phone.launch.month"}
    assert frame["phone.weight"].isna().tolist() == [False, False, True, False]
    assert frame["phone.launch.month"].isna().tolist() == [False, True, False, False]
    # the inverse leaves missing properties out instead of writing nulls
    back = frame_to_records(frame)
    assert back[1] == {"phone": {"model": "iPhone 11", "oem": "Apple", "weight": 194.0, "launch": {"year": 2019}}}


def test_schema_inference_and_override() -> None:
    with pytest.warns(UserWarning, match="modelled as free text"):
        schema = Schema.infer(PHONES, max_categories=3)
    kinds = {p.name: p.kind for p in schema.properties}
    assert kinds == {"phone.weight": NUMERICAL, "phone.launch.year": NUMERICAL, "phone.launch.month": NUMERICAL,
                     "phone.model": TEXT, "phone.oem": TEXT}
    schema = Schema.infer(PHONES, max_categories=10, overrides={"phone.launch.year": CATEGORICAL})
    assert schema["phone.launch.year"].kind == CATEGORICAL
    assert schema["phone.launch.year"].categories == [2000, 2019]
    assert schema["phone.oem"].kind == CATEGORICAL
    # order: numerical, categorical, text
    assert [p.kind for p in schema.properties] == sorted([p.kind for p in schema.properties],
                                                         key=[NUMERICAL, CATEGORICAL, TEXT].index)
    with pytest.raises(SchemaError, match="not in the data"):
        Schema.infer(PHONES, overrides={"phone.colour": CATEGORICAL})
    with pytest.raises(SchemaError, match="kind must be one of"):
        Schema.infer(PHONES, overrides={"phone.oem": "ordinal"})


def test_encode_decode_round_trip_and_json() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "x": rng.normal(size=50), "k": rng.integers(0, 3, 50).astype(float), "c": rng.choice(["a", "b"], 50),
        "t": [f"item {i}" for i in range(50)],
    })
    frame.loc[[3, 7], "x"] = np.nan
    schema = Schema.infer(frame, max_categories=5, overrides={"t": "text"})
    encoded = schema.encode(frame)
    assert encoded.present[:, schema.names.index("x")].sum() == 48
    decoded = schema.decode(encoded)
    np.testing.assert_allclose(decoded["x"].to_numpy()[~frame["x"].isna()], frame["x"].dropna(), atol=1e-5)
    assert decoded["x"].isna().tolist() == frame["x"].isna().tolist()
    assert (decoded["k"] == frame["k"]).all() and (decoded["c"] == frame["c"]).all()
    assert (decoded["t"] == frame["t"]).all()
    again = Schema.from_json(schema.to_json())
    assert again.names == schema.names and json.loads(again.to_json()) == json.loads(schema.to_json())


def test_quantile_transform_is_monotone_and_standard_normal() -> None:
    rng = np.random.default_rng(1)
    x = rng.exponential(size=5000)
    schema = Schema.infer(pd.DataFrame({"x": x}))
    z = schema.transform(schema["x"], x)
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    grid = np.linspace(0, 5, 200)
    assert np.all(np.diff(schema.transform(schema["x"], grid)) >= 0)
    np.testing.assert_allclose(schema.inverse_transform(schema["x"], schema.transform(schema["x"], x)), x, rtol=1e-3, atol=1e-3)


def test_integer_columns_round_to_observed_values() -> None:
    schema = Schema.infer(pd.DataFrame({"rings": [1, 3, 3, 5, 9, 9, 9]}))
    assert schema["rings"].discrete_values == [1, 3, 5, 9]
    out = schema.inverse_transform(schema["rings"], np.array([-3.0, 0.0, 3.0]))
    assert set(out) <= {1, 3, 5, 9}


def test_mixed_type_column_is_named() -> None:
    records = [{"a": 1.5, "b": "x"}, {"a": "heavy", "b": "y"}]
    with pytest.raises(MixedTypeError, match="'a' mixes value types"):
        Schema.infer(records)
    # override resolves it
    schema = Schema.infer(records, overrides={"a": CATEGORICAL})
    assert schema["a"].categories == [1.5, "heavy"]


def test_mixed_csv_column(tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("weight,oem\n150,a\nheavy,b\n")
    with pytest.raises(MixedTypeError, match="'weight'"):
        Schema.infer(path)


def test_empty_tables(tmp_path) -> None:
    with pytest.raises(EmptyTableError):
        as_frame(pd.DataFrame({"a": []}))
    with pytest.raises(EmptyTableError):
        as_frame([])
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(EmptyTableError, match="empty"):
        as_frame(empty)
    with pytest.raises(SchemaError, match="'b' has no observed value"):
        Schema.infer(pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan]}))


def test_malformed_jsonl_names_the_line(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(MalformedRecordError, match="line 3"):
        read_jsonl(path)
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(MalformedRecordError, match="line 2: expected a JSON object"):
        read_jsonl(path)
    path.write_text('{"a": {"b": [1, 2]}}\n')
    with pytest.raises(MalformedRecordError, match="'a.b' holds a list"):
        read_jsonl(path)


def test_unseen_category_at_completion() -> None:
    schema = Schema.infer(pd.DataFrame({"c": ["a", "b", "a"], "x": [1.0, 2.0, 3.0]}))
    with pytest.raises(UnseenCategoryError, match="property 'c', row 1: category 'z'"):
        schema.encode(pd.DataFrame({"c": ["a", "z"], "x": [1.0, np.nan]}))
    with pytest.raises(SchemaError, match="not in the schema"):
        schema.encode(pd.DataFrame({"d": [1.0]}))


def test_nan_numeric_is_missing_and_inf_is_an_error() -> None:
    schema = Schema.infer(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    encoded = schema.encode(pd.DataFrame({"x": [np.nan, 2.0]}))
    assert encoded.present[:, 0].tolist() == [False, True]
    assert np.isfinite(encoded.num.numpy()).all()
    with pytest.raises(SchemaError, match="not finite"):
        schema.encode(pd.DataFrame({"x": [np.inf]}))


def test_many_distinct_strings_become_text_with_a_warning_and_a_schema_note() -> None:
    frame = pd.DataFrame({"city": [f"town {i}" for i in range(60)], "x": np.arange(60.0)})
    with pytest.warns(UserWarning, match="'city': 60 distinct strings .* free text"):
        schema = Schema.infer(frame)
    assert schema["city"].kind == TEXT
    assert "60 distinct strings > max_categories=50" in schema["city"].note
    assert "free text" in json.loads(schema.to_json())["properties"][schema.names.index("city")]["note"]
    from entity_diffusion._schema import describe

    assert "free text" in describe(schema)
    # an explicit override is a decision, not a surprise: no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Schema.infer(frame, overrides={"city": TEXT})


def test_text_longer_than_max_len_is_cut_with_a_warning() -> None:
    frame = pd.DataFrame({"t": ["short", "x" * 60], "y": [1.0, 2.0]})
    with pytest.warns(UserWarning, match="'t': 1 text values longer than max_text_len=48"):
        schema = Schema.infer(frame, overrides={"t": TEXT})
    with pytest.warns(UserWarning, match="cut to that length"):
        decoded = schema.decode(schema.encode(frame))
    assert decoded["t"].tolist() == ["short", "x" * 48]


def test_datetime_columns_round_trip_as_numbers() -> None:
    stamps = pd.to_datetime(["2019-03-01", "2020-07-15 12:30", None, "2021-01-02", "2018-11-30"], format="ISO8601")
    frame = pd.DataFrame({"when": stamps, "x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    schema = Schema.infer(frame)
    prop = schema["when"]
    assert prop.kind == NUMERICAL and prop.datetime and "date/time" in prop.note
    decoded = schema.decode(schema.encode(frame))
    assert decoded["when"].dtype.kind == "M"
    assert decoded["when"].isna().tolist() == frame["when"].isna().tolist()
    error = (decoded["when"] - frame["when"]).abs().max()
    assert error < pd.Timedelta(seconds=1), error
    again = Schema.from_json(schema.to_json())
    assert again["when"].datetime
    with pytest.raises(MixedTypeError, match="'when' mixes value types"):
        Schema.infer(pd.DataFrame({"when": [pd.Timestamp("2020-01-01"), 3.0]}, dtype=object))
    with pytest.raises(SchemaError, match="timezone-aware"):
        Schema.infer(pd.DataFrame({"when": pd.to_datetime(["2020-01-01", "2020-02-01"]).tz_localize("UTC")}))
