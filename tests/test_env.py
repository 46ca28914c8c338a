"""mining.env: the one reader of the environment."""
from __future__ import annotations

import os

import pytest

from mining import env


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("yes", True), ("0", False), ("", False)])
def test_demo_mode_reads_the_variable(monkeypatch, value, on):
    monkeypatch.setenv(env.DEMO_ENV, value)
    assert env.demo_mode() is on


def test_scoped_sets_then_restores_set_and_unset_variables(monkeypatch):
    monkeypatch.setenv("MINING_TEST_A", "before")
    monkeypatch.delenv("MINING_TEST_B", raising=False)
    with env.scoped(MINING_TEST_A="inside", MINING_TEST_B="new"):
        assert os.environ["MINING_TEST_A"] == "inside" and os.environ["MINING_TEST_B"] == "new"
    assert os.environ["MINING_TEST_A"] == "before" and "MINING_TEST_B" not in os.environ


def test_scoped_restores_after_an_error(monkeypatch):
    monkeypatch.delenv(env.DEMO_ENV, raising=False)
    with pytest.raises(RuntimeError), env.scoped(**{env.DEMO_ENV: "1"}):
        assert env.demo_mode()
        raise RuntimeError("stage failed")
    assert not env.demo_mode()


def test_empty_values_fall_back_to_defaults(monkeypatch):
    monkeypatch.setenv("MINING_SPARK_MASTER", "")
    monkeypatch.setenv("MINING_TORCH_THREADS", "")
    assert env.spark_master() == "local[2]" and env.torch_threads() == 1
    monkeypatch.setenv("MINING_SPARK_MASTER", "spark://h:7077")
    assert env.spark_master() == "spark://h:7077"


def test_config_layers_read_mining_variables_through_env(monkeypatch):
    from mining.config import resolve_sections

    monkeypatch.setenv("MINING__PRIVACY__MIN_USERS", "5")
    sections, origins = resolve_sections()
    assert sections["privacy"]["min_users"] == 5
    assert origins["privacy.min_users"] == "env MINING__PRIVACY__MIN_USERS"


@pytest.mark.parametrize("name, value, reader", [
    ("MINING_DRIVER_MEMORY", "abc", env.driver_memory), ("MINING_DRIVER_MEMORY", "0g", env.driver_memory),
    ("MINING_DRIVER_MEMORY", "4gb", env.driver_memory), ("MINING_DRIVER_MEMORY", "4096", env.driver_memory),
    ("MINING_SHUFFLE_PARTITIONS", "0", env.shuffle_partitions),
    ("MINING_TORCH_THREADS", "two", env.torch_threads)])
def test_a_bad_spark_sizing_variable_is_a_configuration_error_naming_it(monkeypatch, name, value, reader):
    # else the JVM fails to start (exit 1, retried) without naming the variable
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"^{name}='{value}': expected"):
        reader()


def test_spark_sizing_variables_and_their_defaults(monkeypatch):
    for name in ("MINING_DRIVER_MEMORY", "MINING_SHUFFLE_PARTITIONS", "MINING_TORCH_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert (env.driver_memory(), env.shuffle_partitions(), env.torch_threads()) == ("4g", "64", 1)
    monkeypatch.setenv("MINING_DRIVER_MEMORY", "512m")
    monkeypatch.setenv("MINING_SHUFFLE_PARTITIONS", "200")
    assert (env.driver_memory(), env.shuffle_partitions()) == ("512m", "200")
