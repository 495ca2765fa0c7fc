"""Payloads written with pycryptodome (the library's AESCipher, every release
before D118) read with OpenSSL's AES-GCM, and the other way round: the stored
layout (nonce, tag, ciphertext) and the associated data are the same."""

from __future__ import annotations

import os

import pytest
from Crypto.Cipher import AES
from eventsourcing.cipher import AESCipher

from ipt_workflow.storage.gcm import Gcm


class _Earlier(AESCipher):
    def __init__(self, key: bytes) -> None:
        self.key = key


@pytest.mark.parametrize("size", [16, 24, 32])
def test_a_ring_payload_of_an_earlier_release_reads_and_a_new_one_reads_there(
    size: int,
) -> None:
    key, text = os.urandom(size), os.urandom(700)

    assert Gcm(key).decrypt(_Earlier(key).encrypt(text)) == text
    assert _Earlier(key).decrypt(Gcm(key).encrypt(text)) == text


def test_a_case_payload_with_associated_data_reads_both_ways() -> None:
    key, text, associated = os.urandom(32), os.urandom(500), b"case\x00v3\x00topic"
    nonce = os.urandom(12)
    earlier = AES.new(key, AES.MODE_GCM, nonce=nonce)
    earlier.update(associated)
    ciphertext, tag = earlier.encrypt_and_digest(text)

    assert Gcm(key).decrypt(nonce + tag + ciphertext, associated) == text

    sealed = Gcm(key).encrypt(text, associated)
    later = AES.new(key, AES.MODE_GCM, nonce=sealed[:12])
    later.update(associated)
    assert later.decrypt_and_verify(sealed[28:], sealed[12:28]) == text


def test_a_changed_byte_or_other_associated_data_is_refused() -> None:
    key = os.urandom(32)
    sealed = bytearray(Gcm(key).encrypt(b"score 14", b"v1"))
    with pytest.raises(ValueError, match="invalid tag"):
        Gcm(key).decrypt(bytes(sealed), b"v2")
    sealed[-1] ^= 1
    with pytest.raises(ValueError, match="invalid tag"):
        Gcm(key).decrypt(bytes(sealed), b"v1")
    with pytest.raises(ValueError, match="too short"):
        Gcm(key).decrypt(bytes(sealed[:20]))
