"""cdc-publisher: Salesforce change events (Pub/Sub API) → the Google Pub/Sub topic ``sfpipe-cdc``.

It subscribes to the org's change-event channel, decodes each event with the schema GetSchema
gives for its id, and publishes one ``sfpipe.cdc.change`` message per changed record with the
record Id as ordering key. The replay id is checkpointed in the state bucket only after Pub/Sub
has acknowledged every message before it, so a crash replays and never skips; events Salesforce
could not deliver (gap events, a replay id past retention) are repaired by re-reading the
records through the REST API.
"""
