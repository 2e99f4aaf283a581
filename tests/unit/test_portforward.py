"""portforward.py: which local port each published port gets (binding 127.0.0.1 only)."""

import socket

import pytest

from kubectl_preevy.errors import PreevyError
from kubectl_preevy.portforward import is_free, local_ports_for


@pytest.fixture
def busy():
    """Occupy ports on 127.0.0.1 for the test: busy(port) -> the port, or None if already taken."""
    sockets = []

    def occupy(port: int = 0) -> int:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        sockets.append(listener)
        return int(listener.getsockname()[1])

    yield occupy
    for listener in sockets:
        listener.close()


def free_run(length: int) -> int:
    """The first port of `length` consecutive free ports (from the ephemeral range down)."""
    for start in range(40000, 30000, -37):
        if all(is_free(port) for port in range(start, start + length)):
            return start
    raise AssertionError("no free run of ports")


def test_a_free_published_port_is_used_as_is():
    port = free_run(2)
    assert local_ports_for([port, port + 1]) == {port: port, port + 1: port + 1}


def test_a_busy_port_moves_to_the_next_free_one_never_to_another_published_one(busy):
    port = free_run(4)
    busy(port)
    # port+1 is published too, so port goes to port+2
    assert local_ports_for([port, port + 1]) == {port: port + 2, port + 1: port + 1}


def test_several_busy_ports_each_get_their_own(busy):
    port = free_run(5)
    busy(port)
    busy(port + 1)
    chosen = local_ports_for([port, port + 1])
    assert chosen == {port: port + 2, port + 1: port + 3}


def test_no_free_port_above_is_an_error_naming_the_port(busy):
    if not is_free(65535):
        pytest.fail("port 65535 is in use on this machine")
    busy(65535)
    with pytest.raises(PreevyError) as raised:
        local_ports_for([65535])
    assert "65535" in raised.value.message


def test_ports_outside_the_tcp_range_are_never_free():
    assert not is_free(0) and not is_free(65536) and not is_free(-1)
