"""The Salesforce Pub/Sub API (``eventbus.v1``): generated stubs, change-event codecs, a client.

``_generated/`` holds the modules grpcio-tools makes from ``pubsub_api.proto`` (regenerate with
``python -m sfpipe.salesforce.pubsub.generate``). The simulator serves this API, the
cdc-publisher subscribes with :mod:`sfpipe.salesforce.pubsub.client`, and both read change
events with the same bitmap and Avro rules (:mod:`~sfpipe.salesforce.pubsub.bitmap`,
:mod:`~sfpipe.salesforce.pubsub.events`).
"""
