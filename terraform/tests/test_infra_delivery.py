"""skaffold.yaml, cloudbuild.yaml and the Cloud Run manifests, checked without the tools:
JSON schemas kept in this repository for structure, and cross-checks against Terraform for
what the schemas cannot see (services, projects, accounts, ingress, ports)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from infra_checks import ENVS, REPO, TERRAFORM, load_dir, load_hcl

pytestmark = pytest.mark.infra

SCHEMAS = Path(__file__).parent / "schemas"
OWN_DOCKERFILES = ("extractor", "loader", "transform", "quality", "cdc-publisher", "dashboard")
INGRESS = {"INGRESS_TRAFFIC_INTERNAL_ONLY": "internal", "INGRESS_TRAFFIC_ALL": "all"}


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def schema_errors(doc: Any, name: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(_schema(name))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def skaffold_configs() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((REPO / "skaffold.yaml").read_text()))


def cloudbuild() -> dict[str, Any]:
    return yaml.safe_load((REPO / "cloudbuild.yaml").read_text())


def tfvars(env: str) -> dict[str, Any]:
    return load_hcl(TERRAFORM / "envs" / env / "terraform.tfvars")


def cloudbuild_errors(doc: dict[str, Any]) -> list[str]:
    """What the schema cannot express: step graph and substitutions."""
    errors = []
    ids = [s["id"] for s in doc["steps"]]
    if len(set(ids)) != len(ids):
        errors.append("step ids are not unique")
    for position, step in enumerate(doc["steps"]):
        for dep in step.get("waitFor", []):
            if dep != "-" and dep not in ids[:position]:
                errors.append(f"{step['id']} waits for {dep}, which is not an earlier step")
    text = yaml.safe_dump(doc)
    used = set(re.findall(r"\$\{(_[A-Z0-9_]+)\}", text))
    declared = set(doc.get("substitutions", {}))
    if used - declared:
        errors.append(f"undeclared substitutions: {sorted(used - declared)}")
    deploy = next((s for s in doc["steps"] if s["id"] == "deploy"), None)
    if deploy is None or not re.search(r'--profile="?\$\{_ENV\}', " ".join(deploy.get("args", []))):
        errors.append("no deploy step with --profile=${_ENV}")
    return errors


def skaffold_errors(configs: list[dict[str, Any]]) -> list[str]:
    """Every service of every environment has a module that builds and deploys it there."""
    errors = []
    names = [c["metadata"]["name"] for c in configs]
    if len(set(names)) != len(names):
        errors.append("module names are not unique")
    by_name = {c["metadata"]["name"]: c for c in configs}
    for env in ENVS:
        vars_ = tfvars(env)
        for service in vars_["services"]:
            config = by_name.get(service)
            if config is None:
                errors.append(f"{env}: no skaffold module for {service}")
                continue
            image = config["build"]["artifacts"][0]["image"]
            if image != f"sfpipe-{service}":
                errors.append(f"{service}: image {image} is not sfpipe-{service}")
            profile = next((p for p in config.get("profiles", []) if p["name"] == env), None)
            if profile is None:
                errors.append(f"{service}: no {env} profile")
                continue
            cloudrun = profile.get("deploy", {}).get("cloudrun", {})
            if cloudrun != {"projectid": vars_["project_id"], "region": vars_["region"]}:
                errors.append(f"{service}/{env}: deploys to {cloudrun}, Terraform has {vars_['project_id']}")
            for path in profile.get("manifests", {}).get("kustomize", {}).get("paths", []):
                if not (REPO / path / "kustomization.yaml").exists():
                    errors.append(f"{service}/{env}: {path} has no kustomization.yaml")
        for name, config in by_name.items():
            deployed = any(p["name"] == env for p in config.get("profiles", []))
            if deployed and name not in vars_["services"]:
                errors.append(f"{name} deploys to {env}, where Terraform has no such service")
    return errors


def test_skaffold_matches_its_schema() -> None:
    configs = skaffold_configs()
    assert len(configs) >= 7
    for config in configs:
        assert schema_errors(config, "skaffold") == [], config["metadata"]["name"]


def test_skaffold_modules_match_the_terraform_services() -> None:
    assert skaffold_errors(skaffold_configs()) == []


def test_skaffold_builds_every_service_from_its_own_dockerfile() -> None:
    dockerfiles = {
        c["metadata"]["name"]: c["build"]["artifacts"][0]["docker"]["dockerfile"] for c in skaffold_configs()
    }
    for service in OWN_DOCKERFILES:
        assert dockerfiles[service] == f"services/{service}/Dockerfile"
        assert (REPO / dockerfiles[service]).exists()
    # Written by their owners: the paths their issues name.
    assert dockerfiles["simulator"] == "services/simulator/Dockerfile"
    assert dockerfiles["flex-template"] == "beam/Dockerfile"


def test_local_cluster_profile_is_activated_by_skaffold_dev() -> None:
    for config in skaffold_configs():
        if config["metadata"]["name"] == "flex-template":
            continue
        local = next(p for p in config["profiles"] if p["name"] == "local")
        assert local["activation"] == [{"command": "dev"}]
        assert "kubectl" in local["deploy"]
        assert (REPO / local["manifests"]["kustomize"]["paths"][0] / "workload.yaml").exists()


def test_cloudbuild_matches_its_schema_and_step_graph() -> None:
    doc = cloudbuild()
    assert schema_errors(doc, "cloudbuild") == []
    assert cloudbuild_errors(doc) == []


def test_cloudbuild_substitutions_cover_the_triggers() -> None:
    trigger = next(
        body
        for block in load_dir(TERRAFORM / "modules" / "delivery")["resource"]
        for kind, named in block.items()
        if kind == "google_cloudbuild_trigger"
        for body in named.values()
    )
    assert set(trigger["substitutions"]) <= set(cloudbuild()["substitutions"])
    assert trigger["filename"] == "cloudbuild.yaml"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["build"].update(artifact=c["build"].pop("artifacts")), "Additional properties"),
        (lambda c: c["profiles"][1]["deploy"]["cloudrun"].pop("region"), "'region' is a required property"),
        (lambda c: c["build"]["artifacts"][0].update(image="extractor"), "does not match"),
    ],
)
def test_a_skaffold_mistake_is_caught(mutate: Any, expected: str) -> None:
    config = copy.deepcopy(skaffold_configs()[0])
    mutate(config)
    assert any(expected in e for e in schema_errors(config, "skaffold"))


def test_a_skaffold_profile_pointing_at_the_wrong_project_is_caught() -> None:
    configs = copy.deepcopy(skaffold_configs())
    configs[0]["profiles"][2]["deploy"]["cloudrun"]["projectid"] = "sfpipe-dev"
    assert any("deploys to" in e for e in skaffold_errors(configs))


def test_a_service_without_module_is_caught() -> None:
    configs = [c for c in skaffold_configs() if c["metadata"]["name"] != "quality"]
    assert "dev: no skaffold module for quality" in skaffold_errors(configs)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["steps"][0].pop("name"), "'name' is a required property"),
        (lambda d: d["options"].update(machinetype="E2_HIGHCPU_8"), "Additional properties"),
        (lambda d: d.update(timeout="90m"), "does not match"),
    ],
)
def test_a_cloudbuild_schema_mistake_is_caught(mutate: Any, expected: str) -> None:
    doc = copy.deepcopy(cloudbuild())
    mutate(doc)
    assert any(expected in e for e in schema_errors(doc, "cloudbuild"))


def test_a_cloudbuild_graph_mistake_is_caught() -> None:
    doc = copy.deepcopy(cloudbuild())
    doc["steps"][1]["waitFor"] = ["deploy"]
    doc["steps"][2]["args"][-1] += " ${_UNDECLARED}"
    errors = cloudbuild_errors(doc)
    assert "build waits for deploy, which is not an earlier step" in errors
    assert "undeclared substitutions: ['_UNDECLARED']" in errors


# --- the Cloud Run manifests skaffold deploys ----------------------------------------------


def manifest(service: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "deploy" / "cloudrun" / "base" / service / "service.yaml").read_text())


def values_env(env: str) -> dict[str, str]:
    lines = (REPO / "deploy" / "cloudrun" / "components" / env / "values.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def manifest_errors(env: str) -> list[str]:
    errors = []
    vars_ = tfvars(env)
    values = values_env(env)
    outputs = next(o for o in load_dir(TERRAFORM / "envs" / env)["output"] if "deploy_values" in o)
    keys = set(outputs["deploy_values"]["value"])
    if set(values) - {"SA_DOMAIN"} != keys:
        errors.append(f"{env}: values.env keys differ from deploy_values: {sorted(set(values) ^ keys)}")
    project = vars_["project_id"]
    expected = {
        "SA_DOMAIN": f"{project}.iam.gserviceaccount.com",
        "SFPIPE_PROJECT": project,
        "SFPIPE_REGION": vars_["region"],
        "SFPIPE_LAKE_BUCKET": f"{project}-sfpipe-lake",
        "SFPIPE_STATE_BUCKET": f"{project}-sfpipe-state",
    }
    for key, value in expected.items():
        if values.get(key) != value:
            errors.append(f"{env}: {key}={values.get(key)}, Terraform makes {value}")
    for service, spec in vars_["services"].items():
        doc = manifest(service)
        template = doc["spec"]["template"]["spec"]
        account = template["serviceAccountName"].split("@")[0]
        if account != f"sfpipe-{service}":
            errors.append(f"{service}: runs as {account}, Terraform made sfpipe-{service}")
        ingress = INGRESS[spec.get("ingress", "INGRESS_TRAFFIC_INTERNAL_ONLY")]
        if doc["metadata"]["annotations"]["run.googleapis.com/ingress"] != ingress:
            errors.append(f"{service}: ingress differs from Terraform ({ingress})")
        container = template["containers"][0]
        if container["ports"][0]["containerPort"] != spec["port"]:
            errors.append(f"{service}: port differs from Terraform ({spec['port']})")
        names = {e["name"] for e in container["env"]}
        missing = keys - names
        if missing:
            errors.append(f"{service}: no env entry for {sorted(missing)} (the replacement needs one)")
    return errors


@pytest.mark.parametrize("env", ENVS)
def test_cloud_run_manifests_agree_with_terraform(env: str) -> None:
    assert manifest_errors(env) == []


def test_a_manifest_disagreeing_with_terraform_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = manifest

    def planted(service: str) -> dict[str, Any]:
        doc = real(service)
        if service == "loader":
            doc["spec"]["template"]["spec"]["serviceAccountName"] = "sfpipe-extractor@x.iam.gserviceaccount.com"
            doc["metadata"]["annotations"]["run.googleapis.com/ingress"] = "all"
        return doc

    monkeypatch.setitem(globals(), "manifest", planted)
    errors = manifest_errors("dev")
    assert "loader: runs as sfpipe-extractor, Terraform made sfpipe-loader" in errors
    assert "loader: ingress differs from Terraform (internal)" in errors


@pytest.mark.parametrize("env", ENVS)
def test_every_service_secret_comes_from_secret_manager(env: str) -> None:
    secrets = set()
    for block in load_dir(TERRAFORM / "envs" / env)["module"]:
        if "secrets" in block:
            secrets = set(block["secrets"]["secrets"])
    for service in tfvars(env)["services"]:
        for entry in manifest(service)["spec"]["template"]["spec"]["containers"][0]["env"]:
            if "SECRET" in entry["name"] or entry["name"].endswith("CLIENT_ID"):
                assert "valueFrom" in entry, entry["name"]
                assert entry["valueFrom"]["secretKeyRef"]["name"] in secrets
