"""Shared fixtures: the digits data and the trained models (seeded, seconds to train)."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def digits():
    from bnn2fpga.zoo import digits_data

    return digits_data(seed=0)


@pytest.fixture(scope="session")
def digits_all(digits) -> np.ndarray:
    """Every digits image (train and test): (1797, 8, 8, 1) in [0, 1]."""
    return np.concatenate([digits.x_train, digits.x_test])


@pytest.fixture(scope="session")
def qkeras_mlp(digits):
    from bnn2fpga.zoo import train_qkeras_mlp

    return train_qkeras_mlp(seed=0, data=digits)


@pytest.fixture(scope="session")
def qkeras_cnn(digits):
    from bnn2fpga.zoo import train_qkeras_cnn

    return train_qkeras_cnn(seed=0, data=digits)


@pytest.fixture(scope="session")
def _qcnn_graph(qkeras_cnn):
    from bnn2fpga.compile import compile_model

    return compile_model(qkeras_cnn)


@pytest.fixture
def qcnn_graph(_qcnn_graph):
    """A private copy per test: tests may re-fold or otherwise change their graph."""
    return copy.deepcopy(_qcnn_graph)


@pytest.fixture(scope="session")
def larq_cnn(digits):
    from bnn2fpga.zoo import train_larq_cnn

    return train_larq_cnn(seed=0, data=digits)


@pytest.fixture(scope="session")
def _mlp_graph(qkeras_mlp):
    from bnn2fpga.compile import compile_model

    return compile_model(qkeras_mlp)


@pytest.fixture(scope="session")
def _cnn_graph(larq_cnn):
    from bnn2fpga.compile import compile_model
    from bnn2fpga.zoo import DIGITS_INPUT_BITS, DIGITS_INPUT_SCALE

    return compile_model(larq_cnn, input_scale=DIGITS_INPUT_SCALE,
                         input_bits=DIGITS_INPUT_BITS)


@pytest.fixture
def mlp_graph(_mlp_graph):
    """A private copy per test: tests may re-fold or otherwise change their graph."""
    return copy.deepcopy(_mlp_graph)


@pytest.fixture
def cnn_graph(_cnn_graph):
    return copy.deepcopy(_cnn_graph)
