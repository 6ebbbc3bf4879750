"""Area and energy of a design, from the named constants of ``technology:``.

Kept apart from the simulation (ZigZag/Accelergy style): the simulator counts events (MACs,
register-bit-cycles, SRAM and DRAM bytes); this module prices them. Every constant lives in
:class:`accelsim.config.TechnologyConfig` with its published source.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .config import REGISTER_CLASSES, AcceleratorConfig, TechnologyConfig
from .ir import Graph
from .ops import GEMM_OPS


@dataclass(frozen=True)
class RegisterWidths:
    """Bits of each PE register class; the array is built for the widest layer."""

    input: int
    weight: int
    product: int
    accumulator: int

    @classmethod
    def from_bits(cls, a_bits: int, w_bits: int, acc_bits: int) -> RegisterWidths:
        return cls(input=a_bits, weight=w_bits, product=a_bits + w_bits, accumulator=acc_bits)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return self.input + self.weight + self.product + self.accumulator


def register_widths(graph: Graph) -> RegisterWidths:
    """The array's register widths: wide enough for every layer it runs."""
    layers = [n for n in graph.nodes if n.op in GEMM_OPS]
    if not layers:
        return RegisterWidths.from_bits(8, 8, 32)
    a_bits = max(int(graph.tensors[n.inputs[0]].bits) for n in layers)
    w_bits = max(int(n.attrs["w_bits"]) for n in layers)
    acc_bits = max(int(n.attrs["acc_bits"]) for n in layers)
    return RegisterWidths.from_bits(a_bits, w_bits, acc_bits)


@dataclass(frozen=True)
class AreaBreakdown:
    """Silicon area in µm² by component."""

    pe_multipliers_um2: float
    pe_adders_um2: float
    pe_registers_um2: float
    hardening_um2: float
    redundant_units_um2: float
    input_buffer_um2: float
    weight_buffer_um2: float
    output_buffer_um2: float

    @property
    def total_um2(self) -> float:
        return sum(asdict(self).values())

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "total_um2": self.total_um2}


def hardened_bit_count(accel: AcceleratorConfig, widths: RegisterWidths) -> int:
    """Hardened bits per PE (only bit positions that exist in the register count)."""
    hardened = accel.protection.hardened_bits
    width = widths.as_dict()
    return sum(len({b for b in getattr(hardened, c) if b < width[c]}) for c in REGISTER_CLASSES)


def area(accel: AcceleratorConfig, tech: TechnologyConfig, widths: RegisterWidths) -> AreaBreakdown:
    pes = accel.array.rows * accel.array.cols
    mult = tech.mult_area_um2_per_bit2 * widths.input * widths.weight
    adder = tech.add_area_um2_per_bit * widths.accumulator
    hardened_per_pe = hardened_bit_count(accel, widths) * (
        tech.hardened_extra_ffs * tech.ff_area_um2_per_bit + tech.voter_area_um2
    )
    size = accel.protection.redundant_units
    # HyCA-style dot-product unit: S multipliers, an adder tree of S-1 adders plus the
    # accumulator adder, operand/result registers, and a comparator in vote mode.
    redundant = 0.0
    if size:
        redundant = (
            size * mult
            + size * tech.add_area_um2_per_bit * widths.accumulator
            + (2 * size * (widths.input + widths.weight) + widths.accumulator)
            * tech.ff_area_um2_per_bit
        )
        if accel.protection.redundancy_mode == "vote":
            redundant += tech.comparator_area_um2_per_bit * widths.accumulator

    def sram(kib: float) -> float:
        return kib * 1024 * 8 * tech.sram_area_um2_per_bit

    return AreaBreakdown(
        pe_multipliers_um2=pes * mult,
        pe_adders_um2=pes * adder,
        pe_registers_um2=pes * widths.total * tech.ff_area_um2_per_bit,
        hardening_um2=pes * hardened_per_pe,
        redundant_units_um2=redundant,
        input_buffer_um2=sram(accel.buffers.input.capacity_kib),
        weight_buffer_um2=sram(accel.buffers.weight.capacity_kib),
        output_buffer_um2=sram(accel.buffers.output.capacity_kib),
    )


def mac_energy_pj(tech: TechnologyConfig, a_bits: int, w_bits: int, acc_bits: int) -> float:
    return tech.mult_energy_pj_per_bit2 * a_bits * w_bits + tech.add_energy_pj_per_bit * acc_bits


def register_energy_pj(
    tech: TechnologyConfig, accel: AcceleratorConfig, widths: RegisterWidths, cycles: int
) -> float:
    """Clock energy of the array's flip-flops (hardened bits clock their copies too)."""
    pes = accel.array.rows * accel.array.cols
    bits = widths.total + hardened_bit_count(accel, widths) * tech.hardened_extra_ffs
    return pes * bits * cycles * tech.ff_energy_pj_per_bit_cycle


def memory_energy_pj(tech: TechnologyConfig, sram_bytes: float, dram_bytes: float) -> float:
    return sram_bytes * tech.sram_energy_pj_per_byte + dram_bytes * tech.dram_energy_pj_per_byte
