"""Stage 5, ``export_dataset``: privacy gates + slot projection → versioned training set,
rewrite table, manifest and report, published atomically as ``versions/<v>/`` + ``latest``."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa

from mining.core import quality
from mining.core.text import normalize
from mining.io import changelog, export, schemas, storage
from mining.privacy import dp
from mining.privacy import pii as privacy
from mining.stages import STAGES
from mining.stages.common import code_version, counts_by, run_settings

log = logging.getLogger(__name__)


def _dp_select(spark, cfg, labeled, fingerprint: str):
    """``privacy.dp``: bounded distinct users per failing source text of ``rephrase_pairs``
    → noisy threshold (:mod:`mining.privacy.dp`). Returns (``labeled`` + column ``dp_users``, null
    where the text was not selected; the manifest's ``dp`` entry)."""
    from pyspark.sql import functions as F

    dc = cfg.privacy.dp
    cal = dp.calibrate(float(dc.epsilon), float(dc.delta), dc.max_texts_per_user)
    pairs = spark.read.parquet(storage.require_stage(cfg.out, "rephrase_pairs", "detect_rephrases"))
    counts = dp.spark_text_counts(pairs, dc.max_texts_per_user, dc.seed).localCheckpoint()
    # the noise is keyed by the whole counts table too: any changed count refreshes every text's
    key = (dp.noise_key(privacy.resolve_key(), f"{fingerprint}\0{dp.spark_counts_digest(counts)}")
           if dc.noise == "keyed" else None)
    # materialized once: with noise = "opendp" a recomputation would draw other noise
    released = counts.mapInPandas(dp.release_fn(cal, key), dp.RELEASE_SCHEMA).localCheckpoint()
    tally = released.agg(F.count("*").alias("considered"), F.count("dp_users").alias("selected")).first()
    log.info("dp: %d of %d failing texts selected (epsilon=%s, delta=%s, threshold=%d)",
             tally["selected"], tally["considered"], dc.epsilon, dc.delta, cal.threshold)
    out = labeled.join(released.select("locale", "text_norm", "dp_users"), ["locale", "text_norm"], "left")
    return out, dp.manifest_record(dc, cal, texts_considered=tally["considered"], texts_selected=tally["selected"])


def version_fingerprint(settings: dict, partitions: list, locales, lineage: str | None,
                        previous: str | None, stage_settings: dict | None = None) -> str:
    """What names a dataset version (:func:`mining.io.export.dataset_version`), as canonical
    JSON: the run settings, input partitions, locales, code version, the lineage (the logs'
    listing, the detect_rephrases config and code; absent for outputs from before lineage
    stamps), the previous version when there is one (the changelog, checksummed in the
    version, is against it, and retention carries from it: whatever the retention policy),
    and a keyed hash of the pseudonymization key (the exported cluster_ids are keyed).
    ``stage_settings``: ``{output: settings digest}`` of the upstream outputs that carry one
    (:func:`mining.stages.common.stage_settings_digest`): a stage rerun with other settings
    than the export's names another version."""
    return json.dumps({"config": settings, "partitions": partitions, "locales": list(locales),
                       "code": code_version(), **({"lineage": lineage} if lineage else {}),
                       **({"previous": previous} if previous else {}),
                       **({"stages": dict(sorted(stage_settings.items()))} if stage_settings else {}),
                       "key": privacy.pseudonymize("export", privacy.resolve_key())}, sort_keys=True)


def _retain(spark, cfg, labels, table: pa.Table, old: pd.DataFrame, version: str) -> tuple[pa.Table, pd.DataFrame]:
    """``export.label_retention = "until_contradicted"``: the previous version's labels
    (``old``: its training set) that tonight's run neither relabels nor contradicts are added to ``table``
    (:func:`mining.io.retention.carry_forward`). A run restricted to some locales (``cfg.locales``)
    carries forward only the previous version's rows of those locales: a locale-restricted
    version holds those locales only, as its manifest's ``locales`` says. ``old`` has been
    made what this code exports (:func:`mining.io.retention.refresh_privacy`). Returns (the
    training set, sorted by locale, intent, utterance; the contradicted labels: locale,
    utterance, reason, vote_intent)."""
    from pyspark.sql import functions as F

    from mining.io import retention

    if old.empty:
        return table, pd.DataFrame(columns=["locale", "utterance", "reason", "vote_intent"])
    keys = old[["locale"]].assign(text_norm=old["utterance"].map(normalize)).drop_duplicates()
    votes = labels.join(F.broadcast(spark.createDataFrame(keys, "locale string, text_norm string")),
                        ["locale", "text_norm"]).select(*retention.VOTE_COLUMNS).toPandas()

    def gates(locale: str) -> tuple[float, int, float]:
        ac = cfg.aggregation.for_locale(locale)
        return ac.min_top_share, ac.min_events, ac.min_defect_rate

    # under DP no exact vote may retire a released label (carry_forward's contradict)
    retained, contradicted = retention.carry_forward(old, table.select(["locale", "utterance"]).to_pandas(),
                                                     votes, gates, version, locales=cfg.locales,
                                                     contradict=not cfg.privacy.dp.enabled)
    if len(retained):
        extra = pa.Table.from_pandas(retained[table.column_names], schema=table.schema, preserve_index=False)
        table = pa.concat_tables([table, extra]).sort_by(
            [("locale", "ascending"), ("intent", "ascending"), ("utterance", "ascending")])
    log.info("label retention: %d labels retained, %d contradicted", len(retained), len(contradicted))
    return table, contradicted


def retention_blocked(previous_dir: Path, cfg) -> str | None:
    """Why the previous version's labels may not be carried into this run's (label
    retention), or None when they may: a version exported under weaker privacy settings
    than this run's (a smaller ``privacy.min_users``; with ``privacy.dp`` on, a previous
    version without it or with a larger epsilon, delta or ``max_texts_per_user``) would
    re-export its texts with the exact counts this run's gates refuse."""
    try:
        prev = json.loads((Path(previous_dir) / "manifest.json").read_text(encoding="utf-8"))["config"]["privacy"]
    except (OSError, ValueError, KeyError, TypeError):
        return "the previous version's manifest names no privacy settings"
    if int(prev.get("min_users", 0)) < cfg.privacy.min_users:
        return f"previous version exported at privacy.min_users {prev.get('min_users')} < {cfg.privacy.min_users}"
    dp, pdp = cfg.privacy.dp, prev.get("dp") or {}
    if dp.enabled and not (pdp.get("enabled") and float(pdp["epsilon"]) <= dp.epsilon
                           and float(pdp["delta"]) <= dp.delta
                           and int(pdp["max_texts_per_user"]) <= dp.max_texts_per_user):
        return "previous version exported without privacy.dp, or with a larger epsilon, delta or max_texts_per_user"
    return None


def _changelog(spark, cfg, labels, table, previous: str | None, old: pd.DataFrame | None, staging: Path,
               contradicted: pd.DataFrame | None = None) -> dict:
    """The changelog against the previous version (``previous``, ``old`` its training set:
    :func:`mining.io.changelog.previous_version`): writes ``staging/changelog.jsonl`` and
    returns the manifest's ``changelog`` entry. A retired text carries the reason this run's
    ``labels/`` gives it (abstain reason or export drop), or ``contradicted``; under
    ``privacy.dp`` every retired text ``dp_not_selected``. A run restricted
    to some locales (``cfg.locales``) compares those locales only: it read no other locale's
    logs, so it retires none of their labels."""
    from pyspark.sql import functions as F

    def reasons_for(retired: pd.DataFrame) -> pd.DataFrame:   # matched on the normalized text
        keys = spark.createDataFrame(retired.assign(text_norm=retired["utterance"].map(normalize))
                                     [["locale", "text_norm"]], "locale string, text_norm string")
        decided = labels.join(F.broadcast(keys), ["locale", "text_norm"]) \
            .select("locale", "utterance", "decision", "text_users").toPandas()
        reasons = changelog.retire_reasons(decided, cfg.privacy.min_users)
        if contradicted is not None and len(contradicted):   # first: the diff keeps a key's first reason
            reasons = pd.concat([contradicted[["locale", "utterance", "reason"]], reasons])
        return reasons

    diff = changelog.release_diff(old, table.select(list(changelog.READ_COLUMNS)), locales=cfg.locales,
                                  dp=cfg.privacy.dp.enabled, reasons_for=reasons_for)
    changelog.write_changelog(staging / "changelog.jsonl", diff)
    entry = changelog.manifest_entry(previous, diff)
    log.info("changelog against %s: %d added, %d changed, %d retired", previous or "no previous version",
             entry["added"], entry["changed"], entry["retired"])
    return entry


def _rewrites(spark, cfg, kept, version: str, staging: Path) -> dict:
    """The rewrite table (:mod:`mining.io.rewrites`): accepted ``rephrase_pairs/`` cogrouped per
    locale with the exported labels (``kept``, with their ``text_norm``) → ``staging/rewrites/``.
    Returns the manifest's ``rewrites`` entry: ``{"rows", "drops": {reason: candidates}}``.

    Under ``privacy.dp`` nothing is released (an empty table, ``"released": false``): the
    support counts and the ``min_users`` gate of a pair are exact, and an exact threshold
    would void the user-level DP guarantee of the release (a released key set needs a noisy
    threshold: Korolova et al., WWW 2009, "Releasing search queries and clicks privately")."""
    from mining.io import rewrites

    if cfg.privacy.dp.enabled:
        empty = pa.Table.from_pylist([], schema=schemas.arrow_schema("rewrites"))
        rewrites.write_rewrites(empty, staging / "rewrites")
        log.info("rewrites: not released under privacy.dp (no DP release of their counts)")
        return {"rows": 0, "released": False, "drops": {}}

    pairs = spark.read.parquet(storage.require_stage(cfg.out, "rephrase_pairs", "detect_rephrases"))
    accepted = pairs.where("accepted").select(*rewrites.PAIR_COLUMNS)
    exported = kept.select(*rewrites.EXPORTED_COLUMNS)
    min_users = cfg.privacy.min_users

    def build(p, e):
        return rewrites.build_rewrites(p, e, min_users, version)

    built = (accepted.groupBy("locale").cogroup(exported.groupBy("locale"))
             .applyInPandas(build, rewrites.final_schema()).cache())
    drops = counts_by(built.where("drop_reason IS NOT NULL"), "drop_reason")
    table = built.where("drop_reason IS NULL").select(*rewrites.COLUMNS) \
        .orderBy("locale", "failed_text").toArrow()
    built.unpersist()
    rewrites.write_rewrites(table, staging / "rewrites")
    log.info("rewrites: %d rows, drops %s", table.num_rows, drops)
    return {"rows": table.num_rows, "drops": drops}


def run(spark, cfg) -> dict:
    """Privacy gates + slot projection → versioned training set, manifest, atomic publish.

    The version name hashes the settings, partitions, locales, code, the upstream outputs'
    ``lineage`` (which names the logs' files and sizes, :func:`mining.spark.ingest.listing_digest`)
    and, with label retention, the previous version: a rerun after late files arrived is
    another version, never new bytes under a published name.

    :return: ``{"dataset_version", "rows", "drops", "latest"}`` (drops per reason; ``latest``
        False when ``OUT/latest`` already holds a later night, :func:`mining.io.export.publish`).
    :raises QualityGateFailed: the data-quality gate refused the version; nothing was
        published (exit 3). ``FileNotFoundError``: ``labels/`` is missing (exit 3);
        :class:`mining.errors.StageOutputMismatch` (one): the upstream outputs come from
        different ``detect_rephrases`` runs, nothing was written (exit 3)."""
    from pyspark.sql import functions as F

    labels = spark.read.parquet(storage.require_stage(cfg.out, "labels", "aggregate_labels"))
    # every output of the stages before this one (registry order): their stats go in the manifest
    upstream = {o: storage.read_stats(cfg.out, o) for s in STAGES if s.name != "export_dataset" for o in s.outputs}
    # all from one detect_rephrases run (turns first: a mismatch names the older output to redo)
    lineage = storage.stage_lineage(cfg.out, ["turns", *(o for o in upstream if o != "turns")])
    partitions = upstream["turns"].get("partitions", [])
    settings = run_settings(cfg)
    end_date = max(partitions) if partitions else "00000000"
    previous, previous_dir = changelog.previous_version(cfg.out, cfg.quality.baseline, end_date)
    retain = cfg.export.label_retention == "until_contradicted"
    stage_settings = {o: s["settings"] for o, s in upstream.items() if s.get("settings")}
    fingerprint = version_fingerprint(settings, partitions, cfg.locales, lineage, previous, stage_settings)
    version = export.dataset_version(end_date, fingerprint)
    out = Path(cfg.out)
    min_users, dp_on = cfg.privacy.min_users, cfg.privacy.dp.enabled
    labeled, dp_record = labels.where("decision = 'labeled'"), dp.manifest_record(cfg.privacy.dp)
    if dp_on:
        labeled, dp_record = _dp_select(spark, cfg, labeled, fingerprint)

    # the exported cluster_id is keyed: the internal one hashes the medoid's text without a key
    cluster_key = privacy.derive_key(privacy.resolve_key(), "cluster_id")

    def finalize(batches):
        for pdf in batches:
            yield export.finalize_labels(pdf, min_users, version, dp=dp_on, cluster_key=cluster_key)

    final = labeled.mapInPandas(finalize, export.final_schema()).cache()
    drops = counts_by(final.where("drop_reason IS NOT NULL"), "drop_reason")
    kept = final.where("drop_reason IS NULL")
    tally = kept.agg(*[F.sum(c).alias(c) for c in final.columns
                       if c.startswith(("pii_", "dropped_"))]).first().asDict()
    cols = [f.name for f in schemas.spark_schema("training_set")]
    table = kept.select(*cols).orderBy("locale", "intent", "utterance").toArrow()
    fresh_rows, contradicted = table.num_rows, None
    old = export.read_training_set(previous_dir).to_pandas() if previous_dir is not None else None
    refreshed: dict = {}
    if old is not None:   # as this code would export it (PII rules, keyed ids): retention and changelog see that
        from mining.io.retention import refresh_privacy

        old, refreshed = refresh_privacy(old, cluster_key)
        if any(refreshed.values()):
            log.info("previous version's rows refreshed: %s", refreshed)
    blocked = retention_blocked(previous_dir, cfg) if retain and old is not None else None
    if blocked:
        log.warning("label retention skipped: %s", blocked)
    elif retain and old is not None:
        table, contradicted = _retain(spark, cfg, labels, table, old, version)
    # the data-quality gate runs before anything is written (mining/core/quality.py)
    baseline = quality.baseline_manifest(cfg.quality.baseline, previous_dir, cfg.locales)
    checks = quality.check_export(table, upstream["rejects"], baseline, cfg.quality, cfg.validation.max_reject_share,
                                  fresh_rows=fresh_rows)
    table = table.cast(schemas.arrow_schema("training_set"))   # what the gate checked: every file gets these types
    staging = storage.staging_path(out, f"version-{version}")
    with storage.removed_on_failure(staging):   # a failed try leaves no copy of the version
        export.write_training_set(table, staging / "training_set")
        massive = export.write_massive_jsonl(table, staging / "massive", cfg.export.dev_share, cfg.export.split_seed)
        rewrite_entry = _rewrites(spark, cfg, kept, version, staging)   # before the checksums
        changes = _changelog(spark, cfg, labels, table, previous, old, staging,   # checksummed
                             contradicted)                                                # with the data
        grouped = table.group_by(["locale", "intent"]).aggregate([([], "count_all")]).to_pylist()
        by_locale_intent = dict(sorted((f"{r['locale']}/{r['intent']}", r["count_all"]) for r in grouped))
        manifest = {
            "dataset_version": version, "code_version": code_version(), "input_partitions": partitions,
            "logs": cfg.logs, "locales": list(cfg.locales), "config": cfg.sections,
            # the settings digest each upstream output was built with (the export's own: config)
            "stage_settings": dict(sorted(stage_settings.items())),
            "rows": sum(by_locale_intent.values()), "rows_by_locale_intent": by_locale_intent,
            "drops": {**{k: v for k, v in upstream["labels"].get("by_decision", {}).items() if k != "labeled"},
                      **drops},
            "pii_scrubbed": {k[4:]: int(v or 0) for k, v in tally.items() if k.startswith("pii_")},
            "slots_dropped": {k[8:]: int(v or 0) for k, v in tally.items() if k.startswith("dropped_")},
            "massive_jsonl": massive, "models": {"rephrase": cfg.rephrase.fitted.version,
                                                 "calibration": cfg.aggregation.fitted_calibration.version},
            "rewrites": rewrite_entry,
            "retention": {"policy": cfg.export.label_retention, "previous": previous, "fresh": fresh_rows,
                          "retained": table.num_rows - fresh_rows,
                          "contradicted": 0 if contradicted is None else int(len(contradicted)),
                          **({"skipped": blocked} if blocked else {}),
                          **({"refreshed": refreshed} if any(refreshed.values()) else {})},
            "stages": upstream, "quality": checks, "changelog": changes, "checksums": export.checksums(staging),
            "dp": {**dp_record, **({"labels_released": sum(by_locale_intent.values()),
                                    "labels_not_selected": drops.get("dp_not_selected", 0)} if dp_on else {})},
        }
        final.unpersist()
        storage.write_json(staging / "manifest.json", manifest)
        from mining.report import run_report as report
        report.write_report(out, staging / "report.html", version_dir=staging)
        version_dir = out / "versions" / version
        storage.commit(staging, version_dir)
    published = export.publish(out, version_dir)
    return {"dataset_version": version, "rows": manifest["rows"], "drops": manifest["drops"],
            "latest": published}
