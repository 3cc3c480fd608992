-- evaljobs doctor: how many prediction ids have more than one label row (each evaluation then
-- ranks labels; with none, a declared unique key would spare that sort).
SELECT COUNT(*) AS several
FROM (
    SELECT l.{label_prediction_id}
    FROM {labels} l
    GROUP BY l.{label_prediction_id}
    HAVING COUNT(*) > 1
) several_labels
