"""Regenerate the Pub/Sub API's Python modules from ``pubsub_api.proto`` with grpcio-tools.

``python -m sfpipe.salesforce.pubsub.generate`` rewrites ``_generated/``; a test runs the same
function into a temporary folder and compares bytes, so the committed modules can never drift
from the proto file (or from the grpcio-tools version in the lock file).

The proto is compiled as ``sfpipe/salesforce/pubsub/_generated/pubsub_api.proto`` so that the
generated gRPC module imports its message module by its package path.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
PROTO = HERE / "pubsub_api.proto"
PACKAGE_PATH = Path("sfpipe/salesforce/pubsub/_generated")
OUTPUTS = ("pubsub_api_pb2.py", "pubsub_api_pb2.pyi", "pubsub_api_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Compile the proto; write the generated modules into ``out_dir``; returns their paths."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory(prefix="sfpipe-proto-") as tmp:
        root = Path(tmp)
        source = root / PACKAGE_PATH / PROTO.name
        source.parent.mkdir(parents=True)
        shutil.copyfile(PROTO, source)
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{root}",
                f"--python_out={root}",
                f"--pyi_out={root}",
                f"--grpc_python_out={root}",
                str(source.relative_to(root)),
            ]
        )
        if code != 0:
            msg = f"protoc failed with exit code {code} on {PROTO}"
            raise RuntimeError(msg)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in OUTPUTS:
            target = out_dir / name
            shutil.copyfile(root / PACKAGE_PATH / name, target)
            written.append(target)
    return written


def main() -> int:
    """Rewrite the committed modules."""
    for path in generate(HERE / "_generated"):
        print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
