"""Numeric precision of the networks: bf16 compute where the hardware has it natively.

bf16 keeps float32's exponent range with an 8-bit mantissa, so no loss scaling is
needed (Kalamkar et al. 2019); weights, optimizer state, losses, log-softmax, values
and normaliser statistics stay float32 (agent/networks.py keeps the heads float32).
"""

CHOICES = ("float32", "bf16", "auto")


def cpu_has_native_bf16(cpuinfo="/proc/cpuinfo"):
    """x86 CPUs with AVX-512 BF16 or AMX do bf16 matrix maths in hardware."""
    try:
        with open(cpuinfo) as f:
            flags = {word for line in f if line.startswith("flags") for word in line.split()}
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve(choice):
    """"auto" -> "bf16" on a GPU or a CPU with native bf16, else "float32"."""
    if choice != "auto":
        return choice
    return "bf16" if native_bf16() else "float32"


def native_bf16():
    """Does this machine do bf16 maths in hardware (a GPU, or a CPU with AVX-512 BF16 / AMX)?"""
    if cpu_has_native_bf16():
        return True
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def warning(choice):
    """A one-line caution when bf16 was asked for where it is emulated, else None."""
    if choice == "bf16" and not native_bf16():
        # Measured on an AVX2-only AMD EPYC (2 cores): a batch-256 Adam step of the Nature
        # CNN took 4.6 s in bf16 against 0.65 s in float32.
        return ("warning: this machine has no native bf16 (no GPU, no AVX-512 BF16 or AMX): bf16 is emulated "
                "and several times slower than float32 here")
    return None
