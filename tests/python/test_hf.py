"""test_hf.py: rotary.hf.patch on Llama, Qwen2 and Mistral models built from configs with random weights (nothing
downloaded), and RoPE.from_hf_config against transformers' own rope parameters.

Tolerance: patched logits within LOGITS_ATOL of HF's. The two differ only in cos/sin: transformers computes the angle
as float32 position * float32 inv_freq (an error up to about position * 2^-24 rad) and casts cos/sin to the
activations' dtype, rotary computes angles in fp64 and rounds cos/sin once to fp32. On these small fp32 models
(|logits| about 1, positions below 100) the measured difference is below 1e-6.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import rotary  # noqa: E402
import rotary.hf  # noqa: E402

LOGITS_ATOL = 1e-4
NEW_TOKENS = 20

HALF = 16  # head_dim 32 -> 16 frequencies
SCALINGS = {
    "default": None,
    "linear": {"rope_type": "linear", "factor": 2.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16},
    "longrope": {"rope_type": "longrope", "original_max_position_embeddings": 16,
                 "short_factor": list(np.linspace(1.0, 1.5, HALF)), "long_factor": list(np.linspace(1.0, 6.0, HALF))},
}


def build(family, scaling=None, max_positions=64):
    cfg_cls, model_cls = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
    }[family]
    kw = {"rope_scaling": scaling} if scaling else {}
    if scaling and scaling["rope_type"] == "dynamic":
        max_positions = 16  # generation grows past it: the frequencies follow the sequence length
    cfg = cfg_cls(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=max_positions, rope_theta=10000.0, **kw)
    torch.manual_seed(0)
    return model_cls(cfg).eval()


def compare(model, prompt_len=40):
    torch.manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (2, prompt_len))
    short = ids[:1, :10]
    with torch.no_grad():
        ref = model(ids).logits
        gen_ref = model.generate(short, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
        rotary.hf.patch(model)
        assert rotary.hf.is_patched(model)
        got = model(ids).logits
        gen = model.generate(short, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
        rotary.hf.unpatch(model)
        again = model(ids).logits
    diff = (got - ref).abs().max().item()
    assert diff <= LOGITS_ATOL, f"max |logits diff| {diff:.3g} > {LOGITS_ATOL}"
    assert gen.shape[1] == 10 + NEW_TOKENS
    assert torch.equal(gen, gen_ref), f"greedy tokens differ:\n{gen.tolist()}\n{gen_ref.tolist()}"
    assert torch.equal(again, ref)  # unpatch restores HF's RoPE exactly
    return diff


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_patch_families(family):
    compare(build(family))


@pytest.mark.parametrize("kind", [k for k in SCALINGS if k != "default"])
def test_patch_scaling_families(kind):
    compare(build("llama", SCALINGS[kind]))


def test_patch_with_padding_mask_and_batch():
    """Left padding: HF's position_ids come from the attention mask in generate; rotary uses those ids."""
    model = build("llama")
    ids = torch.randint(0, 512, (2, 12))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    with torch.no_grad():
        ref = model.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False)
        rotary.hf.patch(model)
        got = model.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False)
    assert torch.equal(ref, got)


def test_patch_training_gradients():
    model = build("qwen2")
    ids = torch.randint(0, 512, (2, 24))
    model.train()
    model(ids, labels=ids).loss.backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    rotary.hf.patch(model)
    model(ids, labels=ids).loss.backward()
    worst = max((p.grad - ref[n]).abs().max().item() for n, p in model.named_parameters() if p.grad is not None)
    assert worst < 1e-5


def test_patch_leaves_other_models_alone():
    a, b = build("llama"), build("llama")
    ids = torch.randint(0, 512, (1, 20))
    with torch.no_grad():
        ref = b(ids).logits
        rotary.hf.patch(a)
        assert torch.equal(b(ids).logits, ref)  # b still runs HF's own RoPE (cos/sin tensors)
        assert not rotary.hf.is_patched(b)


def test_patch_rejects_other_models():
    cfg = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)
    with pytest.raises(ValueError, match="gpt2"):
        rotary.hf.patch(transformers.GPT2LMHeadModel(cfg))


@pytest.mark.parametrize("kind", list(SCALINGS))
def test_from_hf_config_matches_transformers(kind):
    model = build("llama", SCALINGS[kind])
    emb = model.model.rotary_emb
    rope = rotary.RoPE.from_hf_config(model.config)
    assert rope.head_dim == 32 and rope.pairing == "half"
    assert rope.hf["model_type"] == "llama" and rope.hf["num_key_value_heads"] == 2
    # transformers keeps inv_freq in float32: agreement to float32 rounding
    np.testing.assert_allclose(rope.inv_freq, emb.inv_freq.double().numpy(), rtol=2e-7, atol=0)
    assert rope.attention_scaling == pytest.approx(emb.attention_scaling, rel=1e-6)
    # the same config as a dict and as a config.json file
    d = model.config.to_dict()
    assert np.array_equal(rotary.RoPE.from_hf_config(d).inv_freq, rope.inv_freq)


def test_from_hf_config_file_and_dynamic_growth(tmp_path):
    model = build("llama", SCALINGS["dynamic"])
    model.config.save_pretrained(tmp_path)
    rope = rotary.RoPE.from_hf_config(tmp_path)
    assert rope.max_positions == 16
    init_fn = transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS["dynamic"]
    for seq_len in (40, 100):
        hf_inv, _ = init_fn(model.config, None, seq_len=seq_len)
        grown = rope.derive(seq_len, seq_len)
        np.testing.assert_allclose(grown.inv_freq, hf_inv.double().numpy(), rtol=2e-6, atol=0)


def test_from_hf_config_errors(tmp_path):
    with pytest.raises(ValueError, match="rope_scaling.factor"):
        rotary.RoPE.from_hf_config({"hidden_size": 64, "num_attention_heads": 4, "rope_scaling": {"type": "linear"}})
    with pytest.raises(FileNotFoundError):
        rotary.RoPE.from_hf_config(tmp_path / "missing.json")
    with pytest.raises(TypeError, match="config"):
        rotary.RoPE.from_hf_config(42)


@pytest.mark.parametrize("kind, backend", [("default", "inductor"), ("llama3", "aot_eager"),
                                           ("longrope", "aot_eager")])
def test_patch_compiles_fullgraph(kind, backend):
    """torch.compile(fullgraph=True) of a patched model traces without a graph break (no Python branch on position
    values: the table keeps the size the config gives, librotary checks positions when the graph runs; LongRoPE
    picks its long or short rope with torch.where as HF does) and gives HF's eager logits. LongRoPE runs once
    within and once past its original length."""
    pytest.importorskip("torch._inductor")
    from torch._dynamo.utils import counters
    model = build("llama", SCALINGS[kind])
    torch.manual_seed(1)
    lengths = (10, 24) if kind == "longrope" else (24,)
    inputs = [torch.randint(0, model.config.vocab_size, (2, n)) for n in lengths]
    with torch.no_grad():
        refs = [model(ids).logits for ids in inputs]
        rotary.hf.patch(model)
        torch._dynamo.reset()
        counters.clear()
        compiled = torch.compile(model, fullgraph=True, backend=backend)
        for ids, ref in zip(inputs, refs):
            diff = (compiled(ids).logits - ref).abs().max().item()
            assert diff <= LOGITS_ATOL, f"{kind}, {ids.shape[1]} tokens: max |logits diff| {diff:.3g}"
    assert not counters["graph_break"], dict(counters["graph_break"])
    torch._dynamo.reset()
