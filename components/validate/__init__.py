"""The validate step: data statistics, schema checks and drift before training."""
