// YaRN long-context rope scaling (the Qwen3-VL README recipe for contexts beyond 256K).
// No reference fixture exists for it; these are the properties of the transformers
// formula: slots that turn fast keep their frequency, slow ones are divided by the factor,
// a linear ramp joins them between the beta_fast / beta_slow correction slots, and cos/sin
// are scaled by 0.1·ln(factor) + 1.
import assert from "node:assert/strict";
import { it } from "node:test";
import { realConfig } from "../../src/io/synthetic.js";
import { parseConfig } from "../../src/model/config.js";
import { InterleavedMRoPE, ropeInvFreq, yarnInvFreq } from "../../src/model/text/interleaved-mrope.js";

const yarnConfig = (extra: Record<string, unknown>) => {
  const c = realConfig("2b");
  c.text_config.max_position_embeddings = 1_000_000;
  c.text_config.rope_scaling = { rope_type: "yarn", mrope_section: [24, 20, 20], mrope_interleaved: true, original_max_position_embeddings: 262144, ...extra };
  return parseConfig(c).text;
};

it("YaRN: config, correction range, ramp and attention scaling", () => {
  const t = yarnConfig({ factor: 3 });
  assert.equal(t.ropeType, "yarn");
  assert.equal(t.yarn!.factor, 3);
  // Without an explicit factor: max_position_embeddings / original (transformers v5).
  assert.equal(yarnConfig({}).yarn!.factor, 1_000_000 / 262144);

  const base = ropeInvFreq(128, 5e6);
  const { inv, attentionScaling } = yarnInvFreq(128, 5e6, t.yarn!);
  // Correction slots for dim 128, θ 5e6, 262144 original positions: floor(29.76) = 29 and ceil(44.14) = 45.
  const corr = (rot: number) => (128 * Math.log(262144 / (rot * 2 * Math.PI))) / (2 * Math.log(5e6));
  assert.equal(Math.floor(corr(32)), 29);
  assert.equal(Math.ceil(corr(1)), 45);
  for (let j = 0; j <= 29; j++) assert.equal(inv[j], base[j], `slot ${j} keeps its frequency`);
  for (let j = 45; j < 64; j++) assert.ok(Math.abs(inv[j]! - base[j]! / 3) <= 1e-6 * base[j]!, `slot ${j} is divided by the factor`);
  for (let j = 30; j < 45; j++) {
    const r = (j - 29) / 16;
    const want = (base[j]! / 3) * r + base[j]! * (1 - r);
    assert.ok(Math.abs(inv[j]! - want) <= 1e-6 * base[j]!, `slot ${j} on the ramp`);
  }
  assert.ok(Math.abs(attentionScaling - (0.1 * Math.log(3) + 1)) < 1e-12);

  const rope = new InterleavedMRoPE(128, 5e6, [24, 20, 20], t.yarn);
  const { cos, sin } = rope.tables([0, 0, 0], 1);
  assert.ok(Math.abs(cos[0]! - attentionScaling) < 1e-6 && sin[0] === 0, "position 0: cos = attention factor");
});

it("YaRN with factor 1 is plain rope", () => {
  const t = yarnConfig({ factor: 1 });
  const { inv, attentionScaling } = yarnInvFreq(128, 5e6, t.yarn!);
  assert.deepEqual([...inv], [...ropeInvFreq(128, 5e6)]);
  assert.equal(attentionScaling, 1);
});
