"""Mistakes in the quality thresholds file and in a run's config are refused before anything runs,
naming the entry (table, check, file) or the field."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pytest
from pydantic import ValidationError

from lakehouse_dagster import cli
from lakehouse_dagster.definitions import build_definitions, check_thresholds
from lakehouse_dagster.defs.assets import TableRunConfig
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.launch import code_location, create_run
from lakehouse_dagster.quality.thresholds import Thresholds, ThresholdsError
from lakehouse_dagster.registry import REGISTRY


def thresholds_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(text)
    return path


def settings_with(tmp_path: Path, thresholds: Path) -> LakehouseSettings:
    return LakehouseSettings.from_env(
        {"LAKEHOUSE_ROOT": str(tmp_path / "lake"), "LAKEHOUSE_QUALITY_THRESHOLDS": str(thresholds)}
    )


# Thresholds that would load and never be applied ------------------------------------------------


@pytest.mark.parametrize(
    ("table", "check"),
    [("silver.customers", "primary_key"), ("bronze.customers", "no_rejected_files")],
)
def test_a_tolerance_for_a_check_that_reads_none_is_refused(tmp_path, table: str, check: str) -> None:
    path = thresholds_file(tmp_path, f"{table}:\n  {check}: 0.5\n")
    with pytest.raises(ThresholdsError) as refused:
        build_definitions(settings_with(tmp_path, path))
    message = str(refused.value)
    assert f"{table}.{check}" in message and "takes no tolerance" in message and str(path) in message


def test_the_packaged_thresholds_and_tolerances_of_table_checks_still_pass(tmp_path) -> None:
    check_thresholds(LakehouseSettings.from_env({"LAKEHOUSE_ROOT": str(tmp_path)}), REGISTRY)
    path = thresholds_file(  # a references check, the row-count check and an expectation
        tmp_path,
        "silver.sales_orders:\n  customer_exists: 0.1\n"
        "silver.sales_order_facts:\n  row_count_anomaly: 0.9\n"
        "silver.customers:\n  valid_email: 0.1\n",
    )
    check_thresholds(settings_with(tmp_path, path), REGISTRY)


def test_a_table_of_ours_named_in_another_layer_is_refused_naming_the_right_one(tmp_path) -> None:
    path = thresholds_file(tmp_path, "gold.sales_order_facts:\n  row_count_anomaly: 0.9\n")
    with pytest.raises(ThresholdsError) as refused:
        build_definitions(settings_with(tmp_path, path))
    message = str(refused.value)
    assert "no table gold.sales_order_facts here; did you mean silver.sales_order_facts?" in message
    assert str(path) in message


def test_another_code_locations_table_named_like_one_of_ours_in_another_layer_is_only_logged(
    tmp_path, caplog
) -> None:
    """The file may be shared: a ``gold.customers`` with checks our ``bronze.customers`` lacks is
    another code location's table, not a typo of ours."""
    path = thresholds_file(tmp_path, "gold.customers:\n  lifetime_value_known: 0.1\n")
    with caplog.at_level(logging.INFO):
        check_thresholds(settings_with(tmp_path, path), REGISTRY)
    assert "gold.customers is not a table of this code location" in caplog.text


# YAML quirks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["yes", "true", "on", "no"])
def test_a_yaml_boolean_is_not_a_share(tmp_path, written: str) -> None:
    path = thresholds_file(tmp_path, f"silver.customers:\n  valid_email: {written}\n")
    with pytest.raises(ThresholdsError) as refused:
        Thresholds.load(path)
    message = str(refused.value)
    assert str(path) in message and "silver.customers.valid_email must be a share between 0 and 1" in message


def test_a_table_written_twice_is_refused_naming_it_and_its_lines(tmp_path) -> None:
    path = thresholds_file(
        tmp_path, "silver.customers:\n  valid_email: 0.5\nsilver.customers:\n  known_country: 0.03\n"
    )
    with pytest.raises(ThresholdsError) as refused:
        Thresholds.load(path)
    message = str(refused.value)
    assert str(path) in message and "silver.customers is written twice (lines 1 and 3)" in message


def test_a_check_written_twice_is_refused_naming_its_table_and_lines(tmp_path) -> None:
    path = thresholds_file(tmp_path, "silver.customers:\n  valid_email: 0.5\n  valid_email: 0.03\n")
    with pytest.raises(
        ThresholdsError, match=r"silver\.customers\.valid_email is written twice \(lines 2 and 3\)"
    ):
        Thresholds.load(path)


def test_a_key_after_a_merge_still_overrides_the_merged_one(tmp_path) -> None:
    path = thresholds_file(
        tmp_path,
        "silver.sales_products: &cdc {known_operation: 0.01, key_present: 0.01}\n"
        "silver.sales_orders:\n  <<: *cdc\n  key_present: 0.2\n"
        "silver.sales_customers: *cdc\n",
    )
    loaded = Thresholds.load(path).by_table
    assert loaded["silver.sales_orders"] == {"known_operation": 0.01, "key_present": 0.2}
    assert loaded["silver.sales_customers"] == {"known_operation": 0.01, "key_present": 0.01}


# `cli check` checks the thresholds file as the code location does --------------------------------


def test_cli_check_refuses_a_misspelt_check_naming_it_and_the_file(tmp_path, monkeypatch, capsys) -> None:
    path = thresholds_file(tmp_path, "silver.customers:\n  valid_emial: 0.03\n")
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("LAKEHOUSE_QUALITY_THRESHOLDS", str(path))
    assert cli.main(["check"]) != 0
    error = capsys.readouterr().err
    assert "no such check: silver.customers.valid_emial" in error and str(path) in error

    path.write_text("silver.customers:\n  valid_email: 0.03\n")
    assert cli.main(["check"]) == 0


def test_cli_check_refuses_a_declaration_mistake_with_a_message_not_a_traceback(
    tmp_path, monkeypatch, capsys
) -> None:
    def refused_registry() -> None:
        raise ValueError("CdcConfig.keys: 'idd' (did you mean 'id'?) not among the columns id, name")

    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setattr(cli, "_registry", refused_registry)
    assert cli.main(["check"]) == 2
    assert "error: the tables' declarations: CdcConfig.keys: 'idd'" in capsys.readouterr().err


# A bad as_of_date in run config is refused at launch ----------------------------------------------

BAD_DATES = ["2026-11-31", "26/11/2026"]


def as_of(op: str, value: str | dict | None) -> dict:
    return {"ops": {op: {"config": {"as_of_date": value}}}}


@pytest.mark.parametrize("value", BAD_DATES)
def test_the_run_config_class_refuses_a_bad_as_of_date_naming_the_field(value: str) -> None:
    with pytest.raises(ValidationError, match=r"as_of_date must be a date YYYY-MM-DD"):
        TableRunConfig(as_of_date=value)
    assert TableRunConfig(as_of_date="2026-11-30").as_of_date == "2026-11-30"
    assert TableRunConfig(as_of_date="").as_of_date == ""
    assert TableRunConfig().as_of_date is None


@pytest.fixture
def lakehouse_job(tmp_path) -> dg.JobDefinition:
    settings = LakehouseSettings.from_env({"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": str(tmp_path)})
    return build_definitions(settings).resolve_job_def("lakehouse_job")


@pytest.mark.parametrize("value", BAD_DATES)
def test_dagster_refuses_a_bad_as_of_date_before_any_step_runs(lakehouse_job, value: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        lakehouse_job.execute_in_process(
            run_config=as_of("silver__customers", value),
            instance=instance,
            asset_selection=[dg.AssetKey(["silver", "silver.customers"])],
        )
    message = str(refused.value)
    assert "as_of_date" in message and "YYYY-MM-DD" in message and repr(value) in message
    assert instance.get_runs() == []  # no run, so no step


def test_valid_run_configs_are_still_accepted(lakehouse_job) -> None:
    for value in ("2026-11-30", "", None):
        dg.validate_run_config(lakehouse_job, as_of("silver__customers", value))
    sensor_config = {
        "ops": {"bronze__customers": {"config": {"files": ["a.csv"], "skip_missing_files": True}}}
    }
    dg.validate_run_config(lakehouse_job, sensor_config)


def test_an_as_of_date_from_an_environment_variable_is_read_and_checked(lakehouse_job, monkeypatch) -> None:
    """``{"env": VAR}``, as for any string of a run config: checked once the variable is read."""
    monkeypatch.setenv("AS_OF_FOR_TEST", "2026-11-30")
    dg.validate_run_config(lakehouse_job, as_of("silver__customers", {"env": "AS_OF_FOR_TEST"}))
    monkeypatch.setenv("AS_OF_FOR_TEST", "2026-11-31")
    with pytest.raises(
        dg.DagsterInvalidConfigError, match=r"as_of_date must be a date YYYY-MM-DD, got '2026-11-31'"
    ):
        dg.validate_run_config(lakehouse_job, as_of("silver__customers", {"env": "AS_OF_FOR_TEST"}))


def test_the_step_reads_a_valid_as_of_date_and_the_rest_of_its_config(lakehouse_job) -> None:
    """The step builds its config from the run config: here ``files`` on a table not fed by files,
    refused before it reads anything."""
    run_config = {"ops": {"silver__customers": {"config": {"as_of_date": "2026-11-30", "files": ["x.csv"]}}}}
    result = lakehouse_job.execute_in_process(
        run_config=run_config,
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey(["silver", "silver.customers"])],
        raise_on_error=False,
    )
    (failure,) = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert "silver.customers is not fed by files" in failure.event_specific_data.error.message


def test_the_launchpad_path_refuses_a_bad_as_of_date_and_creates_no_run(tmp_path, monkeypatch) -> None:
    """As the UI (and ``make run``) launch: the code location plans the run before creating it."""
    monkeypatch.setenv("LAKEHOUSE_DEPLOYMENT", "test")
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
    monkeypatch.delenv("LAKEHOUSE_QUALITY_THRESHOLDS", raising=False)
    with dg.DagsterInstance.ephemeral() as instance, code_location(instance) as location:
        with pytest.raises(
            dg.DagsterInvalidConfigError, match=r"as_of_date must be a date YYYY-MM-DD, got '2026-11-31'"
        ):
            create_run(
                instance, location, "lakehouse_job", run_config=as_of("silver__customers", "2026-11-31")
            )
        assert instance.get_runs() == []
