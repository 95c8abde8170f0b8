"""The change stream to edges: the feed that notices new revisions, the records edges need,
and the CallbackSyncService that serves them (protocol: callback_sync_service.proto)."""
