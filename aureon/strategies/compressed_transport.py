"""A wrapper over any strategy that compresses what the server sends and decodes what it gets.

It sits between the byte counter (RoundRecorder, outside) and the aggregating
strategy (inside): the counter sees the encoded messages that really cross
the wire, the strategy sees plain weights and aggregates them as usual. So
every strategy gains compression without knowing about it, as Flower's DP
wrappers add clipping to any strategy.
"""

from __future__ import annotations

from collections.abc import Iterable
from logging import WARNING

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from aureon import keys
from aureon.codecs import Codec, build_codec, encode_weights, is_compressed
from aureon.codecs.transport import plain_arrays, weights_from_content
from aureon.config import CompressionConfig
from aureon.seeding import derive_seed
from aureon.strategies.wrapper import StrategyWrapper
from aureon.tracking.phases import SERIALIZE
from aureon.tracking.round_log import RoundLog

MALFORMED_UPDATE_CODE = 4002
DOWNLOAD_SEED_STREAM = 0xC0DEC  # keeps the server's rounding noise apart from every client's


class CompressedTransport(StrategyWrapper):
    """Encodes the global model with ``download``; decodes compressed client replies.

    Replies carry deltas against the weights sent in the same round; the
    wrapper adds them back to the round log's shared copy of those weights.
    A reply that cannot be decoded becomes a failed reply (the round goes on
    without it) rather than stopping the run.
    """

    def __init__(self, inner: Strategy, *, download: Codec, round_log: RoundLog) -> None:
        super().__init__(inner)
        self.download = download
        self.round_log = round_log

    def _encode(self, messages: list[Message], weights: dict[str, np.ndarray]) -> list[Message]:
        if self.download.lossless or not messages:
            return messages
        entries = encode_weights(self.download, weights)  # once per round, shared by all
        for message in messages:
            if keys.ARRAYS not in message.content.array_records:
                continue
            content = RecordDict({k: v for k, v in message.content.items() if k != keys.ARRAYS})
            for key, record in entries.items():
                content[key] = record
            message.content = content
        return messages

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(self.inner.configure_train(server_round, arrays, config, grid))
        weights = self.round_log.share_weights(server_round, arrays)
        with self.round_log.phase(server_round, SERIALIZE):
            return self._encode(messages, weights)

    def _decode(self, reply: Message, reference: dict[str, np.ndarray] | None) -> Message:
        if reply.has_error() or not reply.has_content() or not is_compressed(reply.content):
            return reply
        try:
            if reference is None:
                raise ValueError("no global weights were sent for this round")
            weights = weights_from_content(reply.content, reference)
        except ValueError as problem:
            node = reply.metadata.src_node_id
            reason = f"compressed update from node {node} unreadable: {problem}"
            log(WARNING, reason)
            error = Error(code=MALFORMED_UPDATE_CODE, reason=reason)
            return Message(error, metadata=reply.metadata)  # type: ignore[call-overload]
        content = RecordDict({k: v for k, v in reply.content.items() if k not in (keys.ARRAYS, keys.COMPRESSION)})
        content[keys.ARRAYS] = plain_arrays(weights)
        return Message(content=content, metadata=reply.metadata)  # type: ignore[call-overload]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        reference = self.round_log.weights_sent(server_round)
        with self.round_log.phase(server_round, SERIALIZE):
            decoded = [self._decode(reply, reference) for reply in replies]
        return self.inner.aggregate_train(server_round, decoded)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(self.inner.configure_evaluate(server_round, arrays, config, grid))
        if self.download.lossless or not messages:
            return messages
        with self.round_log.phase(server_round, SERIALIZE):
            return self._encode(messages, {k: a.numpy() for k, a in arrays.items()})


def with_compression(inner: Strategy, config: CompressionConfig, *, seed: int, round_log: RoundLog) -> Strategy:
    """``inner`` wrapped in CompressedTransport, or ``inner`` itself when nothing is compressed."""
    if not config.active:
        return inner
    download = build_codec(config.download, seed=derive_seed(seed, DOWNLOAD_SEED_STREAM), topk_ratio=config.topk_ratio)
    return CompressedTransport(inner, download=download, round_log=round_log)
