// The same code path at the real sizes: Qwen3-VL-2B and 30B-A3B configs (head_dim 128,
// mrope_section [24,20,20], 48x48 position grid, DeepStack taps [5,11,17] / [8,16,24]) with
// generated weights and the real vision depth, a few text layers. There is no reference
// output at these sizes, so the checks are invariants: shapes load, the position grid and
// MRoPE layouts are the real ones, and decoding with the KV cache equals a full recompute.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { realConfig, SyntheticStore } from "../../src/io/synthetic.js";
import { parseConfig } from "../../src/model/config.js";
import { Qwen3VLModel } from "../../src/model/qwen3-vl.js";
import { mropeAxes } from "../../src/model/text/interleaved-mrope.js";
import { linspaceF32 } from "../../src/model/vision/position-embedding.js";
import { assertClose } from "../helpers/compare.js";

function imagePrompt(gh: number, gw: number): number[] {
  const pads = (gh * gw) / 4;
  return [151644, 872, 198, 151652, ...new Array(pads).fill(151655), 151653, 3838, 374, 419, 30, 151645, 198, 151644, 77091, 198];
}

function pixels(rows: number, width: number): Float32Array {
  const p = new Float32Array(rows * width);
  for (let i = 0; i < p.length; i++) p[i] = Math.sin(i * 0.37) * 0.9;
  return p;
}

for (const [name, textLayers, taps] of [["2b", 3, [5, 11, 17]], ["30b-a3b", 1, [8, 16, 24]]] as const) {
  describe(`real ${name} config with generated weights`, () => {
    const cfgJson = realConfig(name, { textLayers });
    const cfg = parseConfig(cfgJson);
    const b = new ReferenceBackend();
    const model = new Qwen3VLModel(b, cfg, new SyntheticStore(cfg));

    it("has the real dimensions", () => {
      assert.equal(cfg.text.headDim, 128);
      assert.deepEqual(cfg.text.mropeSection, [24, 20, 20]);
      assert.deepEqual(cfg.vision.deepstackVisualIndexes, [...taps]);
      assert.equal(cfg.vision.numPositionEmbeddings, 48 * 48);
      assert.equal(model.text.layers.every((l) => l.sparse === cfg.isMoe), true);
      // "THW" x 20 then "TTTT": 24 T, 20 H, 20 W slots
      const ax = [...mropeAxes(128, [24, 20, 20])].map((a) => "THW"[a]).join("");
      assert.equal(ax, "THW".repeat(20) + "TTTT");
    });

    it("a 48x48-patch image samples the learned grid exactly at its nodes", () => {
      assert.deepEqual([...linspaceF32(47, 48)], Array.from({ length: 48 }, (_, i) => i));
    });

    it("prefill + cached decoding equals a full recompute, DeepStack at every tap", () => {
      const gh = 4, gw = 4;
      const ids = imagePrompt(gh, gw);
      const px = { pixelValues: pixels(gh * gw, 1536), grids: [[1, gh, gw] as const] };
      // Encoded once and reused by both runs (the reference backend is slow at these sizes).
      const vis = model.encodeVision(px);
      assert.equal(vis.deepstack.length, 3);
      assert.deepEqual(vis.embeds.shape, [(gh * gw) / 4, cfg.text.hiddenSize]);
      const images = { ...px, encoded: vis };

      const s1 = model.newSession();
      const first = b.toArray(model.forward(s1, { inputIds: ids, images }));
      assert.ok(first.every(Number.isFinite));
      const next = [0];
      let logits = first;
      for (let i = 0; i < next.length; i++) {
        let best = 0;
        for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
        next[i] = best;
        logits = b.toArray(model.forward(s1, { inputIds: [best] }));
      }
      // Position of the decoded tokens = cache index + rope delta (image block is compressed).
      assert.equal(s1.ropeDelta, Math.max(gh, gw) / 2 - (gh * gw) / 4);
      const s2 = model.newSession();
      const full = b.toArray(model.forward(s2, { inputIds: [...ids, ...next], images }));
      assertClose("cached vs recomputed logits", logits, full, 1e-4);
    });
  });
}
