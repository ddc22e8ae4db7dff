"""Backbone genomes (Once-for-All naming): per-block kernel ``ks``, expand ``e``, per-stage depth ``d``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harmonic_nas.errors import GenomeError


@dataclass(frozen=True)
class BackboneGenome:
    """One unimodal subnet. ``ks`` and ``e`` have one gene per block slot (max depth x stages);
    ``d`` one per stage. Genes of blocks beyond a stage's depth are inactive and ignored.
    The Maxout/vector backbone has the empty genome."""

    ks: tuple[int, ...] = ()
    e: tuple[int, ...] = ()
    d: tuple[int, ...] = ()

    def to_json(self) -> dict[str, list[int]]:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d)}

    @classmethod
    def from_json(cls, data: Any) -> BackboneGenome:
        if not isinstance(data, dict) or set(data) - {"ks", "e", "d"}:
            raise GenomeError(
                f"a backbone genome must be an object with keys ks, e, d; got {data!r:.80}"
            )
        genes = {k: data.get(k, []) for k in ("ks", "e", "d")}
        for k, v in genes.items():  # strictly ints: no "5", 5.0 or true read as a gene
            if not isinstance(v, list) or not all(
                isinstance(g, int) and not isinstance(g, bool) for g in v
            ):
                raise GenomeError(
                    f"genome genes must be lists of integers; '{k}' is {v!r:.60}; write e.g. "
                    '{"ks": [3, 5], "e": [4, 6], "d": [2]}'
                )
        return cls(ks=tuple(genes["ks"]), e=tuple(genes["e"]), d=tuple(genes["d"]))

    def active(self, max_depth: int) -> BackboneGenome:
        """The canonical form: inactive genes (beyond each stage's depth) set to 0."""
        ks, e = list(self.ks), list(self.e)
        for stage, depth in enumerate(self.d):
            for j in range(depth, max_depth):
                ks[stage * max_depth + j] = 0
                e[stage * max_depth + j] = 0
        return BackboneGenome(tuple(ks), tuple(e), self.d)

    def __str__(self) -> str:
        return f"ks{''.join(map(str, self.ks))}_e{''.join(map(str, self.e))}_d{''.join(map(str, self.d))}"
