"""The fault steps of ``run`` and ``inject``, each showing live progress and its report on the
console it is given: the campaign, the vulnerability factors, the protected neurons and the
first-order reliability. Library code with a console, not argument parsing: ``accelsim/cli.py``
(``run``) and ``faults/cli.py`` (``inject``) both call it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

# the live display redraws this often; the SDC figure (an interval) is recomputed as often,
# never per injection: a campaign delivers thousands of results a second
REDRAWS_PER_SECOND = 4


class LiveTally:
    """Running outcome counts of a campaign for its live display: O(1) per result.

    ``add`` only counts; ``sdc_text_if_due`` computes the SDC rate and its interval at most
    :data:`REDRAWS_PER_SECOND` times a second (``clock`` in seconds, injectable for tests).
    """

    def __init__(self, clock=time.monotonic) -> None:
        from .stats import Tally

        self.tally = Tally()
        self._clock = clock
        self._due = clock()  # the first result shows at once

    def add(self, result: dict[str, Any]) -> None:
        self.tally.add(
            masked=result["masked"], top1_changed=result["top1_changed"], rmse=result["rmse"]
        )

    def add_chunk(self, columns) -> None:
        """A chunk of a campaign's columns (:func:`faults.campaign.injection_columns`): its
        counts at once, O(1) Python work per chunk."""
        from .campaign import INJECTION_TABLE, tally_of

        self.tally = self.tally.merge(tally_of(columns.tables[INJECTION_TABLE]))

    def sdc_text(self) -> str:
        """``1.98% [1.63%, 2.40%]``: the SDC rate so far with its Wilson interval."""
        from .report import rate_text
        from .stats import rate_estimate

        return rate_text(rate_estimate(self.tally.sdc, self.tally.count))

    def sdc_text_if_due(self) -> str | None:
        """:meth:`sdc_text` if the last one is 1 / REDRAWS_PER_SECOND old, else None."""
        now = self._clock()
        if now < self._due:
            return None
        self._due = now + 1.0 / REDRAWS_PER_SECOND
        return self.sdc_text()


def run_campaign_with_progress(
    workload,
    out_dir: Path,
    console: Console,
    *,
    injections: int | None = None,
    workers: int | None = None,
    protected=None,
    scheduler: str | None = None,
    dask_workers: int | None = None,
) -> dict[str, Any]:
    """Run the workload's campaign with live progress; render and return its summary.

    ``scheduler`` (or ``DASK_SCHEDULER_ADDRESS``) sends the injections to that Dask cluster,
    ``dask_workers`` starts a local one; otherwise the local process pool runs them.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .campaign import LOG_NAME, CampaignSettings, campaign, prepare
    from .report import render_campaign

    cfg = workload.config.faults
    settings = CampaignSettings.from_config(cfg, source=workload.source)
    total = injections if injections is not None else cfg.injections
    running = LiveTally()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("SDC {task.fields[sdc]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        refresh_per_second=REDRAWS_PER_SECOND,
    ) as progress:
        task = progress.add_task("golden run", total=total, sdc="–")
        context = prepare(workload, settings, samples=cfg.samples, protected=protected)
        progress.update(task, description="faulty inferences")

        def on_chunk(columns) -> None:
            running.add_chunk(columns)
            sdc = running.sdc_text_if_due()
            if sdc is None:
                progress.advance(task, len(columns))
            else:
                progress.update(task, advance=len(columns), sdc=sdc)

        from .campaign import run_injection
        from .dask_executor import executor_from_options

        executor = executor_from_options(
            run_injection, cfg.seed, context, scheduler=scheduler, workers=dask_workers
        )
        try:
            result = campaign(
                workload,
                injections=total,
                settings=settings,
                workers=workers,
                out_dir=out_dir,
                context=context,
                on_chunk=on_chunk,
                executor=executor,
            )
        finally:
            if executor is not None:
                executor.shutdown()
        progress.update(task, sdc=running.sdc_text())  # the last figure, whenever it came
    console.print(render_campaign(result))
    console.print(
        f"wrote [bold]{Path(out_dir) / 'faults.json'}[/] and the resume log "
        f"[bold]{Path(out_dir) / LOG_NAME}[/]"
    )
    return result.to_dict()


def vulnerability_for_run(workload, console: Console):
    """The workload's vulnerability factors (their injection records cached under
    the user cache folder's ``vf/``, so a second run with the same quantisation runs none)."""
    # the status shows before the imports and the golden run, which take a while
    with console.status("vulnerability factors: stratified single-fault injections"):
        from .vulnerability import DEFAULT_CACHE_DIR, vulnerability_factors

        vf = vulnerability_factors(workload, cache_dir=DEFAULT_CACHE_DIR)
    console.print(
        f"vulnerability factors: {vf.injections:,} single-fault injections "
        f"({vf.computed:,} run now, the rest cached)"
    )
    return vf


def protected_neurons_for_run(workload, vf) -> dict[str, list[int]] | None:
    """Neurons the redundant units recompute: the config's list, or its top fraction by the
    NVF ranking (:func:`faults.protection.select_neurons`)."""
    from .protection import select_neurons

    protection = workload.config.accelerator.protection
    if protection.protected_neurons is not None:
        return {k: list(v) for k, v in protection.protected_neurons.items()}
    if protection.protected_fraction > 0 and vf is not None:
        return select_neurons(vf, protection.protected_fraction)
    return None


def protection_for_run(workload, console: Console, vf=None):
    """``(vf, protected)`` of the configured design: its protected neurons (the config's list,
    or its top fraction by NVF, measuring the vulnerability factors when that needs them).
    Every command that runs the design applies this, so none measures an unprotected one."""
    protection = workload.config.accelerator.protection
    if protection.protected_neurons is None and protection.protected_fraction > 0 and vf is None:
        vf = vulnerability_for_run(workload, console)
    return vf, protected_neurons_for_run(workload, vf)


def reliability_for_run(workload, vf, protected, console: Console) -> dict[str, Any]:
    """First-order P(failure) of the configured design at the configured fault rate."""
    from rich.table import Table

    from accelsim.config import FaultsConfig

    from .reliability import first_order_failure
    from .report import interval_text

    cfg = workload.config.faults or FaultsConfig()
    estimate = first_order_failure(
        vf,
        rate=cfg.rate,
        protected=protected,
        hardened=workload.config.accelerator.protection.hardened_bits,
    )
    per = "cycle" if cfg.unit == "bit_cycle" else "inference"
    table = Table(title=f"first-order reliability at {cfg.rate:g} flips per bit per {per}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(
        f"P(failure) per inference, % [{vf.confidence:.0%} CI]",
        interval_text(estimate["failure"], estimate["lo"], estimate["hi"]),
    )
    table.add_row(
        f"upper bound (one-sided {vf.confidence:.0%}), %", interval_text(estimate["upper"])
    )
    table.add_row("expected faults per inference", f"{estimate['expected_faults']:.4g}")
    table.add_row("single-fault injections it rests on", f"{estimate['injections']:,}")
    table.add_row(
        "strata (layer, class, bit) without failure",
        f"{estimate['zero_failure_strata']} of {estimate['strata']}",
    )
    table.add_row("protected neurons", str(sum(len(v) for v in (protected or {}).values())))
    console.print(table)
    return estimate
