"""The simulator's Salesforce Pub/Sub API: ``eventbus.v1.PubSub`` over gRPC, next to the REST API.

It streams the org's ordered change log as change events — one Avro schema per object, the
``ChangeEventHeader`` with field bitmaps, 8-byte replay ids, flow control by ``num_requested``,
keepalives — to any Pub/Sub API client, authenticated by the same sessions as the REST API.
Start it with :func:`sfpipe_simulator.pubsub_api.server.start_pubsub_api`.
"""
