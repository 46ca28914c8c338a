"""Schemas derived from the language-neutral schema files in ``schemas/``.

The Avro schema files (``schemas/<name>.v<N>.avsc``, Avro 1.11 specification) are the
single source of truth for every contract of the system. This module turns them into
pyarrow and Spark schemas so no code re-declares a column by hand.

Type mapping (Avro → Arrow / Spark):

======================================  ===========================  =====================
Avro                                    Arrow                        Spark
======================================  ===========================  =====================
string, enum                            string                       StringType
double / int / long / boolean           float64 / int32 / int64 /bool Double/Integer/Long/Boolean
long + logicalType timestamp-micros     timestamp[us, tz=UTC]        TimestampType
array<record>                           list<struct>                 ArrayType(StructType)
union ["null", T]                       T, nullable                  T, nullable
======================================  ===========================  =====================

Enum symbols are kept as allowed values (:func:`enum_symbols`) for validation.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
from mining import env


def _schema_dir() -> Path:
    """``$MINING_SCHEMA_DIR``, else ``schemas/`` of the source tree (editable install),
    else ``$MINING_HOME/schemas`` (the Docker image copies the repo to MINING_HOME)."""
    if env.schema_dir():
        return Path(env.schema_dir())
    candidates = [Path(__file__).resolve().parents[2] / "schemas"]
    if env.mining_home():
        candidates.append(Path(env.mining_home()) / "schemas")
    return next((c for c in candidates if c.is_dir()), candidates[0])


SCHEMA_DIR = _schema_dir()
CURRENT_VERSIONS = {"interaction_turn": 1, "rephrase_pairs": 1, "clusters": 1, "training_set": 1,
                    "rewrites": 1}


def schema_path(name: str, version: int | None = None) -> Path:
    """Path of ``schemas/<name>.v<version>.avsc`` (current version when None).

    Raises ``FileNotFoundError`` for an unknown name or version."""
    version = CURRENT_VERSIONS.get(name) if version is None else version
    path = SCHEMA_DIR / f"{name}.v{version}.avsc"
    if not path.exists():
        raise FileNotFoundError(f"no schema file {path}")
    return path


@lru_cache(maxsize=None)
def load(name: str, version: int | None = None) -> dict[str, Any]:
    """The parsed Avro record schema ``name`` (a dict with ``fields``)."""
    schema = json.loads(schema_path(name, version).read_text())
    if schema.get("type") != "record":
        raise ValueError(f"schema {name} must be an Avro record")
    return schema


def _split_nullable(avro_type: Any) -> tuple[Any, bool]:
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        if len(non_null) != 1:
            raise ValueError(f"only [null, T] unions are supported, got {avro_type}")
        return non_null[0], "null" in avro_type
    return avro_type, False


def _arrow_type(avro_type: Any) -> pa.DataType:
    if isinstance(avro_type, str):
        return {"string": pa.string(), "double": pa.float64(), "float": pa.float32(),
                "int": pa.int32(), "long": pa.int64(), "boolean": pa.bool_()}[avro_type]
    kind = avro_type["type"]
    if avro_type.get("logicalType") == "timestamp-micros":
        return pa.timestamp("us", tz="UTC")
    if kind == "enum":
        return pa.string()
    if kind == "array":
        return pa.list_(_arrow_type(avro_type["items"]))
    if kind == "record":
        fields = []
        for f in avro_type["fields"]:
            t, nullable = _split_nullable(f["type"])
            fields.append(pa.field(f["name"], _arrow_type(t), nullable=nullable))
        return pa.struct(fields)
    return _arrow_type(kind)


def arrow_schema(name: str, version: int | None = None) -> pa.Schema:
    """pyarrow schema of contract ``name``; field order as in the schema file."""
    struct = _arrow_type(load(name, version))
    return pa.schema(list(struct))


def spark_schema(name: str, version: int | None = None, *, all_nullable: bool = False):
    """Spark ``StructType`` of contract ``name`` (imports pyspark lazily).

    ``all_nullable=True`` relaxes every nested field to nullable: the target type for a
    ``cast`` of raw input, which Spark cannot cast to NOT NULL fields."""
    from pyspark.sql import types as T

    def convert(t: pa.DataType):
        if pa.types.is_struct(t):
            return T.StructType([T.StructField(f.name, convert(f.type), f.nullable or all_nullable)
                                 for f in t])
        if pa.types.is_list(t):
            return T.ArrayType(convert(t.value_type), containsNull=True)
        if pa.types.is_timestamp(t):
            return T.TimestampType()
        return {pa.string(): T.StringType(), pa.float64(): T.DoubleType(),
                pa.float32(): T.FloatType(), pa.int32(): T.IntegerType(),
                pa.int64(): T.LongType(), pa.bool_(): T.BooleanType()}[t]

    return T.StructType([T.StructField(f.name, convert(f.type), f.nullable or all_nullable)
                         for f in arrow_schema(name, version)])


def required_fields(name: str, version: int | None = None) -> list[str]:
    """Names of the non-nullable top-level fields."""
    return [f["name"] for f in load(name, version)["fields"]
            if not _split_nullable(f["type"])[1]]


def enum_symbols(name: str, field: str, version: int | None = None) -> list[str]:
    """Allowed values of an enum field (e.g. ``response_status``)."""
    for f in load(name, version)["fields"]:
        if f["name"] == field:
            t, _ = _split_nullable(f["type"])
            if isinstance(t, dict) and t.get("type") == "enum":
                return list(t["symbols"])
    raise KeyError(f"{name}.{field} is not an enum field")
