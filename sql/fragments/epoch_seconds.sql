-- Fragment: an instant ({moment}, a column) as seconds since 1970 (a number), so that the
-- difference of two is a duration in seconds. Engines spell it differently: sql/<dialect>/fragments/.
CAST(EXTRACT(EPOCH FROM {moment}) AS {float_type})
