"""spark-submit entry point of the `embed_utterances` stage (logic: mining/stages/embed_utterances.py).

    spark-submit --master local[2] jobs/embed_utterances.py --logs LOGS --out OUT [options]
"""
import sys

from mining.stages.runner import job_main

if __name__ == "__main__":
    sys.exit(job_main("embed_utterances"))
