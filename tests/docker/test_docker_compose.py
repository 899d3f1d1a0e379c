"""Compose semantics that the schema cannot see: ordering, health gates, mounts, secrets, profiles, GPUs."""

from __future__ import annotations

from typing import Any

import pytest
from docker_files import (
    DOCKERFILES,
    REQUIRED_ENV,
    MissingVariableError,
    interpolate,
    load_compose,
    load_compose_raw,
    service_command,
)

SETUP_JOBS = {"synth", "train", "export", "index"}
GPU_JOBS = {"train-gpu", "index-gpu"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return load_compose()["services"]


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only) for short `src:dst[:ro]` and long-form volume entries."""
    out = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            source, target, *mode = entry.split(":")
            out[target] = (source, "ro" in mode)
        else:
            out[entry["target"]] = (entry["source"], bool(entry.get("read_only", False)))
    return out


def test_profiles_split_the_services(services: dict[str, Any]) -> None:
    by_profile: dict[str, set[str]] = {}
    for name, svc in services.items():
        for profile in svc.get("profiles", ["<always>"]):
            by_profile.setdefault(profile, set()).add(name)
    assert by_profile == {"<always>": {"redis", "api"}, "setup": SETUP_JOBS, "gpu": GPU_JOBS}


def test_redis_is_a_bounded_cache_with_a_healthcheck(services: dict[str, Any]) -> None:
    redis = services["redis"]
    argv = service_command(redis)
    assert argv[0] == "redis-server"
    assert flag(argv, "--maxmemory-policy") == "allkeys-lru"
    assert flag(argv, "--maxmemory") == "256mb"
    assert "ping" in " ".join(redis["healthcheck"]["test"])
    assert "ports" not in redis  # reachable by the API only, on the compose network


def test_api_waits_for_a_healthy_redis_and_for_setup_when_it_runs(services: dict[str, Any]) -> None:
    deps = services["api"]["depends_on"]
    assert deps["redis"] == {"condition": "service_healthy"}
    # Optional edge: honoured under `--profile setup`, ignored when the index job is not enabled.
    assert deps["index"] == {"condition": "service_completed_successfully", "required": False}


def test_api_reaches_redis_by_service_name(services: dict[str, Any]) -> None:
    env = services["api"]["environment"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"


def test_api_publishes_port_8000_and_restarts(services: dict[str, Any]) -> None:
    api = services["api"]
    assert api["ports"] == ["8000:8000"]
    assert load_compose({**REQUIRED_ENV, "API_PORT": "9090"})["services"]["api"]["ports"] == ["9090:8000"]
    assert api["restart"] == "unless-stopped" and services["redis"]["restart"] == "unless-stopped"
    assert api["healthcheck"]["test"] == ["CMD", "python", "/opt/outfit/healthcheck.py"]


def test_api_mounts_artifacts_read_only_and_jobs_write_the_same_volume(services: dict[str, Any]) -> None:
    assert mounts(services["api"])["/artifacts"] == ("artifacts", True)
    for job in ("train", "index", "train-gpu", "index-gpu"):
        assert mounts(services[job])["/artifacts"] == ("artifacts", False), job
    top = load_compose()["volumes"]
    assert {"artifacts", "data"} <= set(top)
    # A host directory instead of the named volume, for a checkpoint and index trained elsewhere.
    moved = load_compose({**REQUIRED_ENV, "ARTIFACTS_DIR": "/srv/outfit"})["services"]
    assert mounts(moved["api"])["/artifacts"] == ("/srv/outfit", True)


def test_admin_key_is_required_with_a_message_and_has_no_default() -> None:
    raw = load_compose_raw()["services"]["api"]["environment"]["OUTFIT_ADMIN_API_KEY"]
    assert raw.startswith("${OUTFIT_ADMIN_API_KEY:?")
    with pytest.raises(MissingVariableError, match="OUTFIT_ADMIN_API_KEY: set OUTFIT_ADMIN_API_KEY"):
        load_compose({})
    with pytest.raises(MissingVariableError):
        load_compose({"OUTFIT_ADMIN_API_KEY": ""})  # `:?` also refuses an empty value
    assert load_compose()["services"]["api"]["environment"]["OUTFIT_ADMIN_API_KEY"] == REQUIRED_ENV[
        "OUTFIT_ADMIN_API_KEY"
    ]


def test_only_the_admin_key_is_required() -> None:
    """Compose interpolates every profile, so nothing else (e.g. POLYVORE_DIR) may be `:?`-required."""
    load_compose(REQUIRED_ENV)  # raises MissingVariableError for any other required variable


def test_api_settings_names_exist_in_the_service_settings(services: dict[str, Any]) -> None:
    from service.settings import Settings

    fields = {f"OUTFIT_{name.upper()}" for name in Settings.model_fields}
    env = services["api"]["environment"]
    outfit_vars = {k for k in env if k.startswith("OUTFIT_")}
    assert outfit_vars and outfit_vars <= fields, outfit_vars - fields
    # Values the service would reject must not be the defaults here.
    settings = Settings(**{k[len("OUTFIT_"):].lower(): v for k, v in env.items() if k in outfit_vars and v is not None})
    assert str(settings.index) == "/artifacts/index"
    assert str(settings.checkpoint) == flag(service_command(services["index"]), "--checkpoint")
    assert settings.admin_api_key is not None


def test_api_uvicorn_knobs_come_from_the_environment(services: dict[str, Any]) -> None:
    env = services["api"]["environment"]
    assert env["WEB_CONCURRENCY"] == "1" and env["UVICORN_LIMIT_CONCURRENCY"] == "64"
    tuned = load_compose({**REQUIRED_ENV, "WEB_CONCURRENCY": "4"})["services"]["api"]["environment"]
    assert tuned["WEB_CONCURRENCY"] == "4"


def test_setup_jobs_run_once_in_order(services: dict[str, Any]) -> None:
    for name in SETUP_JOBS | GPU_JOBS:
        assert services[name]["restart"] == "no", name
    assert services["train"]["depends_on"] == {"synth": {"condition": "service_completed_successfully"}}
    assert services["export"]["depends_on"] == {"train": {"condition": "service_completed_successfully"}}
    assert services["index"]["depends_on"] == {"export": {"condition": "service_completed_successfully"}}


def test_setup_jobs_hand_their_outputs_to_each_other(services: dict[str, Any]) -> None:
    synth, train, index = (service_command(services[n]) for n in ("synth", "train", "index"))
    dataset = flag(synth, "--out")
    assert flag(train, "--data") == dataset and flag(index, "--catalog") == dataset
    assert flag(index, "--checkpoint").startswith(flag(train, "--out") + "/")
    assert flag(index, "--out") == services["api"]["environment"]["OUTFIT_INDEX"]
    # The int8 export sits beside the checkpoint the index embeds with, calibrated on the same catalog.
    export = service_command(services["export"])
    assert export[2] == flag(index, "--checkpoint") and "--int8" in export and flag(export, "--data") == dataset
    assert mounts(services["export"])["/artifacts"] == ("artifacts", False)
    assert mounts(services["synth"])["/data"] == ("data", False)
    assert mounts(services["train"])["/data"] == ("data", True)


def test_setup_indexes_with_the_fast_int8_backend_unless_told_otherwise() -> None:
    from embedder.backend_family import BACKENDS

    index = service_command(load_compose()["services"]["index"])
    assert flag(index, "--backend") == "openvino-int8" and "openvino-int8" in BACKENDS
    fp32 = load_compose({**REQUIRED_ENV, "INDEX_BACKEND": "torch"})["services"]["index"]
    assert flag(service_command(fp32), "--backend") == "torch"


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
def test_setup_trains_the_chosen_cpu_preset(preset: str) -> None:
    train = load_compose({**REQUIRED_ENV, "TRAIN_PRESET": preset})["services"]["train"]
    assert flag(service_command(train), "--preset") == preset


def test_gpu_jobs_reserve_an_nvidia_gpu_and_use_the_cuda_image(services: dict[str, Any]) -> None:
    for name in GPU_JOBS:
        svc = services[name]
        (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and device["count"] == 1
        assert svc["build"]["dockerfile"] == "docker/Dockerfile.gpu"
        assert DOCKERFILES["gpu"].name == "Dockerfile.gpu"
    for name in set(services) - GPU_JOBS:
        assert "deploy" not in services[name], name
        assert services[name].get("build", {}).get("dockerfile", "docker/Dockerfile") == "docker/Dockerfile"


def test_gpu_training_uses_the_paper_preset_on_a_user_dataset(services: dict[str, Any]) -> None:
    train = services["train-gpu"]
    argv = service_command(train)
    assert flag(argv, "--preset") == "paper" and flag(argv, "--data") == "/polyvore"
    polyvore = next(v for v in train["volumes"] if isinstance(v, dict) and v["target"] == "/polyvore")
    assert polyvore["read_only"] is True and polyvore["bind"]["create_host_path"] is False
    moved = load_compose({**REQUIRED_ENV, "POLYVORE_DIR": "/mnt/polyvore", "POLYVORE_KIND": "disjoint"})
    assert mounts(moved["services"]["train-gpu"])["/polyvore"] == ("/mnt/polyvore", True)
    assert flag(service_command(moved["services"]["train-gpu"]), "--kind") == "disjoint"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:+y}", {"A": "1"}, "y"),
        ("$$A ${B}", {"B": "b"}, "$A b"),
        ("$A/x", {"A": "p"}, "p/x"),
    ],
)
def test_interpolation_follows_compose_rules(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


def test_interpolation_error_names_the_variable() -> None:
    with pytest.raises(MissingVariableError, match="KEY: give me a key"):
        interpolate("${KEY:?give me a key}", {})
    with pytest.raises(ValueError, match="invalid interpolation"):
        interpolate("${not valid}", {})
    with pytest.raises(ValueError, match="nested interpolation"):
        interpolate("${A:-${B:-z}}", {})


def test_named_volumes_are_declared_and_builds_point_at_real_dockerfiles() -> None:
    from docker_files import REPO

    model = load_compose()
    declared = set(model["volumes"])
    for name, svc in model["services"].items():
        for source, _ in mounts(svc).values():
            if not source.startswith((".", "/")):  # a bare name is a named volume, which must be declared
                assert source in declared, f"{name}: volume {source!r} is not declared"
        if "build" in svc:
            assert (REPO / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file(), name
