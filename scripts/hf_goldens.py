#!/usr/bin/env python3
"""Hugging Face cross-check goldens for rotary (issue 4, item 5).

Computes, with transformers' own RoPE code (``transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS`` and each
model's ``*RotaryEmbedding`` module, built from a config object; nothing is downloaded), the inverse frequencies,
attention factor and cos/sin of a set of real model configurations, and writes one small JSON file per model to
``tests/golden/hf/<name>.json``.  See ``tests/golden/hf/README.md`` for the file layout.

How to run (needs torch and transformers; CI does not run this script, it only reads the committed files):

    /work/venv/bin/python scripts/hf_goldens.py --out tests/golden/hf          # (re)write the files
    /work/venv/bin/python scripts/hf_goldens.py --out tests/golden/hf --check  # recompute, compare, exit 1 on drift
    ... --only llama-3.1-8b   # one model;  --ulp-tol N  tolerate N fp32 ulps in cos/sin under --check

The goldens were produced with transformers 5.24.0 and torch 2.15.0 on x86-64 CPU.  torch's CPU cos/sin kernels
may differ by an ulp between CPUs or torch builds; ``--check`` compares bit for bit unless ``--ulp-tol`` is given
(inverse frequencies and attention factors are always compared exactly).

Per model and case, the file holds:
  * inv_freq_fp32: HF's own fp32 inverse frequencies, as the RotaryEmbedding module holds them in its forward
    (for dynamic NTK / LongRoPE after the module's own seq_len update, driven through its decorated forward);
  * inv_freq_fp64: the same HF init function evaluated in float64: torch.float / torch.float32 /
    Tensor.float() and the default dtype are redirected to float64 while it runs (checked: the result is float64
    and differs from the fp32 one).  Where a family's default init lives in the model class
    (compute_default_rope_parameters), that static method is the one redirected;
  * attention_factor: the module's attention_scaling (the factor HF multiplies cos and sin by);
  * cos / sin at fixed positions: HF's fp32 forward output (first rotary_dim/2 entries; HF duplicates them for the
    rotate_half layout; DeepSeek-V2 returns complex freqs_cis, whose real/imag parts are given);
  * hf_fp32_vs_truth: HF's fp32 cos/sin over every position 0..2^20-1 against cos(p * inv_freq_fp64) *
    attention_factor in float64.

Issue 12 adds "format": 2 files (STREAM_MODELS): ropes per layer type (Gemma 3), multi-stream mRoPE (Qwen2-VL,
Qwen2.5-VL, Qwen3-VL: ids from HF's own get_rope_index for text, image and video layouts), GLM-4's partial
interleaved rope, and the 2-D vision ropes of the Qwen2-VL encoder and Pixtral. cos/sin there are HF's rows after its
stream split (recomposition_frequencies), i.e. the rows a token uses; each rope also states its parameters as a
librotary caller gives them ("rotary"), checked here against HF's fp64 frequencies and rows. See the README.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import math
import os
import sys

import numpy as np

POSITIONS = [0, 1, 2, 1000, 4095, 32767, 131071, 1048575]
TRUTH_POSITIONS = 1 << 20
CHUNK = 1 << 15
RANGES = [(0, 4096), (4096, 32768), (32768, 131072), (131072, 1 << 20)]

# --------------------------------------------------------------------------------------------------------------
# Model configurations: the rope-related fields of each real config.json, typed by hand (the hub is not
# reachable).  `source` says where each came from.
# --------------------------------------------------------------------------------------------------------------

PHI3_LONG_FACTOR = [
    1.0700000524520874, 1.1200000047683716, 1.149999976158142, 1.4199999570846558, 1.5699999332427979,
    1.7999999523162842, 2.129999876022339, 2.129999876022339, 3.009999990463257, 5.910000324249268,
    6.950000286102295, 9.070000648498535, 9.930000305175781, 10.710000038146973, 11.130000114440918,
    14.609999656677246, 15.409998893737793, 19.809999465942383, 37.279998779296875, 38.279998779296875,
    38.599998474121094, 40.12000274658203, 46.20000457763672, 50.940006256103516, 53.66000747680664,
    54.9373893737793, 56.89738845825195, 57.28738784790039, 59.98738479614258, 60.86738586425781,
    60.887386322021484, 61.71739196777344, 62.91739273071289, 62.957393646240234, 63.41739273071289,
    63.8173942565918, 63.83739471435547, 63.897396087646484, 63.93739700317383, 64.06739807128906,
    64.11434936523438, 64.12435150146484, 64.15435028076172, 64.19435119628906, 64.24435424804688,
    64.57435607910156, 64.69000244140625, 64.76000213623047,
]
PHI3_SHORT_FACTOR = [
    1.1, 1.1, 1.1, 1.3000000000000003, 1.3500000000000003, 1.3500000000000003, 1.4000000000000004,
    1.5500000000000005, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
    2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
    2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
    2.000000000000001, 2.000000000000001, 2.000000000000001, 2.0500000000000007, 2.0500000000000007,
    2.0500000000000007, 2.0500000000000007, 2.0500000000000007, 2.0500000000000007, 2.1000000000000005,
    2.1000000000000005, 2.1500000000000004, 2.25, 2.25, 2.25, 2.25, 2.25, 2.3999999999999995,
    2.4499999999999993, 2.499999999999999, 2.6999999999999984, 2.6999999999999984, 2.7499999999999982,
    2.799999999999998, 2.8999999999999977, 3.049999999999997,
]

PHI4_MINI_LONG_FACTOR = [
    1, 1.118320672, 1.250641126, 1.398617824, 1.564103225, 1.74916897, 1.956131817, 2.187582649, 2.446418898,
    2.735880826, 3.059592084, 3.421605075, 3.826451687, 4.279200023, 4.785517845, 5.351743533, 5.984965424,
    6.693110555, 7.485043894, 8.370679318, 9.36110372, 10.4687158, 11.70738129, 13.09260651, 14.64173252,
    16.37415215, 18.31155283, 20.47818807, 22.90118105, 25.61086418, 28.64115884, 32.03, 32.1, 32.13, 32.23,
    32.6, 32.61, 32.64, 32.66, 32.7, 32.71, 32.93, 32.97, 33.28, 33.49, 33.5, 44.16, 47.77,
]

LLAMA2_7B = {
    "model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "max_position_embeddings": 4096,
    "rope_theta": 10000.0, "rope_scaling": None,
}
LLAMA31_8B = {
    "model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
}
QWEN25_7B_YARN = {
    "model_type": "qwen2", "hidden_size": 3584, "num_attention_heads": 28, "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rope_scaling": {"factor": 4.0, "original_max_position_embeddings": 32768, "type": "yarn"},
}

SRC_LLAMA2 = ("meta-llama/Llama-2-7b-hf config.json (hidden_size 4096, 32 heads, max_position_embeddings 4096, "
              "rope_theta 10000.0, rope_scaling null); typed from the well-known published config, fields "
              "consistent with the llama2 configs quoted in public repos found by the search tool")
SRC_LLAMA31 = ("meta-llama/Llama-3.1-8B config.json; rope_scaling block as quoted verbatim in public code (e.g. a "
               "Rust test 'parses_llama31_8b_style_config' and a FlashSparseAttention benchmark: factor 8.0, "
               "high_freq_factor 4.0, low_freq_factor 1.0, original_max_position_embeddings 8192, rope_type "
               "llama3, rope_theta 500000.0, max_position_embeddings 131072, hidden_size 4096, 32 heads)")

MODELS = [
    {
        "name": "llama-2-7b", "model": "meta-llama/Llama-2-7b-hf", "source": SRC_LLAMA2,
        "config": LLAMA2_7B,
    },
    {
        "name": "llama-3.1-8b", "model": "meta-llama/Llama-3.1-8B", "source": SRC_LLAMA31,
        "config": LLAMA31_8B,
    },
    {
        "name": "llama-3.1-8b-rope-parameters", "model": "meta-llama/Llama-3.1-8B (converted layout)",
        "source": SRC_LLAMA31 + "; converted by hand to the transformers-5 `rope_parameters` layout (rope_theta "
                  "moved inside, rope_type kept); the script asserts HF gives bit-identical results for both "
                  "layouts",
        "config": {
            "model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
            "max_position_embeddings": 131072,
            "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                "original_max_position_embeddings": 8192},
        },
        "same_as": "llama-3.1-8b",
    },
    {
        "name": "qwen2.5-7b-instruct-yarn", "model": "Qwen/Qwen2.5-7B-Instruct (+ documented YaRN rope_scaling)",
        "source": ("Qwen/Qwen2.5-7B-Instruct config.json (hidden_size 3584, 28 heads, max_position_embeddings "
                   "32768, rope_theta 1000000.0, rope_scaling null), plus the rope_scaling the model card's "
                   "'Processing Long Texts' section tells users to add: {factor 4.0, "
                   "original_max_position_embeddings 32768, type yarn}; quoted from the model card in verl's "
                   "docs 'RoPE Scaling override' and in public launch scripts (sglang --json-model-override-args)"),
        "config": QWEN25_7B_YARN,
    },
    {
        "name": "qwen2.5-7b-instruct-yarn-rope-parameters",
        "model": "Qwen/Qwen2.5-7B-Instruct YaRN (converted layout)",
        "source": "same fields as qwen2.5-7b-instruct-yarn, converted by hand to the transformers-5 "
                  "`rope_parameters` layout; the script asserts HF gives bit-identical results for both layouts",
        "config": {
            "model_type": "qwen2", "hidden_size": 3584, "num_attention_heads": 28,
            "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                                "original_max_position_embeddings": 32768},
        },
        "same_as": "qwen2.5-7b-instruct-yarn",
    },
    {
        "name": "deepseek-v2-lite", "model": "deepseek-ai/DeepSeek-V2-Lite",
        "source": ("deepseek-ai/DeepSeek-V2-Lite config.json as quoted 'verbatim except for HF bookkeeping keys' "
                   "in a public C++ test (ModelConfig.ParsesDeepSeekV2Lite): hidden_size 2048, 16 heads, "
                   "max_position_embeddings 163840, qk_rope_head_dim 64, qk_nope_head_dim 128, rope_theta 10000, "
                   "rope_scaling {beta_fast 32, beta_slow 1, factor 40, mscale 0.707, mscale_all_dim 0.707, "
                   "original_max_position_embeddings 4096, type yarn}"),
        "config": {
            "model_type": "deepseek_v2", "hidden_size": 2048, "num_attention_heads": 16,
            "max_position_embeddings": 163840, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
            "rope_theta": 10000,
            "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                             "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096, "type": "yarn"},
        },
    },
    {
        "name": "phi-3-mini-128k-instruct", "model": "microsoft/Phi-3-mini-128k-instruct",
        "source": ("microsoft/Phi-3-mini-128k-instruct config.json (current revision, rope_scaling type "
                   "'longrope'): hidden_size 3072, 32 heads, max_position_embeddings 131072, "
                   "original_max_position_embeddings 4096, rope_theta 10000.0; the 48+48 factors from a "
                   "Microsoft-copyright babilong evaluation script (LONGROPE_PARAMS; repository not named by the "
                   "search index), whose first and last entries match the config.json#L27 excerpt quoted in a "
                   "public markdown note on LongRoPE and GGUF (its GGUF dump of Phi-3.1-mini-128k-instruct also "
                   "shows rope.scaling.attn_factor 1.190238118171692 and 48 long/short factors)"),
        "config": {
            "model_type": "phi3", "hidden_size": 3072, "num_attention_heads": 32,
            "max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "rope_theta": 10000.0,
            "rope_scaling": {"long_factor": PHI3_LONG_FACTOR, "short_factor": PHI3_SHORT_FACTOR,
                             "type": "longrope"},
        },
        "seq_lens": [4096, 4097, 131072],
    },
    {
        "name": "gpt-neox-20b", "model": "EleutherAI/gpt-neox-20b",
        "source": ("EleutherAI/gpt-neox-20b config.json as quoted in public code (hidden_size 6144, 64 heads, "
                   "max_position_embeddings 2048, rotary_emb_base 10000, rotary_pct 0.25, transformers_version "
                   "4.19.0.dev0); rotary dim 24 also asserted by auto-round's GGUF conversion test"),
        "config": {
            "model_type": "gpt_neox", "hidden_size": 6144, "num_attention_heads": 64,
            "max_position_embeddings": 2048, "rotary_emb_base": 10000, "rotary_pct": 0.25,
        },
    },
    {
        "name": "phi-2", "model": "microsoft/phi-2",
        "source": ("microsoft/phi-2 config.json as quoted in several public repos (hidden_size 2560, 32 heads, "
                   "max_position_embeddings 2048, partial_rotary_factor 0.4, rope_theta 10000.0, rope_scaling "
                   "null, transformers_version 4.37.0)"),
        "config": {
            "model_type": "phi", "hidden_size": 2560, "num_attention_heads": 32, "max_position_embeddings": 2048,
            "partial_rotary_factor": 0.4, "rope_theta": 10000.0, "rope_scaling": None,
        },
    },
    {
        "name": "llama-2-7b-dynamic-ntk", "model": "meta-llama/Llama-2-7b-hf + rope_scaling dynamic factor 2.0",
        "source": SRC_LLAMA2 + "; rope_scaling {type dynamic, factor 2.0} added (synthetic, as HF's docs show)",
        "config": dict(LLAMA2_7B, rope_scaling={"type": "dynamic", "factor": 2.0}),
        "seq_lens": [4096, 8192, 16384],
    },
    {
        "name": "mistral-7b-v0.1", "model": "mistralai/Mistral-7B-v0.1",
        "source": ("mistralai/Mistral-7B-v0.1 config.json (hidden_size 4096, 32 heads, max_position_embeddings "
                   "32768, rope_theta 10000.0, sliding_window 4096); as quoted in a public Rust test "
                   "(mistral v0.1: rope_theta 10000.0, sliding_window 4096)"),
        "config": {
            "model_type": "mistral", "hidden_size": 4096, "num_attention_heads": 32,
            "max_position_embeddings": 32768, "rope_theta": 10000.0,
        },
    },
    {
        "name": "llama-2-7b-linear-4", "model": "meta-llama/Llama-2-7b-hf + rope_scaling linear factor 4.0",
        "source": SRC_LLAMA2 + "; rope_scaling {type linear, factor 4.0} added (synthetic)",
        "config": dict(LLAMA2_7B, rope_scaling={"type": "linear", "factor": 4.0}),
    },
    # issue 12: one-rope text families the config loader already reads (written compactly: fp32 values as the
    # shortest decimal that reads back to them)
    {
        "name": "gemma-7b", "model": "google/gemma-7b", "compact": True,
        "source": ("google/gemma-7b config.json (hidden_size 3072, 16 heads, 16 kv heads, head_dim 256, "
                   "max_position_embeddings 8192, rope_theta 10000.0): head_dim 256 is not hidden_size / heads"),
        "config": {
            "model_type": "gemma", "hidden_size": 3072, "num_attention_heads": 16, "num_key_value_heads": 16,
            "head_dim": 256, "max_position_embeddings": 8192, "rope_theta": 10000.0,
        },
    },
    {
        "name": "gemma-2-9b", "model": "google/gemma-2-9b", "compact": True,
        "source": ("google/gemma-2-9b config.json (hidden_size 3584, 16 heads, 8 kv heads, head_dim 256, "
                   "max_position_embeddings 8192, rope_theta 10000.0, sliding_window 4096; every layer one rope)"),
        "config": {
            "model_type": "gemma2", "hidden_size": 3584, "num_attention_heads": 16, "num_key_value_heads": 8,
            "head_dim": 256, "max_position_embeddings": 8192, "rope_theta": 10000.0, "sliding_window": 4096,
        },
    },
    {
        "name": "qwen3-8b", "model": "Qwen/Qwen3-8B", "compact": True,
        "source": ("Qwen/Qwen3-8B config.json (hidden_size 4096, 32 heads, 8 kv heads, head_dim 128, "
                   "max_position_embeddings 40960, rope_theta 1000000, rope_scaling null)"),
        "config": {
            "model_type": "qwen3", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
            "head_dim": 128, "max_position_embeddings": 40960, "rope_theta": 1000000, "rope_scaling": None,
        },
    },
    {
        "name": "stablelm-2-1.6b", "model": "stabilityai/stablelm-2-1_6b", "compact": True,
        "source": ("stabilityai/stablelm-2-1_6b config.json (hidden_size 2048, 32 heads, max_position_embeddings "
                   "4096, partial_rotary_factor 0.25, rope_theta 10000); partial 0.25 with rope_theta 10000 as "
                   "in the StableLM configs quoted in public tests"),
        "config": {
            "model_type": "stablelm", "hidden_size": 2048, "num_attention_heads": 32, "num_key_value_heads": 32,
            "max_position_embeddings": 4096, "partial_rotary_factor": 0.25, "rope_theta": 10000,
        },
    },
    {
        "name": "phi-4-mini-instruct", "model": "microsoft/Phi-4-mini-instruct", "compact": True,
        "source": ("microsoft/Phi-4-mini-instruct config.json as quoted in a public Swift test (mlx 4-bit copy): "
                   "hidden_size 3072, 24 heads, 8 kv heads, partial_rotary_factor 0.75, max_position_embeddings "
                   "131072, original_max_position_embeddings 4096, rope_theta 10000.0, rope_scaling longrope "
                   "with the 48 long factors below and 48 short factors of 1.0"),
        "config": {
            "model_type": "phi3", "hidden_size": 3072, "num_attention_heads": 24, "num_key_value_heads": 8,
            "partial_rotary_factor": 0.75, "max_position_embeddings": 131072,
            "original_max_position_embeddings": 4096, "rope_theta": 10000.0,
            "rope_scaling": {"long_factor": PHI4_MINI_LONG_FACTOR, "short_factor": [1.0] * 48, "type": "longrope"},
        },
        "seq_lens": [4096, 131072],
    },
]

ROTARY_CLASSES = {
    "llama": ("llama", "LlamaRotaryEmbedding"),
    "qwen2": ("qwen2", "Qwen2RotaryEmbedding"),
    "mistral": ("mistral", "MistralRotaryEmbedding"),
    "deepseek_v2": ("deepseek_v2", "DeepseekV2RotaryEmbedding"),
    "phi3": ("phi3", "Phi3RotaryEmbedding"),
    "phi": ("phi", "PhiRotaryEmbedding"),
    "gpt_neox": ("gpt_neox", "GPTNeoXRotaryEmbedding"),
    "gemma": ("gemma", "GemmaRotaryEmbedding"),
    "gemma2": ("gemma2", "Gemma2RotaryEmbedding"),
    "qwen3": ("qwen3", "Qwen3RotaryEmbedding"),
    "stablelm": ("stablelm", "StableLmRotaryEmbedding"),
}

# --------------------------------------------------------------------------------------------------------------


def build_config(cfg):
    from transformers import AutoConfig

    kwargs = copy.deepcopy(cfg)  # HF adopts (and mutates) the rope_scaling dict it is given
    model_type = kwargs.pop("model_type")
    return AutoConfig.for_model(model_type, **kwargs)


def rotary_class(model_type):
    mod, cls = ROTARY_CLASSES[model_type]
    return getattr(importlib.import_module(f"transformers.models.{mod}.modeling_{mod}"), cls)


@contextlib.contextmanager
def float64_redirect():
    """While active, HF's float32 requests (torch.float, torch.float32, Tensor.float(), default dtype) give
    float64."""
    import torch

    saved = (torch.float, torch.float32, torch.Tensor.float, torch.get_default_dtype())
    torch.float = torch.float64
    torch.float32 = torch.float64
    torch.Tensor.float = lambda self, *a, **k: self.to(torch.float64)
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.float, torch.float32, torch.Tensor.float = saved[:3]
        torch.set_default_dtype(saved[3])


def init_call(rope, config, seq_len):
    """The init function and seq_len argument HF's module uses for the state it has at `seq_len`."""
    import torch
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rope_type = rope.rope_type
    if rope_type == "default":
        return lambda: type(rope).compute_default_rope_parameters(config)
    fn = ROPE_INIT_FUNCTIONS[rope_type]
    arg = None
    if seq_len is not None and rope_type == "dynamic" and seq_len > config.max_position_embeddings:
        arg = torch.tensor(seq_len)  # the decorator passes torch.max(position_ids) + 1, an int64 tensor
    if seq_len is not None and rope_type == "longrope":
        ompe = config.rope_parameters["original_max_position_embeddings"]
        if seq_len > ompe:
            arg = ompe + 1  # the decorator builds the long set with seq_len = original + 1
    return lambda: fn(config, None, seq_len=arg)


def hf_module(entry, seq_len):
    """HF's RotaryEmbedding with the state its forward has for a sequence of `seq_len` tokens."""
    import torch

    config = build_config(entry["config"])
    rope = rotary_class(entry["config"]["model_type"])(config)
    rope.eval()
    if seq_len is not None:
        x = torch.zeros(1, dtype=torch.float32)
        with torch.no_grad():
            rope(x, torch.tensor([[seq_len - 1]]))  # the decorated forward: dynamic / longrope update
    return config, rope


def hf_forward(rope, positions):
    """HF's fp32 cos and sin (first half) at positions, by the module's forward (without its seq_len update)."""
    import torch

    x = torch.zeros(1, dtype=torch.float32)
    pos = torch.as_tensor(positions, dtype=torch.int64).reshape(1, -1)
    fwd = type(rope).forward.__wrapped__
    with torch.no_grad():
        out = fwd(rope, x, pos)
    if isinstance(out, torch.Tensor):  # DeepSeek-V2: complex freqs_cis = polar(1, angle) * attention_scaling
        assert out.dtype == torch.complex64
        return out.real[0].numpy(), out.imag[0].numpy()
    cos, sin = out
    assert cos.dtype == torch.float32
    n = cos.shape[-1] // 2
    c, s = cos[0].numpy(), sin[0].numpy()
    assert np.array_equal(c[:, :n], c[:, n:]) and np.array_equal(s[:, :n], s[:, n:])
    return c[:, :n], s[:, :n]


def compute_case(entry, seq_len):
    import torch

    config, rope = hf_module(entry, seq_len)
    inv32 = rope.inv_freq.detach().clone()
    assert inv32.dtype == torch.float32
    af = float(rope.attention_scaling)
    call = init_call(rope, config, seq_len)
    again, af_again = call()
    # our reconstruction of HF's init call must give exactly the module's state
    assert again.dtype == torch.float32 and torch.equal(again, inv32), entry["name"]
    assert float(af_again) == af or seq_len is not None and rope.rope_type == "longrope"
    with float64_redirect():
        inv64, af64 = call()
    assert inv64.dtype == torch.float64, (entry["name"], inv64.dtype)
    assert not torch.equal(inv64, inv32.double()), "fp64 redirect had no effect"
    cos, sin = hf_forward(rope, POSITIONS)
    case = {
        "seq_len": seq_len,
        "inv_freq_fp32": [float(v) for v in inv32.tolist()],
        "inv_freq_fp64": [float(v) for v in inv64.tolist()],
        "attention_factor": af,
        "positions": list(POSITIONS),
        "cos": [[float(v) for v in row] for row in cos.tolist()],
        "sin": [[float(v) for v in row] for row in sin.tolist()],
    }
    return case, rope, config


def spacing32(t):
    return np.spacing(np.abs(t).astype(np.float32)).astype(np.float64)


def vs_truth(rope, inv64, af):
    """HF fp32 cos/sin over every position below 2^20 against cos(p * w64) * af in float64."""
    w = np.asarray(inv64, dtype=np.float64)
    ulps = {r: [] for r in RANGES}
    max_abs = {r: 0.0 for r in RANGES}
    chunks = [(r, a, min(a + CHUNK, r[1])) for r in RANGES for a in range(r[0], r[1], CHUNK)]
    for r, start, stop in chunks:
        p = np.arange(start, stop, dtype=np.int64)
        c, s = hf_forward(rope, p)
        ang = p.astype(np.float64)[:, None] * w[None, :]
        for hf, tr in ((c, np.cos(ang) * af), (s, np.sin(ang) * af)):
            err = np.abs(hf.astype(np.float64) - tr)
            max_abs[r] = max(max_abs[r], float(err.max()))
            ulps[r].append((err / spacing32(tr)).astype(np.float32).ravel())
    by_range = []
    for r in RANGES:
        u = np.concatenate(ulps[r])
        by_range.append({"positions": [r[0], r[1]], "max_abs_cos_sin": max_abs[r],
                         "max_ulp_cos_sin": float(u.max()), "median_ulp": float(np.median(u))})
        ulps[r] = u
    allu = np.concatenate([ulps[r] for r in RANGES])
    return {
        "positions": TRUTH_POSITIONS,
        "max_abs_cos_sin": max(max_abs.values()),
        "max_ulp_cos_sin": float(allu.max()),
        "median_ulp": float(np.median(allu)),
        "by_range": by_range,
    }


def rotary_dims(config, rope):
    n = int(rope.inv_freq.shape[0])
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return head_dim, 2 * n


def generate(entry):
    import torch
    import transformers

    seq_lens = entry.get("seq_lens", [None])
    cases, last = [], None
    for sl in seq_lens:
        case, rope, config = compute_case(entry, sl)
        cases.append(case)
        last = (case, rope, config)
    case, rope, config = last
    head_dim, rotary_dim = rotary_dims(config, rope)
    truth = vs_truth(rope, case["inv_freq_fp64"], case["attention_factor"])
    note = ("HF fp32: angle = fp32(position) * fp32 inv_freq (one fp32 rounding), torch CPU cos/sin, times "
            "attention_scaling in fp32. Truth: cos(p * inv_freq_fp64) * attention_factor in float64. The error "
            "is dominated by the fp32 roundings of inv_freq and of the angle (each up to about |angle| * 2^-24 "
            "rad), so it grows with position; ulps are "
            "of the true value in fp32, so entries next to zeros of cos/sin give huge ulp counts "
            "(max_ulp_cos_sin); median_ulp and by_range are the more telling figures.")
    if seq_lens != [None]:
        note += f" Measured with the state for seq_len {case['seq_len']} (the long-context case)."
    note += (" inv_freq_fp64: HF's own init function with torch.float/torch.float32/Tensor.float()/default dtype "
             "redirected to float64 while it runs (no hand transcription was needed).")
    if entry.get("compact"):
        for c in cases:
            for key in ("inv_freq_fp32", "cos", "sin"):
                c[key] = f32_tree(c[key])
    return {
        "model": entry["model"],
        "source": entry["source"],
        "transformers": transformers.__version__,
        "torch": torch.__version__.split("+")[0],
        "config": entry["config"],
        "rope_type": rope.rope_type,
        "head_dim": head_dim,
        "rotary_dim": rotary_dim,
        "layout": "interleaved" if entry["config"]["model_type"] == "deepseek_v2" else "half",
        "cases": cases,
        "hf_fp32_vs_truth": dict(truth, note=note),
    }


# --------------------------------------------------------------------------------------------------------------
# Issue 12: families with several ropes, multi-stream (mRoPE) and 2-D vision positions ("format": 2 files).
# Each file holds one or more ropes; each rope the parameters as librotary states them ("rotary": what a caller
# puts in rotary_config by hand), HF's frequencies per rotated frequency, and HF's cos/sin rows for position
# patterns, taken from HF's forward AFTER its stream split (recomposition_frequencies): the rows a token uses.

QWEN2_VL_TEXT = {
    "hidden_size": 3584, "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 32768,
    "rope_theta": 1000000.0, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
}
QWEN2_VL_VISION = {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "hidden_size": 3584,
                   "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
QWEN25_VL_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                    "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                    "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2}
QWEN3_VL_8B_TEXT = {
    "model_type": "qwen3_vl_text", "head_dim": 128, "hidden_size": 4096, "num_attention_heads": 32,
    "num_key_value_heads": 8, "max_position_embeddings": 262144, "rope_theta": 5000000,
    "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
}
QWEN3_VL_8B_VISION = {"model_type": "qwen3_vl", "depth": 27, "hidden_size": 1152, "intermediate_size": 4304,
                      "num_heads": 16, "out_hidden_size": 4096, "patch_size": 16, "spatial_merge_size": 2,
                      "temporal_patch_size": 2, "deepstack_visual_indexes": [8, 16, 24],
                      "num_position_embeddings": 2304}
GEMMA3_27B_TEXT = {
    "model_type": "gemma3_text", "head_dim": 128, "hidden_size": 5376, "num_attention_heads": 32,
    "num_key_value_heads": 16, "num_hidden_layers": 62, "max_position_embeddings": 131072,
    "query_pre_attn_scalar": 168, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "rope_theta": 1000000.0,
    "rope_local_base_freq": 10000.0, "sliding_window": 1024, "sliding_window_pattern": 6,
}

# Token layouts for HF's get_rope_index: runs of (modality, count), 0 text, 1 image, 2 video.
MROPE_MIXED = [(0, 2), (1, 6), (0, 1), (2, 12), (0, 1)]          # image grid (1, 4, 6), video grid (3, 4, 4)
MROPE_MIXED_QWEN3 = [(0, 2), (1, 6), (0, 1), (2, 4), (0, 2), (2, 4), (0, 2), (2, 4), (0, 1)]  # video per frame
LATE_TEXT = 30000  # text tokens before a late image: larger ids in every stream

STREAM_MODELS = [
    {
        "name": "qwen2-vl-7b-instruct", "model": "Qwen/Qwen2-VL-7B-Instruct", "kind": "mrope",
        "source": ("Qwen/Qwen2-VL-7B-Instruct config.json (flat text fields: hidden_size 3584, 28 heads, 4 kv heads, "
                   "max_position_embeddings 32768, rope_theta 1000000.0, rope_scaling {type mrope, mrope_section "
                   "[16, 24, 24]}; vision_config depth 32, embed_dim 1280, num_heads 16, patch_size 14, "
                   "spatial_merge_size 2), as quoted in public test code that builds Qwen2VLConfig from it"),
        "config": dict(QWEN2_VL_TEXT, model_type="qwen2_vl", vision_config=QWEN2_VL_VISION),
        "module": "qwen2_vl", "model_class": "Qwen2VLModel", "text_class": "Qwen2VLRotaryEmbedding",
        "rotary": {"head_dim": 128, "rotary_dim": 128, "pairing": "half", "base": 1000000.0,
                   "streams": {"layout": "sections", "n_streams": 3, "sections": [16, 24, 24]}},
        "video": {"grid": [3, 4, 4]}, "layout": MROPE_MIXED,
    },
    {
        "name": "qwen2.5-vl-7b-instruct", "model": "Qwen/Qwen2.5-VL-7B-Instruct", "kind": "mrope",
        "source": ("Qwen/Qwen2.5-VL-7B-Instruct config.json (hidden_size 3584, 28 heads, 4 kv heads, "
                   "max_position_embeddings 128000, rope_theta 1000000.0, rope_scaling {type mrope, mrope_section "
                   "[16, 24, 24]}; vision_config hidden_size 1280, 16 heads, window_size 112, tokens_per_second 2), "
                   "as quoted in public tests (a Rust fixture and TensorRT-LLM's Qwen2.5-VL test)"),
        "config": dict(QWEN2_VL_TEXT, model_type="qwen2_5_vl", max_position_embeddings=128000,
                       vision_config=QWEN25_VL_VISION),
        "module": "qwen2_5_vl", "model_class": "Qwen2_5_VLModel", "text_class": "Qwen2_5_VLRotaryEmbedding",
        "rotary": {"head_dim": 128, "rotary_dim": 128, "pairing": "half", "base": 1000000.0,
                   "streams": {"layout": "sections", "n_streams": 3, "sections": [16, 24, 24]}},
        "video": {"grid": [3, 4, 4], "second_per_grid_ts": [1.0]}, "layout": MROPE_MIXED,
    },
    {
        "name": "qwen3-vl-8b-instruct", "model": "Qwen/Qwen3-VL-8B-Instruct", "kind": "mrope",
        "source": ("Qwen/Qwen3-VL-8B-Instruct config.json (text_config: head_dim 128, hidden_size 4096, 32 heads, "
                   "8 kv heads, max_position_embeddings 262144, rope_theta 5000000, rope_scaling {mrope_interleaved "
                   "true, mrope_section [24, 20, 20], rope_type default}; vision_config hidden_size 1152, depth 27, "
                   "patch_size 16), as quoted in public code (the 4B's config verbatim with the same text rope, and "
                   "code that sets the 8B's vision fields)"),
        "config": {"model_type": "qwen3_vl", "text_config": QWEN3_VL_8B_TEXT, "vision_config": QWEN3_VL_8B_VISION},
        "module": "qwen3_vl", "model_class": "Qwen3VLModel", "text_class": "Qwen3VLTextRotaryEmbedding",
        "rotary": {"head_dim": 128, "rotary_dim": 128, "pairing": "half", "base": 5000000.0,
                   "streams": {"layout": "interleaved", "n_streams": 3, "sections": [24, 20, 20]}},
        "video": {"grid": [3, 4, 4]}, "layout": MROPE_MIXED_QWEN3,
    },
    {
        "name": "gemma-3-27b-it", "model": "google/gemma-3-27b-it", "kind": "layers",
        "source": ("google/gemma-3-27b-it config.json text_config (head_dim 128, hidden_size 5376, 32 heads, 16 kv "
                   "heads, 62 layers, max_position_embeddings 131072, rope_theta 1000000.0, rope_local_base_freq "
                   "10000.0, rope_scaling {factor 8.0, rope_type linear}, sliding_window 1024, sliding_window_pattern "
                   "6), as quoted in public code and posts (the 27B's pattern: 5 local layers, then 1 global)"),
        "config": {"model_type": "gemma3", "text_config": GEMMA3_27B_TEXT},
        "module": "gemma3", "text_class": "Gemma3RotaryEmbedding",
        "ropes": {
            "full_attention": {"head_dim": 128, "rotary_dim": 128, "pairing": "half", "base": 1000000.0,
                               "scaling": {"type": "linear", "factor": 8.0}},
            "sliding_attention": {"head_dim": 128, "rotary_dim": 128, "pairing": "half", "base": 10000.0},
        },
    },
    {
        "name": "glm-4-9b-0414", "model": "THUDM/GLM-4-9B-0414", "kind": "text",
        "source": ("THUDM/GLM-4-9B-0414 config.json (model_type glm4: hidden_size 4096, 32 heads, 2 kv heads, "
                   "head_dim 128, partial_rotary_factor 0.5, rope_theta 10000.0, max_position_embeddings 32768); "
                   "transformers' glm4 apply_rotary_pos_emb repeats each of the rotary_dim/2 cos/sin entries twice "
                   "and rotates pairs (2i, 2i+1) of the first rotary_dim dims: librotary's interleaved pairing"),
        "config": {"model_type": "glm4", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 2,
                   "head_dim": 128, "partial_rotary_factor": 0.5, "rope_theta": 10000.0,
                   "max_position_embeddings": 32768},
        "module": "glm4", "text_class": "Glm4RotaryEmbedding",
        "rotary": {"head_dim": 128, "rotary_dim": 64, "pairing": "interleaved", "base": 10000.0},
    },
    {
        "name": "qwen2-vl-7b-vision", "model": "Qwen/Qwen2-VL-7B-Instruct (vision encoder)", "kind": "vision",
        "source": ("Qwen/Qwen2-VL-7B-Instruct vision_config (embed_dim 1280, num_heads 16: head_dim 80, "
                   "spatial_merge_size 2, patch_size 14); rope_theta 10000 (transformers' axial default)"),
        "config": dict(QWEN2_VL_VISION, model_type="qwen2_vl"),
        "module": "qwen2_vl", "vision_class": "Qwen2VLVisionRotaryEmbedding",
        "rotary": {"head_dim": 80, "rotary_dim": 80, "pairing": "half", "base": 10000.0,
                   "streams": {"layout": "vision_2d", "n_streams": 2}},
        "grids": {"small": [1, 4, 6], "large": [1, 98, 146]},
    },
    {
        "name": "pixtral-12b-vision", "model": "mistral-community/pixtral-12b (vision encoder)", "kind": "vision",
        "source": ("Pixtral-12B vision_config (hidden_size 1024, 16 heads: head_dim 64, image_size 1024, patch_size "
                   "16, rope_theta 10000.0)"),
        "config": {"model_type": "pixtral", "hidden_size": 1024, "num_attention_heads": 16, "image_size": 1024,
                   "patch_size": 16, "rope_theta": 10000.0},
        "module": "pixtral", "vision_class": "PixtralVisionRotaryEmbedding",
        "rotary": {"head_dim": 64, "rotary_dim": 64, "pairing": "half", "base": 10000.0,
                   "streams": {"layout": "vision_2d_pixtral", "n_streams": 2}},
        "grids": {"small": [3, 5], "large": [64, 64]},
    },
]


def hf_attr(module, name):
    return getattr(importlib.import_module(f"transformers.models.{module}.modeling_{module}"), name)


def first_half(cos, sin):
    import torch

    assert cos.dtype == torch.float32 and sin.dtype == torch.float32
    n = cos.shape[-1] // 2
    c, s = cos.reshape(-1, 2 * n).numpy(), sin.reshape(-1, 2 * n).numpy()
    assert np.array_equal(c[:, :n], c[:, n:]) and np.array_equal(s[:, :n], s[:, n:])
    return c[:, :n], s[:, :n]


def f32_rows(a):
    return [[F32(v) for v in row] for row in np.asarray(a, dtype=np.float32).astype(np.float64).tolist()]


def stream_of(rotary, n):
    """Our stream map (include/rotary.h, rotary_stream_layout) for frequency i < n."""
    st = rotary.get("streams", {"layout": "none"})
    lay, ns = st["layout"], st.get("n_streams", 1)
    if lay == "sections":
        return np.repeat(np.arange(ns), st["sections"])
    if lay == "interleaved":
        m = np.zeros(n, dtype=np.int64)
        for j in range(1, ns):
            m[j:ns * st["sections"][j]:ns] = j
        return m
    if lay in ("vision_2d", "vision_2d_pixtral"):
        return np.repeat([0, 1], n // 2)
    return np.zeros(n, dtype=np.int64)


def our_inv_freq(rotary, n):
    """Our frequencies in fp64 for a rope without scaling (as include/rotary.h states them)."""
    base, d = rotary["base"], rotary["rotary_dim"]
    lay = rotary.get("streams", {}).get("layout")
    i = np.arange(n // 2, dtype=np.float64)
    if lay == "vision_2d":
        return np.concatenate([base ** (-4 * i / d)] * 2)
    if lay == "vision_2d_pixtral":
        return np.concatenate([base ** (-4 * i / d), base ** (-(4 * i + 2) / d)])
    return base ** (-2 * np.arange(n, dtype=np.float64) / d)


def rope_record(name, rope_type, rotary, inv32, inv64, att, patterns, note):
    """One rope of a format-2 file, with a sanity check of the stated parameters against HF's rows."""
    n = len(inv32)
    assert rotary["rotary_dim"] == 2 * n, (name, rotary["rotary_dim"], n)
    smap = stream_of(rotary, n)
    if rotary.get("scaling", {}).get("type", "none") == "none":
        ours = our_inv_freq(rotary, n)
        assert np.allclose(ours, inv64, rtol=1e-14, atol=0), (name, np.max(np.abs(ours / inv64 - 1)))
    for p in patterns:
        ids = np.asarray(p["ids"], dtype=np.int64)
        assert ids.shape[0] == max(1, rotary.get("streams", {}).get("n_streams", 1)), name
        ang = ids[smap, :].T.astype(np.float64) * np.asarray(inv64)[None, :]
        for key, fn in (("cos", np.cos), ("sin", np.sin)):
            # HF's angle is fp32(id) * fp32(inv_freq) rounded to fp32: a few 2^-24 |angle| off
            err = np.abs(np.asarray(p[key], dtype=np.float64) - fn(ang) * att) - np.abs(ang) * 2.0 ** -21
            assert err.max() < 1e-6, (name, p["name"], key, err.max())
        p["cos"], p["sin"] = f32_rows(p["cos"]), f32_rows(p["sin"])
    return {
        "name": name, "rope_type": rope_type, "rotary": rotary, "stream_of_frequency": [int(v) for v in smap],
        "inv_freq_fp32": [F32(v) for v in inv32], "inv_freq_fp64": [float(v) for v in inv64],
        "attention_factor": float(att), "note": note, "patterns": patterns,
    }


def fp64_of(fn, inv32):
    """fn() (an HF init function) run with float32 redirected to float64; fn() as is must give inv32."""
    import torch

    again, _ = fn()
    assert again.dtype == torch.float32 and torch.equal(again, inv32)
    with float64_redirect():
        inv64, _ = fn()
    assert inv64.dtype == torch.float64 and not torch.equal(inv64, inv32.double())
    return inv64


TEXT_POSITIONS_NOTE = "text: ids of every stream equal, at the fixed positions of the one-stream goldens"


def text_pattern(rows_fn, n_streams):
    ids = np.asarray([POSITIONS] * n_streams, dtype=np.int64)
    c, s = rows_fn(ids)
    return {"name": "text", "note": TEXT_POSITIONS_NOTE, "ids": ids.tolist(), "cos": c, "sin": s}


def mrope_ids(entry, text_cfg_parent, runs, prefix=0):
    """HF's own get_rope_index for a token layout (model class method on a stand-in self)."""
    import functools
    import types

    import torch

    cls = hf_attr(entry["module"], entry["model_class"])
    me = types.SimpleNamespace(config=text_cfg_parent)
    me.get_vision_position_ids = functools.partial(cls.get_vision_position_ids, me)
    types_ = [0] * prefix + [m for m, k in runs for _ in range(k)]
    n_img = sum(1 for m, _ in runs if m == 1)
    vid = entry["video"]
    kw = {"image_grid_thw": torch.tensor([[1, 4, 6]] * n_img) if n_img else None}
    if any(m == 2 for m, _ in runs):
        kw["video_grid_thw"] = torch.tensor([vid["grid"]])
        if "second_per_grid_ts" in vid:
            kw["second_per_grid_ts"] = torch.tensor(vid["second_per_grid_ts"])
    ids = torch.zeros(1, len(types_), dtype=torch.long)
    pos, _ = cls.get_rope_index(me, ids, torch.tensor([types_]), **kw)
    return pos[:, 0, :].numpy()


def gen_mrope(entry):
    import torch

    parent = build_config(entry["config"])
    config = parent.text_config
    rope = hf_attr(entry["module"], entry["text_class"])(config)
    rope.eval()
    fwd = type(rope).forward.__wrapped__

    def rows(ids):
        with torch.no_grad():
            c, s = fwd(rope, torch.zeros(1), torch.as_tensor(ids, dtype=torch.int64).reshape(3, 1, -1))
        return first_half(c, s)

    inv32 = rope.inv_freq.detach().clone()
    inv64 = fp64_of(lambda: type(rope).compute_default_rope_parameters(config), inv32)
    mixed = mrope_ids(entry, parent, entry["layout"])
    late = mrope_ids(entry, parent, [(0, LATE_TEXT), (1, 6), (0, 1)])[:, LATE_TEXT - 1:]
    pats = [text_pattern(rows, 3)]
    for name, ids, note in (
        ("image_video", mixed, "HF get_rope_index of text 2, image grid_thw (1, 4, 6), text, video grid_thw "
                               f"{tuple(entry['video']['grid'])}, text (layout {entry['layout']})"),
        ("late_image", late, f"get_rope_index of {LATE_TEXT} text tokens, image (1, 4, 6), text 1: the last 8 tokens"),
    ):
        c, s = rows(ids)
        pats.append({"name": name, "note": note, "ids": ids.tolist(), "cos": c, "sin": s})
    rec = rope_record("default", rope.rope_type, entry["rotary"], inv32.tolist(), inv64.tolist(),
                      rope.attention_scaling, pats, "cos/sin: HF's forward after recomposition_frequencies")
    return [rec], {"mrope_section": list(rope.mrope_section)}


def gen_layers(entry):
    import torch

    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = build_config(entry["config"]).text_config
    rope = hf_attr(entry["module"], entry["text_class"])(config)
    rope.eval()
    fwd = type(rope).forward.__wrapped__
    recs = []
    for lt in ("full_attention", "sliding_attention"):
        rt = rope.rope_type[lt]
        inv32 = getattr(rope, f"{lt}_inv_freq").detach().clone()
        if rt == "default":
            fn = functools_partial(type(rope).compute_default_rope_parameters, config, None, layer_type=lt)
        else:
            fn = functools_partial(ROPE_INIT_FUNCTIONS[rt], config, None, layer_type=lt)
        inv64 = fp64_of(fn, inv32)

        def rows(ids, lt=lt):
            with torch.no_grad():
                c, s = fwd(rope, torch.zeros(1), torch.as_tensor(ids, dtype=torch.int64).reshape(1, -1), lt)
            return first_half(c, s)

        pats = [text_pattern(rows, 1)]
        recs.append(rope_record(lt, rt, entry["ropes"][lt], inv32.tolist(), inv64.tolist(),
                                getattr(rope, f"{lt}_attention_scaling"), pats,
                                f"HF's Gemma3RotaryEmbedding forward with layer_type {lt}"))
    return recs, {"layer_types": list(config.layer_types)}


def functools_partial(fn, *a, **k):
    return lambda: fn(*a, **k)


def gen_text(entry):
    import torch

    config = build_config(entry["config"])
    rope = hf_attr(entry["module"], entry["text_class"])(config)
    rope.eval()
    fwd = type(rope).forward.__wrapped__

    def rows(ids):
        with torch.no_grad():
            c, s = fwd(rope, torch.zeros(1), torch.as_tensor(ids, dtype=torch.int64).reshape(1, -1))
        return first_half(c, s)

    inv32 = rope.inv_freq.detach().clone()
    inv64 = fp64_of(lambda: type(rope).compute_default_rope_parameters(config), inv32)
    rec = rope_record("default", rope.rope_type, entry["rotary"], inv32.tolist(), inv64.tolist(),
                      rope.attention_scaling, [text_pattern(rows, 1)],
                      "cos/sin: the first rotary_dim/2 entries of HF's forward (glm4's apply_rotary_pos_emb "
                      "repeats each twice: cos[..., :d/2].repeat_interleave(2))")
    return [rec], {}


def vision_grid_ids(entry, key):
    import torch

    from transformers.vision_utils import get_vision_position_ids

    g = entry["grids"][key]
    if entry["module"] == "pixtral":  # PixtralVisionModel.forward: meshgrid of the patch grid, row-major
        h, w = torch.meshgrid(torch.arange(g[0]), torch.arange(g[1]), indexing="ij")
        ids = torch.stack([h.flatten(), w.flatten()]).numpy()
    else:
        ids = get_vision_position_ids(torch.tensor([g]), entry["config"]["spatial_merge_size"]).T.numpy()
    if key == "large":  # a few patches of a large image: the first, then spread, then the last
        n = ids.shape[1]
        ids = ids[:, sorted({0, 1, n // 3, n // 2, (2 * n) // 3, n - 2, n - 1})]
    return ids


def gen_vision(entry):
    import torch

    cfg = dict(entry["config"])
    config = build_config(cfg)
    if hasattr(config, "vision_config"):
        config = config.vision_config
    rope = hf_attr(entry["module"], entry["vision_class"])(config)
    rope.eval()

    def rows(ids):
        with torch.no_grad():
            c, s = rope(torch.zeros(1), torch.as_tensor(ids, dtype=torch.int64).T.contiguous())
        return first_half(c, s)

    inv32 = rope.inv_freq.detach().clone()
    inv64 = fp64_of(lambda: type(rope).compute_axial_rope_parameters(config), inv32)
    if entry["module"] != "pixtral":  # Qwen2-VL: row and column share the frequencies: cat(row, col)
        inv32, inv64 = torch.cat([inv32, inv32]), torch.cat([inv64, inv64])
    pats = []
    for key in ("small", "large"):
        ids = vision_grid_ids(entry, key)
        c, s = rows(ids)
        pats.append({"name": f"grid_{key}", "note": f"(row, col) ids of patch grid {entry['grids'][key]}"
                     + (" (a few patches)" if key == "large" else ""), "ids": ids.tolist(), "cos": c, "sin": s})
    rec = rope_record("vision", rope.rope_type, entry["rotary"], inv32.tolist(), inv64.tolist(),
                      rope.attention_scaling, pats, "cos/sin: HF's vision rotary forward after "
                      "recomposition_frequencies; inv_freq_*: the frequency of each of the rotary_dim/2 entries")
    return [rec], {}


GENERATORS = {"mrope": gen_mrope, "layers": gen_layers, "text": gen_text, "vision": gen_vision}


def generate_v2(entry):
    import torch
    import transformers

    ropes, extra = GENERATORS[entry["kind"]](entry)
    out = {
        "format": 2, "model": entry["model"], "source": entry["source"], "transformers": transformers.__version__,
        "torch": torch.__version__.split("+")[0], "kind": entry["kind"], "config": entry["config"],
    }
    out.update(extra)
    out["ropes"] = ropes
    return out


def compare_v2(new, old, ulp_tol, path=""):
    """Everything equal, except cos/sin rows within ulp_tol fp32 ulps."""
    if isinstance(new, dict):
        if not isinstance(old, dict) or set(new) != set(old):
            return [f"{path}: keys differ"]
        errs = []
        for k in new:
            if k in ("transformers", "torch"):
                continue
            if k in ("cos", "sin"):
                d = int(ulp_diff32(new[k], old[k]).max()) if np.shape(new[k]) == np.shape(old[k]) else -1
                if d < 0 or d > ulp_tol:
                    errs.append(f"{path}.{k}: differs by {d} fp32 ulp")
            else:
                errs += compare_v2(new[k], old[k], ulp_tol, f"{path}.{k}")
        return errs
    if isinstance(new, list):
        if not isinstance(old, list) or len(new) != len(old):
            return [f"{path}: length differs"]
        return [e for i, (a, b) in enumerate(zip(new, old)) for e in compare_v2(a, b, ulp_tol, f"{path}[{i}]")]
    return [] if new == old else [f"{path}: {new!r} vs {old!r}"]


# --------------------------------------------------------------------------------------------------------------
# compact JSON: objects indented, lists of numbers on one line


class F32(float):
    """A float that is exactly an fp32 value: written as the shortest decimal that reads back to it (through a
    double, as strtod then a cast to float does; checked for every value)."""


def f32_text(v):
    s = str(np.float32(v))
    assert np.float32(float(s)) == np.float32(v) and float(np.float32(v)) == float(v), (v, s)
    return s


def f32_tree(obj):
    if isinstance(obj, list):
        return [f32_tree(v) for v in obj]
    return F32(obj)


def dumps(obj, indent=0):
    pad = " " * indent
    if isinstance(obj, F32):
        assert math.isfinite(obj)
        return f32_text(obj)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad}  {json.dumps(k)}: {dumps(v, indent + 2)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (dict, list)) for v in obj):
            return "[" + ", ".join(dumps(v) for v in obj) + "]"
        return "[\n" + ",\n".join(pad + "  " + dumps(v, indent + 2) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, float):
        assert math.isfinite(obj)
        return repr(obj)
    return json.dumps(obj)


# --------------------------------------------------------------------------------------------------------------


def ulp_diff32(a, b):
    a = np.asarray(a, dtype=np.float32).view(np.int32).astype(np.int64)
    b = np.asarray(b, dtype=np.float32).view(np.int32).astype(np.int64)
    a = np.where(a < 0, -(a & 0x7FFFFFFF), a)
    b = np.where(b < 0, -(b & 0x7FFFFFFF), b)
    return np.abs(a - b)


def compare(name, new, old, ulp_tol):
    errs = []
    for key in ("model", "config", "rope_type", "head_dim", "rotary_dim", "layout"):
        if new[key] != old.get(key):
            errs.append(f"{key} differs")
    if len(new["cases"]) != len(old.get("cases", [])):
        return errs + ["number of cases differs"]
    for cn, co in zip(new["cases"], old["cases"]):
        tag = f"seq_len {cn['seq_len']}"
        for key in ("seq_len", "positions", "inv_freq_fp32", "inv_freq_fp64", "attention_factor"):
            if cn[key] != co.get(key):
                errs.append(f"{tag}: {key} differs")
        for key in ("cos", "sin"):
            if np.shape(cn[key]) != np.shape(co.get(key)):
                errs.append(f"{tag}: {key} shape differs")
                continue
            d = int(ulp_diff32(cn[key], co[key]).max())
            if d > ulp_tol:
                errs.append(f"{tag}: {key} differs by {d} fp32 ulp")
    tn, to = new["hf_fp32_vs_truth"], old.get("hf_fp32_vs_truth", {})
    for key in ("max_abs_cos_sin", "median_ulp"):
        a, b = tn[key], to.get(key)
        if b is None or (a != b and (ulp_tol == 0 or abs(a - b) > 0.01 * abs(b))):
            errs.append(f"hf_fp32_vs_truth.{key}: {a!r} vs {b!r}")
    if new["transformers"] != old.get("transformers") or new["torch"] != old.get("torch"):
        print(f"  note: {name} was generated with transformers {old.get('transformers')} / torch "
              f"{old.get('torch')}, now {new['transformers']} / {new['torch']}")
    return errs


def hand_checks(results):
    """A few values worked out by hand from the published formulas."""
    l31 = results.get("llama-3.1-8b")
    if l31:
        c = l31["cases"][0]
        assert c["inv_freq_fp32"][0] == 1.0 and c["inv_freq_fp64"][0] == 1.0
        # lowest frequency: wavelength > 8192 -> divided by factor 8
        assert math.isclose(c["inv_freq_fp64"][-1], 500000.0 ** (-126 / 128) / 8, rel_tol=1e-15)
        assert c["attention_factor"] == 1.0
    phi3 = results.get("phi-3-mini-128k-instruct")
    if phi3:
        want = math.sqrt(1 + math.log(131072 / 4096) / math.log(4096))  # = sqrt(17/12)
        for c in phi3["cases"]:
            assert c["attention_factor"] == want, (c["attention_factor"], want)
        short, long_ = phi3["cases"][0], phi3["cases"][1]
        assert math.isclose(short["inv_freq_fp64"][1], 1 / (1.1 * 10000 ** (2 / 96)), rel_tol=1e-15)
        assert math.isclose(long_["inv_freq_fp64"][1], 1 / (1.1200000047683716 * 10000 ** (2 / 96)),
                            rel_tol=1e-15)
    ds = results.get("deepseek-v2-lite")
    if ds:
        def mscale(s, m):
            return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
        want = mscale(40, 0.707) / mscale(40, 0.707)
        assert ds["cases"][0]["attention_factor"] == want == 1.0
        assert ds["rotary_dim"] == 64 and ds["head_dim"] == 64
    qw = results.get("qwen2.5-7b-instruct-yarn")
    if qw:
        assert qw["cases"][0]["attention_factor"] == 0.1 * math.log(4.0) + 1.0
    neox = results.get("gpt-neox-20b")
    if neox:
        assert neox["rotary_dim"] == 24 and neox["head_dim"] == 96
    phi2 = results.get("phi-2")
    if phi2:
        assert phi2["rotary_dim"] == 32 and phi2["head_dim"] == 80
    dyn = results.get("llama-2-7b-dynamic-ntk")
    if dyn:
        for c in dyn["cases"]:
            sl = c["seq_len"]
            base = 10000.0 * ((2.0 * max(sl, 4096) / 4096) - 1.0) ** (128 / 126)
            assert math.isclose(c["inv_freq_fp64"][-1], base ** (-126 / 128), rel_tol=1e-13), sl
    g3 = results.get("gemma-3-27b-it")
    if g3:
        full, slide = g3["ropes"]
        assert math.isclose(full["inv_freq_fp64"][1], 1e6 ** (-2 / 128) / 8, rel_tol=1e-15)
        assert math.isclose(slide["inv_freq_fp64"][1], 1e4 ** (-2 / 128), rel_tol=1e-15)
        assert [i for i, t in enumerate(g3["layer_types"]) if t == "full_attention"] == list(range(5, 62, 6))
    q3 = results.get("qwen3-vl-8b-instruct")
    if q3:  # interleaved: t h w t h w ... for 20 triples, then t for the last 4
        m = q3["ropes"][0]["stream_of_frequency"]
        assert m == [0, 1, 2] * 20 + [0] * 4 and [m.count(j) for j in range(3)] == [24, 20, 20]
    q2 = results.get("qwen2-vl-7b-instruct")
    if q2:
        assert q2["ropes"][0]["stream_of_frequency"] == [0] * 16 + [1] * 24 + [2] * 24
    pix = results.get("pixtral-12b-vision")
    if pix:  # column frequencies are the odd ones of the 64-dim rope
        w = pix["ropes"][0]["inv_freq_fp64"]
        assert math.isclose(w[16], 1e4 ** (-2 / 64), rel_tol=1e-15)
        assert math.isclose(w[1], 1e4 ** (-4 / 64), rel_tol=1e-15)
    lin = results.get("llama-2-7b-linear-4")
    if lin:
        assert math.isclose(lin["cases"][0]["inv_freq_fp64"][1], 10000.0 ** (-2 / 128) / 4, rel_tol=1e-15)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/golden/hf", help="directory of the JSON files")
    ap.add_argument("--check", action="store_true", help="recompute and compare with the files in --out")
    ap.add_argument("--only", action="append", help="model name(s) to do (default: all)")
    ap.add_argument("--ulp-tol", type=int, default=0, help="--check: fp32 ulps tolerated in cos/sin")
    args = ap.parse_args()

    import torch

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

    every = MODELS + STREAM_MODELS
    entries = [e for e in every if not args.only or e["name"] in args.only]
    if not entries:
        sys.exit(f"no model named {args.only}; have: {', '.join(e['name'] for e in every)}")
    results, failed = {}, False
    for e in entries:
        print(f"{e['name']} ...", flush=True)
        v2 = "kind" in e
        res = generate_v2(e) if v2 else generate(e)
        results[e["name"]] = res
        if v2:
            for r in res["ropes"]:
                print(f"  {r['name']}: {r['rope_type']}, rotary_dim {r['rotary']['rotary_dim']}, patterns "
                      f"{', '.join(p['name'] for p in r['patterns'])}", flush=True)
        else:
            t = res["hf_fp32_vs_truth"]
            print(f"  {res['rope_type']}, rotary_dim {res['rotary_dim']}, attention_factor "
                  f"{res['cases'][-1]['attention_factor']!r}, max abs {t['max_abs_cos_sin']:.3g}, max ulp "
                  f"{t['max_ulp_cos_sin']:.3g}, median ulp {t['median_ulp']:.3g}", flush=True)
        path = os.path.join(args.out, e["name"] + ".json")
        if args.check:
            try:
                with open(path) as f:
                    old = json.load(f)
            except OSError as exc:
                print(f"  MISMATCH: cannot read {path}: {exc}")
                failed = True
                continue
            if v2:  # through JSON text, as the file holds it
                errs = compare_v2(json.loads(dumps(res)), old, args.ulp_tol, e["name"])
            else:
                errs = compare(e["name"], res, old, args.ulp_tol)
            for msg in errs:
                print(f"  MISMATCH: {msg}")
            failed |= bool(errs)
        else:
            os.makedirs(args.out, exist_ok=True)
            with open(path, "w") as f:
                f.write(dumps(res) + "\n")
    for e in entries:  # the converted-layout copies must agree with the originals bit for bit
        other = results.get(e.get("same_as"))
        if other:
            a, b = results[e["name"]], other
            assert a["rope_type"] == b["rope_type"] and a["cases"] == b["cases"], e["name"]
    hand_checks(results)
    if args.check:
        print("check: " + ("MISMATCH" if failed else f"all {len(entries)} files match"))
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
