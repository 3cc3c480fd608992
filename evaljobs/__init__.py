"""evaljobs: evaluate deployed models in the database, publish the results to Prometheus."""

__version__ = "0.1.0"
