"""``sfpipe demo``: the whole event-driven pipeline on a generated org, locally, followed from outside.

- :mod:`~sfpipe_devstack.demo.run`: the orchestration (stack up, ``POST /runs``, follow, summary);
- :mod:`~sfpipe_devstack.demo.tracker`: where the run is, merged from events, ops rows and the
  extractor's status;
- :mod:`~sfpipe_devstack.demo.watch`: the ops subscriptions, the ops tables, the extractor's API;
- :mod:`~sfpipe_devstack.demo.summary`: the figures after the run, from the warehouse;
- :mod:`~sfpipe_devstack.demo.display`: the terminal output;
- :mod:`~sfpipe_devstack.demo.cli`: the click command.
"""
