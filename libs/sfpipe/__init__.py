"""sfpipe's shared library: configuration, logging, events, adapters and type mapping."""

__version__ = "0.1.0"
