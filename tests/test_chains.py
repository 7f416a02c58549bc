"""Supported chains that were refused (issue 15), each built as in its reproduction, and
random supported chains (a fast subset of bench/random_chains.py): they compile, and the
reference equals Keras (outputs and every binary activation); C-sim and RTL equal the
reference."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bnn2fpga import reference
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends import hls as hls_backend
from bnn2fpga.backends import rtl as rtl_backend
from bnn2fpga.compile import compile_model
from bnn2fpga.ir import Dense, Reshape
from bnn2fpga.testing import keras_mismatches, random_keras_chain, randomise_weights

L = tf.keras.layers
SCALE, BITS = 0.0625, 5


def qkeras_kernel() -> dict:
    from qkeras import binary

    return {"kernel_quantizer": binary(alpha=1), "use_bias": False}


def larq_kernel() -> dict:
    return {"kernel_quantizer": "ste_sign", "use_bias": False}


def q_dense_flatten(bn: bool) -> list:
    """1. QDense(4) -> [BN] -> QActivation('binary') -> Flatten -> QDense(4) -> ... (with no
    BatchNorm before the sign the message said 'int', with one 'float')."""
    from qkeras import QActivation, QDense

    def norm() -> list:
        return [L.BatchNormalization()] if bn else []

    return [L.InputLayer(input_shape=(8,)), QDense(4, **qkeras_kernel()), *norm(),
            QActivation("binary"), L.Flatten(), QDense(4, **qkeras_kernel()), *norm(),
            QActivation("binary"), QDense(2, **qkeras_kernel())]


def q_conv_maxpool() -> list:
    from qkeras import QActivation, QConv2D, QDense

    return [L.InputLayer(input_shape=(6, 6, 1)), QConv2D(3, 3, padding="same", **qkeras_kernel()),
            L.BatchNormalization(), QActivation("binary"), L.MaxPooling2D(),
            QConv2D(4, 2, **qkeras_kernel()), L.BatchNormalization(), QActivation("binary"),
            L.Flatten(), QDense(3, **qkeras_kernel())]


def q_conv_avgpool() -> list:
    from qkeras import QActivation, QConv2D, QDense

    return [L.InputLayer(input_shape=(6, 6, 1)), QConv2D(3, 3, padding="same", **qkeras_kernel()),
            L.BatchNormalization(), QActivation("binary"), L.AveragePooling2D(),
            QActivation("binary"), L.Flatten(), QDense(4, **qkeras_kernel()),
            L.BatchNormalization(), QActivation("binary"), QDense(2, **qkeras_kernel())]


def q_dense_activation_reshape() -> list:
    from qkeras import QActivation, QDense, binary

    return [L.InputLayer(input_shape=(8,)),
            QDense(4, activation=binary(alpha=1), **qkeras_kernel()), L.Reshape((2, 2)),
            L.Flatten(), QDense(4, **qkeras_kernel()), L.BatchNormalization(),
            QActivation("binary"), QDense(2, **qkeras_kernel())]


def double_binary() -> list:
    """2. QActivation('binary') -> QActivation('binary')."""
    from qkeras import QActivation, QDense

    return [L.InputLayer(input_shape=(8,)), QDense(4, **qkeras_kernel()),
            L.BatchNormalization(), QActivation("binary"), QActivation("binary"),
            QDense(2, **qkeras_kernel())]


def binary_then_larq_sign() -> list:
    """2. QActivation('binary') -> QuantDense(input_quantizer='ste_sign')."""
    import larq as lq
    from qkeras import QActivation, QDense

    return [L.InputLayer(input_shape=(8,)), QDense(4, **qkeras_kernel()),
            L.BatchNormalization(), QActivation("binary"),
            lq.layers.QuantDense(2, input_quantizer="ste_sign", **larq_kernel())]


def larq_sign_input_behind_flatten() -> list:
    """3. Input(4,4,1) -> Flatten -> QuantDense(2, input_quantizer='ste_sign')."""
    import larq as lq

    return [L.InputLayer(input_shape=(4, 4, 1)), L.Flatten(),
            lq.layers.QuantDense(2, input_quantizer="ste_sign", **larq_kernel())]


def last_conv_flatten(bn: bool) -> list:
    """4. A last conv, with or without BatchNorm, followed by Flatten."""
    import larq as lq

    norm = [L.BatchNormalization()] if bn else []
    return [L.InputLayer(input_shape=(4, 4, 1)), lq.layers.QuantConv2D(2, 3, **larq_kernel()),
            *norm, L.Flatten()]


REPRODUCTIONS = {
    "dense_sign_flatten_bn": lambda: q_dense_flatten(bn=True),
    "dense_sign_flatten": lambda: q_dense_flatten(bn=False),
    "conv_sign_maxpool": q_conv_maxpool,
    "conv_sign_avgpool_flatten": q_conv_avgpool,
    "dense_activation_reshape_flatten": q_dense_activation_reshape,
    "double_binary": double_binary,
    "binary_then_larq_sign": binary_then_larq_sign,
    "larq_sign_input_behind_flatten": larq_sign_input_behind_flatten,
    "last_conv_flatten": lambda: last_conv_flatten(bn=False),
    "last_conv_bn_flatten": lambda: last_conv_flatten(bn=True),
}


def reproduction(name: str, seed: int = 0):
    """(model, compile options, frames) of one reproduction, seeded."""
    model = tf.keras.Sequential(REPRODUCTIONS[name](), name=name)
    rng = np.random.default_rng(seed)
    randomise_weights(rng, model)
    if name == "larq_sign_input_behind_flatten":  # the model binarises its own input
        x = rng.normal(size=(200, *model.input_shape[1:])).astype(np.float32)
        x[::4] = 0.0
        return model, {}, x
    x = (rng.integers(0, 1 << BITS, (200, *model.input_shape[1:])) * SCALE).astype(np.float32)
    return model, {"input_scale": SCALE, "input_bits": BITS}, x


@pytest.mark.parametrize("name", sorted(REPRODUCTIONS))
def test_reproduction_compiles_and_equals_keras(name):
    model, kwargs, x = reproduction(name)
    graph = compile_model(model, **kwargs)
    assert graph.is_hardware()
    assert keras_mismatches(model, graph, x) == []


def test_larq_sign_input_needs_no_input_format():
    model, kwargs, _ = reproduction("larq_sign_input_behind_flatten")
    assert kwargs == {}
    graph = compile_model(model)
    assert graph.input.out.encoding == "bipolar" and graph.input.quantizer == "sign"
    assert [n.op for n in graph.nodes] == ["input", "reshape", "dense"]
    assert graph.nodes[1].out.encoding == "bipolar"


def test_last_conv_keeps_the_flatten_and_its_accumulator_width():
    model, kwargs, _ = reproduction("last_conv_bn_flatten")
    graph = compile_model(model, **kwargs)
    conv, flat = graph.nodes[1], graph.nodes[2]
    assert isinstance(conv, Dense) and isinstance(flat, Reshape)
    assert flat.out.shape == (8,) and flat.out.encoding == "int"
    assert flat.out.bits == conv.acc_bits == conv.out.bits


def random_chain(seed: int, index: int):
    """The index-th random supported chain of a seeded series (QKeras, Larq, mixed in turn)."""
    library = ("qkeras", "larq", "mixed")[index % 3]
    return random_keras_chain(np.random.default_rng([seed, index]), library)


@pytest.mark.parametrize("index", range(15))
def test_random_chain_compiles_and_equals_keras(index):
    chain = random_chain(15, index)
    graph = compile_model(chain.model, **chain.compile_kwargs)
    problems = keras_mismatches(chain.model, graph, chain.x)
    assert problems == [], " -> ".join(chain.layers)


@pytest.mark.slow
def test_chains_csim_and_rtl_equal_reference(tmp_path):
    """Every reproduction and three random chains: C-sim and Verilator RTL output codes equal
    the reference's (one build per engine)."""
    cases = [reproduction(name) for name in sorted(REPRODUCTIONS)]
    cases += [(c.model, c.compile_kwargs, c.x) for c in map(random_chain, [99] * 3, range(3))]
    jobs = []
    for k, (model, kwargs, x) in enumerate(cases):
        graph = compile_model(model, name=f"chain{k}", **kwargs)
        out = tmp_path / f"chain{k}"
        options = CompileOptions(top=f"chain{k}_top")
        (out / "hls").mkdir(parents=True)
        hls_backend.write_project(graph, out / "hls", options)
        rtl_backend.write_project(graph, out / "rtl", options)
        x = x[:40].reshape((-1, *graph.input.out.shape))
        jobs.append((out, graph, reference.quantize_input(graph.input, x)))
    from bnn2fpga.sim import csim, rtl

    for engine, results in (
            ("csim", csim.simulate_many(jobs, cache_dir=tmp_path / "cache_csim")),
            ("rtl", rtl.simulate_many(jobs, tmp_path / "cache_rtl", name="chains_multi"))):
        for (out, graph, codes), result in zip(jobs, results, strict=True):
            want = reference.execute(graph, codes)[graph.output.name]
            assert np.array_equal(result.codes, want), f"{engine} {out.name} != reference"
