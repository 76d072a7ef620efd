#!/usr/bin/env python3
"""Randomized bad input for the `slat` tool, for a bounded time.

Feeds `slat` mutated mapping scripts, mutated registers files, truncated and
bit-flipped images and extreme options, and checks every run:

- it ends by exiting, never by a signal (a crash or a trap);
- `build`, `translate` and `svg` exit 0 or 2; `dump` exits 0, 2, or 1 when it
  prints malformed entries;
- a refused run (exit 2) prints nothing on stdout and `build` leaves no
  output directory behind;
- each run ends within PER_RUN_SECONDS and stays under PER_RUN_MEMORY_MB of
  resident memory.

A failing run is saved (its files and command line) under --keep and the
script exits 1. Usage:

    fuzz-slat.py --slat .build/debug/slat [--seconds 45] [--seed N] [--keep DIR]
"""

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

PER_RUN_SECONDS = 20
PER_RUN_MEMORY_MB = 1024
FORMATS = ["ept4", "ept5", "ept4-ad", "ept5-ad", "s2-4k", "s2-16k", "s2-64k"]
EXTREME_NUMBERS = ["0", "0x0", "1", "0x1000", "0x10000", "0xfff", "0xfffffffff000", "0x1000000000000",
                   "0xfffffffffffff000", "0xffffffffffffffff", "0x10000000000000000", "18446744073709551615",
                   "4T", "1G", "2M", "64K", "0x40000000000", "0xffffffe000", "-1", "+4096", "0x", "_", "1_000"]
SCRIPT_SEED = """# fuzz seed
0x0          2M    0x80000000   rwx  wb
0x200000     128K  0x80400000   rw   wb      # comment
0x400000     64K   0x90000000   r    wt      accessed=0
0x1000000    32M   0xA2000000   rw   {nc}
0x40000000   1G    0x100000000  rwx  wb      accessed=1
0x9000000    64K   0x9000000    rw   {dev}
"""
STRANGE_BYTES = [b"\r", b"\r\n", b"\n", b"\x0b", b"\x0c", b"\x00", b"\xff", b"\xe9", b"\xc2\xa0", b"\xe2\x80\xa8",
                 b"#", b"=", b" ", b"\t", b"-", b"+", b"leaf=", b"dirty=1", b"ipat=1", b"0x", b"K", b"T"]


def limit_child():
    """In the child: no file it writes may pass 512 MiB and its address space
    4 GiB, so a runaway is caught before it fills the disk or the memory."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 << 20, 512 << 20))
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


class Failure(Exception):
    pass


def mutate_bytes(rng, data, strength=4):
    data = bytearray(data)
    for _ in range(rng.randint(1, strength)):
        choice = rng.random()
        position = rng.randint(0, len(data)) if data else 0
        if choice < 0.25 and data:
            data[min(position, len(data) - 1)] ^= 1 << rng.randint(0, 7)
        elif choice < 0.5:
            data[position:position] = rng.choice(STRANGE_BYTES)
        elif choice < 0.65 and data:
            del data[position:position + rng.randint(1, 8)]
        elif choice < 0.8:
            data[position:position] = rng.choice(EXTREME_NUMBERS).encode()
        else:
            lines = bytes(data).split(b"\n")
            if lines:
                line = rng.choice(lines)
                lines.insert(rng.randint(0, len(lines)), line)
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def mutate_script(rng, format_):
    ept = format_.startswith("ept")
    text = SCRIPT_SEED.format(nc="wc" if ept else "nc", dev="uc" if ept else "device").encode()
    if rng.random() < 0.3:
        # Replace whole fields with extremes.
        lines = []
        for line in text.split(b"\n"):
            fields = line.split()
            if fields and not fields[0].startswith(b"#"):
                fields[rng.randint(0, len(fields) - 1)] = rng.choice(EXTREME_NUMBERS).encode()
            lines.append(b" ".join(fields))
        text = b"\n".join(lines)
    return mutate_bytes(rng, text, strength=2) if rng.random() < 0.8 else text


def extreme_options(rng, format_):
    options = ["--format", format_]
    if rng.random() < 0.4:
        options += ["--base", rng.choice(EXTREME_NUMBERS)]
    if rng.random() < 0.3:
        options += ["--ipa-bits", str(rng.choice([0, 1, 25, 32, 36, 40, 42, 44, 47, 48, 52, 57, 64, 65, 200]))]
    if rng.random() < 0.3:
        options += ["--pa-bits", str(rng.choice([0, 32, 36, 40, 44, 48, 52, 53, 64, 99]))]
    if rng.random() < 0.1:
        options += [rng.choice(["--mbec", "--xnx", "--fwb"])]
    return options


class Fuzzer:
    def __init__(self, slat, work, keep, rng):
        self.slat, self.work, self.keep, self.rng = slat, work, keep, rng
        self.runs = 0
        self.counts = {}
        self.seeds = {}

    def run(self, arguments, allowed, files, out_dir=None):
        self.runs += 1
        started = time.time()
        process = subprocess.Popen([self.slat] + arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL,
                                   preexec_fn=limit_child)
        try:
            stdout, stderr = process.communicate(timeout=PER_RUN_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            self.fail(arguments, files, f"still running after {PER_RUN_SECONDS} s")
        # RUSAGE_CHILDREN's peak is that of the largest child waited for so
        # far, so the first run to pass the limit is the one caught here.
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        status = process.returncode
        key = (arguments[0], status)
        self.counts[key] = self.counts.get(key, 0) + 1
        if status < 0:
            self.fail(arguments, files, f"ended by signal {-status}:\n{stderr.decode(errors='replace')[-2000:]}")
        if status not in allowed:
            self.fail(arguments, files, f"exit status {status} (allowed {sorted(allowed)}):\n{stderr.decode(errors='replace')[-2000:]}")
        if status == 2 and stdout:
            self.fail(arguments, files, f"refused (exit 2) but printed on stdout:\n{stdout.decode(errors='replace')[:500]}")
        if status == 2 and out_dir and os.path.exists(out_dir):
            self.fail(arguments, files, "refused (exit 2) but created its output directory")
        if status == 2 and not stderr:
            self.fail(arguments, files, "refused (exit 2) without a message on stderr")
        if peak_mb > PER_RUN_MEMORY_MB:
            self.fail(arguments, files, f"peak resident memory {peak_mb:.0f} MB > {PER_RUN_MEMORY_MB} MB")
        return status, time.time() - started

    def fail(self, arguments, files, problem):
        os.makedirs(self.keep, exist_ok=True)
        for path in files:
            if os.path.exists(path):
                shutil.copy(path, self.keep)
        with open(os.path.join(self.keep, "command"), "w") as f:
            f.write(" ".join(["slat"] + arguments) + "\n" + problem + "\n")
        raise Failure(f"slat {' '.join(arguments)}\n  {problem}\n  (files kept in {self.keep})")

    def seed_image(self, format_):
        if format_ not in self.seeds:
            directory = os.path.join(self.work, "seed-" + format_)
            script = os.path.join(self.work, "seed-" + format_ + ".map")
            ept = format_.startswith("ept")
            with open(script, "w") as f:
                f.write(SCRIPT_SEED.format(nc="wc" if ept else "nc", dev="uc" if ept else "device"))
            result = subprocess.run([self.slat, "build", "--format", format_, "--map", script, "--out", directory],
                                    capture_output=True, timeout=PER_RUN_SECONDS)
            if result.returncode != 0:
                raise Failure(f"the seed script does not build for {format_}: {result.stderr.decode()}")
            self.seeds[format_] = directory
        return self.seeds[format_]

    def case_build(self, index):
        format_ = self.rng.choice(FORMATS)
        script = os.path.join(self.work, f"case{index}.map")
        with open(script, "wb") as f:
            f.write(mutate_script(self.rng, format_))
        out = os.path.join(self.work, f"case{index}-out")
        self.run(["build"] + extreme_options(self.rng, format_) + ["--map", script, "--out", out], {0, 2}, [script], out)
        shutil.rmtree(out, ignore_errors=True)
        os.remove(script)

    def reader(self, index, tables, registers_options, files):
        command = self.rng.choice(["dump", "translate", "svg"])
        arguments = [command, tables] + registers_options
        if command == "translate":
            if self.rng.random() < 0.3:
                arguments += ["--access", self.rng.choice(["r", "w", "x", "s", "u", "q", "RW"])]
            arguments += [self.rng.choice(EXTREME_NUMBERS) for _ in range(self.rng.randint(1, 4))]
        allowed = {0, 1, 2} if command == "dump" else {0, 2}
        self.run(arguments, allowed, files)

    def case_registers(self, index):
        format_ = self.rng.choice(FORMATS)
        seed = self.seed_image(format_)
        registers = os.path.join(self.work, f"case{index}.env")
        with open(os.path.join(seed, "registers.env"), "rb") as f:
            data = f.read()
        with open(registers, "wb") as f:
            f.write(mutate_bytes(self.rng, data, strength=3))
        self.reader(index, os.path.join(seed, "tables.bin"), ["--registers", registers], [registers])
        os.remove(registers)

    def case_image(self, index):
        format_ = self.rng.choice(FORMATS)
        seed = self.seed_image(format_)
        with open(os.path.join(seed, "tables.bin"), "rb") as f:
            data = bytearray(f.read())
        if self.rng.random() < 0.4:
            data = data[:self.rng.randint(0, len(data))]
        for _ in range(self.rng.randint(1, 64)):
            if data:
                data[self.rng.randrange(len(data))] ^= 1 << self.rng.randint(0, 7)
        tables = os.path.join(self.work, f"case{index}.bin")
        with open(tables, "wb") as f:
            f.write(data)
        options = ["--registers", os.path.join(seed, "registers.env")]
        if self.rng.random() < 0.3:
            options += ["--root", self.rng.choice(EXTREME_NUMBERS)]
        if self.rng.random() < 0.3:
            options += ["--base", self.rng.choice(EXTREME_NUMBERS)]
        self.reader(index, tables, options, [tables])
        os.remove(tables)

    def case_options(self, index):
        format_ = self.rng.choice(FORMATS)
        seed = self.seed_image(format_)
        options = extreme_options(self.rng, format_)
        options += ["--root", self.rng.choice(EXTREME_NUMBERS)]
        if "--base" not in options:
            options += ["--base", self.rng.choice(EXTREME_NUMBERS)]
        self.reader(index, os.path.join(seed, "tables.bin"), options, [])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slat", required=True)
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", default=None, help="where a failing case is saved (default: a temporary folder)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="slat-fuzz-")
    keep = args.keep or tempfile.mkdtemp(prefix="slat-fuzz-failure-")
    fuzzer = Fuzzer(os.path.abspath(args.slat), work, keep, rng)
    started = time.time()
    cases = [fuzzer.case_build, fuzzer.case_build, fuzzer.case_registers, fuzzer.case_image, fuzzer.case_options]
    index = 0
    try:
        while time.time() - started < args.seconds:
            rng.choice(cases)(index)
            index += 1
    except Failure as failure:
        print(f"fuzz-slat: FAIL (seed {seed}, run {fuzzer.runs}):\n{failure}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(keep, ignore_errors=True)
    summary = ", ".join(f"{command} exit {status}: {count}" for (command, status), count in sorted(fuzzer.counts.items()))
    print(f"fuzz-slat: PASS (seed {seed}): {fuzzer.runs} runs in {time.time() - started:.1f} s; {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
