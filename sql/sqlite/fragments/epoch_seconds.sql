-- Fragment (SQLite, where timestamps are UTC text): an instant as seconds since 1970, from the
-- Julian day number (2440587.5 is 1970-01-01T00:00:00Z). SQLite keeps instants as whole
-- milliseconds, so rounding to 3 decimals undoes the float error of the day fraction: a label
-- exactly one hour late is 3600 s, not 3600.00004 s (which would miss the 1h bucket).
ROUND((julianday({moment}) - 2440587.5) * 86400.0, 3)
