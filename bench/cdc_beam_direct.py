"""Beam's local streaming runner on the Pub/Sub emulator: how long a message takes to reach a DoFn.

``python -m bench.cdc_beam_direct <subscription path> <output file>`` runs a streaming pipeline on
the DirectRunner (``--streaming``: Beam swaps in its own pull reader, which honours
``PUBSUB_EMULATOR_HOST``) whose only step writes each message's publish-to-DoFn latency to the
output file. It never ends on its own; the caller stops it. ``bench_cdc`` uses it for the
comparison in ADR 0094: if the runner alone cannot hold the latency target, neither can a
pipeline that also writes the warehouse.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class _Record:
    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, message: Any) -> None:
        published = float(message.attributes.get("t", "0"))
        with open(self.path, "a") as handle:
            handle.write(f"{(time.time() - published) * 1000.0:.1f}\n")


def main(argv: list[str]) -> int:
    import apache_beam as beam
    from apache_beam.io.gcp.pubsub import ReadFromPubSub
    from apache_beam.options.pipeline_options import PipelineOptions

    subscription, output = argv[0], argv[1]
    project = subscription.split("/")[1]
    options = PipelineOptions(["--runner=DirectRunner", "--streaming", f"--project={project}"])
    with beam.Pipeline(options=options) as p:
        (p | ReadFromPubSub(subscription=subscription, with_attributes=True)
           | beam.Map(_Record(output)))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
