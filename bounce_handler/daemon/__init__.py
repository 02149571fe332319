"""The resident daemon: socketmap lookups, LMTP intake and the PostgreSQL spool drain."""
