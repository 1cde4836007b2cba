"""The short fuzz run of CI: hypothesis inputs to every parser; only StashError may come out.

The long run (a million inputs) is ``python tests/fuzz/run_fuzz.py --inputs 150000``; its figures are in
docs/evidence.md.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import fuzz_targets as targets
from hypothesis import given, settings
from hypothesis import strategies as st

from pynamodb_stash import StashError

TYPES = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "X"]
leaves = st.one_of(st.text(max_size=20), st.binary(max_size=40), st.integers(), st.booleans(), st.none())
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(TYPES + ["street__source", "street__hmac", "city"]), inner, max_size=3),
    ),
    max_leaves=12,
)
attribute_values = st.dictionaries(st.sampled_from(TYPES), values, min_size=0, max_size=2)
names = st.sampled_from(["pk", "email__source", "email__hmac", "count__source", "address", "other"])
items = st.dictionaries(names, attribute_values, max_size=5)


def only_stash_errors(target: Callable[[Any], None], data: Any) -> None:
    with contextlib.suppress(StashError):  # anything else fails the test
        target(data)


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_ciphertext_parser(data: bytes) -> None:
    only_stash_errors(targets.ciphertext, data)


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=6))
def test_mutated_ciphertexts(data: bytes) -> None:
    only_stash_errors(targets.mutated_ciphertext, data)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_keyring_parser(data: bytes) -> None:
    only_stash_errors(targets.keyring_string, data)


@settings(max_examples=300)
@given(st.one_of(values, st.fixed_dictionaries({"primary": st.text(max_size=5), "keys": values, "index": values})))
def test_keyring_payloads(document: Any) -> None:
    only_stash_errors(targets.keyring_payload, document)


@settings(max_examples=300)
@given(items)
def test_decrypt_item_on_dynamodb_json(item: Any) -> None:
    only_stash_errors(targets.dynamodb_json, item)


@settings(max_examples=300)
@given(items)
def test_decrypt_item_on_a_real_item_overlaid(item: Any) -> None:
    only_stash_errors(targets.mixed_item, item)


@settings(max_examples=300)
@given(st.one_of(items, values))
def test_stream_images(image: Any) -> None:
    only_stash_errors(targets.stream_image, image)
