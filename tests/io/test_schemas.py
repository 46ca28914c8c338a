"""The schema files are the single source of truth: Spark and Arrow schemas agree."""
import pyarrow as pa
import pytest

from mining.io import schemas
NAMES = ["interaction_turn", "rephrase_pairs", "clusters", "training_set"]


@pytest.mark.parametrize("name", NAMES)
def test_spark_and_arrow_schemas_agree(name):
    from pyspark.sql.pandas.types import from_arrow_schema

    arrow = schemas.arrow_schema(name)
    spark = schemas.spark_schema(name)
    assert [f.name for f in arrow] == [f.name for f in spark.fields]
    assert from_arrow_schema(arrow) == spark
    assert [f.nullable for f in arrow] == [f.nullable for f in spark.fields]


def test_interaction_turn_v1_is_exactly_the_design_table():
    # DESIGN.md "Input contract: interaction_turn v1": column, type, nullable
    slot = pa.struct([pa.field("name", pa.string(), False), pa.field("value", pa.string(), False)])
    expected = pa.schema([
        pa.field("turn_id", pa.string(), False), pa.field("session_id", pa.string(), False),
        pa.field("user_id", pa.string(), False), pa.field("locale", pa.string(), False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), False), pa.field("utterance", pa.string(), False),
        pa.field("asr_confidence", pa.float64(), True), pa.field("nlu_intent", pa.string(), True),
        pa.field("nlu_slots", pa.list_(slot), True), pa.field("nlu_confidence", pa.float64(), True),
        pa.field("response_status", pa.string(), False), pa.field("barge_in", pa.bool_(), True),
    ])
    assert schemas.arrow_schema("interaction_turn") == expected
    assert schemas.enum_symbols("interaction_turn", "response_status") == ["SUCCESS", "ERROR", "UNHANDLED"]


def test_training_set_has_the_contract_fields():
    names = [f.name for f in schemas.arrow_schema("training_set")]
    assert names == ["utterance", "locale", "intent", "slots", "annot_utt", "confidence", "support_users",
                     "support_events", "evidence", "cluster_id", "dataset_version", "evidence_version"]


def test_unknown_schema_version_raises():
    with pytest.raises(FileNotFoundError):
        schemas.load("interaction_turn", 99)
