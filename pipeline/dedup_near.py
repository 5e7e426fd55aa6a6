"""Near-duplicate removal in Beam: MinHash LSH buckets -> verified edges -> connected components.

Graph (every step keyed and shuffled; no worker ever holds all signatures or all edges; no side inputs,
which Beam's DaskRunner would recompute the graph for):
  sketch    docs -> shingle set, signature, one (band, band-hash) key per band       (tokenizer/*)
  buckets   two-level stars: members are salted into `max_bucket` slices per bucket and join their
            slice's smallest member; the slice minima join the bucket's smallest member. A bucket of up to
            max_bucket^2 members (boilerplate) never puts more than ~max_bucket nodes in one group
  verify    candidate edge (u, m) kept only if the exact Jaccard of the shingle sets >= threshold: edges
            grouped by m (names only) meet m's text, m's set travels once per edge to u's text, where the
            pair is checked. Texts are read back from curate's spill files (a join with the documents when
            NearDedup runs on its own), so only candidate sets cross a shuffle, once per edge
  cluster   large-star / small-star rounds (pipeline/components.py) -> (node, root)
  decide    root = representative; other members `dup_near` with dup_cluster = root id (applied by the sinks)
Node names are "<priority><quality><id>" strings whose order is the representative rule, so the
component minimum *is* the representative. Earlier runs' band indexes join the buckets as nodes that sort
before every current document: a current document that meets one, and whose MinHash estimate of J against
the signature the index holds reaches the threshold, is clustered under the earlier id.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipeline.beamutil import split
from pipeline.components import ConnectedComponents
from pipeline.decisions import RANK_CHARS, rank_node
from pipeline.errors import ConfigError
from pipeline.stats import MergeStats
from tokenizer.minhash import SCHEMES, MinHasher, band_hashes, lsh_params
from tokenizer.shingles import UNITS, jaccard, shingle_set

EARLIER = "!" * RANK_CHARS  # rank prefix of earlier-run index nodes: sorts before every current document
INDEX_META_KEY = b"jcorpus.dedup_near"
# `signature`: on each document's band-0 row, the low 32 bits of its MinHash values (little-endian), so that
# an edge to an earlier document is checked against `threshold` with the MinHash estimate of J; indexes
# written before the fifteenth session have no such column, and edges to them stay unverified
INDEX_SCHEMA = pa.schema([("band", pa.int32()), ("hash", pa.uint64()), ("id", pa.string()),
                          ("signature", pa.binary())])
_DEFAULTS: dict[str, Any] = {
    "enabled": True, "unit": "morph", "n": 5, "num_perm": 128, "threshold": 0.8, "bands": None, "rows": None,
    "weights": None, "verify": True, "seed": 1, "scheme": "legacy", "max_bucket": 1000,
    "max_rounds": 16, "index_out": None, "index_in": [],
}


@dataclass(frozen=True)
class NearParams:
    """Validated `dedup.near` settings; `signature_params` must match for an index to be reusable."""

    enabled: bool = True
    unit: str = "morph"
    n: int = 5
    num_perm: int = 128
    threshold: float = 0.8
    bands: int = 9
    rows: int = 13
    verify: bool = True
    seed: int = 1
    scheme: str = "legacy"
    max_bucket: int = 1000
    max_rounds: int = 16
    index_out: str | None = None
    index_in: tuple[str, ...] = field(default_factory=tuple)

    def signature_params(self) -> dict[str, Any]:
        keys = ("unit", "n", "num_perm", "seed", "scheme", "bands", "rows")
        return {k: v for k, v in asdict(self).items() if k in keys}


def _need(ok: bool, key: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"dedup.near.{key}: {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_config(cfg: Mapping[str, Any] | None) -> NearParams:
    """Check every key of `dedup.near`; errors name the dotted key (ConfigError)."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(_DEFAULTS))
    _need(not unknown, unknown[0] if unknown else "", f"unknown key (expected one of {', '.join(_DEFAULTS)})")
    c = {**_DEFAULTS, **cfg}
    for key in ("enabled", "verify"):
        _need(isinstance(c[key], bool), key, f"must be true or false, got {c[key]!r}")
    _need(c["unit"] in UNITS, "unit", f"must be one of {', '.join(UNITS)}, got {c['unit']!r}")
    _need(c["scheme"] in SCHEMES, "scheme", f"must be one of {', '.join(SCHEMES)}, got {c['scheme']!r}")
    # upper bounds: a shingle of over 64 units matches nothing, MinHash seeds are 32-bit, and every round is a
    # step of the Beam graph (300 rounds overflowed Python's recursion while Beam translated it)
    for key, low, high in (("n", 1, 64), ("num_perm", 2, 4096), ("seed", 0, 2**32 - 1), ("max_bucket", 2, 10**9),
                           ("max_rounds", 1, 64)):
        _need(_is_int(c[key]) and low <= c[key] <= high, key, f"must be an integer in [{low}, {high}], got {c[key]!r}")
    t = c["threshold"]
    _need(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t <= 1, "threshold",
          f"must be a number in (0, 1], got {t!r}")
    # LSH only proposes candidates when verification follows, so favour recall: 18 x 7 at 0.8 catches
    # 98.6 % of pairs at J = 0.8 and sends ~13 % of J = 0.5 pairs to verification. Without it, balance both.
    w = c["weights"] if c["weights"] is not None else ([0.01, 0.99] if c["verify"] else [0.5, 0.5])
    _need(isinstance(w, (list, tuple)) and len(w) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                                and math.isfinite(x) and x >= 0 for x in w)
          and sum(w) > 0, "weights", f"must be [false_positive_weight, false_negative_weight], got {w!r}")
    if c["bands"] is None and c["rows"] is None:
        bands, rows = lsh_params(float(t), c["num_perm"], float(w[0]), float(w[1]))
    else:
        for key in ("bands", "rows"):
            _need(_is_int(c[key]) and c[key] >= 1, key, f"must be a positive integer (give bands and rows together), got {c[key]!r}")
        bands, rows = c["bands"], c["rows"]
        _need(c["weights"] is None, "weights", "only chooses bands and rows, which are given: drop one or the other")
        _need(bands * rows <= c["num_perm"], "bands", f"bands x rows = {bands * rows} exceeds num_perm = {c['num_perm']}")
    _need(c["index_out"] is None or (isinstance(c["index_out"], str) and c["index_out"].strip()), "index_out",
          f"must be a path or null, got {c['index_out']!r}")
    idx_in = [c["index_in"]] if isinstance(c["index_in"], str) else c["index_in"]
    _need(isinstance(idx_in, (list, tuple)) and all(isinstance(p, str) and p.strip() for p in idx_in), "index_in",
          f"must be a list of paths, got {c['index_in']!r}")
    return NearParams(c["enabled"], c["unit"], c["n"], c["num_perm"], float(t), bands, rows, c["verify"],
                      c["seed"], c["scheme"], c["max_bucket"], c["max_rounds"], c["index_out"], tuple(idx_in))


def check_edge_accounting(dedup: Mapping[str, Any], verify: bool) -> str | None:
    """With verification on, every candidate edge ends verified, rejected or trusted (an index without
    signatures); a shortfall means a step or the runner lost edges, which would silently shrink clusters."""
    ends = [dedup.get(k, 0) for k in ("near_verified_edges", "near_rejected_edges", "near_unverified_edges")]
    if not verify or sum(ends) == dedup.get("near_candidate_edges", 0):
        return None
    return (f"near dedup lost edges: {dedup.get('near_candidate_edges', 0)} candidates, but {ends[0]} verified + "
            f"{ends[1]} rejected + {ends[2]} unverified")


def node_id(node: str) -> str:
    return node[len(EARLIER):]


def _stat(**counts: Any) -> dict[str, Any]:
    return {"dedup": counts}


SKETCHES_REMEMBERED = 1 << 16  # per worker: sketches of recent texts, by digest (~64 MB when full)


def compact_signature(sig: np.ndarray) -> bytes:
    """The low 32 bits of each MinHash value: equal values stay equal, unequal ones collide at 2^-32."""
    return (sig & np.uint64(0xFFFFFFFF)).astype("<u4").tobytes()


def estimated_jaccard(a: bytes, b: bytes) -> float:
    """The share of permutations whose minima agree: an unbiased estimate of J (s.d. 0.035 at 0.8 with 128)."""
    return float(np.mean(np.frombuffer(a, dtype="<u4") == np.frombuffer(b, dtype="<u4")))


class _Hashing(beam.DoFn):
    """A DoFn with this worker's permutations (`self.hasher`) and a sketch per text: (band keys, compact
    signature), or None for an empty shingle set (exact dedup owns empties).

    Exact copies are in play here (exact dedup decides in parallel, and waiting for it would cost a shuffle),
    so the sketches of texts are remembered by the text's digest, and a copy this worker saw lately costs a
    BLAKE2b instead of MeCab and MinHash. The sketch is a function of the text: the output is the same."""

    def __init__(self, p: NearParams, signatures: bool) -> None:
        self.p, self.signatures = p, signatures  # without, the sketch's signature is None (40 MB less when full)

    def setup(self) -> None:
        self.hasher = MinHasher(self.p.num_perm, self.p.seed, self.p.scheme)
        self.remembered: dict[bytes, tuple[list[int], bytes | None] | None] = {}

    def sketch(self, text: str) -> tuple[list[int], bytes | None] | None:
        digest = _text_digest(text)
        if digest not in self.remembered:
            hashes = shingle_set(text, self.p.unit, self.p.n)
            sketch = None
            if hashes.size:
                sig = self.hasher.signature(hashes)
                sketch = (band_hashes(sig, self.p.bands, self.p.rows),
                          compact_signature(sig) if self.signatures else None)
            if len(self.remembered) >= SKETCHES_REMEMBERED:
                self.remembered.clear()
            self.remembered[digest] = sketch
        return self.remembered[digest]


class _Sketch(_Hashing):
    """doc -> ((band, band-hash), node) per band; with `index_out`, tagged "band", plus ("signature",
    (id, compact signature)) for the index."""

    def __init__(self, p: NearParams, priority: Sequence[str]) -> None:
        super().__init__(p, signatures=bool(p.index_out))
        self.priority = tuple(priority)

    def process(self, doc: Mapping[str, Any]) -> Iterator[Any]:
        sketch = self.sketch(doc.get("text") or "")
        if sketch is None:
            return
        node = rank_node(doc, self.priority)
        keys, signature = sketch
        if not self.p.index_out:
            yield from (((band, h), node) for band, h in enumerate(keys))
            return
        yield from (("band", ((band, h), node)) for band, h in enumerate(keys))
        yield "signature", (doc["id"], signature)


class _EstimateEarlier(_Hashing):
    """A current document against the signatures earlier runs' indexes hold for the document its edge points
    at: the edge stays if the MinHash estimate of J reaches `threshold` for one of them (no shingles in an
    index)."""

    def process(self, item: tuple[tuple[str, str, tuple[bytes, ...]], str | None]) -> Iterator[Any]:
        (node, earlier, theirs), text = item
        if text is None:
            raise RuntimeError(f"near dedup: no text reached verification for document {node_id(node)}")
        sketch = self.sketch(text)
        if sketch is not None and max(estimated_jaccard(sketch[1], t) for t in theirs) >= self.p.threshold:
            yield "edge", (node, earlier)
            yield "stats", _stat(near_verified_edges=1)
        else:
            yield "stats", _stat(near_rejected_edges=1)


def _joined_text(item: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[Any, str | None]]:
    _, sides = item
    text = sides["text"][0] if sides["text"] else None
    for tag in sides["tag"]:
        yield tag, text


class JoinTexts(beam.PTransform):
    """(id, tag) → (tag, text or None) by joining with the documents: NearDedup on its own. Curate passes
    `sinks.SpilledTexts` instead, which reads the texts back from its spill files, so no text is shuffled."""

    def __init__(self, docs: beam.PCollection) -> None:
        super().__init__()
        self.docs = docs

    def expand(self, wanted):
        return (
            {"text": self.docs | "TextById" >> beam.Map(lambda d: (d["id"], d["text"])), "tag": wanted}
            | "JoinTexts" >> beam.CoGroupByKey()
            | "Joined" >> beam.FlatMap(_joined_text)
        )


def _shingles(node: str, text: str | None, unit: str, n: int) -> np.ndarray:
    """A candidate's shingle set, the same its signature used; no text means it was lost, not a pass."""
    if text is None:
        raise RuntimeError(f"near dedup: no text reached verification for document {node_id(node)}")
    return shingle_set(text, unit, n)


def _text_digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _hand_min_set(item: tuple[tuple[str, Iterable[str]], str | None], unit: str, n: int) -> Iterator[Any]:
    """An edge's smaller end, with its text: its set, computed once, goes to every member pointing at it
    (keyed by the member's id), with a digest of the text. A hub costs names in its group, and one set per
    edge downstream."""
    (smallest, members), text = item
    m_set = _shingles(smallest, text, unit, n).astype("<u8").tobytes()
    digest = _text_digest(text)  # not None: _shingles refuses a lost text
    for node in members:
        yield node_id(node), (node, smallest, m_set, digest)


def _earlier_members(item: tuple[str, dict[str, list[Any]]], signed: bool) -> Iterator[Any]:
    """`signed`: the members of an earlier node that has signatures, each to be estimated against them (an id
    keeps its name when its text changes between runs, so two indexes can hold two texts under it).
    Otherwise those of a node from an index written before signatures were kept: its bucket's word stands."""
    smallest, sides = item
    if bool(sides["signature"]) != signed:
        return
    signatures = tuple(sorted(set(sides["signature"])))
    for members in sides["members"]:
        for node in members:
            if signed:
                yield node_id(node), (node, smallest, signatures)
            else:
                yield "edge", (node, smallest)
                yield "stats", _stat(near_unverified_edges=1)


def _verify_edge(item: tuple[tuple[str, str, bytes, bytes], str | None], unit: str, n: int,
                 threshold: float) -> Iterator[Any]:
    """A member's text against the set of the smaller end it points at → keep the edge if J >= threshold."""
    (node, smallest, m_set, m_digest), text = item
    m = np.frombuffer(m_set, dtype="<u8")
    # An exact copy of the smaller end has its set: no MeCab pass (two copies share every band, so copies are
    # always candidates; in the replicated dev corpora all 13,958 verified edges were copies)
    own = m if text is not None and _text_digest(text) == m_digest else _shingles(node, text, unit, n)
    if jaccard(own, m) >= threshold:
        yield "edge", (node, smallest)
        yield "stats", _stat(near_verified_edges=1)
    else:
        yield "stats", _stat(near_rejected_edges=1)


def _salt(node: str, shards: int) -> int:
    """The node's slice of its bucket, uniform for any `shards`. (The id's last 8 bytes, used before, are hex
    digits whose low bits vary little: a power of two such as 1024 got 64 slices, 256 got 16.)"""
    return int.from_bytes(hashlib.blake2b(node.encode("utf-8"), digest_size=8).digest(), "little") % shards


def _local_star(item: tuple[Any, Iterable[str]]) -> Iterator[Any]:
    """One salted slice of an LSH bucket: its members join their smallest member, which goes on to the bucket."""
    (key, _), nodes = item
    nodes = sorted(set(nodes))
    for node in nodes[1:]:
        yield "edge", (node, nodes[0])
    yield "local", (key, (nodes[0], len(nodes)))


def _bucket_star(item: tuple[Any, Iterable[tuple[str, int]]], max_bucket: int) -> Iterator[Any]:
    """The slices' minima of one bucket join the bucket's smallest member: a two-level star, no hot key."""
    _, slices = item
    slices = sorted(slices)
    for node, _ in slices[1:]:
        yield "edge", (node, slices[0][0])
    if sum(n for _, n in slices) > max_bucket:
        yield "stats", _stat(near_hot_buckets=1)


INDEX_SHARDS = 16


def _index_rows(item: tuple[str, dict[str, list[Any]]]) -> list[dict[str, Any]]:
    """A kept document's index rows, its signature on band 0."""
    doc_id, sides = item
    if sides["rejected"]:
        return []
    signature = sides["signature"][0] if sides["signature"] else None
    return [{"band": b, "hash": h, "id": doc_id, "signature": signature if b == 0 else None}
            for b, h in sides["band"]]


def _write_index_shard(item: tuple[int, Iterable[dict[str, Any]]], out: str, schema: pa.Schema) -> Iterator[Any]:
    """One Parquet file per index shard, rows sorted, written by the step itself (no Beam file sink)."""
    import pyarrow.parquet as pq

    shard, rows = item
    rows = sorted(rows, key=lambda r: (r["id"], r["band"], r["hash"]))
    with FileSystems.create(f"{out.rstrip('/')}/band-index-{shard:05d}.parquet") as fh:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), fh, compression="zstd")
    yield _stat(index_files=1, index_rows=len(rows))


def index_paths(patterns: Sequence[str]) -> list[str]:
    """Files of earlier band indexes: a directory means its *.parquet files."""
    files: list[str] = []
    for pat in patterns:
        glob = pat if any(ch in pat for ch in "*?[") else pat.rstrip("/") + "/*.parquet"
        matched = sorted(m.path for r in FileSystems.match([glob]) for m in r.metadata_list)
        if not matched and not (glob != pat and "://" not in pat and os.path.isdir(pat)):  # a folder: an index of
            raise ConfigError(f"dedup.near.index_in: no index file matches {glob!r}")     # nothing kept is empty
        files.extend(matched)
    return files


def check_index(path: str, p: NearParams) -> None:
    """An index is only comparable if it was built with the same shingles, permutations and banding."""
    import pyarrow.parquet as pq

    try:
        with FileSystems.open(path) as fh:
            meta = (pq.read_schema(pa.BufferReader(fh.read())).metadata or {}).get(INDEX_META_KEY)
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"dedup.near.index_in: {path} is not a readable Parquet file ({exc})") from None
    if meta is None:
        raise ConfigError(f"dedup.near.index_in: {path} is not a jcorpus near-dup band index")
    theirs, ours = json.loads(meta), p.signature_params()
    if theirs != ours:
        diff = ", ".join(f"{k}={theirs.get(k)!r} (now {v!r})" for k, v in ours.items() if theirs.get(k) != v)
        raise ConfigError(f"dedup.near.index_in: {path} was built with other settings: {diff}")


class NearDedup(beam.PTransform):
    """docs -> (decisions, stats); see the module docstring and pipeline/decisions.py.

    `exact`: the exact-dedup decisions of the same documents, so that the band index (`index_out`) holds
    only documents the run keeps. `texts`: how verification gets candidate texts, a factory of transforms
    (id, tag) → (tag, text or None), called with `first=False` for a read whose ids come out of an earlier
    read; by default a join with the documents (`JoinTexts`).
    """

    def __init__(self, cfg: Mapping[str, Any] | None, priority: Sequence[str],
                 exact: beam.PCollection | None = None,
                 texts: Callable[..., beam.PTransform] | None = None) -> None:
        super().__init__()
        self.exact, self.texts = exact, texts
        self.p = parse_config(cfg)
        if not isinstance(priority, (list, tuple)) or not all(isinstance(k, str) for k in priority):
            raise ConfigError(f"dedup.priority: must be a list of kinds, got {priority!r}")
        self.priority = tuple(priority)
        self.index_files = index_paths(self.p.index_in) if self.p.enabled else []
        for f in self.index_files:  # fail before the pipeline runs, naming the key
            check_index(f, self.p)

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        p, pipeline = self.p, docs.pipeline
        zero = pipeline | "ZeroStats" >> beam.Create([_stat(dup_near=0, near_clusters=0)])
        if not p.enabled:
            return pipeline | "NoDecisions" >> beam.Create([]), zero
        sketched = docs | "Sketch" >> beam.ParDo(_Sketch(p, self.priority))
        members = bands = sketched
        signatures = None
        if p.index_out:
            sketched = split(sketched, "Sketched", ("band", "signature"))
            members = bands = sketched["band"]
            signatures = sketched["signature"]
        earlier_signatures = None
        if self.index_files:
            rows = (pipeline | "IndexFiles" >> beam.Create(self.index_files)
                    | "ReadIndex" >> beam.io.ReadAllFromParquet())
            earlier = rows | "IndexMembers" >> beam.Map(lambda r: ((r["band"], r["hash"]), EARLIER + r["id"]))
            earlier_signatures = (
                rows | "IndexSignatures" >> beam.FlatMap(
                    lambda r: [(EARLIER + r["id"], r["signature"])] if r.get("signature") else []))
            members = (members, earlier) | "AllMembers" >> beam.Flatten()
        local = split(
            members
            | "SaltMembers" >> beam.Map(lambda kv, k: ((kv[0], _salt(kv[1], k)), kv[1]), p.max_bucket)
            | "GroupSlices" >> beam.GroupByKey()
            | "LocalStars" >> beam.FlatMap(_local_star), "Slices", ("edge", "local"))
        bucket = split(
            local["local"]
            | "GroupBuckets" >> beam.GroupByKey()
            | "BucketStars" >> beam.FlatMap(_bucket_star, p.max_bucket), "Buckets", ("edge", "stats"))
        candidates = (
            (local["edge"], bucket["edge"])
            | "StarEdges" >> beam.Flatten()
            | "NotBothEarlier" >> beam.Filter(lambda e: not e[0].startswith(EARLIER))  # old-old: not ours to judge
            | "DistinctEdges" >> beam.Distinct()
        )
        stats = [zero, candidates | "CountCandidates" >> beam.Map(lambda _: _stat(near_candidate_edges=1)),
                 bucket["stats"]]
        edges = candidates
        if p.verify:
            texts = self.texts or (lambda first: JoinTexts(docs))
            by_min = split(
                candidates
                | "BySmallerEnd" >> beam.Map(lambda e: (e[1], e[0]))
                | "MembersOfMin" >> beam.GroupByKey()
                | "EarlierMin" >> beam.Map(lambda kv: ("earlier" if kv[0].startswith(EARLIER) else "current", kv)),
                "MinKinds", ("earlier", "current"))
            checked = (
                by_min["current"]
                | "MinById" >> beam.Map(lambda kv: (node_id(kv[0]), (kv[0], list(kv[1]))))
                | "MinTexts" >> texts(first=True)
                | "HandMinSet" >> beam.FlatMap(_hand_min_set, p.unit, p.n)
                | "MemberTexts" >> texts(first=False)  # its ids come out of MinTexts
                | "Verify" >> beam.FlatMap(_verify_edge, p.unit, p.n, p.threshold)
            )
            kept = (checked, *self._earlier_edges(by_min["earlier"], earlier_signatures, texts)) \
                if self.index_files else (checked,)
            verified = kept | "Verified" >> beam.Flatten()
            verified = split(verified, "SplitVerified", ("edge", "stats"))
            edges = verified["edge"]
            stats.append(verified["stats"])
        labels = edges | "Components" >> ConnectedComponents(p.max_rounds)
        roots = (
            labels | "Roots" >> beam.Map(lambda e: e[1]) | "DistinctRoots" >> beam.Distinct()
        )
        sizes = (
            labels | "RootOf" >> beam.Map(lambda e: (e[1], 1)) | "ClusterSize" >> beam.CombinePerKey(sum)
            | "SizeStat" >> beam.Map(lambda kv: _stat(near_clusters=1, near_cluster_sizes={str(kv[1] + 1): 1}))
        )
        current = labels | "CurrentMembers" >> beam.Filter(lambda e: not e[0].startswith(EARLIER))
        decisions = (
            current | "MemberDecision" >> beam.Map(lambda e: (node_id(e[0]), ("dup_near", node_id(e[1])))),
            roots
            | "CurrentRoots" >> beam.Filter(lambda n: not n.startswith(EARLIER))
            | "RootDecision" >> beam.Map(lambda n: (node_id(n), (None, node_id(n)))),
        ) | "Decisions" >> beam.Flatten()
        stats += [sizes, current | "CountNear" >> beam.Map(lambda _: _stat(dup_near=1))]
        if p.index_out:  # its write statistics join the stats, so the index branch is no separate leaf
            stats.append(self._write_index(bands, signatures, decisions))
        merged = tuple(stats) | "FlattenStats" >> beam.Flatten() | "MergeStats" >> beam.CombineGlobally(MergeStats()).without_defaults()
        return decisions, merged

    def _earlier_edges(self, earlier_min: beam.PCollection, signatures: beam.PCollection,
                       texts: Callable[..., beam.PTransform]) -> tuple[beam.PCollection, beam.PCollection]:
        """Tagged edges and stats for the candidates pointing at an earlier run's document: an index has no
        shingles, so the signatures it holds give an estimate of J (an index without them is trusted). Only
        built with `index_in`: the join and the text read cost a run without one several stages."""
        earlier = {"members": earlier_min, "signature": signatures} | "EarlierSignature" >> beam.CoGroupByKey()
        unsigned = earlier | "EarlierUnsigned" >> beam.FlatMap(_earlier_members, signed=False)
        estimated = (
            earlier
            | "EarlierSigned" >> beam.FlatMap(_earlier_members, signed=True)
            | "EarlierMemberTexts" >> texts(first=True)
            | "Estimate" >> beam.ParDo(_EstimateEarlier(self.p, signatures=True)))
        return unsigned, estimated

    def _write_index(self, bands: beam.PCollection, signatures: beam.PCollection,
                     decisions: beam.PCollection) -> beam.PCollection:
        """Band keys of every kept (non-rejected) current document, as Parquet (band, hash, id, signature)."""
        meta = {INDEX_META_KEY: json.dumps(self.p.signature_params(), sort_keys=True).encode()}
        if self.exact is not None:
            decisions = (decisions, self.exact) | "NearAndExact" >> beam.Flatten()
        rejected = (
            decisions | "Rejections" >> beam.Filter(lambda kv: kv[1][0] is not None)
            | "RejectedKey" >> beam.Map(lambda kv: (kv[0], True))
        )
        by_id = bands | "BandById" >> beam.Map(lambda kv: (node_id(kv[1]), kv[0]))
        return (
            {"band": by_id, "rejected": rejected, "signature": signatures}
            | "JoinKept" >> beam.CoGroupByKey()
            | "IndexRows" >> beam.FlatMap(_index_rows)
            | "IndexShard" >> beam.Map(lambda row: (zlib.crc32(row["id"].encode()) % INDEX_SHARDS, row))
            | "GroupIndexShard" >> beam.GroupByKey()
            | "WriteIndex" >> beam.FlatMap(_write_index_shard, self.p.index_out, INDEX_SCHEMA.with_metadata(meta))
        )
