-- PostgreSQL only: a session lock serialising one job's pushes across processes.
SELECT pg_advisory_lock(:key)
