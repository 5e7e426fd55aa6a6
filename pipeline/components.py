"""Connected components of an edge PCollection in Beam: alternating large-star / small-star rounds.

Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014). Each round is two
GroupByKeys over the current edges; nothing ever collects the whole graph. Nodes are strings and the
string order is the label order, so every component converges to a star around its *smallest* node,
which the caller makes its preferred representative. The result depends only on the edge set, never on
bundling or worker count.

Both operations are idempotent on a star forest, so the graph simply unrolls `max_rounds` rounds; once
converged the later rounds pass the stars through unchanged. A final check fails the job with a clear
message if the bound was too small (a chain of n nodes needs about log2(n) rounds, as does a cycle).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam

Edge = tuple[str, str]


def large_star(node: str, neighbours: Iterable[str]) -> Iterator[Edge]:
    """Connect every larger neighbour of `node` to the smallest member of its closed neighbourhood."""
    nbrs = set(neighbours)
    smallest = min(min(nbrs), node)
    for v in nbrs:
        if v > node:
            yield (v, smallest)


def small_star(node: str, smaller: Iterable[str]) -> Iterator[Edge]:
    """Connect `node` and its smaller-or-equal neighbours to the smallest of them."""
    group = set(smaller)
    group.add(node)
    smallest = min(group)
    for v in group:
        if v != smallest:
            yield (v, smallest)


def _both_ways(edge: Edge) -> Iterator[Edge]:
    u, v = edge
    if u != v:
        yield (u, v)
        yield (v, u)


def _larger_first(edge: Edge) -> Edge:
    u, v = edge
    return (u, v) if v <= u else (v, u)


class _CheckConverged(beam.DoFn):
    """A star forest: every node has one parent, and no parent has a parent itself; and every node of the
    input edges is in it (a shuffle that lost elements would otherwise just shrink the clusters)."""

    def __init__(self, max_rounds: int) -> None:
        self.max_rounds = max_rounds

    def process(self, item: tuple[str, dict[str, list[str]]]) -> Iterator[Edge]:
        node, sides = item
        parents = set(sides["parent"])
        if len(parents) > 1 or (parents and sides["child_of"]):
            raise RuntimeError(
                f"connected components did not converge in {self.max_rounds} rounds "
                f"(node {node!r}); raise dedup.near.max_rounds"
            )
        if sides["input"] and not parents and not sides["child_of"]:  # neither a child nor a root
            raise RuntimeError(f"connected components lost node {node!r} of the input edges: the runner "
                               "dropped data between rounds")
        for parent in parents:
            yield (node, parent)


class ConnectedComponents(beam.PTransform):
    """(u, v) edges -> (node, root) for every non-root node; root = the smallest node of its component."""

    def __init__(self, max_rounds: int = 12) -> None:
        super().__init__()
        if max_rounds < 1:
            raise ValueError("max_rounds must be >= 1")
        self.max_rounds = max_rounds

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        current = edges
        for r in range(self.max_rounds):
            current = (
                current
                | f"LargeStarEmit{r}" >> beam.FlatMap(_both_ways)
                | f"LargeStarGroup{r}" >> beam.GroupByKey()
                | f"LargeStar{r}" >> beam.FlatMapTuple(large_star)
                | f"SmallStarOrient{r}" >> beam.Map(_larger_first)
                | f"SmallStarGroup{r}" >> beam.GroupByKey()
                | f"SmallStar{r}" >> beam.FlatMapTuple(small_star)
            )
        parent = current | "AsParent" >> beam.Distinct()
        # one marker per parent (Distinct combines before the shuffle: a big root is not a hot key)
        child_of = (
            parent
            | "Parents" >> beam.Map(lambda e: e[1])
            | "DistinctParents" >> beam.Distinct()
            | "ParentMark" >> beam.Map(lambda node: (node, True))
        )
        inputs = (  # every node of the input edges must come out as a child or as a root
            edges
            | "InputNodes" >> beam.FlatMap(lambda e: e if e[0] != e[1] else ())  # a self-loop is a singleton
            | "DistinctInputNodes" >> beam.Distinct()
            | "InputMark" >> beam.Map(lambda node: (node, True))
        )
        return (
            {"parent": parent, "child_of": child_of, "input": inputs}
            | "JoinCheck" >> beam.CoGroupByKey()
            | "CheckConverged" >> beam.ParDo(_CheckConverged(self.max_rounds))
        )
