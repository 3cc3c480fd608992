-- Fragment (Spark): an instant as seconds since 1970; a timestamp cast to DOUBLE keeps its fraction.
CAST({moment} AS DOUBLE)
