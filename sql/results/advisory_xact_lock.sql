-- PostgreSQL only: a transaction lock serialising migrations across processes.
SELECT pg_advisory_xact_lock(:key)
