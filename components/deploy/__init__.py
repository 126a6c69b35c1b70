"""deploy step: the blessed model onto the KServe InferenceService behind a canary."""
