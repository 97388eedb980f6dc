"""Build every patient's history as a heterogeneous temporal graph: one snapshot per monthly landmark.

Node types (one node per fact per snapshot, so a drug taken for 30 months is 30 nodes, one in each snapshot):

- ``patient``: the patient at the landmark (age, sex, deprivation, ethnicity group, social care, counts);
- ``drug``: each active ingredient at the landmark (a combination product gives one node per ingredient);
  feature: a dose change (a re-issue with a different dose text) within the last 90 days; static by name: drug
  classes and ACB score;
- ``condition``: each condition recorded on or before the landmark (history counts: a resolved peptic ulcer still
  matters), with whether it is active at the landmark; static by name: condition groups, CMS weight, eFI deficit;
- ``event``: each event type recorded on or before the landmark, with its counts in the last 12 months and ever;
- ``lab``: the latest result of each lab test within 15 months (455 days) of the landmark, with its value.

Edges, each time-stamped with the months between the dated fact and the landmark (time since the start of the
drug's current course, since first onset, since the latest event, since the test):
entity -> patient and patient -> entity within the same snapshot, and the knowledge edges of
``models.vocabulary``: drug <-> drug (an interaction rule holds for the pair) and drug <-> condition (a caution),
each labelled with the rule id.

The whole population is built at once with vectorised polars/numpy (no per-patient Python), into flat arrays sorted
by patient with CSR offsets (``ptr``). A mini-batch of patients is then a few slices and one concatenation
(``PopulationGraph.batch``): that is what keeps training and scoring fast without neighbour-sampling loaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from models.cohort import Cohort, TimeGrid, day_number
from models.config import DAYS_PER_MONTH, ModelConfig
from models.vocabulary import GraphVocabulary

ENTITY_TYPES: tuple[str, ...] = ("drug", "condition", "event", "lab")
NODE_TYPES: tuple[str, ...] = ("patient", *ENTITY_TYPES)
# Knowledge edge stores: name -> (source node type, destination node type).
KNOWLEDGE_EDGES: dict[str, tuple[str, str]] = {
    "interacts": ("drug", "drug"),
    "cautions": ("drug", "condition"),
}

DEPRIVATION_LEVELS = (1, 2, 3, 4, 5)
ETHNICITY_GROUPS = ("White", "Asian", "Black", "Mixed", "Other")
SOCIAL_CARE_KINDS = ("care_home", "home_care", "lives_alone", "unpaid_carer")
PATIENT_FEATURES: tuple[str, ...] = (
    "age",
    "age_squared",
    "female",
    *(f"deprivation_{q}" for q in DEPRIVATION_LEVELS),
    "deprivation_unknown",
    *(f"ethnicity_{g.lower()}" for g in ETHNICITY_GROUPS),
    "ethnicity_unknown",
    *SOCIAL_CARE_KINDS,
    "log_months_registered",
    "log_active_drugs",
    "log_active_conditions",
    "log_recent_events",
    "in_record",
)
ENTITY_FEATURES: dict[str, tuple[str, ...]] = {
    "drug": ("recent_dose_change",),
    "condition": ("active",),
    "event": ("log_count", "log_count_ever"),
    "lab": ("value",),
}
NO_END = 10**7  # a day number far beyond any landmark: "ongoing"


@dataclass
class NodeTable:
    """Nodes of one entity type for all patients, sorted by (patient, month, name)."""

    patient: np.ndarray  # int64 [N]: row in PopulationGraph.patient_ids
    month: np.ndarray  # int64 [N]: snapshot (landmark) index in the grid
    name: np.ndarray  # int64 [N]: index into ``names``
    x: np.ndarray  # float32 [N, F]: dynamic features (ENTITY_FEATURES)
    time: np.ndarray  # float32 [N]: months between the dated fact and the landmark (the edge's time stamp)
    ptr: np.ndarray  # int64 [P + 1]: nodes of patient p are rows ptr[p]:ptr[p + 1]
    names: list[str]

    def __len__(self) -> int:
        return int(self.patient.shape[0])


@dataclass
class EdgeTable:
    """Knowledge edges (src node, dst node, rule) for all patients, sorted by patient; node ids are table rows."""

    src: np.ndarray
    dst: np.ndarray
    rule: np.ndarray  # int64: index into the vocabulary's rules
    ptr: np.ndarray

    def __len__(self) -> int:
        return int(self.src.shape[0])


@dataclass
class PopulationGraph:
    """All patients' snapshot graphs over one time grid, as flat arrays (see module docstring)."""

    patient_ids: list[str]
    grid: TimeGrid
    patient_x: np.ndarray  # float32 [P, T, len(PATIENT_FEATURES)]
    in_record: np.ndarray  # bool [P, T]: registered and alive at the landmark
    nodes: dict[str, NodeTable]
    edges: dict[str, EdgeTable]
    vocabulary: GraphVocabulary

    @property
    def num_patients(self) -> int:
        return len(self.patient_ids)

    @property
    def months(self) -> int:
        return self.grid.months

    def key_index(self, node_type: str) -> np.ndarray:
        """Embedding index (vocabulary) of each node of ``node_type``."""
        table = self.nodes[node_type]
        kind = {"drug": "drugs", "condition": "conditions", "event": "events", "lab": "labs"}[node_type]
        index = self.vocabulary.index(kind)
        lookup = np.array([index.get(n, 0) for n in table.names], dtype=np.int64)
        return lookup[table.name] if len(table) else np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------------
# building


def build_population_graph(
    cohort: Cohort, grid: TimeGrid, vocabulary: GraphVocabulary, config: ModelConfig | None = None
) -> PopulationGraph:
    """Build the snapshot graphs of every patient of ``cohort`` on ``grid``."""
    config = config or ModelConfig()
    landmarks = grid.days
    patients = cohort.patient.sort("id")
    ids = patients["id"].to_list()
    index = pl.DataFrame({"patient_id": ids, "p": np.arange(len(ids), dtype=np.int64)})

    drug_rows = _drug_rows(cohort.prescription, index)
    drug_episodes = _drug_episodes(drug_rows, landmarks)
    condition_rows = _condition_rows(cohort.condition, index)
    nodes = {
        "drug": _drug_nodes(drug_rows, drug_episodes, landmarks, config),
        "condition": _condition_nodes(condition_rows, landmarks),
        "event": _event_nodes(cohort.event, index, landmarks, config),
        "lab": _lab_nodes(cohort.observation, index, landmarks, config),
    }
    ordered, names = {}, {}
    for t, frame in nodes.items():
        ordered[t], names[t] = _sorted_nodes(frame)
    tables = {t: _node_table(ordered[t], names[t], len(ids)) for t in nodes}
    edges = {
        "interacts": _interaction_edges(drug_episodes, ordered["drug"], vocabulary, landmarks, len(ids)),
        "cautions": _caution_edges(drug_episodes, condition_rows, ordered, vocabulary, landmarks, len(ids)),
    }
    patient_x, in_record = _patient_features(patients, cohort, index, tables, landmarks, config)
    return PopulationGraph(ids, grid, patient_x, in_record, tables, edges, vocabulary)


def _to_days(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Int64)


def months_between(frame: pl.DataFrame, start: str, end: str, landmarks: np.ndarray) -> pl.DataFrame:
    """Explode each row into the landmark indices ``m`` with ``start <= landmarks[m] <= end`` (column ``month``)."""
    if frame.height == 0:
        return frame.with_columns(pl.lit(0, dtype=pl.Int64).alias("month")).clear()
    lo = np.searchsorted(landmarks, frame[start].to_numpy(), side="left")
    hi = np.searchsorted(landmarks, frame[end].to_numpy(), side="right") - 1
    return (
        frame.with_columns(pl.Series("_lo", lo, dtype=pl.Int64), pl.Series("_hi", hi, dtype=pl.Int64))
        .filter(pl.col("_lo") <= pl.col("_hi"))
        .with_columns(pl.int_ranges(pl.col("_lo"), pl.col("_hi") + 1).alias("month"))
        .explode("month")
        .drop("_lo", "_hi")
    )


def _with_landmark(frame: pl.DataFrame, landmarks: np.ndarray) -> pl.DataFrame:
    return frame.with_columns(pl.Series("L", landmarks[frame["month"].to_numpy()], dtype=pl.Int64))


def _episodes(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Merge overlapping or adjacent [s, e] intervals per ``keys`` into episodes (columns ep_start, ep_end)."""
    return (
        frame.sort([*keys, "s", "e"])
        .with_columns(pl.col("e").cum_max().shift(1).over(keys).alias("_prev_end"))
        .with_columns(
            (pl.col("_prev_end").is_null() | (pl.col("s") > pl.col("_prev_end") + 1))
            .cast(pl.Int64)
            .alias("_new")
        )
        .with_columns(pl.col("_new").cum_sum().over(keys).alias("episode"))
        .with_columns(
            pl.col("s").min().over([*keys, "episode"]).alias("ep_start"),
            pl.col("e").max().over([*keys, "episode"]).alias("ep_end"),
        )
        .drop("_prev_end", "_new")
    )


def _drug_rows(prescription: pl.DataFrame, index: pl.DataFrame) -> pl.DataFrame:
    """One row per (prescription, ingredient): p, drug, s, e (day numbers; ongoing = NO_END), dose."""
    ingredients = (
        pl.when(pl.col("ingredients").fill_null("").str.strip_chars() != "")
        .then(pl.col("ingredients"))
        .otherwise(pl.col("drug_key").fill_null(""))
    )
    return (
        prescription.join(index, on="patient_id", how="inner")
        .select(
            "p",
            ingredients.str.split(";").alias("drug"),
            _to_days(pl.col("start")).alias("s"),
            _to_days(pl.col("stop")).fill_null(NO_END).alias("e"),
            pl.col("dose_text").fill_null("").alias("dose"),
        )
        .explode("drug")
        .with_columns(pl.col("drug").str.strip_chars().str.to_lowercase())
        .filter((pl.col("drug") != "") & (pl.col("s") <= pl.col("e")))
    )


def _drug_episodes(drug_rows: pl.DataFrame, landmarks: np.ndarray) -> pl.DataFrame:
    """Continuous courses per (patient, drug) that overlap the grid: p, drug, ep_start, ep_end."""
    rows = _episodes(drug_rows, ["p", "drug"])
    return (
        rows.select("p", "drug", "ep_start", "ep_end")
        .unique()
        .filter((pl.col("ep_end") >= int(landmarks[0])) & (pl.col("ep_start") <= int(landmarks[-1])))
        .sort("p", "drug", "ep_start")
    )


def _drug_nodes(
    drug_rows: pl.DataFrame, episodes: pl.DataFrame, landmarks: np.ndarray, config: ModelConfig
) -> pl.DataFrame:
    active = _with_landmark(months_between(episodes, "ep_start", "ep_end", landmarks), landmarks)
    # A dose change: a prescription of the same drug, in the same course, whose dose text differs from the one
    # before it. It counts at landmarks within ``dose_change_days`` after the new prescription starts.
    rows = _episodes(drug_rows, ["p", "drug"]).sort("p", "drug", "s", "e")
    changes = (
        rows.with_columns(
            pl.col("dose").shift(1).over(["p", "drug"]).alias("_prev_dose"),
            pl.col("episode").shift(1).over(["p", "drug"]).alias("_prev_episode"),
        )
        .filter(
            (pl.col("_prev_episode") == pl.col("episode"))
            & (pl.col("_prev_dose") != "")
            & (pl.col("dose") != "")
            & (pl.col("_prev_dose") != pl.col("dose"))
        )
        .select("p", "drug", pl.col("s"), (pl.col("s") + config.dose_change_days - 1).alias("e"))
    )
    changed = (
        months_between(changes, "s", "e", landmarks)
        .select("p", "drug", "month")
        .unique()
        .with_columns(pl.lit(1.0, dtype=pl.Float32).alias("recent_dose_change"))
    )
    return (
        active.join(changed, on=["p", "drug", "month"], how="left")
        .select(
            "p",
            "month",
            pl.col("drug").alias("name"),
            pl.col("recent_dose_change").fill_null(0.0),
            ((pl.col("L") - pl.col("ep_start")) / DAYS_PER_MONTH).cast(pl.Float32).alias("time"),
        )
        .unique(["p", "month", "name"], keep="first")
    )


def _condition_rows(condition: pl.DataFrame, index: pl.DataFrame) -> pl.DataFrame:
    return (
        condition.filter(pl.col("condition_key").is_not_null() & (pl.col("condition_key") != ""))
        .join(index, on="patient_id", how="inner")
        .select(
            "p",
            pl.col("condition_key").alias("condition"),
            _to_days(pl.col("onset")).alias("s"),
            _to_days(pl.col("resolved")).fill_null(NO_END).alias("e"),
        )
        .filter(pl.col("s") <= pl.col("e"))
    )


def _condition_nodes(rows: pl.DataFrame, landmarks: np.ndarray) -> pl.DataFrame:
    first = rows.group_by("p", "condition").agg(pl.col("s").min().alias("first_onset"))
    present = _with_landmark(
        months_between(first.with_columns(pl.lit(NO_END).alias("_end")), "first_onset", "_end", landmarks),
        landmarks,
    )
    episodes = _episodes(rows, ["p", "condition"]).select("p", "condition", "ep_start", "ep_end").unique()
    active = (
        months_between(episodes, "ep_start", "ep_end", landmarks)
        .select("p", "condition", "month")
        .unique()
        .with_columns(pl.lit(1.0, dtype=pl.Float32).alias("active"))
    )
    return present.join(active, on=["p", "condition", "month"], how="left").select(
        "p",
        "month",
        pl.col("condition").alias("name"),
        pl.col("active").fill_null(0.0),
        ((pl.col("L") - pl.col("first_onset")) / DAYS_PER_MONTH).cast(pl.Float32).alias("time"),
    )


def _event_nodes(
    event: pl.DataFrame, index: pl.DataFrame, landmarks: np.ndarray, config: ModelConfig
) -> pl.DataFrame:
    """One node per event type ever recorded by the landmark: counts in the last 12 months and ever, and the time
    since the latest (a fall three years ago still evidences frailty, Clegg 2016)."""
    rows = (
        event.filter(pl.col("type") != "death")
        .join(index, on="patient_id", how="inner")
        .select("p", pl.col("type").alias("name"), _to_days(pl.col("date")).alias("s"))
        .with_columns(pl.lit(NO_END, dtype=pl.Int64).alias("e"))
    )
    exploded = _with_landmark(months_between(rows, "s", "e", landmarks), landmarks)
    recent = pl.col("s") > pl.col("L") - config.recent_event_days
    return exploded.group_by("p", "month", "name").agg(
        recent.sum().cast(pl.Float32).log1p().alias("log_count"),
        pl.len().cast(pl.Float32).log1p().alias("log_count_ever"),
        ((pl.col("L").first() - pl.col("s").max()) / DAYS_PER_MONTH).cast(pl.Float32).alias("time"),
    )


def _lab_nodes(
    observation: pl.DataFrame, index: pl.DataFrame, landmarks: np.ndarray, config: ModelConfig
) -> pl.DataFrame:
    rows = (
        observation.filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
        .join(index, on="patient_id", how="inner")
        .select("p", pl.col("type").alias("name"), _to_days(pl.col("date")).alias("s"), pl.col("value"))
        .with_row_index("_order")
        .sort("p", "name", "s", "_order")
        # Several results on one day: the last one recorded wins (as in the rule engine).
        .unique(["p", "name", "s"], keep="last", maintain_order=True)
        .with_columns(pl.col("s").shift(-1).over(["p", "name"]).alias("_next"))
        .with_columns(
            pl.min_horizontal(
                pl.col("_next").fill_null(NO_END) - 1, pl.col("s") + config.lab_valid_days
            ).alias("e")
        )
    )
    exploded = _with_landmark(months_between(rows, "s", "e", landmarks), landmarks)
    return exploded.select(
        "p",
        "month",
        "name",
        pl.col("value").cast(pl.Float32),
        ((pl.col("L") - pl.col("s")) / DAYS_PER_MONTH).cast(pl.Float32).alias("time"),
    )


def _sorted_nodes(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """The node rows in table order (patient, month, name) with their row number ``node`` and ``name_idx``."""
    names = sorted(frame["name"].unique().to_list()) if frame.height else []
    name_index = pl.DataFrame(
        {"name": names, "name_idx": np.arange(len(names), dtype=np.int64)}, schema_overrides={"name": pl.Utf8}
    )
    ordered = (
        frame.join(name_index, on="name", how="left")
        .sort("p", "month", "name_idx")
        .with_row_index("node")
        .with_columns(pl.col("node").cast(pl.Int64))
    )
    return ordered, names


def _node_table(ordered: pl.DataFrame, names: list[str], num_patients: int) -> NodeTable:
    feature_columns = [
        c for c in ordered.columns if c not in ("node", "p", "month", "name", "name_idx", "time")
    ]
    patient = ordered["p"].to_numpy().astype(np.int64)
    x = (
        ordered.select(feature_columns).to_numpy().astype(np.float32)
        if ordered.height
        else np.zeros((0, len(feature_columns)), dtype=np.float32)
    )
    return NodeTable(
        patient=patient,
        month=ordered["month"].to_numpy().astype(np.int64),
        name=ordered["name_idx"].to_numpy().astype(np.int64),
        x=x.reshape(ordered.height, len(feature_columns)),
        time=ordered["time"].to_numpy().astype(np.float32),
        ptr=np.searchsorted(patient, np.arange(num_patients + 1)).astype(np.int64),
        names=names,
    )


def _node_lookup(ordered: pl.DataFrame, key: str) -> pl.DataFrame:
    """(p, month, name) -> node row of the sorted node table."""
    return ordered.select("p", "month", pl.col("name").alias(key), "node")


def _edge_table(frame: pl.DataFrame, num_patients: int) -> EdgeTable:
    frame = frame.sort("p", "src", "dst", "rule")
    patient = frame["p"].to_numpy().astype(np.int64)
    return EdgeTable(
        src=frame["src"].to_numpy().astype(np.int64),
        dst=frame["dst"].to_numpy().astype(np.int64),
        rule=frame["rule"].to_numpy().astype(np.int64),
        ptr=np.searchsorted(patient, np.arange(num_patients + 1)).astype(np.int64),
    )


def _empty_edges(num_patients: int) -> EdgeTable:
    empty = np.zeros(0, dtype=np.int64)
    return EdgeTable(empty, empty, empty, np.zeros(num_patients + 1, dtype=np.int64))


def _interaction_edges(
    episodes: pl.DataFrame,
    drug_nodes: pl.DataFrame,
    vocabulary: GraphVocabulary,
    landmarks: np.ndarray,
    n: int,
) -> EdgeTable:
    pairs = vocabulary.pair_frame()
    if episodes.height == 0 or pairs.height == 0:
        return _empty_edges(n)
    other = episodes.rename({"drug": "drug_b", "ep_start": "s_b", "ep_end": "e_b"})
    overlap = (
        episodes.join(other, on="p", how="inner")
        .filter(pl.col("drug") != pl.col("drug_b"))
        .join(pairs, on=["drug", "drug_b"], how="inner")
        .select(
            "p",
            "drug",
            "drug_b",
            "rule",
            pl.max_horizontal("ep_start", "s_b").alias("s"),
            pl.min_horizontal("ep_end", "e_b").alias("e"),
        )
        .filter(pl.col("s") <= pl.col("e"))
    )
    months = months_between(overlap, "s", "e", landmarks)
    lookup = _node_lookup(drug_nodes, "drug")
    edges = (
        months.join(lookup, on=["p", "month", "drug"], how="inner")
        .rename({"node": "src"})
        .join(lookup.rename({"drug": "drug_b"}), on=["p", "month", "drug_b"], how="inner")
        .rename({"node": "dst"})
        .select("p", "src", "dst", "rule")
        .unique()
    )
    return _edge_table(edges, n)


def _caution_edges(
    drug_episodes: pl.DataFrame,
    condition_rows: pl.DataFrame,
    ordered: dict[str, pl.DataFrame],
    vocabulary: GraphVocabulary,
    landmarks: np.ndarray,
    n: int,
) -> EdgeTable:
    cautions = vocabulary.caution_frame()
    if drug_episodes.height == 0 or condition_rows.height == 0 or cautions.height == 0:
        return _empty_edges(n)
    first = condition_rows.group_by("p", "condition").agg(pl.col("s").min().alias("first_onset"))
    overlap = (
        drug_episodes.join(first, on="p", how="inner")
        .join(cautions, on=["drug", "condition"], how="inner")
        .select(
            "p",
            "drug",
            "condition",
            "rule",
            pl.max_horizontal("ep_start", "first_onset").alias("s"),
            pl.col("ep_end").alias("e"),
        )
        .filter(pl.col("s") <= pl.col("e"))
    )
    months = months_between(overlap, "s", "e", landmarks)
    edges = (
        months.join(_node_lookup(ordered["drug"], "drug"), on=["p", "month", "drug"], how="inner")
        .rename({"node": "src"})
        .join(_node_lookup(ordered["condition"], "condition"), on=["p", "month", "condition"], how="inner")
        .rename({"node": "dst"})
        .select("p", "src", "dst", "rule")
        .unique()
    )
    return _edge_table(edges, n)


def _patient_features(
    patients: pl.DataFrame,
    cohort: Cohort,
    index: pl.DataFrame,
    tables: dict[str, NodeTable],
    landmarks: np.ndarray,
    config: ModelConfig,
) -> tuple[np.ndarray, np.ndarray]:
    P, T = patients.height, landmarks.shape[0]
    features = np.zeros((P, T, len(PATIENT_FEATURES)), dtype=np.float32)
    column = {name: i for i, name in enumerate(PATIENT_FEATURES)}
    if P == 0:
        return features, np.zeros((0, T), dtype=bool)

    birth = np.array(
        [
            day_number(_birth_date(y, m))
            for y, m in zip(patients["birth_year"].to_list(), patients["birth_month"].to_list(), strict=True)
        ],
        dtype=np.int64,
    )
    age = (landmarks[None, :] - birth[:, None]) / 365.25
    features[:, :, column["age"]] = age / 100.0
    features[:, :, column["age_squared"]] = (age / 100.0) ** 2
    features[:, :, column["female"]] = (patients["sex"].to_numpy() == "F").astype(np.float32)[:, None]

    deprivation = patients["deprivation_quintile"].to_list()
    for q in DEPRIVATION_LEVELS:
        features[:, :, column[f"deprivation_{q}"]] = np.array(
            [d == q for d in deprivation], dtype=np.float32
        )[:, None]
    features[:, :, column["deprivation_unknown"]] = np.array(
        [d not in DEPRIVATION_LEVELS for d in deprivation], dtype=np.float32
    )[:, None]
    ethnicity = patients["ethnicity_group"].to_list()
    for g in ETHNICITY_GROUPS:
        features[:, :, column[f"ethnicity_{g.lower()}"]] = np.array(
            [e == g for e in ethnicity], dtype=np.float32
        )[:, None]
    features[:, :, column["ethnicity_unknown"]] = np.array(
        [e not in ETHNICITY_GROUPS for e in ethnicity], dtype=np.float32
    )[:, None]

    care = (
        cohort.social_care.join(index, on="patient_id", how="inner")
        .select(
            "p",
            "kind",
            _to_days(pl.col("start")).alias("s"),
            _to_days(pl.col("end")).fill_null(NO_END).alias("e"),
        )
        .filter(pl.col("kind").is_in(list(SOCIAL_CARE_KINDS)))
    )
    care_months = months_between(care, "s", "e", landmarks)
    for kind in SOCIAL_CARE_KINDS:
        rows = care_months.filter(pl.col("kind") == kind)
        features[rows["p"].to_numpy(), rows["month"].to_numpy(), column[kind]] = 1.0

    registered = _day_array(patients["registered_on"], fill=-NO_END)
    months_registered = np.clip((landmarks[None, :] - registered[:, None]) / DAYS_PER_MONTH, 0, 1200)
    features[:, :, column["log_months_registered"]] = np.log1p(months_registered) / 5.0

    death_event = (
        cohort.event.filter(pl.col("type") == "death")
        .group_by("patient_id")
        .agg(pl.col("date").min().alias("death_event"))
    )
    ends = patients.join(death_event, left_on="id", right_on="patient_id", how="left")
    died = np.minimum(_day_array(ends["died_on"], fill=NO_END), _day_array(ends["death_event"], fill=NO_END))
    deregistered = _day_array(ends["deregistered_on"], fill=NO_END)
    in_record = (
        (registered[:, None] <= landmarks[None, :])
        & (landmarks[None, :] < died[:, None])
        & (landmarks[None, :] < deregistered[:, None])
    )
    features[:, :, column["in_record"]] = in_record

    counts = {
        "log_active_drugs": tables["drug"],
        "log_active_conditions": tables["condition"],
        "log_recent_events": tables["event"],
    }
    for name, table in counts.items():
        # Conditions count when active; event types when seen in the last 12 months.
        weights = None
        if name == "log_active_conditions":
            weights = table.x[:, 0]
        elif name == "log_recent_events":
            weights = (table.x[:, 0] > 0).astype(np.float64)
        flat = np.bincount(table.patient * T + table.month, weights=weights, minlength=P * T)
        features[:, :, column[name]] = np.log1p(flat.reshape(P, T))
    return features, in_record


def _birth_date(year: int | None, month: int | None):  # noqa: ANN202 - datetime.date
    import datetime as dt

    return dt.date(int(year or 1900), int(month or 1), 1)


def _day_array(series: pl.Series, fill: int) -> np.ndarray:
    return series.cast(pl.Int64).fill_null(fill).to_numpy().astype(np.int64)


# ---------------------------------------------------------------------------------------------------------------
# mini-batches


@dataclass
class GraphBatch:
    """Snapshot graphs of several patients, ready for the network (numpy; ``to_tensors`` moves them to torch).

    Snapshots are numbered ``b * T + m`` for the b-th patient of the batch and month m. ``patient_rows`` are the
    patients' rows in the population.
    """

    patient_rows: np.ndarray
    months: int
    patient_x: np.ndarray  # [B * T, Fp]
    in_record: np.ndarray  # [B, T]
    node_key: dict[str, np.ndarray]
    node_x: dict[str, np.ndarray]
    node_time: dict[str, np.ndarray]
    node_snapshot: dict[str, np.ndarray]
    node_rows: dict[str, np.ndarray]  # row of each node in the population's NodeTable (for explanations)
    edge_src: dict[str, np.ndarray]
    edge_dst: dict[str, np.ndarray]
    edge_rule: dict[str, np.ndarray]

    @property
    def num_snapshots(self) -> int:
        return int(self.patient_x.shape[0])


def _gather_ranges(ptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated row indices ``ptr[r]:ptr[r + 1]`` for each r in ``rows``, the batch position (owner) of each,
    and where each owner's block starts in the concatenation."""
    starts = ptr[rows]
    lengths = ptr[rows + 1] - starts
    block_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    owner = np.repeat(np.arange(rows.shape[0]), lengths)
    picked = np.repeat(starts - block_start, lengths) + np.arange(int(lengths.sum()))
    return picked, owner, block_start


def make_batch(
    population: PopulationGraph, rows: Sequence[int] | np.ndarray, key_index: dict[str, np.ndarray]
) -> GraphBatch:
    """The snapshot graphs of the patients at ``rows`` (vectorised slicing; no per-patient Python)."""
    rows = np.asarray(rows, dtype=np.int64)
    T = population.months
    node_key, node_x, node_time, node_snapshot, node_rows = {}, {}, {}, {}, {}
    block_start: dict[str, np.ndarray] = {}
    for node_type, table in population.nodes.items():
        picked, owner, block_start[node_type] = _gather_ranges(table.ptr, rows)
        node_rows[node_type] = picked
        node_key[node_type] = key_index[node_type][picked]
        node_x[node_type] = table.x[picked]
        node_time[node_type] = table.time[picked]
        node_snapshot[node_type] = owner * T + table.month[picked]
    edge_src, edge_dst, edge_rule = {}, {}, {}
    for name, edges in population.edges.items():
        src_type, dst_type = KNOWLEDGE_EDGES[name]
        picked, owner, _ = _gather_ranges(edges.ptr, rows)
        patient = rows[owner]
        # Node ids are rows of the population's node tables; in the batch, patient b's nodes start at block_start[b].
        src_table, dst_table = population.nodes[src_type], population.nodes[dst_type]
        edge_src[name] = edges.src[picked] - src_table.ptr[patient] + block_start[src_type][owner]
        edge_dst[name] = edges.dst[picked] - dst_table.ptr[patient] + block_start[dst_type][owner]
        edge_rule[name] = edges.rule[picked]
    return GraphBatch(
        patient_rows=rows,
        months=T,
        patient_x=population.patient_x[rows].reshape(rows.shape[0] * T, -1),
        in_record=population.in_record[rows],
        node_key=node_key,
        node_x=node_x,
        node_time=node_time,
        node_snapshot=node_snapshot,
        node_rows=node_rows,
        edge_src=edge_src,
        edge_dst=edge_dst,
        edge_rule=edge_rule,
    )


def population_key_index(population: PopulationGraph) -> dict[str, np.ndarray]:
    """Embedding indices of every node, per type (computed once per population)."""
    return {t: population.key_index(t) for t in ENTITY_TYPES}
