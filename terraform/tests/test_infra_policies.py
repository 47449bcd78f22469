"""Policies read from the Terraform source with python-hcl2: least privilege, one account
per service, the same modules in every environment, typed and described variables,
pinned providers and an example per module."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from infra_checks import ENVS, TERRAFORM, load_dir, load_hcl, modules_of, resources

pytestmark = pytest.mark.infra

PRIMITIVE = re.compile(r"roles/(owner|editor|viewer)\b")
# Roles that exist only at project level; everything else is granted on the resource.
PROJECT_ROLES = {"roles/bigquery.jobUser", "roles/dataflow.worker", "roles/logging.logWriter"}
CLOUD_RUN_SERVICES = ("extractor", "loader", "transform", "quality", "cdc-publisher", "dashboard")


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in [str(k), *_strings(v)]]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [str(node)]


def terraform_dirs(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("*.tf")})


def iam_errors(root: Path) -> list[str]:
    errors = []
    for directory in terraform_dirs(root):
        where = directory.relative_to(root)
        everything = _strings(load_dir(directory))
        for tfvars in directory.glob("*.tfvars"):
            everything += _strings(load_hcl(tfvars))
        errors += [f"{where}: primitive role {s}" for s in everything if PRIMITIVE.search(s)]
        for kind, name, body in resources(directory):
            if kind in ("google_project_iam_binding", "google_project_iam_policy"):
                errors.append(f"{where}: {kind}.{name} is authoritative on the whole project")
            if kind == "google_project_iam_member" and body["role"] not in PROJECT_ROLES:
                errors.append(f"{where}: {kind}.{name} grants {body['role']} on the whole project")
    return errors


def service_account_errors(env_dir: Path) -> list[str]:
    """Each Cloud Run service runs as the account made for it and for nothing else."""
    errors = []
    cloud_run = modules_of(env_dir)["cloud_run"]
    if cloud_run.get("for_each") != "${var.services}":
        errors.append("cloud_run is not one module instance per service")
    if cloud_run.get("service_account_email") != "${module.service_accounts.emails[each.key]}":
        errors.append(f"cloud_run runs as {cloud_run.get('service_account_email')}, not its own account")
    accounts = modules_of(env_dir)["service_accounts"]["accounts"]
    if "var.services" not in str(accounts):
        errors.append("service_accounts does not make one account per service")
    services = load_hcl(env_dir / "terraform.tfvars")["services"]
    missing = [s for s in CLOUD_RUN_SERVICES if s not in services]
    if missing:
        errors.append(f"services missing from tfvars: {missing}")
    return errors


def variable_errors(root: Path) -> list[str]:
    errors = []
    for directory in terraform_dirs(root):
        for block in load_dir(directory).get("variable", []):
            for name, body in block.items():
                if not str(body.get("description", "")).strip():
                    errors.append(f"{directory.relative_to(root)}: variable {name} has no description")
                if "type" not in body:
                    errors.append(f"{directory.relative_to(root)}: variable {name} has no type")
    return errors


def version_errors(root: Path) -> list[str]:
    errors = []
    roots = [*sorted((root / "modules").iterdir()), *[root / "envs" / e for e in ENVS]]
    for directory in roots:
        versions = directory / "versions.tf"
        if not versions.exists():
            errors.append(f"{directory.relative_to(root)}: no versions.tf")
            continue
        terraform = load_hcl(versions)["terraform"][0]
        if "required_version" not in terraform:
            errors.append(f"{directory.relative_to(root)}: Terraform version not pinned")
        providers = terraform.get("required_providers", [{}])[0]
        for name in ("google", "google-beta"):
            if not re.fullmatch(r"~> \d+\.\d+", str(providers.get(name, {}).get("version", ""))):
                errors.append(f"{directory.relative_to(root)}: provider {name} not pinned with ~>")
    return errors


def test_no_primitive_or_project_wide_roles() -> None:
    assert iam_errors(TERRAFORM) == []


@pytest.mark.parametrize(
    ("role", "error"),
    [
        ("roles/editor", "primitive role roles/editor"),
        ("roles/storage.admin", "grants roles/storage.admin on the whole project"),
    ],
)
def test_a_project_wide_grant_is_caught(terraform_copy: Path, role: str, error: str) -> None:
    main = terraform_copy / "envs" / "prod" / "main.tf"
    main.write_text(
        main.read_text()
        + f'\nresource "google_project_iam_member" "planted" {{\n  project = var.project_id\n  role    = "{role}"\n  member  = "user:someone@example.com"\n}}\n'
    )
    assert any(error in e for e in iam_errors(terraform_copy))


@pytest.mark.parametrize("env", ENVS)
def test_every_service_has_its_own_service_account(env: str) -> None:
    assert service_account_errors(TERRAFORM / "envs" / env) == []


def test_a_shared_service_account_is_caught(terraform_copy: Path) -> None:
    main = terraform_copy / "envs" / "dev" / "main.tf"
    main.write_text(
        main.read_text().replace(
            "module.service_accounts.emails[each.key]", 'module.service_accounts.emails["extractor"]'
        )
    )
    assert any("not its own account" in e for e in service_account_errors(main.parent))


def test_every_resource_iam_grant_names_one_resource() -> None:
    # Resource-level IAM in the modules: buckets, datasets, topics, subscriptions, secrets,
    # services, repositories and accounts, never the project apart from PROJECT_ROLES.
    kinds = {kind for d in terraform_dirs(TERRAFORM) for kind, _, _ in resources(d) if kind.endswith("_iam_member")}
    assert {
        "google_storage_bucket_iam_member",
        "google_bigquery_dataset_iam_member",
        "google_pubsub_topic_iam_member",
        "google_pubsub_subscription_iam_member",
        "google_secret_manager_secret_iam_member",
        "google_cloud_run_v2_service_iam_member",
    } <= kinds


def module_sets() -> dict[str, dict[str, str]]:
    return {env: {name: body["source"] for name, body in modules_of(TERRAFORM / "envs" / env).items()} for env in ENVS}


def test_the_three_environments_declare_the_same_modules() -> None:
    sets = module_sets()
    assert len(sets["dev"]) >= 15
    assert sets["dev"] == sets["staging"] == sets["prod"]
    for source in sets["dev"].values():
        assert (TERRAFORM / "envs" / "dev" / source).resolve().is_dir(), source


def test_an_environment_missing_a_module_is_caught(terraform_copy: Path) -> None:
    main = terraform_copy / "envs" / "staging" / "main.tf"
    text = main.read_text()
    start = text.index('module "budget"')
    end = text.index('module "delivery"')
    main.write_text(text[:start] + text[end:])
    sets = {env: set(modules_of(terraform_copy / "envs" / env)) for env in ENVS}
    assert sets["dev"] - sets["staging"] == {"budget"}


def test_every_variable_is_typed_and_described() -> None:
    assert variable_errors(TERRAFORM) == []


def test_an_undescribed_variable_is_caught(terraform_copy: Path) -> None:
    variables = terraform_copy / "modules" / "budget" / "variables.tf"
    variables.write_text(variables.read_text() + '\nvariable "planted" {\n  default = 1\n}\n')
    errors = variable_errors(terraform_copy)
    assert "modules/budget: variable planted has no description" in errors
    assert "modules/budget: variable planted has no type" in errors


def test_providers_are_pinned_everywhere() -> None:
    assert version_errors(TERRAFORM) == []


def test_an_unpinned_provider_is_caught(terraform_copy: Path) -> None:
    versions = terraform_copy / "modules" / "scheduler" / "versions.tf"
    versions.write_text(versions.read_text().replace('version = "~> 6.30"', 'version = ">= 6.0"', 1))
    assert version_errors(terraform_copy) == ["modules/scheduler: provider google not pinned with ~>"]


def test_every_module_has_an_example() -> None:
    for module in sorted((TERRAFORM / "modules").iterdir()):
        examples = list(module.glob("examples/*/main.tf"))
        assert examples, f"{module.name} has no example"
        sources = [b["source"] for e in examples for blk in load_hcl(e).get("module", []) for b in blk.values()]
        assert "../.." in sources, module.name


def test_buckets_have_uniform_access_and_the_state_bucket_is_versioned() -> None:
    buckets = {name: body for _, name, body in resources(TERRAFORM / "modules" / "storage", "google_storage_bucket")}
    for body in buckets.values():
        assert body["uniform_bucket_level_access"] is True
        assert body["public_access_prevention"] == "enforced"
        assert body["lifecycle_rule"]
    assert buckets["state"]["versioning"][0]["enabled"] is True


def test_the_datasets_are_the_five_of_the_design() -> None:
    block = next(v for v in load_dir(TERRAFORM / "modules" / "bigquery")["variable"] if "datasets" in v)
    assert set(block["datasets"]["default"]) == {
        "sfpipe_raw",
        "sfpipe_staging",
        "sfpipe_marts",
        "sfpipe_assertions",
        "sfpipe_ops",
    }
