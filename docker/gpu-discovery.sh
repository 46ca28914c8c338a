#!/usr/bin/env bash
# Spark resource discovery script for GPUs (spark.worker.resource.gpu.discoveryScript):
# prints {"name": "gpu", "addresses": ["0", "1", ...]}, one address per GPU nvidia-smi sees.
# Same contract as Spark's examples/src/main/scripts/getGpusResources.sh.
set -euo pipefail
addresses=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed 's/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [${addresses}]}"
