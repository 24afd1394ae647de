"""Packed rows: a micro-batch's sentences concatenated into one row without padding, position
ids restarting per sentence, and attention kept inside each sentence by an attention function
registered through transformers' public attention interface."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

# The name the packed attention is registered under; a model uses it for training only.
PACKED_ATTENTION = "accel_trainer_packed"
# The attention a model must use to be packed: padded batches (evaluation) still go through it.
UNPACKED_ATTENTION = "sdpa"
# Sentence boundaries, passed down to every attention layer under the names transformers'
# FlashAttention path reads (cumulative lengths, as int32, and the longest sentence).
BOUNDARY_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")


def packed_attention(
    module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs
) -> tuple[torch.Tensor, None]:
    """Attention within each packed sentence (query/key/value: 1 x heads x tokens x dim);
    a padded batch, which carries no boundaries, gets transformers' SDPA attention."""
    boundaries = kwargs.pop("cu_seq_lens_q", None)
    if boundaries is not None and kwargs.get("sliding_window") is not None:
        # Per-sentence attention would ignore the window (ModernBERT's local layers).
        raise ValueError("the model's sliding-window attention cannot be packed")
    if boundaries is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if query.device.type == "cuda":  # one kernel call: launches, not FLOPs, cost on a GPU
        output = _padded_sentence_attention(query, key, value, boundaries, dropout, scaling)
    else:  # a call per sentence: no FLOPs spent on padding, which is what costs on a CPU
        output = _per_sentence_attention(query, key, value, boundaries, dropout, scaling)
    return output.transpose(1, 2).contiguous(), None


def _per_sentence_attention(query, key, value, boundaries, dropout, scaling) -> torch.Tensor:
    ends = boundaries.tolist()
    outputs = [
        F.scaled_dot_product_attention(
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            dropout_p=dropout,
            scale=scaling,
        )  # fmt: skip
        for start, end in zip(ends[:-1], ends[1:], strict=True)
    ]
    return torch.cat(outputs, dim=2)


def _padded_sentence_attention(query, key, value, boundaries, dropout, scaling) -> torch.Tensor:
    """The sentences gathered into a padded batch for attention only, keys masked per sentence."""
    lengths = boundaries[1:] - boundaries[:-1]
    longest = int(lengths.max())
    offsets = torch.arange(longest, device=query.device)
    valid = offsets[None, :] < lengths[:, None]  # sentences x longest
    index = (boundaries[:-1, None] + offsets[None, :]).clamp(max=query.shape[2] - 1)

    def gathered(tensor):  # 1 x heads x tokens x dim -> sentences x heads x longest x dim
        return tensor[0][:, index].transpose(0, 1)

    output = F.scaled_dot_product_attention(
        gathered(query), gathered(key), gathered(value),
        attn_mask=valid[:, None, None, :], dropout_p=dropout, scale=scaling,
    )  # fmt: skip
    return output.transpose(0, 1)[:, valid][None]  # 1 x heads x tokens x dim


def register_packed_attention() -> None:
    """Make PACKED_ATTENTION known to transformers (idempotent)."""
    AttentionInterface.register(PACKED_ATTENTION, packed_attention)
    AttentionMaskInterface.register(PACKED_ATTENTION, sdpa_mask)


def position_offset(model) -> int:
    """The first position id of a sentence: RoBERTa-style embeddings count positions from
    padding_idx + 1; the others from 0. The probe in packing_refusal checks it."""
    if hasattr(model, "get_base_model"):  # a peft model: the transformers model it wraps
        model = model.get_base_model()
    embeddings = getattr(model.base_model, "embeddings", None)
    if embeddings is not None and getattr(embeddings, "padding_idx", None) is not None:
        return int(embeddings.padding_idx) + 1
    return 0


def pack(batch: dict, offset: int) -> dict:
    """A padded micro-batch as one packed row: every per-token tensor (examples x length) keeps
    its real tokens only; per-example values (row ids) stay as they are."""
    mask = batch["attention_mask"].bool()
    lengths = mask.sum(dim=1)
    packed = {}
    for key, value in batch.items():
        if key == "attention_mask":
            continue
        is_per_token = isinstance(value, torch.Tensor) and value.shape == mask.shape
        packed[key] = value[mask][None] if is_per_token else value
    starts = torch.cumsum(lengths, dim=0) - lengths
    token_index = torch.arange(int(lengths.sum()), device=mask.device)
    packed["position_ids"] = (token_index - starts.repeat_interleave(lengths) + offset)[None]
    boundaries = F.pad(torch.cumsum(lengths, dim=0, dtype=torch.int32), (1, 0))
    longest = int(lengths.max())
    packed.update(zip(BOUNDARY_KEYS, (boundaries, boundaries, longest, longest), strict=True))
    return packed


def packing_refusal(model) -> str | None:
    """Why `model` cannot be trained on packed rows, or None when it can. Besides the model's
    declared support, a probe compares packed and padded outputs of two random sentences."""
    name = type(model).__name__
    if not getattr(model, "_supports_attention_backend", False):
        return f"{name} does not route attention through transformers' attention interface"
    windows = [getattr(model.config, key, None) for key in ("sliding_window", "local_attention")]
    if any(window is not None for window in windows):
        return f"{name} uses sliding-window attention, which the packed attention does not apply"
    implementation = model.config._attn_implementation
    if implementation not in (UNPACKED_ATTENTION, PACKED_ATTENTION):
        return f"{name} uses {implementation!r} attention; packing replaces {UNPACKED_ATTENTION!r}"
    register_packed_attention()
    was_training = model.training
    model.eval()
    try:
        model.set_attn_implementation(PACKED_ATTENTION)
        mismatch = _probe_mismatch(model)
    except Exception as error:  # any failure means: not packable, here is why
        mismatch = f"a packed forward fails ({type(error).__name__}: {error})"
    finally:
        model.set_attn_implementation(implementation)
        model.train(was_training)
    return None if mismatch is None else f"{name}: {mismatch}"


def _probe_mismatch(model) -> str | None:
    """None when packed outputs equal padded ones on two random sentences; else what differs."""
    parameter = next(model.parameters())
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    lengths = (5, 3)
    ids = torch.full((2, max(lengths)), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        tokens = torch.randint(min(5, vocab - 1), vocab, (length,), generator=generator)
        ids[row, :length] = torch.where(tokens == pad_id, (tokens + 1) % vocab, tokens)
        mask[row, :length] = 1
    batch = {"input_ids": ids.to(parameter.device), "attention_mask": mask.to(parameter.device)}
    with torch.no_grad():
        padded = model(**batch).logits.float()
        packed = model(**pack(batch, position_offset(model))).logits.float()
    expected = padded[mask.to(parameter.device).bool()]
    if packed.shape != (1, *expected.shape):
        return f"packed outputs have shape {tuple(packed.shape)}, not one row of tokens"
    difference = (packed[0] - expected).abs().max().item()
    precision = 1e-4 if parameter.dtype == torch.float32 else 2e-2
    if not difference <= precision * (1 + expected.abs().max().item()):
        return f"packed outputs differ from padded ones by {difference:.2g}"
    return None
