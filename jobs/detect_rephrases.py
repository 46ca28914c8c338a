"""spark-submit entry point of the `detect_rephrases` stage (logic: mining/stages/detect_rephrases.py).

    spark-submit --master local[2] jobs/detect_rephrases.py --logs LOGS --out OUT [options]
"""
import sys

from mining.stages.runner import job_main

if __name__ == "__main__":
    sys.exit(job_main("detect_rephrases"))
