-- Fragment (PostgreSQL): sql/fragments/delay_at_most.sql as a comparison of instants. PostgreSQL
-- evaluates the delay anew in each of the ~20 aggregates that compare it (it has no common
-- subexpressions, and computing it once in a subquery hides the group keys' statistics, which
-- turns the parallel hash aggregate into a sort); the bound is a constant interval once the
-- parameter is bound, and adding it to a timestamp allocates nothing, where the interval
-- difference of sql/postgresql/fragments/delay_seconds.sql does: 26.4 s -> 21.4 s of CPU for the
-- whole of sql/window_aggregates.sql at 10M predictions (serial, on the bench data). Exact: both
-- instants are whole microseconds, and so is a bound in whole seconds.
labeled_at <= predicted_at + CAST(:{bound} AS DOUBLE PRECISION) * INTERVAL '1 second'
