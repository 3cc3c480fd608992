-- Fragment: the equal-width bin of a score in [0, 1]: FLOOR(score * :bins), with 1 in the last
-- bin; scores outside [0, 1] go to the end bins (the caller refuses them from their MIN and
-- MAX). NULL stays NULL. FLOOR, not CAST: PostgreSQL and DuckDB round when casting to integer.
CASE WHEN score IS NULL THEN NULL
     WHEN score >= 1 THEN :bins - 1
     WHEN score <= 0 THEN 0
     ELSE CAST(FLOOR(score * :bins) AS INTEGER) END
