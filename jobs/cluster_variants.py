"""spark-submit entry point of the `cluster_variants` stage (logic: mining.pipeline.cluster_variants).

    spark-submit --master local[2] jobs/cluster_variants.py --logs LOGS --out OUT [options]
"""
import sys

from mining.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("cluster_variants"))
