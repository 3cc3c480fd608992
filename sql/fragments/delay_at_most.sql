-- Fragment: a label-delay row's delay is at most :{bound} seconds (sql/window_aggregates.sql's
-- histogram and within-k counts; NULL, so not counted, without a label).
delay_seconds <= :{bound}
