-- Fragment (PostgreSQL): a label's delay in seconds, as the epoch of the interval between the
-- two instants (exact: the interval is days and microseconds). Not EXTRACT(EPOCH FROM ...) of
-- each instant: since PostgreSQL 14 EXTRACT returns numeric, and sql/label_delays.sql evaluates
-- the delay once per aggregate that uses it, so its numeric arithmetic took ~10 s of CPU at 1M
-- predictions; this double-precision form takes ~0.5 s (EXPLAIN ANALYZE, bench9 data).
date_part('epoch', labeled_at - predicted_at)
