"""Fixtures of the simulator's tests: one in-process org per session, a JWT key pair it trusts."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sfpipe_simulator.server import Simulator, SimulatorConfig


@pytest.fixture(scope="session")
def jwt_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


@pytest.fixture(scope="session")
def sim(jwt_key, tmp_path_factory):
    config = SimulatorConfig(seed=7, scale=5_000, data_dir=tmp_path_factory.mktemp("sim"), jwt_public_key=jwt_key[1])
    with Simulator(config) as running:
        yield running


@pytest.fixture
def sf(sim):
    return sim.salesforce()


@pytest.fixture
def http(sim):
    """A requests session with a valid bearer token and the simulator's CA."""
    session = sim.requests_session()
    session.headers["Authorization"] = f"Bearer {sim.login()}"
    return session
