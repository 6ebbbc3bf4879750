"""SCALE-Sim-compatible compute cycles (``accelerator.timing: scalesim``).

SCALE-Sim 3.0.0 (PyPI ``scalesim``), default ``InterfaceBandwidth = CALC``, counts a layer's
compute cycles ("Total Cycles" of ``COMPUTE_REPORT.csv``) as follows. This module reproduces
that number exactly, for every dataflow and array shape, without importing SCALE-Sim;
``tests/data/scalesim_expected.json`` (written by ``tools/scalesim_reference.py`` from the real
package) holds the cases it is checked against.

Where the number comes from in SCALE-Sim's source
-------------------------------------------------
* ``topology_utils.topologies.topo_calc_hyperparams``: no padding, but
  ``ofmap = ceil((ifmap - filter + stride) / stride)``, i.e. ``ceil((ifmap - filter) / stride)
  + 1``: when the stride does not divide ``ifmap - filter``, the last window overhangs the
  bottom / right edge and its missing pixels are null reads (``operand_matrix``'s
  ``calc_ifmap_elem_addr`` marks them -1). GEMM view: ``M = ofmap_h * ofmap_w``,
  ``K = filter_h * filter_w * channels``, ``N = filters`` (``get_transformed_mnk_dimensions``).
  A GEMM topology row ``M, N, K`` becomes a "conv" with ifmap ``M x K``, filter ``1 x K``, one
  channel (``load_arrays_gemm``): the same M, K, N. A conv row whose name contains ``DP``
  becomes one layer per channel (``load_arrays_conv``).
* ``compute/systolic_compute_{os,ws,is}.py``: the operand matrices are cut into folds, the
  spatial dims ``Sr x Sc`` onto the ``R x C`` array and the temporal dim ``T`` streamed:

  ======  ===========  ===========  ======  =====================================
  df      Sr (rows)    Sc (cols)    T       demand lines per fold
  ======  ===========  ===========  ======  =====================================
  ``os``  M            N            K       ``T + R + C - 2``
  ``ws``  K            N            M       ``2R + C + T - 2``
  ``is``  K            M            N       ``2R + C + T - 2``
  ======  ===========  ===========  ======  =====================================

  ``os`` (``create_ifmap_demand_mat``): T operand lines + ``C - 1`` drain lines, skewed over
  ``R`` rows (``skew_matrix`` adds ``R - 1``). ``ws``/``is``: ``R`` lines to load the
  stationary operand (``inter_fold_gap_prefix``), ``T`` streamed lines, ``C - 1`` drain lines,
  skewed over ``R``. Partial folds are padded with null requests to the full array, so a fold
  costs the same however few PEs it uses. Folds: ``ceil(Sr / R) * ceil(Sc / C)``, back to
  back, none overlapping.
* ``memory/double_buffered_scratchpad_mem.py``, ``service_memory_requests``: one demand line per
  cycle, numbered from 0; "Total Cycles" is ``max(ofmap_serviced_cycles)``, the index of the
  last line, i.e. *lines - 1* when nothing stalls. In CALC mode the read buffers are sized to
  never stall (``read_buffer_estimate_bw``), so::

      total = folds * lines_per_fold - 1

  :func:`scalesim_fold_cycles` charges each fold its lines and takes the 1 off the layer's
  first fold (``first_fold=True``), so that the sum over the folds equals SCALE-Sim's total.

Differences from accelsim's ``accurate`` timing (each is what SCALE-Sim does, on purpose)
-----------------------------------------------------------------------------------------
* Per fold, ``accurate`` (``mapping.fold_cycles`` + ``preload_cycles``) charges ws
  ``rows (preload) + Mt + rows + Nt``, os ``Kt + Mt + Nt``, is ``rows + Nt + rows + Mt``;
  SCALE-Sim charges ``rows + Mt + (rows - 1) + (cols - 1)`` (ws; is with Nt for Mt) and
  ``Kt + (rows - 1) + (cols - 1)`` (os): its drain and skew always span the whole array.
* No fold overlap: the stationary preload of the next fold is not hidden behind the current
  one (the accelerator turns ``double_buffer_weights`` off and charges no separate preload).
* Fold cost depends on the array size, not the tile: a 1-column tail fold costs a full one.
* Ideal memory: CALC mode has no DRAM/SRAM stalls (the controller runs with ideal memory); the
  "Total Cycles (incl. prefetch)" column, which adds DRAM prefetch, is not modelled.
* Padding: a SCALE-Sim topology lists the already padded ifmap and pads nothing, except the
  overhanging last window above; accelsim charges any graph's (padded) GEMM shape the same
  way (``accelsim.topology`` reproduces the overhang with the smallest symmetric padding).
* Batch 1: SCALE-Sim has no batch. With batch b, accelsim's M is ``b * OH * OW``, which is
  what SCALE-Sim would charge for a GEMM row with that M (not b times the layer).
* One M-stream per fold: SCALE-Sim streams all of M in one ``ws`` fold and cuts M into array
  chunks from 0 in ``os``/``is``. accelsim's schedule may first split M into buffer-sized
  m-blocks; the sum then matches SCALE-Sim only if each group is one m-block (``ws``) or the
  block boundaries fall on multiples of ``rows`` (``os``) / ``cols`` (``is``).
* Off by one: SCALE-Sim reports the last cycle's index (see above); the ``-1`` is per
  SCALE-Sim layer, so per group of a grouped (``DP``) convolution.
* Vector ops (pooling, add, requantise-only nodes) do not exist in SCALE-Sim; accelsim still
  charges them to its vector unit.
"""

from __future__ import annotations

import numpy as np

from .codes import DATAFLOWS, DataflowSpec, dataflow_spec


def _check(dataflow: str, dims: dict[str, int]) -> DataflowSpec:
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow {dataflow!r}: one of {', '.join(DATAFLOWS)}")
    for name, value in dims.items():
        if int(value) < 1:
            raise ValueError(f"{name} = {value}: must be >= 1")
    return dataflow_spec(dataflow)


def scalesim_fold_cycles(
    dataflow: str, Mt: int, Kt: int, Nt: int, rows: int, cols: int, *, first_fold: bool = False
) -> int:
    """Cycles SCALE-Sim charges one fold of an ``Mt x Kt x Nt`` tile on a ``rows x cols`` array.

    The fold is one of accelsim's (``mapping.plan_folds``): ``ws`` Kt <= rows, Nt <= cols, all
    M; ``os`` Mt <= rows, Nt <= cols, all K; ``is`` Kt <= rows, Mt <= cols, all N. Only the
    streamed extent (K in ``os``, M in ``ws``, N in ``is``) and the array size matter.
    ``first_fold`` marks the first fold of a layer (of a group): it is one cycle shorter,
    because SCALE-Sim counts cycles from 0.
    """
    spec = _check(dataflow, {"Mt": Mt, "Kt": Kt, "Nt": Nt, "rows": rows, "cols": cols})
    streamed = spec.streamed(Mt, Kt, Nt)
    load = rows if spec.preloads_stationary else 0  # ws/is: the operand enters row by row
    lines = load + streamed + (rows - 1) + (cols - 1)
    return int(lines - 1 if first_fold else lines)


def scalesim_fold_cycles_array(
    dataflow: str,
    Mt: np.ndarray,
    Kt: np.ndarray,
    Nt: np.ndarray,
    rows: int,
    cols: int,
    *,
    first_fold: np.ndarray,
) -> np.ndarray:
    """:func:`scalesim_fold_cycles` of many folds at once (``first_fold`` per fold)."""
    spec = dataflow_spec(dataflow)
    streamed = np.asarray(spec.streamed(np.asarray(Mt), np.asarray(Kt), np.asarray(Nt)))
    load = rows if spec.preloads_stationary else 0
    lines = load + streamed + (rows - 1) + (cols - 1)
    return (lines - np.asarray(first_fold, dtype=np.int64)).astype(np.int64)


def scalesim_fold_count(dataflow: str, M: int, K: int, N: int, rows: int, cols: int) -> int:
    """How many folds SCALE-Sim cuts an ``M x K x N`` GEMM into."""
    spec = _check(dataflow, {"M": M, "K": K, "N": N, "rows": rows, "cols": cols})
    spatial_rows, spatial_cols = spec.spatial(M, K, N)
    return -(-spatial_rows // rows) * -(-spatial_cols // cols)


def scalesim_layer_cycles(
    dataflow: str, M: int, K: int, N: int, rows: int, cols: int, *, groups: int = 1
) -> int:
    """SCALE-Sim's "Total Cycles" for a layer whose GEMM view is ``M x K x N`` per group.

    ``groups > 1`` is a depthwise (``DP``) layer, which SCALE-Sim runs as one layer per group.
    """
    _check(dataflow, {"groups": groups})
    per_fold = scalesim_fold_cycles(dataflow, M, K, N, rows, cols)
    return groups * (scalesim_fold_count(dataflow, M, K, N, rows, cols) * per_fold - 1)
