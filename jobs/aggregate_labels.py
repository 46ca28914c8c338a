"""spark-submit entry point of the `aggregate_labels` stage (logic: mining/stages/aggregate_labels.py).

    spark-submit --master local[2] jobs/aggregate_labels.py --logs LOGS --out OUT [options]
"""
import sys

from mining.stages.runner import job_main

if __name__ == "__main__":
    sys.exit(job_main("aggregate_labels"))
