import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { QwenError } from "../../src/errors.js";
import { isSparseLayer, parseConfig } from "../../src/model/config.js";
import { realConfig } from "../../src/io/synthetic.js";
import { fixture } from "../helpers/paths.js";

const moe = () => JSON.parse(readFileSync(fixture("models", "tiny-qwen3-vl-moe", "config.json"), "utf8"));

describe("config.json", () => {
  it("reads the tiny dense and MoE configs", () => {
    const d = parseConfig(JSON.parse(readFileSync(fixture("models", "tiny-qwen3-vl-dense", "config.json"), "utf8")));
    assert.equal(d.isMoe, false);
    assert.deepEqual(d.text.mropeSection, [4, 2, 2]);
    assert.equal(d.text.headDim, 16);
    assert.equal(d.tieWordEmbeddings, true);
    const m = parseConfig(moe());
    assert.equal(m.text.numExperts, 8);
    assert.equal(m.text.numExpertsPerTok, 2);
    assert.equal(m.text.moeIntermediateSize, 32);
  });
  it("mixed dense/MoE layers follow mlp_only_layers and decoder_sparse_step (HF rule)", () => {
    const c = moe();
    c.text_config.num_hidden_layers = 6;
    c.text_config.decoder_sparse_step = 2;
    c.text_config.mlp_only_layers = [3];
    const t = parseConfig(c).text;
    // sparse where (l+1) % 2 == 0 and l not in mlp_only_layers: l = 1, 5 (3 is excluded)
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((l) => isSparseLayer(t, l)), [false, true, false, false, false, true]);
    const dense = parseConfig(JSON.parse(readFileSync(fixture("models", "tiny-qwen3-vl-dense", "config.json"), "utf8"))).text;
    assert.equal(isSparseLayer(dense, 0), false);
  });
  it("accepts transformers v5 rope_parameters and the old 'mrope' spelling", () => {
    const c = realConfig("2b");
    c.text_config.rope_parameters = { rope_type: "default", rope_theta: 1e6, mrope_section: [24, 20, 20], mrope_interleaved: true };
    delete c.text_config.rope_scaling;
    delete c.text_config.rope_theta;
    assert.equal(parseConfig(c).text.ropeTheta, 1e6);
    const o = realConfig("2b");
    o.text_config.rope_scaling = { type: "mrope", mrope_section: [24, 20, 20] };
    assert.equal(parseConfig(o).text.ropeType, "default");
  });
  it("explains what is wrong", () => {
    const bad = (mut: (c: any) => void, re: RegExp) => {
      const c = realConfig("2b");
      mut(c);
      assert.throws(() => parseConfig(c, "x/config.json"), (e: unknown) => e instanceof QwenError && re.test(e.message) && e.message.startsWith("x/config.json"));
    };
    bad((c) => { c.model_type = "llava"; }, /model_type is "llava"/);
    bad((c) => { delete c.text_config; }, /text_config is missing/);
    bad((c) => { c.text_config.rope_scaling.mrope_section = [24, 20, 21]; }, /sums to 65 but head_dim\/2 is 64/);
    bad((c) => { c.text_config.num_key_value_heads = 3; }, /multiple of num_key_value_heads/);
    bad((c) => { c.vision_config.deepstack_visual_indexes = [5, 11, 24]; }, /has 24 but depth is 24/);
    bad((c) => { c.vision_config.num_position_embeddings = 2300; }, /not a square grid/);
    bad((c) => { c.text_config.rope_scaling.rope_type = "longrope"; }, /rope_type "longrope" is not supported/);
    bad((c) => { Object.assign(c.text_config.rope_scaling, { rope_type: "yarn", factor: 0.5 }); }, /YaRN factor must be >= 1/);
    bad((c) => { c.vision_config.out_hidden_size = 1024; }, /must equal text_config.hidden_size/);
  });
});
