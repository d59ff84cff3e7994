"""The one comparison: a method against a baseline method on runs that share everything else.

Two stored runs pair when they share their *recipe* — data, seeds and training recipe, a
typed value each store kind defines (:class:`simulate.grid.Recipe` for the 1D study, the
experiment and seed for real data) — and differ only in the method. Every method run pairs
with the baseline run of its recipe; the 1D report, the theory check and the real-data report
all pair through :func:`pair_runs`, with one rule for diverged runs: a pair in which either
run diverged is left out (its error is not a measurement of the method) and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from clsreg.analysis.vocabulary import BASELINE_METHOD


@dataclass(frozen=True)
class RunIdentity:
    """What a stored run is: the recipe it shares with its baseline, its method and the
    method's own settings (class count, binning, λ) that tell its cells apart."""

    recipe: Hashable
    method: str
    settings: Hashable = ()


@dataclass(frozen=True)
class Pair:
    """A method run and the baseline run of the same recipe (stored records)."""

    identity: RunIdentity
    baseline: dict
    candidate: dict


@dataclass(frozen=True)
class Pairing:
    """The pairs found, in the candidates' store order, and what was left out."""

    pairs: list[Pair]
    diverged: int
    unpaired: int

    def methods(self) -> list[str]:
        return list(dict.fromkeys(p.identity.method for p in self.pairs))


def diverged(record: dict) -> bool:
    return bool(record["metrics"].get("diverged"))


def pair_runs(records: Iterable[dict], identify: Callable[[dict], RunIdentity],
              baseline: str = BASELINE_METHOD,
              methods: Iterable[str] | None = None) -> Pairing:
    """Pair every run of ``methods`` (all but the baseline if None) with its baseline run."""
    records = list(records)
    identities = [identify(r) for r in records]
    baselines = {ident.recipe: r for ident, r in zip(identities, records, strict=True)
                 if ident.method == baseline}
    wanted = None if methods is None else set(methods)
    pairs, dropped, unpaired = [], 0, 0
    for ident, record in zip(identities, records, strict=True):
        if ident.method == baseline or (wanted is not None and ident.method not in wanted):
            continue
        partner = baselines.get(ident.recipe)
        if partner is None:
            unpaired += 1
        elif diverged(partner) or diverged(record):
            dropped += 1
        else:
            pairs.append(Pair(ident, partner, record))
    return Pairing(pairs, dropped, unpaired)
