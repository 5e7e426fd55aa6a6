"""Large-star / small-star connected components on hand-built graphs, against exact expected answers."""
from __future__ import annotations

import json
import random
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline import components
from pipeline.components import ConnectedComponents, large_star, small_star


def run_cc(edges: list[tuple[str, str]], tmp_path: Path, max_rounds: int = 12) -> dict[str, str]:
    out = tmp_path / "cc"
    with beam.Pipeline(runner=FnApiRunner()) as p:
        _ = (p | beam.Create(edges) | ConnectedComponents(max_rounds)
             | beam.Map(json.dumps) | beam.io.WriteToText(str(out)))
    labels: dict[str, str] = {}
    for f in tmp_path.glob("cc*"):
        for line in f.read_text().splitlines():
            node, root = json.loads(line)
            assert node not in labels
            labels[node] = root
    return labels


def union_find(edges: list[tuple[str, str]]) -> dict[str, str]:
    """Independent oracle: node -> smallest node of its component, for non-root nodes only."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    return {n: find(n) for n in list(parent) if find(n) != n}


def test_star_operations() -> None:
    assert sorted(large_star("c", ["a", "d", "e"])) == [("d", "a"), ("e", "a")]
    assert sorted(small_star("d", ["b", "c"])) == [("c", "b"), ("d", "b")]


def test_hand_built_graphs(tmp_path: Path) -> None:
    chain = [(f"c{i:02d}", f"c{i + 1:02d}") for i in range(20)]           # c00 - c01 - ... - c20
    star = [("s0", f"s{i}") for i in range(1, 9)] + [("s9", "s5")]        # hub s0, plus one leaf-of-leaf
    cycle = [(f"y{i}", f"y{(i + 1) % 7}") for i in range(7)]              # y0 ... y6 - y0
    joined = [("p1", "p2"), ("p2", "p3"), ("p3", "p1"), ("q1", "q2"), ("q2", "q3"), ("p3", "q2")]
    loops = [("z1", "z1")]                                                 # a self-loop is a singleton
    labels = run_cc(chain + star + cycle + joined + loops, tmp_path)
    expected = {f"c{i:02d}": "c00" for i in range(1, 21)}
    expected |= {f"s{i}": "s0" for i in range(1, 10)}
    expected |= {f"y{i}": "y0" for i in range(1, 7)}
    expected |= {"p2": "p1", "p3": "p1", "q1": "p1", "q2": "p1", "q3": "p1"}
    assert labels == expected


def test_random_graph_matches_union_find(tmp_path: Path) -> None:
    rng = random.Random(7)
    nodes = [f"n{i:04d}" for i in range(400)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(300)]
    assert run_cc(edges, tmp_path) == union_find(edges)


def test_too_few_rounds_fail_loudly(tmp_path: Path) -> None:
    chain = [(f"c{i:03d}", f"c{i + 1:03d}") for i in range(200)]
    with pytest.raises(Exception, match="did not converge"):
        run_cc(chain, tmp_path, max_rounds=1)


def test_a_node_lost_between_rounds_fails_loudly(tmp_path: Path, monkeypatch) -> None:
    """A shuffle that drops elements must not just shrink a cluster: here s9's edges vanish every round."""
    def lossy(node, smaller):
        return [] if node == "s9" else small_star(node, smaller)

    monkeypatch.setattr(components, "small_star", lossy)
    star = [("s0", f"s{i}") for i in range(1, 9)] + [("s9", "s5")]
    with pytest.raises(Exception, match="lost node 's9'"):
        run_cc(star, tmp_path)
