"""spark-submit entry point of the `detect_rephrases` stage (logic: mining.pipeline.detect_rephrases).

    spark-submit --master local[2] jobs/detect_rephrases.py --logs LOGS --out OUT [options]
"""
import sys

from mining.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("detect_rephrases"))
