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
    if cpu_has_native_bf16():
        return "bf16"
    import tensorflow as tf

    return "bf16" if tf.config.list_physical_devices("GPU") else "float32"
