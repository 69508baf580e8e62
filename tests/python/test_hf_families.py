"""test_hf_families.py: rotary.hf.patch on Gemma, Gemma 2, Gemma 3 (text), Qwen3, Phi-3, GPT-NeoX, StableLM, GLM,
GLM-4, Qwen2-VL and Qwen2.5-VL, each a tiny model built from a config with random weights (nothing downloaded):
logits, greedy generation and gradients of the patched model against the unpatched one, and the number of
attention calls rotary served (a patch that left HF's code in charge would still agree with HF).

What each family exercises: partial rotary (Phi-3 1/2 with LongRoPE, the prompt of 24 within its original length 28
and generation past it; GPT-NeoX 1/2 with q and k heads interleaved in one QKV buffer; StableLM 1/4 with q sliced by
the attention; GLM / GLM-4 1/2 with interleaved pairs), per-layer-type ropes (Gemma 3: a sliding layer at base 1e4
and a full layer at base 1e6 with linear scaling), mRoPE (Qwen2-VL, Qwen2.5-VL: an image in each prompt, so
position_ids [3, batch, seq] come from the models' own get_rope_index with temporal, height and width ids that
differ; the vision tower's 2-D rope, with Qwen2.5-VL's window reordering, checked on the tower's own output), and
q/k norms or soft-capping around the rotation (Qwen3, Gemma 2).

Tolerance as in test_hf.py: rotary's cos/sin are fp32 roundings of fp64 angles, HF's come from fp32 angles.
"""
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import rotary  # noqa: E402
import rotary.hf  # noqa: E402

LOGITS_ATOL = 1e-4
GRAD_RTOL = 1e-4   # of the largest gradient of the unpatched model
NEW_TOKENS = 8
PROMPT = 24
LAYERS = 2
COMMON = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=LAYERS, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)
MROPE = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}  # head_dim 16: 8 frequencies
IMAGE, VIDEO, V_START, V_END = 250, 251, 252, 253
GRIDS = ((1, 4, 6), (1, 6, 4))  # (t, h, w) patches of the image in each prompt: 2 x 3 and 3 x 2 tokens after merging


def _build(family):
    T = transformers
    half = [1.0, 1.1, 1.2, 1.3]  # Phi-3: rotary_dim 8 -> 4 frequencies
    vl = dict(image_token_id=IMAGE, video_token_id=VIDEO, vision_start_token_id=V_START, vision_end_token_id=V_END)
    text = dict(COMMON, max_position_embeddings=128, rope_parameters=dict(MROPE))
    made = {
        "gemma": lambda: (T.GemmaForCausalLM, T.GemmaConfig(head_dim=16, **COMMON)),
        "gemma2": lambda: (T.Gemma2ForCausalLM, T.Gemma2Config(head_dim=16, sliding_window=8, **COMMON)),
        "gemma3": lambda: (T.Gemma3ForCausalLM, T.Gemma3TextConfig(
            head_dim=16, sliding_window=8, layer_types=["sliding_attention", "full_attention"],
            rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                             "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}},
            **COMMON)),
        "qwen3": lambda: (T.Qwen3ForCausalLM, T.Qwen3Config(head_dim=16, **COMMON)),
        "phi3": lambda: (T.Phi3ForCausalLM, T.Phi3Config(
            partial_rotary_factor=0.5, original_max_position_embeddings=28,
            rope_scaling={"rope_type": "longrope", "short_factor": half, "long_factor": [4 * f for f in half]},
            **COMMON)),
        "gpt_neox": lambda: (T.GPTNeoXForCausalLM, T.GPTNeoXConfig(
            rotary_pct=0.5, **{k: v for k, v in COMMON.items() if k != "num_key_value_heads"})),
        "stablelm": lambda: (T.StableLmForCausalLM, T.StableLmConfig(partial_rotary_factor=0.25, **COMMON)),
        "glm": lambda: (T.GlmForCausalLM, T.GlmConfig(head_dim=16, partial_rotary_factor=0.5, **COMMON)),
        "glm4": lambda: (T.Glm4ForCausalLM, T.Glm4Config(head_dim=16, partial_rotary_factor=0.5, **COMMON)),
        "qwen2_vl": lambda: (T.Qwen2VLForConditionalGeneration, T.Qwen2VLConfig(
            text_config=text, vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, patch_size=2,
                                                 spatial_merge_size=2, temporal_patch_size=2, mlp_ratio=2), **vl)),
        "qwen2_5_vl": lambda: (T.Qwen2_5_VLForConditionalGeneration, T.Qwen2_5_VLConfig(
            text_config=text, vision_config=dict(depth=2, hidden_size=32, out_hidden_size=64, intermediate_size=64,
                                                 num_heads=2, patch_size=2, spatial_merge_size=2,
                                                 temporal_patch_size=2, window_size=8, fullatt_block_indexes=[1]),
            **vl)),
    }
    model_cls, cfg = made[family]()
    torch.manual_seed(0)
    return model_cls(cfg).eval()


def _inputs(model, family):
    """Token ids of 2 prompts, and for the VL models an image in each (pixel_values, image_grid_thw,
    mm_token_type_ids: what the processor gives), at a different place in each prompt."""
    torch.manual_seed(1)
    ids = torch.randint(3, 240, (2, PROMPT))
    if not family.endswith("_vl"):
        return ids, {}
    types = torch.zeros_like(ids)
    merge = 2
    for b, ((t, h, w), at) in enumerate(zip(GRIDS, (3, 9))):
        n = t * h * w // merge ** 2
        ids[b, at - 1], ids[b, at + n] = V_START, V_END
        ids[b, at:at + n] = IMAGE
        types[b, at:at + n] = 1
    patches = sum(t * h * w for t, h, w in GRIDS)
    extra = {"pixel_values": torch.randn(patches, 3 * 2 * 2 * 2), "image_grid_thw": torch.tensor(GRIDS),
             "mm_token_type_ids": types}
    return ids, extra


class _Counter:
    """Counts the attention calls rotary served (RotaryPositions.apply) and keeps the position ids of the first
    language-model call and of the first vision-tower call ("thd")."""

    def __init__(self, monkeypatch):
        self.calls = 0
        self.position_ids = {}
        original = rotary.hf.RotaryPositions.apply

        def counted(positions, *args, **kwargs):
            self.calls += 1
            self.position_ids.setdefault(positions.layout, positions.position_ids)
            return original(positions, *args, **kwargs)

        monkeypatch.setattr(rotary.hf.RotaryPositions, "apply", counted)


def _tower(model, extra):
    """The VL models' vision tower output for the prompts' images (None for text models)."""
    if "pixel_values" not in extra:
        return None
    return model.model.visual(extra["pixel_values"], grid_thw=extra["image_grid_thw"]).last_hidden_state


def _grads(model, ids, extra):
    model.zero_grad()
    model(ids, labels=ids, **extra).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


FAMILIES = ["gemma", "gemma2", "gemma3", "qwen3", "phi3", "gpt_neox", "stablelm", "glm", "glm4", "qwen2_vl",
            "qwen2_5_vl"]


@pytest.mark.parametrize("family", FAMILIES)
def test_patch_family(family, monkeypatch):
    model = _build(family)
    ids, extra = _inputs(model, family)
    with torch.no_grad():
        ref = model(ids, **extra).logits
        tower_ref = _tower(model, extra)
        gen_ref = model.generate(ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, **extra)
    grad_ref = _grads(model, ids, extra)

    counter = _Counter(monkeypatch)
    rotary.hf.patch(model)
    assert rotary.hf.is_patched(model)
    with torch.no_grad():
        got = model(ids, **extra).logits
        vision = model.config.vision_config.depth if family.endswith("_vl") else 0
        assert counter.calls == LAYERS + vision  # every attention layer rotated by rotary
        if vision:
            pos = counter.position_ids[None]  # mRoPE: 3 streams that differ on the image tokens
            assert pos.shape == (3, *ids.shape) and not torch.equal(pos[1], pos[2]) and not torch.equal(pos[0], pos[1])
            patches = counter.position_ids["thd"]  # the vision tower's (row, column) ids, [2, patches]
            assert patches.shape == (2, sum(t * h * w for t, h, w in GRIDS)) and not torch.equal(patches[0], patches[1])
        gen = model.generate(ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, **extra)
        tower = _tower(model, extra)
    grad = _grads(model, ids, extra)
    rotary.hf.unpatch(model)
    with torch.no_grad():
        again = model(ids, **extra).logits

    diff = (got - ref).abs().max().item()
    assert diff <= LOGITS_ATOL, f"{family}: max |logits diff| {diff:.3g} > {LOGITS_ATOL}"
    assert gen.shape[1] == PROMPT + NEW_TOKENS
    assert torch.equal(gen, gen_ref), f"{family}: greedy tokens differ:\n{gen.tolist()}\n{gen_ref.tolist()}"
    assert grad.keys() == grad_ref.keys()
    scale = max(g.abs().max().item() for g in grad_ref.values())
    worst = max((grad[n] - grad_ref[n]).abs().max().item() for n in grad_ref)
    assert worst <= GRAD_RTOL * scale, f"{family}: max |grad diff| {worst:.3g}, largest gradient {scale:.3g}"
    assert torch.equal(again, ref)  # unpatch restores HF's RoPE exactly
    if tower is not None:  # the vision tower's own output: its rope's effect is diluted in the logits
        diff = (tower - tower_ref).abs().max().item()
        assert diff <= LOGITS_ATOL * tower_ref.abs().max().item(), f"{family}: vision tower max |diff| {diff:.3g}"


def test_patch_refuses_a_rope_the_attention_does_not_compute():
    """Llama's default rope ignores partial_rotary_factor (its attention rotates the whole head): a config with one
    is refused rather than rotated differently from HF."""
    cfg = transformers.LlamaConfig(partial_rotary_factor=0.5, **COMMON)
    model = transformers.LlamaForCausalLM(cfg)
    with pytest.raises(ValueError, match="partial rotary"):
        rotary.hf.patch(model)
    assert not rotary.hf.is_patched(model)
