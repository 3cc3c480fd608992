"""Where results go. Each sink takes :class:`~evaljobs.records.JobResult` records and
renders them with :mod:`evaljobs.exposition`; a new destination is one new module here."""
