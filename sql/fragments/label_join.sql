-- Fragment: a prediction's labels that had arrived before :labels_as_of (join condition).
{labels} l
            ON l.{label_prediction_id} = p.{prediction_id}
           AND l.{labeled_at} < :labels_as_of
