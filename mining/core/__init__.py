"""Pure numpy/pandas logic of the production path: text, friction signals, rephrase scoring, kNN index, clustering, slots, aggregation, calibration, encoders, quality gate."""
