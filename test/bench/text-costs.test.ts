// Per-token costs the benchmark divides by (decode bytes read, prefill matmul flops), checked by hand
// for the 30B-A3B MoE shapes: only the chosen experts' bytes count, the router is read whole.
import assert from "node:assert/strict";
import { it } from "node:test";
import { textCosts } from "../../src/bench/child.js";
import { realConfig } from "../../src/io/synthetic.js";
import { parseConfig } from "../../src/model/config.js";

it("textCosts: 30B-A3B reads 8 of 128 experts per token, the untied head and every router", () => {
  const cfg = parseConfig(realConfig("30b-a3b", { textLayers: 2 }), "30b-a3b");
  // per layer: q 4096x2048 (32 heads x 128), k/v 512x2048 (4 x 128), o 2048x4096, router 128x2048,
  // experts gate_up [128, 2048, 1536] and down [128, 768, 2048] of which 8/128 are read
  const attn = 4096 * 2048 * 2 + 512 * 2048 * 2, router = 128 * 2048, experts = (8 / 128) * 128 * (2048 * 1536 + 768 * 2048);
  const head = 151936 * 2048;
  const bf16 = textCosts(cfg, "bf16");
  assert.equal(bf16.decodeBytes, 2 * (2 * (attn + router + experts) + head));
  assert.equal(bf16.prefillFlops, 2 * 2 * (attn + router + experts));
  // q8 under the 'mixed' policy keeps the router bf16
  const q8 = textCosts(cfg, "q8");
  assert.equal(q8.decodeBytes, 1.125 * (2 * (attn + experts) + head) + 2 * 2 * router);
});
