"""The data steps' work as Apache Beam pipelines: the DirectRunner here, Dataflow on GCP (docs/beam.md)."""
