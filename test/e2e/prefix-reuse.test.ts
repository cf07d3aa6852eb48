// Multi-turn requests reuse the kept KV cache for their shared prefix; the answers must be
// exactly those of a fresh computation, and changed pixels must never reuse old features.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import sharp from "sharp";
import { Qwen3VL } from "../../src/pipeline.js";
import { WasmBackend } from "../../src/backends/wasm/index.js";
import { fixture } from "../helpers/paths.js";

let vl: Qwen3VL;
const base = { baseDir: fixture("cases"), greedy: true, maxNewTokens: 6 };
before(async () => {
  vl = await Qwen3VL.load(fixture("models", "tiny-qwen3-vl-dense"));
});

async function fresh(messages: unknown[], o = base) {
  vl.resetCache();
  return vl.chat(messages, { ...o, reuseCache: false });
}

describe("KV-cache reuse across requests", () => {
  it("a second turn reuses the first turn's prompt and gives the fresh answer", async () => {
    const turn1 = [{ role: "user", content: [{ type: "image", image: "../media/img_224x224.png" }, { type: "text", text: "What is it?" }] }];
    vl.resetCache();
    const a1 = await vl.chat(turn1, base);
    const prompt1 = (await vl.prepare(turn1, base)).inputIds.length;
    const turn2 = [...turn1, { role: "assistant", content: a1.content }, { role: "user", content: [{ type: "video", video: "../media/vid_8f_128x96_fps2", fps: 2 }, { type: "text", text: "And this?" }] }];
    const a2 = await vl.chat(turn2, base);
    assert.ok(vl.lastReusedTokens >= prompt1, `reused ${vl.lastReusedTokens} of the first prompt's ${prompt1} tokens`);
    const turn3 = [...turn2, { role: "assistant", content: a2.content }, { role: "user", content: "Compare them." }];
    const a3 = await vl.chat(turn3, base);
    assert.ok(vl.lastReusedTokens > prompt1 + 50, `third turn reused ${vl.lastReusedTokens} tokens (image + video blocks)`);
    assert.deepEqual(a2.ids, (await fresh(turn2)).ids);
    assert.deepEqual(a3.ids, (await fresh(turn3)).ids);
  });

  it("a kept cache that is not continued is freed at once: unrelated requests do not grow wasm memory", async () => {
    const be = vl.model.backend;
    assert.ok(be instanceof WasmBackend, "the library's default backend");
    const q = (text: string) => [{ role: "user", content: [{ type: "image", image: "../media/img_224x224.png" }, { type: "text", text }] }];
    vl.resetCache();
    await vl.chat(q("What is it?"), base);
    const used = be.kernels.arenaUsage();
    for (const t of ["Describe the colours.", "Is there text?", "Count the objects."]) await vl.chat(q(t), base);
    await vl.chat(q("Once more, without keeping the cache."), { ...base, reuseCache: false });
    vl.resetCache();
    await vl.chat(q("After a reset."), base);
    assert.deepEqual(be.kernels.arenaUsage(), used, "every later cache reused the freed regions");
  });

  it("an image with the same size but other pixels is encoded again", async () => {
    const flipped = join(mkdtempSync(join(tmpdir(), "qwen3vl-reuse-")), "flipped.png");
    await sharp(fixture("media", "img_224x224.png")).flip().png().toFile(flipped);
    const m = (img: string) => [{ role: "user", content: [{ type: "text", text: "Look:" }, { type: "image", image: img }, { type: "text", text: "What is it?" }] }];
    vl.resetCache();
    await vl.chat(m("../media/img_224x224.png"), base);
    const input = await vl.prepare(m(flipped), base);
    const firstPad = input.inputIds.indexOf(151655);
    const b = await vl.chat(m(flipped), base);
    assert.equal(vl.lastReusedTokens, firstPad, "reuse stops where the changed image starts");
    assert.deepEqual(b.ids, (await fresh(m(flipped))).ids);
  });

  it("an identical request is served from the cache except its last token; reuseCache:false opts out", async () => {
    const m = [{ role: "user", content: "Write a haiku about tiny models." }];
    vl.resetCache();
    const a = await vl.chat(m, base);
    const n = (await vl.prepare(m, base)).inputIds.length;
    const b = await vl.chat(m, base);
    assert.equal(vl.lastReusedTokens, n - 1);
    assert.deepEqual(b.ids, a.ids);
    await vl.chat(m, { ...base, reuseCache: false });
    assert.equal(vl.lastReusedTokens, 0);
  });
});
