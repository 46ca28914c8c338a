"""spark-submit entry point of the `cluster_variants` stage (logic: mining/stages/cluster_variants.py).

    spark-submit --master local[2] jobs/cluster_variants.py --logs LOGS --out OUT [options]
"""
import sys

from mining.stages.runner import job_main

if __name__ == "__main__":
    sys.exit(job_main("cluster_variants"))
