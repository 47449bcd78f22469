"""`python -m sfpipe_beam`: run the batch load pipeline (the Flex Template's entry file too).

The start time is taken before Beam is imported, so that the pipeline reports its
start-up (interpreter, imports, graph) apart from its run. The pipeline's classes live in
:mod:`sfpipe_beam.load`, never in ``__main__``, so that workers can unpickle them.
"""

import time

STARTED = time.monotonic()

if __name__ == "__main__":
    from sfpipe_beam.load import main

    raise SystemExit(main(started=STARTED))
