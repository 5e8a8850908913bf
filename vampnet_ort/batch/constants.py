"""Names the batch command needs before anything heavy is imported."""

ENGINES = ("local", "ray")
OUTPUT_FORMATS = ("wav", "flac", "ogg")
REPORT_NAME = "vampnet-batch.jsonl"
