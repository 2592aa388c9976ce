"""The container image and compose files, checked statically (no docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from streams.settings import Settings

DEPLOY = Path(__file__).parents[3] / "deploy"


def _instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def test_the_image_is_pinned_runs_as_a_user_and_checks_its_health() -> None:
    steps = _instructions((DEPLOY / "Dockerfile").read_text())
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in steps if k == "ARG" and "=" in a}
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base  # an exact release
    froms = [a for k, a in steps if k == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build")  # multi-stage
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    users = [a for k, a in final if k == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("ENTRYPOINT", '["anomstream"]') in final
    assert ("CMD", '["worker"]') in final
    health = next(a for k, a in final if k == "HEALTHCHECK")
    port = Settings().worker.web_port
    assert f"127.0.0.1:{port}/healthz" in health
    assert ("EXPOSE", str(port)) in final
    # The CPU build of torch, not PyPI's CUDA one.
    assert any("download.pytorch.org/whl/cpu" in a for k, a in steps if k == "RUN")


def test_compose_has_every_service_and_no_secret_in_it() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert {"kafka", "influxdb", "grafana", "worker", "trainer", "simulator"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["influxdb"]["image"].startswith("influxdb:2.")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    for name, svc in services.items():
        image = svc.get("image", "")
        assert image and not image.endswith(":latest"), name
    assert services["worker"]["command"] == ["worker"]
    assert services["trainer"]["command"] == ["trainer"]
    assert services["simulator"]["profiles"] == ["simulator"]
    # The worker talks to the services by name, with the token from the environment.
    env = services["worker"]["environment"]
    assert env["ANOMSTREAM_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["ANOMSTREAM_INFLUX__TOKEN"].startswith("${INFLUXDB_TOKEN:?")
    # Named volumes are declared; Grafana gets our provisioning and dashboards.
    for svc in services.values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith("./") or source in compose["volumes"], volume
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source


def test_every_variable_compose_uses_is_in_env_example_and_has_no_default() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = (DEPLOY / ".env.example").read_text()
    declared = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, flags=re.M))
    assert used and used <= declared
    # No default passwords: every reference is required (":?"), and the example leaves
    # the secrets empty.
    assert not re.search(r"\$\{[A-Z0-9_]+(:-|-)", text)
    for secret in ("INFLUXDB_ADMIN_PASSWORD", "INFLUXDB_TOKEN", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(rf"^{secret}=$", example, flags=re.M), secret
    # The real .env is never committed.
    gitignore = (DEPLOY.parent / ".gitignore").read_text().splitlines()
    assert "deploy/.env" in gitignore


def _k8s_documents() -> list[tuple[str, dict]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()):
            docs.append((name, doc))
    return docs


def test_every_kubernetes_manifest_validates_against_the_schema() -> None:
    import kubernetes_validate

    docs = _k8s_documents()
    kinds = {doc["kind"] for _, doc in docs}
    assert {"Deployment", "HorizontalPodAutoscaler", "ConfigMap",
            "PersistentVolumeClaim"} <= kinds
    for _, doc in docs:
        # Raises ValidationError with the path of whatever does not fit the schema.
        kubernetes_validate.validate(doc, "1.30", strict=True)


def test_the_worker_deployment_probes_the_health_endpoints_and_outlives_its_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings()
    worker = next(doc for _, doc in _k8s_documents()
                  if doc["kind"] == "Deployment" and doc["metadata"]["name"].endswith("worker"))
    pod = worker["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["worker"]
    assert container["ports"][0]["containerPort"] == settings.worker.web_port
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] > settings.worker.shutdown_timeout_s
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {"requests", "limits"} <= set(container["resources"])
    refs = {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]}
    assert refs == {"anomstream-config", "anomstream-secrets"}
    # The ConfigMap is the settings' environment: every key is read, none is a typo.
    config = next(doc for _, doc in _k8s_documents() if doc["kind"] == "ConfigMap")
    assert all(key.startswith("ANOMSTREAM_") for key in config["data"])
    for key, value in {**config["data"], "ANOMSTREAM_INFLUX__TOKEN": "x"}.items():
        monkeypatch.setenv(key, value)
    loaded = Settings()
    for key in config["data"]:
        if key == "ANOMSTREAM_LOG_JSON":  # read by streams.logs, not a settings field
            continue
        group, _, name = key.removeprefix("ANOMSTREAM_").lower().partition("__")
        target = getattr(loaded, group) if name else loaded
        assert hasattr(target, name or group), key
    assert loaded.kafka.bootstrap_servers == config["data"]["ANOMSTREAM_KAFKA__BOOTSTRAP_SERVERS"]
    assert loaded.kafka.manage_local is False and loaded.topics.replication_factor == 3
    assert (DEPLOY / "k8s" / "secret.env.example").is_file()
    assert "deploy/k8s/secret.env" in (DEPLOY.parent / ".gitignore").read_text().splitlines()
