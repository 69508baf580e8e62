/* hf_mrope.c: multimodal RoPE of a Hugging Face config: mrope_section and mrope_interleaved (Qwen2-VL, Qwen2.5-VL,
 * Qwen3-VL) as a rotary_streams layout. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_json.h"
#include "hf_model.h"
#include "rotary.h"

/* transformers 5.24's mRoPE families: the Qwen2-VL code splits the frequencies into contiguous sections (default
 * [16, 24, 24]), the Qwen3-VL code interleaves them (default [24, 20, 20]), whatever mrope_interleaved says. */
int hf_mrope_family(const char *f) {
  if (HF_IS_ONE_OF(f, "qwen2_vl", "qwen2_vl_text", "qwen2_5_vl", "qwen2_5_vl_text")) return 1;
  if (HF_IS_ONE_OF(f, "qwen3_vl", "qwen3_vl_text", "qwen3_vl_moe", "qwen3_vl_moe_text")) return 2;
  return 0;
}

/* mrope_section: 2..4 integer sections, in frequencies (transformers splits the rotary_dim/2 frequencies by them),
 * summing to rotary_dim/2. The Qwen2-VL and Qwen3-VL families have defaults; elsewhere rope_type "mrope" or
 * mrope_interleaved true requires the key. */
static rotary_status read_sections(hf_parse *p, const hf_model *m, const scaling_src *src, int interleaved,
                                   rotary_streams *out) {
  static const size_t qwen2[3] = {16, 24, 24}, qwen3[3] = {24, 20, 20};
  const cJSON *v = src->obj ? hf_get(src->obj, "mrope_section") : NULL;
  const int fam = hf_mrope_family(m->family);
  size_t n = 0;
  if (v && !cJSON_IsNull(v)) {
    if (!cJSON_IsArray(v)) return hf_fail(p, "%s.mrope_section: expected an array of integers", src->name);
    for (const cJSON *e = v->child; e; e = e->next, n++) {
      if (n == ROTARY_MAX_STREAMS) {
        size_t all = n;
        while (e) all++, e = e->next;
        return hf_fail(p, "%s.mrope_section: has %zu sections (2 to %d allowed)", src->name, all, ROTARY_MAX_STREAMS);
      }
      if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0.0) || e->valuedouble >= 9007199254740992.0 ||
          e->valuedouble != floor(e->valuedouble))
        return hf_fail(p, "%s.mrope_section[%zu]: expected an integer >= 0", src->name, n);
      out->sections[n] = (size_t)e->valuedouble;
    }
    if (n < 2) return hf_fail(p, "%s.mrope_section: has %zu section%s (2 to %d allowed)", src->name, n,
                              n == 1 ? "" : "s", ROTARY_MAX_STREAMS);
  } else if (fam) {
    n = 3;
    memcpy(out->sections, fam == 1 ? qwen2 : qwen3, sizeof qwen2);
  } else {
    return hf_fail(p, "%s.mrope_section: missing (required by %s)", src->name,
                   interleaved ? "mrope_interleaved" : "rope_type \"mrope\"");
  }
  out->n_streams = n;
  return ROTARY_OK;
}

/* Multi-stream positions: contiguous sections (Qwen2-VL, Qwen2.5-VL: ROTARY_STREAMS_SECTIONS) or interleaved
 * (Qwen3-VL: ROTARY_STREAMS_INTERLEAVED, exactly 3 sections as transformers' code takes). */
rotary_status hf_rope_streams(hf_parse *p, const hf_model *m, const scaling_src *src, rotary_config *c) {
  const int fam = hf_mrope_family(m->family);
  int flag = -1;
  rotary_status st;
  if (src->obj && (st = hf_bool(p, src->obj, src->name, "mrope_interleaved", &flag)) != ROTARY_OK) return st;
  const cJSON *sec = src->obj ? hf_get(src->obj, "mrope_section") : NULL;
  const int has_sec = sec && !cJSON_IsNull(sec);
  if (!fam && !src->mrope && flag != 1 && !has_sec) return ROTARY_OK;
  if (fam == 1 && flag == 1)
    return hf_fail(p, "%s.mrope_interleaved: true, but model_type \"%s\" uses contiguous sections", src->name,
                   m->family);
  if (fam == 2 && flag == 0)
    return hf_fail(p, "%s.mrope_interleaved: false, but model_type \"%s\" interleaves the sections", src->name,
                   m->family);
  const int interleaved = fam == 2 || (!fam && flag == 1);
  rotary_streams *s = &c->streams;
  if ((st = read_sections(p, m, src, interleaved, s)) != ROTARY_OK) return st;
  const size_t half = c->rotary_dim / 2;
  size_t sum = 0;
  for (size_t j = 0; j < s->n_streams; j++) sum += s->sections[j];
  if (sum != half)
    return hf_fail(p, "%s.mrope_section: sums to %zu%s, rotary_dim/2 is %zu", src->name, sum,
                   has_sec ? "" : fam == 1 ? " (the Qwen2-VL default [16, 24, 24])" : " (the Qwen3-VL default [24, 20, 20])",
                   half);
  s->layout = interleaved ? ROTARY_STREAMS_INTERLEAVED : ROTARY_STREAMS_SECTIONS;
  if (!interleaved) return ROTARY_OK;
  if (s->n_streams != 3)
    return hf_fail(p, "%s.mrope_section: interleaved takes 3 sections (temporal, height, width), got %zu", src->name,
                   s->n_streams);
  for (size_t j = 1; j < 3; j++)
    if (s->sections[j] && 3 * (s->sections[j] - 1) + j >= half)
      return hf_fail(p, "%s.mrope_section[%zu]: %zu frequencies every 3rd from %zu do not fit in rotary_dim/2 = %zu",
                     src->name, j, s->sections[j], j, half);
  return ROTARY_OK;
}
