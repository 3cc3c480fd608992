-- sql/label_delays.sql per incremental part of the look-back [:lookback_start, :window_end): per
-- part and version the predictions, the labelled ones, the sum and range of their delays, the
-- cumulative histogram ({bucket_counts}) and, for each multiple k of label_delay, how many had a
-- label within k x label_delay ({within_all}: within_k, of all the part's predictions; whether a
-- part is old enough to count is decided per part when they are added up,
-- evaljobs/ops/incremental/).
WITH {label_delay_rows}
SELECT
    part,
    model_version,
    COUNT(*) AS predictions,
    COUNT(delay_seconds) AS labeled,
    SUM(delay_seconds) AS delay_sum,
    MIN(delay_seconds) AS min_delay,
    {bucket_counts},
    {within_all}
FROM (
    SELECT {part_number} AS part, model_version, delay_seconds
    FROM label_delay_rows
) numbered
GROUP BY part, model_version
