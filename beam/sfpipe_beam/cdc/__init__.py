"""The CDC stream into the raw layer: ``sfpipe.cdc.change`` messages → ``sfpipe_raw.<object>``.

:mod:`~sfpipe_beam.cdc.changes` holds the transform functions (parse a message, fold a record's
changes in commit order, type the values); :mod:`~sfpipe_beam.cdc.apply` writes folded changes
through the warehouse adapter with column-level last-writer-wins; :mod:`~sfpipe_beam.cdc.stream`
drives them locally from a streaming pull in micro-batches; :mod:`~sfpipe_beam.cdc.pipeline` is
the Dataflow pipeline that writes BigQuery CDC upserts.
"""
