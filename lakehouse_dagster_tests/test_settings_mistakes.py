"""Settings mistakes that used to pass silently: layers, the landing zone or the staging area
sharing folders (one layer's run overwrote another's tables), misspelt variable names (their
setting kept its default), an engine that ignores the Spark Connect URL it is given."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse_dagster import deployment
from lakehouse_dagster.deployment import LakehouseSettings, SettingsError, declared_variable_names
from lakehouse_dagster.lake.layout import LakeLayout, OverlappingRootsError

ROOT = Path(__file__).parents[1]
#: The production shape (infra/dagster_env.tf): a bucket per zone, the lake root inside silver's.
PROD_ROOTS = {
    "LAKEHOUSE_ROOT": "s3://acme-silver/_lakehouse",
    "LAKEHOUSE_ROOT_BRONZE": "s3://acme-bronze",
    "LAKEHOUSE_ROOT_SILVER": "s3://acme-silver",
    "LAKEHOUSE_ROOT_GOLD": "s3://acme-gold",
    "LAKEHOUSE_LANDING": "s3://acme-landing",
}


def settings(**env: str) -> LakehouseSettings:
    return LakehouseSettings.from_env({"LAKEHOUSE_DEPLOYMENT": "test", **env})


# Layer roots, landing zone, staging area ---------------------------------------------------------


def test_two_layers_in_one_folder_are_refused_naming_both_variables(tmp_path: Path) -> None:
    zone = str(tmp_path / "zone")
    with pytest.raises(SettingsError) as raised:
        settings(LAKEHOUSE_ROOT=str(tmp_path), LAKEHOUSE_ROOT_BRONZE=zone, LAKEHOUSE_ROOT_SILVER=zone + "/")
    message = str(raised.value)
    assert "LAKEHOUSE_ROOT_BRONZE and LAKEHOUSE_ROOT_SILVER both resolve to" in message
    assert zone in message


@pytest.mark.parametrize(
    ("variable", "folder", "named"),
    [
        ("LAKEHOUSE_ROOT_SILVER", "bronze/", "LAKEHOUSE_ROOT (its bronze folder)"),
        ("LAKEHOUSE_ROOT_SILVER", "x/../bronze", "LAKEHOUSE_ROOT (its bronze folder)"),
        ("LAKEHOUSE_LANDING", "bronze", "LAKEHOUSE_ROOT (its bronze folder)"),
        ("LAKEHOUSE_ROOT_BRONZE", "landing", "LAKEHOUSE_ROOT (its landing folder)"),
        ("LAKEHOUSE_ROOT_GOLD", "silver/customers", "LAKEHOUSE_ROOT (its silver folder)"),
        ("LAKEHOUSE_ROOT_GOLD", ".", "LAKEHOUSE_ROOT (its"),  # gold tables beside the layer folders
        ("LAKEHOUSE_ROOT_BRONZE", "_staging", "LAKEHOUSE_ROOT (its _staging folder)"),
    ],
)
def test_a_root_in_or_on_a_folder_of_the_lake_root_is_refused(
    tmp_path: Path, variable: str, folder: str, named: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        settings(LAKEHOUSE_ROOT=str(tmp_path), **{variable: f"{tmp_path}/{folder}"})
    assert variable in str(raised.value) and named in str(raised.value)


def test_a_relative_root_is_compared_as_the_folder_it_names(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match="LAKEHOUSE_ROOT_BRONZE and LAKEHOUSE_ROOT_GOLD both resolve"):
        settings(LAKEHOUSE_ROOT="lake", LAKEHOUSE_ROOT_BRONZE="zone", LAKEHOUSE_ROOT_GOLD=f"{tmp_path}/zone")


def test_s3_roots_collide_on_path_boundaries_only() -> None:
    base = {**PROD_ROOTS, "LAKEHOUSE_ROOT": "s3://acme/lake"}
    with pytest.raises(SettingsError, match="LAKEHOUSE_ROOT_BRONZE and LAKEHOUSE_ROOT_SILVER both resolve"):
        settings(
            **{**base, "LAKEHOUSE_ROOT_BRONZE": "s3://acme/zone/", "LAKEHOUSE_ROOT_SILVER": "s3://acme/zone"}
        )
    with pytest.raises(SettingsError, match=r"LAKEHOUSE_ROOT_SILVER \(s3://acme/bronze/silver\) is inside"):
        settings(
            **{
                **base,
                "LAKEHOUSE_ROOT_BRONZE": "s3://acme/bronze",
                "LAKEHOUSE_ROOT_SILVER": "s3://acme/bronze/silver",
            }
        )
    shared = {
        **base,
        "LAKEHOUSE_ROOT_BRONZE": "s3://acme/bronze",
        "LAKEHOUSE_ROOT_SILVER": "s3://acme/bronze2",
        "LAKEHOUSE_ROOT_GOLD": "s3://other/bronze",
        "LAKEHOUSE_LANDING": "s3://acme/bronze_landing",
    }
    layout = settings(**shared).layout
    assert (layout.layer_root("bronze"), layout.layer_root("silver")) == (
        "s3://acme/bronze",
        "s3://acme/bronze2",
    )


def test_the_production_layout_and_the_local_defaults_stay_valid(tmp_path: Path) -> None:
    """Production keeps quarantine, ops, ml and the staging area under silver's bucket, in a
    folder no silver table can have (``_lakehouse``)."""
    assert settings(**PROD_ROOTS).layout.layer_root("ops") == "s3://acme-silver/_lakehouse/ops"
    assert settings(LAKEHOUSE_ROOT=str(tmp_path)).layout.landing == f"{tmp_path}/landing"
    LakeLayout.local(str(tmp_path / "lake"), str(tmp_path / "landing"))
    LakeLayout(root="s3://other", landing="s3://other")  # the landing zone may be the lake root


def test_the_layout_itself_refuses_overlaps_whoever_builds_it(tmp_path: Path) -> None:
    with pytest.raises(OverlappingRootsError, match="the landing zone and the bronze root both resolve"):
        LakeLayout.local(str(tmp_path), str(tmp_path / "bronze"))
    with pytest.raises(OverlappingRootsError, match=r"the silver root .* is inside the bronze root"):
        LakeLayout(
            root="s3://lake",
            landing="s3://landing",
            layer_roots={"bronze": "s3://b/zone", "silver": "s3://b/zone/./tables/"},
        )


def test_a_folder_named_two_ways_is_one_folder(tmp_path: Path) -> None:
    """A symbolic link, or a ``file:`` URI with one slash, names the folder it points to."""
    (tmp_path / "lake" / "bronze").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "lake" / "bronze")
    with pytest.raises(OverlappingRootsError, match=r"the bronze root and the silver root both resolve"):
        LakeLayout(
            root=str(tmp_path / "lake"), landing="/landing", layer_roots={"silver": str(tmp_path / "link")}
        )
    with pytest.raises(OverlappingRootsError, match=r"the bronze root and the silver root both resolve"):
        LakeLayout(
            root=str(tmp_path / "lake"),
            landing="/landing",
            layer_roots={"silver": f"file:{tmp_path}/lake/bronze"},
        )


def test_cli_check_refuses_layers_sharing_a_folder(tmp_path: Path) -> None:
    zone = str(tmp_path / "zone")
    result = cli_check(tmp_path, LAKEHOUSE_ROOT_BRONZE=zone, LAKEHOUSE_ROOT_SILVER=zone)
    assert result.returncode != 0
    assert "LAKEHOUSE_ROOT_BRONZE and LAKEHOUSE_ROOT_SILVER" in result.stderr


def cli_check(root: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """``python -m lakehouse_dagster.cli check`` with only these LAKEHOUSE_* variables set."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LAKEHOUSE_")}
    env |= {"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": str(root), **variables}
    return subprocess.run(
        [sys.executable, "-m", "lakehouse_dagster.cli", "check"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


# Variable names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("LAKEHOUSE_QUALITY_THRESHOLD", "LAKEHOUSE_QUALITY_THRESHOLDS"),
        ("LAKEHOUSE_ROOT_SILVR", "LAKEHOUSE_ROOT_SILVER"),
        ("LAKEHOUSE_SPARK_REMOTES", "LAKEHOUSE_SPARK_REMOTE"),
    ],
)
def test_a_misspelt_variable_is_refused_naming_the_declared_one(
    tmp_path: Path, typo: str, meant: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        settings(LAKEHOUSE_ROOT=str(tmp_path), **{typo: "x"})
    assert f"{typo} (did you mean {meant}?)" in str(raised.value)


def test_other_unknown_variables_are_only_warned_of_once(tmp_path: Path, caplog, monkeypatch) -> None:
    """The user's own variables, and the tests' (LAKEHOUSE_UPDATE_SNAPSHOT), are not settings."""
    monkeypatch.setattr(deployment, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="lakehouse_dagster.deployment"):
        for _ in range(3):
            loaded = settings(
                LAKEHOUSE_ROOT=str(tmp_path), LAKEHOUSE_MY_OWN_THING="1", LAKEHOUSE_UPDATE_SNAPSHOT="1"
            )
    assert loaded.layout.root == str(tmp_path)
    warned = caplog.text
    assert warned.count("LAKEHOUSE_MY_OWN_THING is not a setting") == 1
    assert warned.count("LAKEHOUSE_UPDATE_SNAPSHOT is not a setting") == 1


def test_a_layer_root_we_do_not_have_is_refused(tmp_path: Path) -> None:
    """Quarantine and ops live under LAKEHOUSE_ROOT: a root variable of their own would be ignored."""
    with pytest.raises(
        SettingsError, match=r"LAKEHOUSE_ROOT_OPS \(the layer roots are LAKEHOUSE_ROOT_BRONZE"
    ):
        settings(LAKEHOUSE_ROOT=str(tmp_path), LAKEHOUSE_ROOT_OPS=str(tmp_path / "ops"))


def test_a_deployments_own_variables_are_neither_refused_nor_warned_of(
    tmp_path: Path, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(deployment, "_WARNED", set())
    own = {"LAKEHOUSE_WAREHOUSE_USER": "bi", "LAKEHOUSE_ROOT_ARCHIVE": "/archive"}
    with pytest.raises(
        SettingsError, match=r"LAKEHOUSE_WAREHOUSE_USER \(did you mean LAKEHOUSE_WAREHOUSE_URL"
    ):
        settings(LAKEHOUSE_ROOT=str(tmp_path), **own)
    with caplog.at_level(logging.WARNING, logger="lakehouse_dagster.deployment"):
        settings(LAKEHOUSE_ROOT=str(tmp_path), LAKEHOUSE_OWN_VARIABLES=", ".join(own), **own)
    assert "LAKEHOUSE_WAREHOUSE_USER" not in caplog.text


def test_every_declared_variable_is_accepted_by_name() -> None:
    """No declared name is taken for a typo of another (their values may still be refused)."""
    for name in sorted(declared_variable_names()):
        try:
            LakehouseSettings.from_env({name: "x"})
        except SettingsError as error:
            assert "did you mean" not in str(error), name


def test_cli_check_refuses_a_misspelt_variable(tmp_path: Path) -> None:
    result = cli_check(tmp_path, LAKEHOUSE_ROOT_SILVR=str(tmp_path / "elsewhere"))
    assert result.returncode != 0
    assert "LAKEHOUSE_ROOT_SILVR (did you mean LAKEHOUSE_ROOT_SILVER?)" in result.stderr


# Engine -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["embedded", "classic_delta"])
def test_an_engine_that_ignores_the_connect_url_is_refused(tmp_path: Path, engine: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings(LAKEHOUSE_ROOT=str(tmp_path), LAKEHOUSE_ENGINE=engine, LAKEHOUSE_SPARK_REMOTE="sc://h:1")
    assert f"LAKEHOUSE_ENGINE={engine} and LAKEHOUSE_SPARK_REMOTE" in str(raised.value)
    assert "sc://h:1" not in str(raised.value), "the URL may carry a token"


def test_the_remote_engine_with_its_url_is_accepted(tmp_path: Path) -> None:
    for env in ({"LAKEHOUSE_ENGINE": "remote"}, {}):
        loaded = settings(LAKEHOUSE_ROOT=str(tmp_path), LAKEHOUSE_SPARK_REMOTE="sc://h:1", **env)
        assert loaded.engine.remote_url == "sc://h:1"
