"""agent/precision.py and the bf16 networks: detection, and what runs in which dtype."""

import numpy as np

from agent import networks, precision


def test_detection_reads_the_cpu_flags(tmp_path):
    with_bf16, without = tmp_path / "a", tmp_path / "b"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert precision.cpu_has_native_bf16(with_bf16) and not precision.cpu_has_native_bf16(without)
    assert not precision.cpu_has_native_bf16(tmp_path / "missing")
    assert precision.resolve("float32") == "float32" and precision.resolve("bf16") == "bf16"


def test_bf16_hidden_layers_float32_weights_and_heads():
    model = networks.actor_critic((4, 84, 84), 3, "uint8", "nature", "bf16")
    convs = [layer for layer in model.layers if "conv" in layer.name]
    assert convs and all(layer.compute_dtype == "bfloat16" for layer in convs)
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert [o.dtype for o in model.outputs] == ["float32"] * 3
    reference = networks.actor_critic((4, 84, 84), 3, "uint8", "nature", "float32")
    reference.set_weights(model.get_weights())
    obs = np.random.default_rng(0).integers(0, 255, (16, 4, 84, 84), dtype=np.uint8)
    low, high = model(obs)[0].numpy(), reference(obs)[0].numpy()
    # bf16 keeps ~3 significant digits: the same logits to within a few percent of their spread.
    assert np.abs(low - high).max() < 0.05 * np.abs(high).max() + 1e-3


def test_vector_networks_stay_float32():
    model = networks.actor_critic((4,), 2, "float32", "nature", "bf16")
    assert all(layer.compute_dtype == "float32" for layer in model.layers if layer.weights)


def test_a_warning_only_where_bf16_is_asked_for_and_emulated(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    assert "bf16 is emulated" in precision.warning("bf16") and precision.warning("float32") is None
    assert precision.resolve("auto") == "float32"
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    assert precision.warning("bf16") is None and precision.resolve("auto") == "bf16"
