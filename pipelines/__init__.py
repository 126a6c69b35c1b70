"""The Kubeflow pipelines: DAG factories, local runs, compile, submit and schedule."""
