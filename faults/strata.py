"""Stratified single-fault injections and the design-level failure estimate built on them.

A *stratum* is one (layer, register class, bit) of the bare array (no hardening, no redundant
units). Injection ``i`` of stratum ``h`` flips that bit at a site uniform over the stratum's
bit-cycles (or register loads, unit ``ber``) on test sample ``(offset_h + i) mod S`` (round
robin, so every sample gets its share), from a counter-based stream keyed by (seed, stratum,
i): the first ``n`` injections of a stratum are the same whoever asks for them and whenever.
:class:`StratifiedInjections` computes them on demand (batched, :mod:`faults.batched`) and
keeps each record: sample, failed (top-1 differs from the fault-free run), and the neuron
(output channel) whose PE column the flip hit.

**Design-level estimate.** A design exposes stratum ``h`` to ``w_h = rate x X_h`` faults per
inference (``X_h``: its own bit-cycles of that layer and bit; 0 for a hardened bit). With
``p_h`` = P(failure | one flip in ``h``), the expected failing faults per inference are
``Λ = Σ_h w_h p_h``, estimated without bias by ``Σ_h w_h k_h / n_h``. A design with protected
neurons has records of its own, computed with the redundant units recomputing those neurons,
so protection is measured, not assumed (an input flip that travels on to unprotected columns
still counts). Hardening needs no records of its own: a hardened bit's strata weigh 0. Its interval comes from
:func:`stratified_interval`; strata with no failure raise the upper limit (never count as
zero).

**Clustering.** Failures cluster on fragile samples, so P(failure) is modelled per sample,
``P = mean_s [1 - exp(-Λ_s)]`` with ``Λ_s = Σ_h w_h p_{h,s}`` (a sample with no injection in a
stratum uses the stratum's pooled rate). By Jensen this is at most ``1 - exp(-Λ)``, which is
used as the upper limit, so the bound never relies on the clustering model.

**Allocation** (:func:`adaptive_estimate`): a pilot of ``pilot`` injections per exposed stratum,
then Neyman rounds (``n_h ∝ w_h sqrt(p̃_h (1 - p̃_h))``, ``p̃ = (k + 1) / (n + 2)``) until the
interval's half-width is within ``precision`` of the estimate, the decision against
``target`` is clear, or ``max_injections``. The allocation depends only on the design's weights
and the (deterministic) records, so a design's estimate never depends on what was asked before.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.workload import Workload

from .batched import faulty_outputs
from .campaign import CampaignContext, CampaignSettings, exposure_of
from .exposure import Exposure
from .fault import PE_REGISTERS, REGISTERS, FaultTable
from .inject import golden_run
from .runner import task_words, words_below
from .sampling import SiteSampler

STORE_FORMAT = 1
SITE_WORD, CYCLE_WORD, OFFSET_WORD = 0, 1, 2
CHUNK = 2048  # injections per faulty_outputs call


@dataclass(frozen=True)
class Stratum:
    layer: str
    register: str
    bit: int

    def key(self) -> str:
        return f"{self.layer}/{self.register}/{self.bit}"


# --------------------------------------------------------------------------- intervals
def stratified_interval(
    weights: np.ndarray,
    failures: np.ndarray,
    trials: np.ndarray,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Point estimate and bounds of ``Λ = Σ_h w_h p_h`` from per-stratum binomial counts.

    ``point`` = Σ a_h k_h with ``a_h = w_h / n_h`` (unbiased). Bounds: Fay & Feuer's gamma
    interval for a weighted sum of (Poisson-approximated) counts (Stat Med 16, 1997), the
    standard for directly standardised rates with small counts: ``y = Σ a k``, ``v = Σ a² k``,
    ``a_M = max a``; lower = Gamma quantile with shape ``y²/v`` and scale ``v/y``, upper = the
    same with ``y + a_M`` and ``v + a_M²``. So strata without failure bound the estimate from
    above through ``a_M`` (a whole failure of the least-sampled stratum), never as zero, and a
    single stratum gives the exact Poisson (Garwood) limits. ``lo`` / ``hi``: two-sided at
    ``confidence``; ``upper``: one-sided at ``confidence``. A stratum with weight but no trial
    adds its whole weight to the upper limits.
    """
    from scipy.stats import gamma

    w = np.asarray(weights, dtype=float)
    k = np.asarray(failures, dtype=float)
    n = np.asarray(trials, dtype=float)
    live = w > 0
    unmeasured = float(w[live & (n <= 0)].sum())
    measured = live & (n > 0)
    a = w[measured] / n[measured]
    k = k[measured]
    y = float(np.sum(a * k))
    v = float(np.sum(a * a * k))
    a_max = float(a.max()) if len(a) else 0.0
    alpha = 1.0 - confidence

    def upper_at(q: float) -> float:
        if a_max == 0.0:
            return 0.0
        top, spread = y + a_max, v + a_max * a_max
        return float(gamma.ppf(q, top * top / spread, scale=spread / top))

    lo = 0.0 if y == 0.0 else float(gamma.ppf(alpha / 2, y * y / v, scale=v / y))
    return {
        "point": y,
        "lo": lo,
        "hi": upper_at(1 - alpha / 2) + unmeasured,
        "upper": upper_at(confidence) + unmeasured,
    }


def _prob(expected_failures: float) -> float:
    return max(0.0, -math.expm1(-expected_failures))


# --------------------------------------------------------------------------- the records
@dataclass
class _Records:
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    failed: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    neuron: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.sample)


def bare_context(
    workload: Workload, samples: int | None, settings: CampaignSettings
) -> CampaignContext:
    """ONE golden run of the workload's array without hardening or redundant units."""
    from accelsim.config import ProtectionConfig

    accel = workload.config.accelerator
    accel = accel.model_copy(update={"protection": ProtectionConfig()})
    n = len(workload.inputs) if samples is None else min(samples, len(workload.inputs))
    golden = golden_run(workload.graph, accel, workload.inputs[:n])
    labels = None if workload.labels is None else np.asarray(workload.labels[:n])
    return CampaignContext(
        golden=golden, exposure=exposure_of(golden), labels=labels, settings=settings
    )


class StratifiedInjections:
    """The single-fault injections of every stratum of one (quantised workload, array), grown
    on demand and cached as ``<key>.npz`` under ``cache_dir`` (plain arrays, no pickle).

    ``registers``: the classes that can flip (the workload's ``faults.registers``); ``unit``
    and ``model``: the fault rate's unit and the fault model, as in a campaign; ``protected``:
    output channels per layer the redundant units recompute (part of the key: a protected
    design has its own records). The array is the workload's own.
    """

    def __init__(
        self,
        workload: Workload,
        *,
        registers: Iterable[str] = PE_REGISTERS,
        unit: str = "bit_cycle",
        model: str = "seu",
        mbu_width: int = 2,
        samples: int | None = None,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        protected: Mapping[str, Iterable[int]] | None = None,
    ) -> None:
        self.registers = tuple(r for r in REGISTERS if r in set(registers))
        self.protected = _protected_arrays(protected)
        self._workload, self._cache_dir = workload, cache_dir
        self._siblings: dict[str, StratifiedInjections] = {}
        self.unit, self.model, self.mbu_width, self.seed = unit, model, mbu_width, int(seed)
        settings = CampaignSettings(
            mode="single", unit=unit, model=model, mbu_width=mbu_width, registers=self.registers
        )
        self.ctx = bare_context(workload, samples, settings)
        golden = self.ctx.golden
        self.samples = golden.samples
        out = golden.values[golden.graph.output]
        self._golden_top1 = out.reshape(len(out), -1).argmax(axis=1)
        exposure = self.ctx.exposure
        self.exposure: Exposure = exposure
        self.strata: list[Stratum] = []
        self._samplers: list[SiteSampler] = []
        for layer_name in exposure.layer_names:
            layer = exposure.layer(layer_name)
            for register in self.registers:
                for bit in exposure.exposed_bits(layer, register):
                    sampler = SiteSampler(
                        exposure, registers=register, layers=layer_name, bits=bit, unit=unit
                    )
                    if sampler.total:
                        self.strata.append(Stratum(layer_name, register, bit))
                        self._samplers.append(sampler)
        self.index = {s.key(): h for h, s in enumerate(self.strata)}
        self.sites = np.array([s.total for s in self._samplers], dtype=np.int64)
        h_ids = np.arange(len(self.strata), dtype=np.int64)
        self._seeds = [
            int(np.random.SeedSequence([self.seed, 0x57A7, h]).generate_state(1)[0])
            for h in range(len(self.strata))
        ]
        self._offsets = words_below(
            task_words(self.seed, h_ids, np.full(len(h_ids), OFFSET_WORD)), self.samples
        )
        self._records = [_Records() for _ in self.strata]
        self.neurons = {name: _neuron_count(exposure.layer(name)) for name in exposure.layer_names}
        self.key = self._key(workload)
        self.cache_path = None if cache_dir is None else Path(cache_dir) / f"{self.key}.npz"
        self._load()

    def with_protection(
        self, protected: Mapping[str, Iterable[int]] | None
    ) -> StratifiedInjections:
        """The store of the same workload, array and draws whose injections run with
        ``protected`` neurons recomputed (itself when that is its own protection)."""
        chosen = _protected_arrays(protected)
        key = json.dumps(_protected_lists(chosen))
        if key == json.dumps(_protected_lists(self.protected)):
            return self
        if key not in self._siblings:
            self._siblings[key] = StratifiedInjections(
                self._workload,
                registers=self.registers,
                unit=self.unit,
                model=self.model,
                mbu_width=self.mbu_width,
                samples=self.samples,
                seed=self.seed,
                cache_dir=self._cache_dir,
                protected=chosen,
            )
        return self._siblings[key]

    # ---------------------------------------------------------------- identity and cache
    def _key(self, workload: Workload) -> str:
        accel = self.ctx.golden.accel
        inputs = np.ascontiguousarray(workload.inputs[: self.samples])
        blob = json.dumps(
            {
                "format": STORE_FORMAT,
                "graph": workload.graph.content_hash(),
                "accelerator": accel.model_dump(mode="json"),
                "samples": self.samples,
                "inputs": hashlib.sha256(inputs).hexdigest(),
                "seed": self.seed,
                "unit": self.unit,
                "model": self.model,
                "mbu_width": self.mbu_width,
                "registers": list(self.registers),
                "protected": _protected_lists(self.protected),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def _load(self) -> None:
        if self.cache_path is None or not self.cache_path.exists():
            return
        try:
            with np.load(self.cache_path, allow_pickle=False) as data:
                if str(data["key"]) != self.key:
                    return
                counts = data["counts"]
                if len(counts) != len(self.strata):
                    return
                bounds = np.concatenate([[0], np.cumsum(counts)])
                sample, failed, neuron = data["sample"], data["failed"], data["neuron"]
                for h, rec in enumerate(self._records):
                    a, b = bounds[h], bounds[h + 1]
                    rec.sample, rec.failed = sample[a:b].copy(), failed[a:b].copy()
                    rec.neuron = neuron[a:b].copy()
        except (OSError, ValueError, KeyError):
            self._records = [_Records() for _ in self.strata]  # damaged: measure again

    def save(self) -> None:
        if self.cache_path is None:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        # a private temporary name: workers of one pool may save the same store at once (the
        # records are a function of their index, so whichever file lands last is right)
        tmp = self.cache_path.with_name(f"{self.key}.{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            key=np.array(self.key),
            counts=np.array([len(r) for r in self._records], dtype=np.int64),
            sample=np.concatenate([r.sample for r in self._records]),
            failed=np.concatenate([r.failed for r in self._records]),
            neuron=np.concatenate([r.neuron for r in self._records]),
        )
        tmp.replace(self.cache_path)

    # ---------------------------------------------------------------- measuring
    def counts(self) -> np.ndarray:
        """Injections recorded so far per stratum."""
        return np.array([len(r) for r in self._records], dtype=np.int64)

    @property
    def injections(self) -> int:
        return int(self.counts().sum())

    def ensure(self, wanted: np.ndarray) -> int:
        """Compute injections until stratum ``h`` holds at least ``wanted[h]``; returns how
        many were computed. The new records are those a fresh store would compute too."""
        have = self.counts()
        need = np.maximum(np.asarray(wanted, dtype=np.int64) - have, 0)
        if not need.any():
            return 0
        # one batch per layer: the tables of one layer's strata share its layer numbering
        by_layer: dict[str, list[int]] = {}
        for h in np.flatnonzero(need):
            by_layer.setdefault(self.strata[h].layer, []).append(int(h))
        for strata in by_layer.values():
            pending = [(h, i) for h in strata for i in range(have[h], have[h] + need[h])]
            for start in range(0, len(pending), CHUNK):
                self._run(pending[start : start + CHUNK])
        self.save()
        return int(need.sum())

    def _run(self, jobs: Sequence[tuple[int, int]]) -> None:
        by_stratum: dict[int, list[int]] = {}
        for h, i in jobs:
            by_stratum.setdefault(h, []).append(i)
        tables, samples, owners = [], [], []
        base = 0
        for h, indices in by_stratum.items():
            idx = np.asarray(indices, dtype=np.int64)
            words = task_words(self._seeds[h], idx, np.full(len(idx), SITE_WORD))
            sites = words_below(words, int(self.sites[h]))
            cycles = task_words(self._seeds[h], idx, np.full(len(idx), CYCLE_WORD)) >> np.uint64(1)
            table = self._samplers[h].locate(
                base + np.arange(len(idx), dtype=np.int64),
                sites,
                cycles.astype(np.int64),
                model=self.model,
                mbu_width=self.mbu_width,
            )
            tables.append(table)
            samples.append((self._offsets[h] + idx) % self.samples)
            owners.append(np.full(len(idx), h))
            base += len(idx)
        table = _concat(tables)
        sample = np.concatenate(samples).astype(np.int64)
        outputs, _ = faulty_outputs(self.ctx.golden, sample, table, protected=self.protected)
        failed = outputs.reshape(len(sample), -1).argmax(axis=1) != self._golden_top1[sample]
        neuron = self._neurons_hit(table, len(sample))
        owner = np.concatenate(owners)
        for h in by_stratum:
            rows = owner == h
            rec = self._records[h]
            rec.sample = np.concatenate([rec.sample, sample[rows].astype(np.int32)])
            rec.failed = np.concatenate([rec.failed, failed[rows]])
            rec.neuron = np.concatenate([rec.neuron, neuron[rows].astype(np.int32)])

    def _neurons_hit(self, table: FaultTable, batch: int) -> np.ndarray:
        """The output channel whose PE column each injection's (single) fault hit, else -1."""
        neuron = np.full(batch, -1, dtype=np.int64)
        if not len(table):
            return neuron
        layer = self.exposure.layer(table.layer_names[int(table.layer[0])])
        if layer.neuron0 is None:
            return neuron
        position = np.searchsorted(layer.fold, table.fold)
        pe = table.register < len(PE_REGISTERS)
        hit = layer.neuron0[position] + table.col
        neuron[table.injection[pe]] = hit[pe]
        return neuron

    # ---------------------------------------------------------------- estimating
    def weights(self, exposure: Exposure | None, rate: float) -> np.ndarray:
        """``w_h = rate x X_h``: a design's expected faults per inference in each stratum
        (``exposure``: the design's own; None for the bare array). Hardened bits weigh 0."""
        if exposure is None:
            return float(rate) * self.sites.astype(float)
        w = np.zeros(len(self.strata))
        for layer_name in exposure.layer_names:
            layer = exposure.layer(layer_name)
            for register in self.registers:
                sites = SiteSampler(exposure, registers=register, layers=layer_name, unit=self.unit)
                bits = exposure.exposed_bits(layer, register)
                if not bits or not sites.total:
                    continue
                per_bit = sites.total / len(bits)  # every bit of a class: the same sites
                for bit in bits:
                    h = self.index.get(Stratum(layer_name, register, bit).key())
                    if h is not None:
                        w[h] = float(rate) * per_bit
        return w

    def estimate(
        self,
        weights: np.ndarray,
        trials: np.ndarray,
        *,
        confidence: float = 0.95,
    ) -> dict[str, Any]:
        """P(failure per inference) of a design from the first ``trials[h]`` records of each
        stratum (see the module docstring). Keys: ``failure`` (per-sample model), ``lo``,
        ``hi`` (two-sided), ``upper`` (one-sided at ``confidence``), ``expected_failures``
        with its ``lo``/``hi``, ``expected_faults``, ``injections``, ``strata``,
        ``zero_failure_strata``."""
        weights = np.asarray(weights, dtype=float)
        trials = np.minimum(np.asarray(trials, dtype=np.int64), self.counts())
        failures = np.zeros(len(self.strata))
        per_sample = np.zeros(self.samples)
        for h in np.flatnonzero((weights > 0) & (trials > 0)):
            rec, n = self._records[h], int(trials[h])
            failed = rec.failed[:n]
            k = int(failed.sum())
            failures[h] = k
            if not k:
                continue
            s = rec.sample[:n]
            n_s = np.bincount(s, minlength=self.samples)
            k_s = np.bincount(s[failed], minlength=self.samples)
            rate_s = np.where(n_s > 0, k_s / np.maximum(n_s, 1), k / n)
            per_sample += weights[h] * rate_s
        lam = stratified_interval(weights, failures, trials, confidence)
        pooled = _prob(lam["point"])
        clustered = float(np.mean(-np.expm1(-per_sample))) if self.samples else 0.0
        ratio = clustered / pooled if pooled > 0 else 1.0
        live = weights > 0
        return {
            "failure": clustered,
            "failure_pooled": pooled,
            "lo": _prob(lam["lo"]) * ratio,
            "hi": _prob(lam["hi"]),
            "upper": _prob(lam["upper"]),
            "expected_failures": lam["point"],
            "expected_failures_lo": lam["lo"],
            "expected_failures_hi": lam["hi"],
            "expected_faults": float(weights.sum()),
            "injections": int(trials[live].sum()),
            "strata": int(live.sum()),
            "zero_failure_strata": int(np.sum(live & (failures == 0))),
            "confidence": confidence,
        }

    def failures(self, trials: np.ndarray) -> np.ndarray:
        """Failures per stratum among its first ``trials`` records."""
        return np.array(
            [self._records[h].failed[: int(n)].sum() if n else 0 for h, n in enumerate(trials)],
            dtype=float,
        )

    def neuron_contributions(
        self, trials: np.ndarray, weights: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Expected failing faults per inference caused by each neuron's column, per layer."""
        out = {name: np.zeros(count) for name, count in self.neurons.items()}
        for h in np.flatnonzero((weights > 0) & (trials > 0)):
            rec, n = self._records[h], int(trials[h])
            hit = rec.neuron[:n][rec.failed[:n]]
            hit = hit[hit >= 0]
            layer = self.strata[h].layer
            if len(hit) and len(out[layer]):
                out[layer] += weights[h] / n * np.bincount(hit, minlength=len(out[layer]))
        return out

    def neuron_trials(self, trials: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(injections, failures) per neuron of each layer, over the first ``trials`` records."""
        out = {
            name: (np.zeros(c, np.int64), np.zeros(c, np.int64)) for name, c in self.neurons.items()
        }
        for h in np.flatnonzero(trials > 0):
            rec, n = self._records[h], int(trials[h])
            layer = self.strata[h].layer
            count = self.neurons[layer]
            if not count:
                continue
            hit = rec.neuron[:n]
            ok = hit >= 0
            out[layer][0][:] += np.bincount(hit[ok], minlength=count)
            out[layer][1][:] += np.bincount(hit[ok & rec.failed[:n]], minlength=count)
        return out


def _protected_arrays(protected: Mapping[str, Iterable[int]] | None) -> dict[str, np.ndarray]:
    return {
        layer: np.asarray(sorted({int(n) for n in v}), dtype=np.int64)
        for layer, v in (protected or {}).items()
    }


def _protected_lists(protected: Mapping[str, np.ndarray]) -> dict[str, list[int]]:
    """The protected set as plain sorted lists (empty layers dropped): keys and identity."""
    return {k: v.tolist() for k, v in sorted(protected.items()) if len(v)}


def _neuron_count(layer: Any) -> int:
    if layer.neuron0 is None or not layer.n_folds:
        return 0
    return int(np.max(layer.neuron0 + layer.col0 + layer.cols))


def _concat(tables: Sequence[FaultTable]) -> FaultTable:
    first = tables[0]
    if len(tables) == 1:
        return first
    columns = {
        name: np.concatenate([getattr(t, name) for t in tables])
        for name in (
            "injection",
            "layer",
            "fold",
            "register",
            "row",
            "col",
            "cycle",
            "mask",
            "kind",
        )
    }
    return replace(first, **columns)


# --------------------------------------------------------------------------- allocation
@dataclass(frozen=True)
class AllocationSettings:
    """How injections are allocated to a design's strata (see :func:`adaptive_estimate`)."""

    confidence: float = 0.95
    precision: float = 0.2  # target half-width of the interval, relative to the estimate
    pilot: int = 64  # injections per exposed stratum before Neyman rounds
    max_injections: int = 200_000  # per design (records are shared, so usually fewer run)
    rounds: int = 4


def adaptive_estimate(
    store: StratifiedInjections,
    weights: np.ndarray,
    *,
    settings: AllocationSettings = AllocationSettings(),
    target: float | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """(estimate, trials per stratum): a pilot, then Neyman rounds until the relative
    precision is reached, the decision against ``target`` is clear (upper <= target, or lo >
    target), or the budget is spent. Deterministic in (design, records)."""
    from .stats import normal_quantile

    weights = np.asarray(weights, dtype=float)
    live = weights > 0
    trials = np.where(live, settings.pilot, 0).astype(np.int64)
    budget = max(settings.max_injections, int(trials.sum()))
    z = normal_quantile(settings.confidence)
    est: dict[str, Any] = {}
    for round_ in range(settings.rounds + 1):
        store.ensure(trials)
        est = store.estimate(weights, trials, confidence=settings.confidence)
        lam, lo, hi = (
            est["expected_failures"],
            est["expected_failures_lo"],
            est["expected_failures_hi"],
        )
        precise = lam > 0 and (hi - lo) / 2 <= settings.precision * lam
        decided = target is not None and (est["upper"] <= target or est["lo"] > target)
        nothing_exposed = not live.any()  # e.g. every bit hardened: Λ is exactly 0
        if (
            precise
            or decided
            or nothing_exposed
            or round_ == settings.rounds
            or (trials.sum() >= budget)
        ):
            break
        failures = store.failures(trials)
        p = (failures + 1.0) / (trials + 2.0)  # Laplace: a stratum without failure still counts
        spread = weights * np.sqrt(p * (1 - p))
        scale = max(lam, float(np.sum(weights * p)) * 0.1, 1e-300)
        total = (z / settings.precision) ** 2 * spread.sum() ** 2 / scale**2
        total = min(total, budget, 4 * trials.sum())  # a noisy pilot must not overshoot
        wanted = np.where(live, np.ceil(total * spread / max(spread.sum(), 1e-300)), 0)
        new = np.maximum(trials, wanted.astype(np.int64))
        if new.sum() > budget:  # spend what is left in proportion to the shortfall
            extra = (new - trials).astype(float)
            room = budget - trials.sum()
            new = trials + np.floor(extra * room / extra.sum()).astype(np.int64)
        if np.array_equal(new, trials):
            break
        trials = new
    est["precision_reached"] = bool(
        est["expected_failures"] > 0
        and (est["expected_failures_hi"] - est["expected_failures_lo"]) / 2
        <= settings.precision * est["expected_failures"]
    )
    return est, trials


# --------------------------------------------------------------------------- what to protect
def rank_bits(
    store: StratifiedInjections, weights: np.ndarray, trials: np.ndarray
) -> dict[str, list[int]]:
    """Per register class, bit positions by descending contribution to the expected failures
    (Σ over layers of w_h k_h / n_h; ties: the higher bit first)."""
    failures = store.failures(trials)
    share = np.where(trials > 0, weights * failures / np.maximum(trials, 1), 0.0)
    totals: dict[str, dict[int, float]] = {}
    for h, stratum in enumerate(store.strata):
        by_bit = totals.setdefault(stratum.register, {})
        by_bit[stratum.bit] = by_bit.get(stratum.bit, 0.0) + float(share[h])
    return {
        register: sorted(by_bit, key=lambda b, d=by_bit: (-d[b], -b))
        for register, by_bit in totals.items()
    }


@dataclass(frozen=True)
class NeuronRanking:
    """Scores (expected failing faults per inference a neuron's column causes) and, per
    layer, whether its neurons differ significantly (chi-squared test of homogeneity of their
    failure rates at ``(1 - confidence) / L``, Bonferroni over the L layers tested). Where they do not, every neuron of the layer gets
    the layer's mean score: protection then follows the layer ranking, which is significant,
    and takes the layer's neurons in index order."""

    scores: dict[str, np.ndarray]
    significant: dict[str, bool]
    p_values: dict[str, float]
    measured: dict[str, np.ndarray]  # per-neuron contribution estimates, before pooling


def rank_neurons(
    store: StratifiedInjections,
    weights: np.ndarray,
    trials: np.ndarray,
    *,
    confidence: float = 0.95,
) -> NeuronRanking:
    from scipy.stats import chi2

    contributions = store.neuron_contributions(trials, weights)
    counts = store.neuron_trials(trials)
    scores, significant, p_values = {}, {}, {}
    # one test per layer that has neurons to rank: Bonferroni keeps the chance that any layer
    # is called significant by luck within 1 - confidence
    tested = max(1, sum(len(v) > 1 for v in contributions.values()))
    for layer, measured in contributions.items():
        n, k = counts[layer]
        seen = n > 0
        total_n, total_k = int(n[seen].sum()), int(k[seen].sum())
        p_value = 1.0
        if seen.sum() > 1 and 0 < total_k < total_n:
            expected_fail = n[seen] * total_k / total_n
            expected_ok = n[seen] - expected_fail
            stat = float(
                np.sum((k[seen] - expected_fail) ** 2 / expected_fail)
                + np.sum((n[seen] - k[seen] - expected_ok) ** 2 / expected_ok)
            )
            p_value = float(chi2.sf(stat, int(seen.sum()) - 1))
        p_values[layer] = p_value
        significant[layer] = p_value < (1.0 - confidence) / tested
        if significant[layer] or not len(measured):
            scores[layer] = measured.copy()
        else:
            scores[layer] = np.full(len(measured), float(measured.mean()))
    return NeuronRanking(scores, significant, p_values, contributions)


def top_neurons(ranking: NeuronRanking, fraction: float) -> dict[str, np.ndarray]:
    """The ``ceil(fraction x neurons)`` highest-scoring neurons over all layers (ties: layer
    order, then index), as sorted channel indices per layer."""
    entries = [
        (-float(score), order, layer, int(n))
        for order, (layer, values) in enumerate(ranking.scores.items())
        for n, score in enumerate(values)
    ]
    count = math.ceil(fraction * len(entries) - 1e-9)
    chosen: dict[str, list[int]] = {}
    for _, _, layer, n in sorted(entries)[:count]:
        chosen.setdefault(layer, []).append(n)
    return {layer: np.asarray(sorted(v), dtype=np.int64) for layer, v in chosen.items()}
