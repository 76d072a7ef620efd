#!/usr/bin/env python3
"""SLAT conformance suite: SLAT's tables walked by independent hardware models.

For every case: write a mapping script, `slat build` it, pick probe addresses
(every mapping, its edges, holes at every level, addresses beyond the input
and output sizes), ask `slat translate` what each access must do, run the
emulator (QEMU for Arm stage 2, Bochs for Intel EPT) with the bare-metal
harness, and compare every probe result with SLAT's answer. Every mismatch is
printed as `MISMATCH <case> <probe>: expected ..., hardware ...`.

`--bite` instead corrupts SLAT's image on purpose (a read-only leaf made
writable, a leaf's output moved by one page, the concatenated root tables
swapped) and passes only if every corruption is caught.

Run through Tests/Conformance/run, which builds the harnesses and `slat`.
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field

PROBE_MAGIC = 0x3142525054414C53  # "SLATPRB1"
STAMP_TAG = 0x57A4 << 48
STAMP_BASE = 0x60000000
STAMP_SIZE = 128 << 20
WRITE_OFFSET = 0x800
EXEC_OFFSET = 0x10
PAGE = 0x1000

OPS = {"r": 0, "w": 1, "x": 2, "atr": 3, "atw": 4}
ACCESS_OF_OP = {"r": "r", "w": "w", "x": "x", "atr": "r", "atw": "w"}
OFFSET_OF_OP = {"r": 0, "w": WRITE_OFFSET, "x": EXEC_OFFSET, "atr": 0, "atw": 0}


# ---------------------------------------------------------------- cases

@dataclass
class Case:
    name: str
    emulator: str            # "qemu" or "bochs"
    format: str
    mappings: list           # mapping-script lines
    ipa_bits: int = None
    pa_bits: int = None
    cpu: str = "max"
    holes: list = field(default_factory=list)   # extra guest addresses to probe
    mutations: list = field(default_factory=list)  # for --bite
    xnx: bool = False        # stage 2: FEAT_XNX (s = EL1-only execute, u = EL0-only execute)
    narrow_pa: int = None    # stage 2: after building, shrink VTCR_EL2.PS (and PA_BITS) to this size
    fwb: bool = False        # stage 2: built with --fwb, walked with HCR_EL2.FWB = 1 (FEAT_S2FWB)
    lpa2: bool = False       # stage 2: built with --lpa2, walked with VTCR_EL2.DS = 1 (FEAT_LPA2)
    start_level: int = None  # stage 2: built with --start-level (Arm ARM level, -1...3)


def s2_permission_pages(first_guest, first_output, page, type_="wb", memory_types=("wt", "nc", "device")):
    """One page per S2AP x XN combination, plus AF clear and every memory type."""
    lines = []
    combos = ["-", "r", "w", "rw", "x", "rx", "wx", "rwx"]
    for i, perms in enumerate(combos):
        lines.append(f"{first_guest + i * page:#x} {page:#x} {first_output + i * page:#x} {perms} {type_}")
    n = len(combos)
    lines.append(f"{first_guest + n * page:#x} {page:#x} {first_output + n * page:#x} rwx wb accessed=0")
    lines.append(f"{first_guest + (n + 1) * page:#x} {page:#x} {first_output + (n + 1) * page:#x} r wb accessed=0")
    for j, memory_type in enumerate(memory_types):
        k = n + 2 + j
        lines.append(f"{first_guest + k * page:#x} {page:#x} {first_output + k * page:#x} rwx {memory_type}")
    return lines


STAGE2_HARNESS = "0x40200000 2M 0x40200000 rwx wb   # the EL2/EL1 harness itself, identity"
EPT_HARNESS = "0x100000 1M 0x100000 rwx wb   # guest code and stack, identity"
EPT_GUEST_PAGING = "0x300000 3M 0x300000 rw wb   # the guest's own page tables, identity"
EPT_HARNESS_RANGE = (0x100000, 0x600000)   # written by the guest itself (stack, paging A/D)


def stage2_cases():
    cases = []
    # 4 KiB granule, 40-bit IPA: start level 1 with two concatenated root tables.
    cases.append(Case(
        "s2-4k-ipa40", "qemu", "s2-4k", ipa_bits=40,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x1000)
        + ["0x80200000 2M 0x60200000 rwx wb          # level-2 block",
           "0x80400000 2M 0x60400000 rw wb accessed=0 # level-2 block, AF clear",
           "0x80600000 2M 0x60600000 r device        # level-2 block, device",
           "0xc0000000 1G 0x40000000 rx wb           # level-1 block",
           "0x8000000000 64K 0x60010000 rw wb leaf=4K # second concatenated root table",
           "0xfffffff000 4K 0x60020000 rwx wb        # last page of the IPA space"],
        holes=[0x0, 0x100000000, 0x80010000, 0x80800000, 0x8000010000, 0x7FFFFFF000,
               0x8040000000, 0x10000000000],
        mutations=["writable", "off-by-page", "swap-root"]))
    # 4 KiB granule, 32-bit IPA: start level 2, four concatenated root tables.
    cases.append(Case(
        "s2-4k-ipa32", "qemu", "s2-4k", ipa_bits=32,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x1000)
        + ["0xc0000000 2M 0x60200000 rw wb",
           "0xffe00000 2M 0x60400000 rwx nc"],
        holes=[0x0, 0x80010000, 0x80200000, 0xc0200000, 0x100000000],
        mutations=["swap-root"]))
    # 4 KiB granule, 48-bit IPA: four levels from level 0.
    cases.append(Case(
        "s2-4k-ipa48", "qemu", "s2-4k", ipa_bits=48,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x1000)
        + ["0xc0000000 1G 0x40000000 rwx wb",
           "0x800000000000 4K 0x60100000 rw wb",
           "0xfffffffff000 4K 0x60101000 rw wb"],
        holes=[0x8000000000, 0x100000000, 0x80200000, 0x80010000, 0x7FFFFFFFF000, 0x1000000000000]))
    # 4 KiB granule on cortex-a57 (PARange 44 bits), 36-bit IPA.
    cases.append(Case(
        "s2-4k-ipa36-a57", "qemu", "s2-4k", ipa_bits=36, pa_bits=40, cpu="cortex-a57",
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x1000)
        + ["0x800000000 1G 0x40000000 rwx wb"],
        holes=[0x0, 0x80200000, 0x80010000, 0x1000000000]))
    # FEAT_XNX (QEMU's max CPU has it): the harness executes at EL1, so `s`
    # (privileged only) and `x` pages execute and `u` (EL0 only) pages fault.
    cases.append(Case(
        "s2-4k-ipa40-xnx", "qemu", "s2-4k", ipa_bits=40, xnx=True,
        mappings=[STAGE2_HARNESS]
        + [f"{0x80000000 + i * PAGE:#x} 4K {0x60000000 + i * PAGE:#x} {p} wb"
           for i, p in enumerate(["x", "s", "u", "rs", "ru", "rws", "rwu", "rwx", "r"])]
        + ["0x80200000 2M 0x60200000 rs wb", "0x80400000 2M 0x60400000 ru wb"],
        holes=[0x80010000]))
    # FEAT_S2FWB (QEMU's max CPU has it): `slat build --fwb` encodes normal
    # write-back as 0b0110 and the harness sets HCR_EL2.FWB, so the stage-2
    # attribute forces the final type; the AT probes' PAR_EL1.ATTR must say
    # write-back, Normal-NC and Device as without FWB (no `wt`: FWB has no
    # write-through encoding). The FWB-off encodings are every other case.
    cases.append(Case(
        "s2-4k-ipa40-fwb", "qemu", "s2-4k", ipa_bits=40, fwb=True,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x1000, memory_types=("nc", "device"))
        + ["0x80200000 2M 0x60200000 rwx wb          # level-2 block",
           "0x80600000 2M 0x60600000 r device        # level-2 block, device",
           "0x80800000 2M 0x60800000 rw nc           # level-2 block, normal-NC",
           "0xc0000000 1G 0x40000000 rx wb           # level-1 block"],
        holes=[0x0, 0x80010000, 0x80a00000],
        mutations=["writable"]))
    cases.append(Case(
        "s2-16k-ipa40-fwb", "qemu", "s2-16k", ipa_bits=40, fwb=True,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x4000, memory_types=("nc", "device"))
        + ["0x82000000 32M 0x62000000 rw wb         # level-2 block"],
        holes=[0x0, 0x80100000]))
    # Output addresses beyond the PA size: `slat build` refuses them, so the
    # tables are built for 48 bits and then walked with VTCR_EL2.PS = 40 bits.
    cases.append(Case(
        "s2-4k-ipa40-ps40", "qemu", "s2-4k", ipa_bits=40, narrow_pa=40,
        mappings=[STAGE2_HARNESS,
                  "0x80000000 4K 0x60000000 rw wb",
                  "0x80001000 4K 0x10000000000 rw wb       # page beyond PS",
                  "0x80200000 2M 0x20000000000 rw wb       # level-2 block beyond PS",
                  "0xc0000000 1G 0xfc0000000 rw wb          # level-1 block just below 2^40",
                  "0x100000000 1G 0x400000000000 rw wb      # level-1 block beyond PS"],
        holes=[0x80002000]))
    # 16 KiB granule (cortex-a57 lacks it: -cpu max), 40-bit IPA: level 2, 16 concatenated.
    cases.append(Case(
        "s2-16k-ipa40", "qemu", "s2-16k", ipa_bits=40,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x4000)
        + ["0x82000000 32M 0x62000000 rwx wb          # level-2 block",
           "0x84000000 32M 0x64000000 r wb accessed=0 # level-2 block, AF clear",
           "0xf000000000 16K 0x60100000 rw wb         # last concatenated root table"],
        holes=[0x0, 0x80100000, 0x86000000, 0x1000000000, 0xf000004000, 0x10000000000],
        mutations=["writable", "off-by-page", "swap-root"]))
    # 16 KiB granule, 47-bit IPA: start level 1... or what SLAT computes.
    cases.append(Case(
        "s2-16k-ipa47", "qemu", "s2-16k", ipa_bits=47,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x4000)
        + ["0x400000000000 32M 0x62000000 rw wt",
           "0x7ffffffc000 16K 0x60100000 rw wb"],
        holes=[0x0, 0x80100000, 0x1000000000, 0x400002000000, 0x800000000000]))
    # 64 KiB granule, 42-bit IPA: start level 2, one table.
    cases.append(Case(
        "s2-64k-ipa42", "qemu", "s2-64k", ipa_bits=42,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x10000)
        + ["0xa0000000 512M 0x60000000 rwx wb          # level-2 block",
           "0xc0000000 512M 0x60000000 r device accessed=0"],
        holes=[0x0, 0x80100000, 0xe0000000, 0x3ffffff0000, 0x40000000000],
        mutations=["writable", "off-by-page"]))
    # 64 KiB granule, 44-bit IPA: level 2 with four concatenated tables.
    cases.append(Case(
        "s2-64k-ipa44", "qemu", "s2-64k", ipa_bits=44,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x10000)
        + ["0xc0000000000 64K 0x60100000 rw wb",
           "0xfffe0000000 512M 0x60000000 rx wb"],
        holes=[0x0, 0x80100000, 0x40000000000, 0xc0000010000, 0x100000000000],
        mutations=["swap-root"]))
    # 64 KiB granule, 48-bit IPA: start level 1.
    cases.append(Case(
        "s2-64k-ipa48", "qemu", "s2-64k", ipa_bits=48,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x10000)
        + ["0x800000000000 64K 0x60100000 rw wb",
           "0xa0000000 512M 0x60000000 rwx wb"],
        holes=[0x0, 0x80100000, 0x40000000000, 0xe0000000, 0x1000000000000]))
    # FEAT_LPA2 (QEMU's max CPU has it at stage 2): `slat build --lpa2` puts
    # OA[51:50] in descriptor bits 9:8 and sets VTCR_EL2.DS. A 52-bit IPA
    # with the 4 KiB granule starts at level 0 with 16 concatenated tables
    # (SLAT's choice), or at level -1 when asked.
    # Outputs above 2^50 are checked by the AT probes (PAR_EL1 holds
    # PA[51:12]); level-0 (512 GiB) and 16 KiB level-1 (64 GiB) blocks exist
    # only with FEAT_LPA2.
    cases.append(Case(
        "s2-4k-ipa52-lpa2", "qemu", "s2-4k", ipa_bits=52, pa_bits=52, lpa2=True,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x1000)
        + ["0x80200000 2M 0x60200000 rwx wb                  # level-2 block",
           "0xc0000000 1G 0x40000000 rx wb                   # level-1 block",
           "0x90000000 4K 0xe000000001000 rw wb              # page above 2^51 + 2^50",
           "0x8000000000 512G 0xc000000000000 rw wb          # level-0 block above 2^51",
           "0x8000000000000 4K 0x4000000002000 r wb          # IPA 2^51, output 2^50 + 8K",
           "0xffffffffff000 4K 0x60020000 rw wb              # last page of the IPA space"],
        holes=[0x0, 0x80010000, 0x1000000000000, 0x4000000000000, 0xffffffffe000],
        mutations=["writable", "swap-root"]))
    cases.append(Case(
        "s2-4k-ipa52-lpa2-level-1", "qemu", "s2-4k", ipa_bits=52, pa_bits=52, lpa2=True, start_level=-1,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x1000)
        + ["0x80200000 2M 0x60200000 rwx wb                  # level-2 block",
           "0x8000000000 512G 0x8000000000000 rw wb          # level-0 block",
           "0x1000000001000 4K 0x60021000 rw wb              # second level -1 entry",
           "0xffffffffff000 4K 0x60020000 rw wb              # last level -1 entry"],
        holes=[0x0, 0x80010000, 0x2000000000000, 0x1000000000000, 0xff00000000000],
        mutations=["writable", "off-by-page"]))
    # 16 KiB with FEAT_LPA2 and a 48-bit IPA (start level 1, two tables),
    # 52-bit PA. QEMU 7.2 refuses a 16 KiB walk that starts at level 0
    # (SL0 = 3, which the Arm ARM allows with DS = 1), so the 52-bit IPA
    # 16 KiB configuration is covered by the unit tests only.
    cases.append(Case(
        "s2-16k-ipa48-lpa2", "qemu", "s2-16k", ipa_bits=48, pa_bits=52, lpa2=True,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x4000)
        + ["0x82000000 32M 0x62000000 rwx wb                 # level-2 block",
           "0x1000000000 64G 0xc000000000000 r wb            # level-1 block above 2^51",
           "0x90000000 16K 0x8000000004000 rw wb             # page above 2^51",
           "0xffffffffc000 16K 0x60100000 rw wb              # last page of the IPA space"],
        holes=[0x0, 0x80100000, 0x800000000000, 0xfff000000000],
        mutations=["writable", "off-by-page", "swap-root"]))
    # 64 KiB granule with a 52-bit PA (FEAT_LPA): OA[51:48] in bits 15:12,
    # and level-1 blocks of 4 TiB.
    cases.append(Case(
        "s2-64k-ipa52-pa52", "qemu", "s2-64k", ipa_bits=52, pa_bits=52,
        mappings=[STAGE2_HARNESS]
        + s2_permission_pages(0x80000000, 0x60000000, 0x10000)
        + ["0xa0000000 512M 0x60000000 rwx wb                # level-2 block",
           "0x40000000000 4T 0xf000000000000 rw wb           # level-1 block above 2^51",
           "0x90000000 64K 0x1000000010000 r wb              # page above 2^48"],
        holes=[0x0, 0x80100000, 0x80000000000, 0xfffffffff0000],
        mutations=["writable", "off-by-page"]))
    return cases


# The PA size each QEMU CPU model reports (ID_AA64MMFR0_EL1.PARange):
# QEMU 7.2's max CPU has 52 bits (FEAT_LPA, FEAT_LPA2).
QEMU_CPU_PARANGE = {"cortex-a57": 44, "max": 52}
# The PA size a case gets unless it names one: 48 is the largest every
# granule encodes without FEAT_LPA2.
QEMU_CPU_PA_BITS = {"cortex-a57": 44, "max": 48}


def case_pa_bits(case):
    """--pa-bits for a case: its own size, which must fit the CPU, or the CPU's."""
    if case.emulator != "qemu":
        return case.pa_bits
    cpu_bits = QEMU_CPU_PARANGE[case.cpu]
    if case.pa_bits and case.pa_bits > cpu_bits:
        raise ValueError(f"{case.name}: --pa-bits {case.pa_bits} exceeds the {cpu_bits} bits of -cpu {case.cpu}")
    return case.pa_bits or QEMU_CPU_PA_BITS[case.cpu]


def ept_permission_pages(first_guest, first_output, extra=""):
    lines = []
    combos = ["-", "r", "w", "rw", "x", "rx", "wx", "rwx"]
    for i, perms in enumerate(combos):
        lines.append(f"{first_guest + i * PAGE:#x} 4K {first_output + i * PAGE:#x} {perms} wb{extra}")
    for j, memory_type in enumerate(["wt", "wp", "wc", "uc"]):
        k = len(combos) + j
        lines.append(f"{first_guest + k * PAGE:#x} 4K {first_output + k * PAGE:#x} rwx {memory_type}{extra}")
    k = len(combos) + 4
    lines.append(f"{first_guest + k * PAGE:#x} 4K {first_output + k * PAGE:#x} rw wb ipat=1{extra}")
    return lines


def ept_cases():
    cases = []
    for fmt, extra in (("ept4-ad", " accessed=0 dirty=0"), ("ept4", "")):
        cases.append(Case(
            fmt, "bochs", fmt,
            mappings=[EPT_HARNESS, EPT_GUEST_PAGING]
            + ept_permission_pages(0x80000000, 0x60000000, extra)
            + [f"0x80200000 2M 0x60200000 rwx wb{extra}   # 2 MiB leaf",
               f"0x80400000 2M 0x60400000 r wb{extra}     # 2 MiB leaf, read-only",
               f"0x80600000 2M 0x60600000 wx wb{extra}    # 2 MiB leaf, write without read",
               f"0xc0000000 1G 0x40000000 rwx wb{extra}   # 1 GiB leaf",
               f"0x00000000 4K 0x60100000 rw wb{extra}    # guest page 0",
               f"0x100000000 1G 0x40000000 r wb{extra}    # 1 GiB leaf above 4 GiB",
               f"0x7ffffff000 4K 0x60101000 rwx wb{extra}  # last page of the first PML4 entry"],
            # Bochs's guest-physical width is 40 bits: two PML4 entries are reachable, the second is a hole.
            holes=[0x1000, 0x40000000, 0x80800000, 0x80010000, 0x80001000 + 0x1000 * 20,
                   0x8000000000, 0xfffffff000, 0x7f00000000, 0x7fffc00000, 0x7fffffe000],
            mutations=["writable", "off-by-page"] if fmt == "ept4-ad" else []))
    # More than 128 KiB of tables (Bochs loads only that much of one file):
    # 48 pages each in its own 2 MiB region, so each has a page table of its
    # own and the last ones lie far past 128 KiB into the image.
    cases.append(Case(
        "ept4-large", "bochs", "ept4",
        mappings=[EPT_HARNESS, EPT_GUEST_PAGING]
        + [f"{0x90000000 + i * 0x200000:#x} 4K {0x60000000 + i * PAGE:#x} {'rw' if i % 2 else 'r'} wb" for i in range(48)],
        holes=[0x90001000, 0x90000000 + 47 * 0x200000 + PAGE]))
    return cases


# ---------------------------------------------------------------- helpers

def number(text):
    text = text.replace("_", "")
    multiplier = 1
    if text[-1] in "KMGT":
        multiplier = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[text[-1]]
        text = text[:-1]
    return int(text, 0) * multiplier


@dataclass
class Mapping:
    guest: int
    size: int
    output: int
    perms: str
    memory_type: str
    keys: dict


def parse_mappings(lines):
    result = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        keys = dict(p.split("=", 1) for p in parts[5:])
        result.append(Mapping(number(parts[0]), number(parts[1]), number(parts[2]), parts[3], parts[4], keys))
    return result


def read_env(path):
    values = {}
    for line in open(path):
        line = line.strip()
        if "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def in_stamp(pa):
    return STAMP_BASE <= pa < STAMP_BASE + STAMP_SIZE


def run(cmd, timeout, **kwargs):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True,
                          errors="replace", **kwargs)


TRANSLATE_OK = re.compile(r"^(0x[0-9a-fA-F]+)\s+->\s+(0x[0-9a-fA-F]+)\s+(.*)$")
TRANSLATE_FAULT = re.compile(r"^(0x[0-9a-fA-F]+)\s+fault=(\S+)\s+level=(-?\d+)(.*)$")


@dataclass
class Translation:
    fault: str = None        # None, "not-present", "permission", "misconfiguration"
    level: int = None
    output: int = None
    size: int = None
    perms: str = ""
    memory_type: str = ""
    accessed: bool = True
    text: str = ""


def slat_translate(slat, workdir, addresses, access):
    """SLAT's answer for each address, for one access kind."""
    results = {}
    addresses = sorted(set(addresses))
    for start in range(0, len(addresses), 200):
        chunk = addresses[start:start + 200]
        cmd = [slat, "translate", os.path.join(workdir, "tables.bin"), "--registers",
               os.path.join(workdir, "registers.env"), "--access", access] + [hex(a) for a in chunk]
        proc = run(cmd, 60)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"slat translate failed ({proc.returncode}):\n{proc.stdout}")
        for line in proc.stdout.splitlines():
            line = line.strip()
            m = TRANSLATE_OK.match(line)
            if m:
                attrs = dict(kv.split("=", 1) for kv in m.group(3).split() if "=" in kv)
                flags = [kv for kv in m.group(3).split() if "=" not in kv]
                results[int(m.group(1), 16)] = Translation(
                    output=int(m.group(2), 16), level=int(attrs.get("level", "-1")),
                    size=number(attrs["size"]) if "size" in attrs else None,
                    perms=attrs.get("perms", ""), memory_type=attrs.get("type", ""),
                    accessed="accessed" in flags, text=line)
                continue
            m = TRANSLATE_FAULT.match(line)
            if m:
                results[int(m.group(1), 16)] = Translation(fault=m.group(2), level=int(m.group(3)), text=line)
    missing = [hex(a) for a in addresses if a not in results]
    if missing:
        raise RuntimeError(f"slat translate gave no answer for {', '.join(missing[:5])}")
    return results


# ---------------------------------------------------------------- probes

@dataclass
class Probe:
    op: str
    address: int


def choose_probes(case, mappings):
    is_stage2 = case.emulator == "qemu"
    ops = ["r", "w", "x", "atr", "atw"] if is_stage2 else ["r", "w", "x"]
    harness_count = 1 if is_stage2 else 2
    probes = []
    seen = set()

    def add(op, page_address):
        address = page_address + OFFSET_OF_OP[op]
        if (op, address) not in seen:
            seen.add((op, address))
            probes.append(Probe(op, address))

    for m in mappings[harness_count:]:
        offsets = {0, m.size - PAGE, (m.size // 2) & ~(PAGE - 1)}
        if m.output < STAMP_BASE < m.output + m.size:
            offsets.add(STAMP_BASE - m.output)
        for offset in sorted(offsets):
            page_address = m.guest + offset
            for op in ops:
                beyond_pa = case.narrow_pa and m.output + offset >= 1 << case.narrow_pa
                if op in ("r", "w", "x") and not in_stamp(m.output + offset) and not beyond_pa:
                    continue   # EL1/guest accesses only where the stamp says where they landed
                add(op, page_address)
    for hole in case.holes:
        for op in ops:
            add(op, hole)
    # a page just past each mapping (often a hole at the leaf level)
    for m in mappings[harness_count:]:
        after = m.guest + m.size
        if any(n.guest <= after < n.guest + n.size for n in mappings):
            continue
        if case.ipa_bits and after >= 1 << case.ipa_bits:
            continue
        if not is_stage2 and after >= 1 << 40:
            continue
        add("r", after)
        if is_stage2:
            add("atr", after)
    return probes


# ---------------------------------------------------------------- expectations

S2_FAULT_CODE = {"address-size": 0b000000, "translation": 0b000100, "access-flag": 0b001000, "permission": 0b001100}
# Level -1 (FEAT_LPA2) has its own status codes (Arm ARM, ESR_ELx.DFSC).
S2_FAULT_CODE_LEVEL_MINUS_1 = {"address-size": 0b101001, "translation": 0b101011}


def s2_fault_status(name, level):
    if level == -1:
        return S2_FAULT_CODE_LEVEL_MINUS_1.get(name, -1)
    return S2_FAULT_CODE.get(name, -1) | (level & 3)


def leaf_for(leaves, address):
    for leaf in leaves:
        if leaf["guest"] <= address < leaf["guest"] + leaf["size"]:
            return leaf
    return None


def s2_expected_fault(translation, leaf):
    """(fault name, level) the stage-2 walker must report, or None for success: SLAT's answer.

    `outside-address-space` (an IPA beyond VTCR_EL2.T0SZ) is a translation
    fault at level 0 in the Arm ARM's pseudocode (AArch64.S2Walk), whatever
    the start level; `slat translate` prints the start level with it."""
    if translation.fault is None:
        return None
    if translation.fault == "outside-address-space":
        return ("translation", 0)
    if translation.fault == "not-present":
        return ("translation", translation.level)
    return (translation.fault, translation.level)


def parse_results(text):
    results = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("P "):
            continue
        parts = line.split()
        index = int(parts[1])
        fields = dict(p.split("=", 1) for p in parts[4:] if "=" in p)
        fields = {k: (int(v, 16) if v.startswith("0x") else v) for k, v in fields.items()}
        status = parts[4] if len(parts) > 4 and "=" not in parts[4] else ("at" if parts[2].startswith("at") else "?")
        results[index] = (status, fields, line)
    return results


def compare_stage2(case, probe, translation, leaf, result):
    """A list of mismatch descriptions (empty when the hardware agrees)."""
    expected_fault = s2_expected_fault(translation, leaf)
    status, fields, line = result
    problems = []
    if probe.op in ("atr", "atw"):
        par = fields.get("par")
        if par is None:
            return [f"no PAR in '{line}'"]
        if expected_fault:
            name, level = expected_fault
            fst = (par >> 1) & 0x3F
            want = s2_fault_status(name, level)
            if not par & 1:
                problems.append(f"expected {name} fault level {level}, hardware PAR translates to {par & 0xFFFFFFFFF000:#x}")
            elif fst != want or not (par >> 9) & 1:
                problems.append(f"expected stage-2 {name} fault level {level} (FST {want:#x}), hardware PAR FST {fst:#x} S={(par >> 9) & 1}")
            return problems
        if par & 1:
            problems.append(f"expected {translation.output:#x}, hardware PAR faults FST {(par >> 1) & 0x3F:#x}")
            return problems
        pa = par & 0x000FFFFFFFFFF000
        if pa != translation.output & ~0xFFF:
            problems.append(f"expected output {translation.output:#x}, hardware PAR {pa:#x}")
        attr, sh = par >> 56, (par >> 7) & 3
        mt = translation.memory_type
        ok_attr = {"device": attr >> 4 == 0 and (attr & 0xC) in (0x0, 0x4),
                   "nc": attr == 0x44,
                   "wt": (attr >> 4) & 0xC == 0x8 and attr & 0xC == 0x8,
                   "wb": (attr >> 4) & 0xC == 0xC and attr & 0xC == 0xC}.get(mt)
        if ok_attr is None:
            problems.append(f"unknown memory type '{mt}' from slat translate")
        elif not ok_attr:
            problems.append(f"expected memory type {mt}, hardware PAR.ATTR {attr:#04x}")
        want_sh = 2 if mt in ("device", "nc") else 3
        if sh != want_sh:
            problems.append(f"expected shareability {want_sh}, hardware PAR.SH {sh}")
        return problems
    if expected_fault:
        name, level = expected_fault
        if status != "abort":
            problems.append(f"expected stage-2 {name} fault level {level}, hardware: {status} {fields}")
            return problems
        esr = fields["esr"]
        ec, fsc = esr >> 26, esr & 0x3F
        want = s2_fault_status(name, level)
        if ec != (0x20 if probe.op == "x" else 0x24):
            problems.append(f"expected exception class {0x20 if probe.op == 'x' else 0x24:#x}, hardware ESR_EL2.EC {ec:#x}")
        if fsc != want:
            problems.append(f"expected stage-2 {name} fault level {level} (FSC {want:#x}), hardware FSC {fsc:#x}")
        if probe.op != "x" and ((esr >> 6) & 1) != (probe.op == "w"):
            problems.append(f"ESR_EL2.WnR {(esr >> 6) & 1} for a {probe.op} access")
        if fields.get("far") != probe.address:
            problems.append(f"FAR_EL2 {fields.get('far'):#x}, expected {probe.address:#x}")
        if fields.get("hpfar", 0) >> 4 != probe.address >> 12:
            problems.append(f"HPFAR_EL2 {fields.get('hpfar'):#x} names IPA page {(fields.get('hpfar', 0) >> 4) << 12:#x}")
        return problems
    return compare_success(probe, translation, status, fields)


def compare_success(probe, translation, status, fields):
    if status != "ok":
        return [f"expected {translation.output:#x} ({translation.text}), hardware: {status} "
                + " ".join(f"{k}={v:#x}" if isinstance(v, int) else f"{k}={v}" for k, v in fields.items())]
    page = translation.output & ~0xFFF
    if probe.op == "r":
        value = fields.get("value")
        want = STAMP_TAG | page if in_stamp(page) else None
        if want is not None and value != want:
            return [f"expected to read the stamp of {page:#x}, hardware read {value:#x}"
                    + (f" (the stamp of {value & 0xFFFFFFFFFFFF:#x})" if value >> 48 == STAMP_TAG >> 48 else "")]
    elif probe.op == "x":
        value = fields.get("value")
        if in_stamp(page) and value != page >> 12:
            return [f"expected to execute in frame {page:#x}, hardware executed in frame {(value or 0) << 12:#x}"]
    elif probe.op == "w":
        wrote = fields.get("wrote")
        if in_stamp(page) and wrote != page + WRITE_OFFSET:
            where = f"{wrote:#x}" if isinstance(wrote, int) else "outside the stamp area"
            return [f"expected the write at {page + WRITE_OFFSET:#x}, hardware wrote {where}"]
    return []


EPT_ACCESS_BIT = {"r": 1, "w": 2, "x": 4}


def compare_ept(case, probe, translation, leaf, result):
    status, fields, line = result
    if translation.fault == "misconfiguration":
        if status != "misconfig":
            return [f"expected an EPT misconfiguration (exit 49), hardware: {line.split(' ', 4)[-1]}"]
        if fields.get("gpa") != probe.address:
            return [f"misconfiguration GPA {fields.get('gpa'):#x}, expected {probe.address:#x}"]
        return []
    if translation.fault in ("not-present", "permission"):
        if status != "violation":
            return [f"expected an EPT violation ({translation.text}), hardware: {line.split(' ', 4)[-1]}"]
        problems = []
        qual = fields["qual"]
        if qual & 7 != EPT_ACCESS_BIT[probe.op]:
            problems.append(f"qualification access bits {qual & 7:#x}, expected {EPT_ACCESS_BIT[probe.op]:#x}")
        rights = (qual >> 3) & 7
        if translation.fault == "not-present" and rights != 0:
            problems.append(f"qualification says the GPA is mapped with rights {rights:#x}, SLAT says not present")
        if translation.fault == "permission" and leaf is not None:
            want = sum(EPT_ACCESS_BIT[c] for c in leaf["permissions"] if c in "rwx")
            if rights != want:
                problems.append(f"qualification rights {rights:#x}, SLAT's leaf grants {want:#x}")
        if fields.get("gpa") != probe.address:
            problems.append(f"violation GPA {fields.get('gpa'):#x}, expected {probe.address:#x}")
        return problems
    if translation.fault is not None:
        return [f"unknown fault '{translation.fault}' from slat translate"]
    return compare_success(probe, translation, status, fields)


# ---------------------------------------------------------------- EPT accessed/dirty flags

def ept_leaf_entries(tables, base, root):
    """{entry physical address: (guest, size, level)} for every leaf (independent 4-level walk)."""
    leaves = {}

    def word(pa):
        offset = pa - base
        if offset < 0 or offset + 8 > len(tables):
            return 0
        return struct.unpack_from("<Q", tables, offset)[0]

    def walk(table, level, guest):
        shift = 12 + 9 * (level - 1)
        for i in range(512):
            entry_pa = table + 8 * i
            entry = word(entry_pa)
            if entry & 7 == 0:
                continue
            g = guest | (i << shift)
            if level == 1 or (entry >> 7) & 1:
                leaves[entry_pa] = (g, 1 << shift, level)
            else:
                walk(entry & 0x000FFFFFFFFFF000, level - 1, g)

    walk(root, 4, 0)
    return leaves


def check_ept_accessed_dirty(case, env, tables, probes, outcomes, t_lines, ad_enabled):
    problems = []
    base, root = int(env["BASE"], 16), int(env["ROOT"], 16)
    leaves = ept_leaf_entries(tables, base, root)
    changed = {}
    for line in t_lines:
        f = dict(p.split("=", 1) for p in line.split()[1:])
        changed[int(f["pa"], 16)] = (int(f["old"], 16), int(f["new"], 16))
    if not ad_enabled:
        for pa, (old, new) in changed.items():
            problems.append(f"table word {pa:#x} changed {old:#x} -> {new:#x} with A/D disabled in the EPTP")
        return problems
    for pa, (old, new) in changed.items():
        if (old ^ new) & ~0x300:
            problems.append(f"table word {pa:#x} changed beyond the A/D bits: {old:#x} -> {new:#x}")
    for probe, ok in zip(probes, outcomes):
        if not ok:
            continue
        entry = next((pa for pa, (g, size, _) in leaves.items() if g <= probe.address < g + size), None)
        if entry is None:
            continue
        old, new = changed.get(entry, (None, None))
        final = new if new is not None else struct.unpack_from("<Q", tables, entry - base)[0]
        if not (final >> 8) & 1:
            problems.append(f"{probe.op} {probe.address:#x} succeeded but its leaf {entry:#x} has no accessed flag")
        if probe.op == "w" and not (final >> 9) & 1:
            problems.append(f"w {probe.address:#x} succeeded but its leaf {entry:#x} has no dirty flag")
    written_leaves = set()
    for probe, ok in zip(probes, outcomes):
        if ok and probe.op == "w":
            entry = next((pa for pa, (g, size, _) in leaves.items() if g <= probe.address < g + size), None)
            written_leaves.add(entry)
    for pa, (old, new) in changed.items():
        if pa in leaves and (new >> 9) & 1 and not (old >> 9) & 1 and pa not in written_leaves:
            g = leaves[pa][0]
            if not (EPT_HARNESS_RANGE[0] <= g < EPT_HARNESS_RANGE[1]):   # guest stack, guest paging A/D
                problems.append(f"leaf {pa:#x} (guest {g:#x}) became dirty without a write probe")
    return problems


# ---------------------------------------------------------------- emulators

HCR_EL2_FWB = 1 << 46   # FEAT_S2FWB: stage-2 MemAttr forces the final memory type


def write_probe_list(path, header, probes):
    with open(path, "wb") as f:
        f.write(struct.pack("<8Q", *(header + [0] * (8 - len(header)))))
        for p in probes:
            f.write(struct.pack("<2Q", p.address, OPS[p.op]))


def run_qemu(case, workdir, harness_dir, tables_path, env, probes, timeout):
    write_probe_list(os.path.join(workdir, "probes.bin"),
                     [PROBE_MAGIC, len(probes), int(env["VTCR"], 16), int(env["VTTBR"], 16), STAMP_BASE, STAMP_SIZE,
                      HCR_EL2_FWB if int(env.get("FWB", "0x0"), 16) else 0],
                     probes)
    cmd = ["qemu-system-aarch64", "-M", "virt,virtualization=on", "-cpu", case.cpu, "-m", "2G",
           "-nodefaults", "-nographic", "-display", "none", "-monitor", "none", "-serial", "stdio",
           "-device", f"loader,file={os.path.join(harness_dir, 'stage2-harness.bin')},addr=0x40200000,force-raw=on,cpu-num=0",
           "-device", f"loader,file={os.path.join(workdir, 'probes.bin')},addr=0x40400000,force-raw=on",
           "-device", f"loader,file={tables_path},addr={env['BASE']},force-raw=on"]
    proc = run(["timeout", str(timeout)] + cmd, timeout + 10)
    return proc.stdout


# Bochs 2.7 loads only the first 128 KiB of a file given with optramimage
# (the rest of the file reads as zero in the guest), so no file the suite
# hands it may be larger.
BOCHS_OPTRAMIMAGE_LIMIT = 128 << 10


def run_bochs(case, workdir, harness_dir, tables_path, env, probes, timeout, whole_image=False):
    tables = open(tables_path, "rb").read()
    base = int(env["BASE"], 16)
    # The image travels as its nonzero words after the probes; the harness
    # writes them to memory before the run (RAM starts zeroed).
    words = [] if whole_image else [(base + offset, struct.unpack_from("<Q", tables, offset)[0])
                                    for offset in range(0, len(tables), 8)
                                    if struct.unpack_from("<Q", tables, offset)[0]]
    probes_path = os.path.join(workdir, "probes.bin")
    write_probe_list(probes_path,
                     [PROBE_MAGIC, len(probes), int(env["EPTP"], 16), STAMP_BASE, STAMP_SIZE,
                      base, len(tables), len(words)], probes)
    with open(probes_path, "ab") as f:
        for address, value in words:
            f.write(struct.pack("<2Q", address, value))
    if os.path.getsize(probes_path) > BOCHS_OPTRAMIMAGE_LIMIT:
        raise RuntimeError(f"{case.name}: probes and table words take {os.path.getsize(probes_path)} bytes, "
                           f"more than the {BOCHS_OPTRAMIMAGE_LIMIT} Bochs loads from one file")
    # --bochs-whole-image: the old way, tables.bin as one optramimage (shows the 128 KiB limit).
    tables_line = f"optramimage3: file={tables_path}, address={env['BASE']}\n" if whole_image else ""
    rc = os.path.join(workdir, "bochsrc")
    with open(rc, "w") as f:
        f.write(f"""megs: 2048
cpu: model=corei7_skylake_x, ips=100000000
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
display_library: rfb, options="timeout=0"
port_e9_hack: enabled=1
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
boot: floppy
floppya: 1_44={os.path.join(harness_dir, 'floppy.img')}, status=inserted
optramimage1: file={os.path.join(harness_dir, 'ept-harness.bin')}, address=0x100000
optramimage2: file={os.path.join(workdir, 'probes.bin')}, address=0x200000
{tables_line}log: {os.path.join(workdir, 'bochs.log')}
panic: action=fatal
error: action=report
info: action=ignore
""")
    debugger = os.path.join(workdir, "bochs-debugger.rc")
    with open(debugger, "w") as f:
        f.write("c\n")
    # Debian's bochs is built with its debugger: "c" continues; port 0x8900 "Shutdown" ends it.
    proc = run(["timeout", str(timeout), "bochs", "-f", rc, "-rc", debugger], timeout + 10, stdin=subprocess.DEVNULL,
               cwd=workdir)
    return proc.stdout


# ---------------------------------------------------------------- mutations (--bite)

def find_leaf_word(tables, leaf, is_stage2):
    """Offset in tables.bin of the descriptor of a 4 KiB-class leaf (found by its output address)."""
    mask = 0x0000FFFFFFFFF000
    hits = []
    for offset in range(0, len(tables), 8):
        w = struct.unpack_from("<Q", tables, offset)[0]
        if w & mask != leaf["output"]:
            continue
        if is_stage2 and w & 3 == 0:
            continue
        if not is_stage2 and w & 7 == 0 and leaf["permissions"] not in ("", "-"):
            continue
        hits.append(offset)
    return hits[0] if len(hits) == 1 else None


def mutate(kind, case, tables, env, leaves):
    """Returns (mutated bytes, description)."""
    is_stage2 = case.emulator == "qemu"
    data = bytearray(tables)
    page_leaves = [l for l in leaves if l["level"] == (3 if is_stage2 else 1) and in_stamp(l["output"])]
    if kind == "writable":
        leaf = next(l for l in page_leaves if l["permissions"].replace("-", "") == "r")
        offset = find_leaf_word(tables, leaf, is_stage2)
        w = struct.unpack_from("<Q", data, offset)[0]
        w |= (1 << 7) if is_stage2 else (1 << 1)
        struct.pack_into("<Q", data, offset, w)
        return bytes(data), f"read-only leaf for {leaf['guest']:#x} made writable"
    if kind == "off-by-page":
        leaf = next(l for l in page_leaves if "r" in l["permissions"] and "w" in l["permissions"])
        offset = find_leaf_word(tables, leaf, is_stage2)
        w = struct.unpack_from("<Q", data, offset)[0]
        page = int(env.get("GRANULE", "0x1000"), 0)   # one page of the granule (QEMU ignores the bits below it)
        struct.pack_into("<Q", data, offset, w + page)
        return bytes(data), f"leaf for {leaf['guest']:#x} moved from {leaf['output']:#x} to {leaf['output'] + page:#x}"
    if kind == "swap-root":
        granule = int(env["GRANULE"], 0)
        count = int(env["ROOT_TABLES"], 0)
        if count < 2:
            raise RuntimeError(f"{case.name}: swap-root needs concatenated root tables, SLAT built {count}")
        root = int(env["ROOT"], 16) - int(env["BASE"], 16)
        first = data[root:root + granule]
        last = data[root + (count - 1) * granule:root + count * granule]
        data[root:root + granule] = last
        data[root + (count - 1) * granule:root + count * granule] = first
        return bytes(data), f"concatenated root tables 0 and {count - 1} (of {count}) swapped"
    raise ValueError(kind)


# ---------------------------------------------------------------- driver

def run_case(case, args, harness_dir, mutation=None):
    workdir = os.path.join(args.work, case.name + (f"-{mutation}" if mutation else ""))
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    map_path = os.path.join(workdir, "mappings.map")
    with open(map_path, "w") as f:
        f.write(f"# conformance case {case.name}\n" + "\n".join(case.mappings) + "\n")
    build = [args.slat, "build", "--format", case.format, "--map", map_path, "--out", workdir]
    if case.ipa_bits:
        build += ["--ipa-bits", str(case.ipa_bits)]
    pa_bits = case_pa_bits(case)
    if pa_bits:
        build += ["--pa-bits", str(pa_bits)]
    if case.xnx:
        build += ["--xnx"]
    if case.fwb:
        build += ["--fwb"]
    if case.lpa2:
        build += ["--lpa2"]
    if case.start_level is not None:
        build += ["--start-level", str(case.start_level)]
    proc = run(build, 120)
    if proc.returncode != 0:
        return [f"FAIL {case.name}: slat build exited {proc.returncode}:\n{proc.stdout}"], 0
    env_path = os.path.join(workdir, "registers.env")
    env = read_env(env_path)
    if case.narrow_pa:
        ps = {32: 0, 36: 1, 40: 2, 42: 3, 44: 4, 48: 5, 52: 6}[case.narrow_pa]
        env["VTCR"] = hex((int(env["VTCR"], 16) & ~(7 << 16)) | (ps << 16))
        env["PA_BITS"] = hex(case.narrow_pa)
        with open(env_path, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in env.items()))
    leaves = json.load(open(os.path.join(workdir, "mappings.json")))["leaves"]
    for leaf in leaves:
        for key in ("guest", "size", "output"):
            if isinstance(leaf[key], str):
                leaf[key] = number(leaf[key])
        leaf["permissions"] = leaf.get("permissions", "")
    mappings = parse_mappings(case.mappings)
    probes = choose_probes(case, mappings)
    translations = {}
    for access in ("r", "w", "x"):
        addresses = [p.address for p in probes if ACCESS_OF_OP[p.op] == access]
        if addresses:
            translations[access] = slat_translate(args.slat, workdir, addresses, access)

    problems = []
    # SLAT against the mapping script itself: the output each mapping asked for.
    for p in probes:
        t = translations[ACCESS_OF_OP[p.op]][p.address]
        m = next((m for m in mappings if m.guest <= p.address < m.guest + m.size), None)
        if t.output is not None and m is not None and t.output != m.output + (p.address - m.guest):
            problems.append(f"MISMATCH {case.name} slat-translate {p.address:#x}: the script maps it to "
                            f"{m.output + (p.address - m.guest):#x}, slat translate says {t.output:#x}")

    tables_path = os.path.join(workdir, "tables.bin")
    tables = open(tables_path, "rb").read()
    if mutation:
        mutated, description = mutate(mutation, case, tables, env, leaves)
        tables_path = os.path.join(workdir, "tables-mutated.bin")
        open(tables_path, "wb").write(mutated)
        print(f"  {case.name}: {description}")

    if case.emulator == "qemu":
        output = run_qemu(case, workdir, harness_dir, tables_path, env, probes, args.timeout)
    else:
        output = run_bochs(case, workdir, harness_dir, tables_path, env, probes, args.timeout, args.bochs_whole_image)
    open(os.path.join(workdir, "emulator.out"), "w").write(output)
    results = parse_results(output)
    if f"END {len(probes)}" not in output:
        problems.append(f"MISMATCH {case.name}: the harness did not finish (see {workdir}/emulator.out):\n"
                        + "\n".join(output.splitlines()[-8:]))
    compare = compare_stage2 if case.emulator == "qemu" else compare_ept
    outcomes = []
    for i, p in enumerate(probes):
        t = translations[ACCESS_OF_OP[p.op]][p.address]
        leaf = leaf_for(leaves, p.address)
        if i not in results:
            outcomes.append(False)
            if f"END {len(probes)}" in output:
                problems.append(f"MISMATCH {case.name} {p.op} {p.address:#x}: no result")
            continue
        outcomes.append(results[i][0] == "ok")
        found = compare(case, p, t, leaf, results[i])
        for problem in found:
            problems.append(f"MISMATCH {case.name} {p.op} {p.address:#x}: {problem}  [slat: {t.text}]")
    if case.emulator == "bochs":
        t_lines = [l.strip() for l in output.splitlines() if l.startswith("T ")]
        for problem in check_ept_accessed_dirty(case, env, tables, probes, outcomes, t_lines,
                                                (int(env["EPTP"], 16) >> 6) & 1):
            problems.append(f"MISMATCH {case.name} accessed/dirty: {problem}")
    return problems, len(probes)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slat", required=True)
    parser.add_argument("--harness", required=True, help="folder with the built harnesses")
    parser.add_argument("--work", required=True)
    parser.add_argument("--only", help="regular expression on case names")
    parser.add_argument("--bite", action="store_true", help="corrupt the tables; pass only if every corruption is caught")
    parser.add_argument("--skip", default="", help="comma-separated emulators to skip (qemu,bochs)")
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--bochs-whole-image", action="store_true",
                        help="load tables.bin into Bochs as one optramimage (shows that tables past 128 KiB are lost)")
    args = parser.parse_args()
    cases = [c for c in stage2_cases() + ept_cases()
             if c.emulator not in args.skip.split(",") and (not args.only or re.search(args.only, c.name))]
    failures = 0
    started = time.time()
    if args.bite:
        for case in cases:
            for mutation in case.mutations:
                problems, _ = run_case(case, args, args.harness, mutation)
                named = [p for p in problems if p.startswith("MISMATCH")]
                if named:
                    print(f"caught {case.name} {mutation}: {len(named)} mismatching probes, e.g.")
                    for p in named[:4]:
                        print("    " + p)
                else:
                    failures += 1
                    print(f"NOT CAUGHT {case.name} {mutation}: the emulator agreed with SLAT on the corrupted tables")
                    for p in problems:
                        print("    " + p)
        print(f"bite: {'FAIL' if failures else 'PASS'} ({failures} corruptions not caught, {time.time() - started:.1f} s)")
        return 1 if failures else 0
    total = 0
    for case in cases:
        t0 = time.time()
        problems, count = run_case(case, args, args.harness)
        total += count
        if problems:
            failures += 1
            print(f"FAIL {case.name}: {len(problems)} mismatches in {count} probes ({time.time() - t0:.1f} s)")
            for p in problems:
                print("  " + p)
        else:
            print(f"pass {case.name}: {count} probes agree ({time.time() - t0:.1f} s)")
    print(f"conformance: {'FAIL' if failures else 'PASS'} ({len(cases) - failures}/{len(cases)} cases, {total} probes, "
          f"{time.time() - started:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
