"""spark-submit entry point of the `export_dataset` stage (logic: mining/stages/export_dataset.py).

    spark-submit --master local[2] jobs/export_dataset.py --logs LOGS --out OUT [options]
"""
import sys

from mining.stages.runner import job_main

if __name__ == "__main__":
    sys.exit(job_main("export_dataset"))
