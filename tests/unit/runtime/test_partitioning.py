"""Our murmur2 must put every key on the partition Kafka's default partitioner chooses."""

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from helpdesk_runtime.kafka import murmur2, partition_for


@given(st.binary(max_size=300))
def test_the_hash_is_kafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(min_size=1, max_size=100), st.integers(min_value=1, max_value=200))
def test_a_key_lands_where_the_default_partitioner_puts_it(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, every, every)


def test_a_known_key_keeps_its_partition() -> None:
    # The Java client's murmur2 of "21" is -973932308 (kafka-clients UtilsTest); a changed
    # hash would move every ticket's events to another partition.
    assert murmur2(b"21") == -973932308 & 0xFFFFFFFF
