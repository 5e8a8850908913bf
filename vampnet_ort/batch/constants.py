"""Names the batch command needs before anything heavy is imported."""

ENGINES = ("local", "ray")
OUTPUT_FORMATS = ("wav", "flac", "ogg")
REPORT_NAME = "vampnet-batch.jsonl"
PLANNED_NAME = "vampnet-batch.planned"  # every output a run planned, written before its work (batch.safety)
