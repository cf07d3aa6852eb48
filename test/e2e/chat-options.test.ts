// The library's chat options on the tiny fixture model: sampling, stop strings, abort,
// streaming, the Thinking split and its budget, tools in the prompt.
import assert from "node:assert/strict";
import { copyFileSync, cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Qwen3VL, type ChatDelta } from "../../src/pipeline.js";
import { fixture } from "../helpers/paths.js";

const MESSAGES = [{ role: "user", content: "Write a haiku about tiny models." }];
let vl: Qwen3VL;
before(async () => {
  vl = await Qwen3VL.load(fixture("models", "tiny-qwen3-vl-dense"));
});

async function collect(it: AsyncGenerator<ChatDelta>) {
  const deltas: ChatDelta[] = [];
  for await (const d of it) deltas.push(d);
  const done = deltas.at(-1);
  assert.ok(done && done.type === "done");
  return { deltas, result: done.result };
}

describe("sampling options", () => {
  it("the same seed gives the same answer; another seed another answer", async () => {
    const o = { temperature: 1.5, topK: 0, topP: 1, maxNewTokens: 16, doSample: true };
    const a = await vl.chat(MESSAGES, { ...o, seed: 7 });
    const b = await vl.chat(MESSAGES, { ...o, seed: 7 });
    const c = await vl.chat(MESSAGES, { ...o, seed: 8 });
    assert.deepEqual(a.ids, b.ids);
    assert.equal(a.seed, 7);
    assert.notDeepEqual(a.ids, c.ids);
  });
  it("topK = 1 equals greedy decoding", async () => {
    const g = await vl.chat(MESSAGES, { greedy: true, maxNewTokens: 12 });
    const k1 = await vl.chat(MESSAGES, { doSample: true, temperature: 2, topK: 1, seed: 3, maxNewTokens: 12 });
    assert.deepEqual(k1.ids, g.ids);
  });
  it("repetition and presence penalties reach the sampler", async () => {
    // The one-image case's greedy answer repeats one token 11 times.
    const img = [{ role: "user", content: [{ type: "image", image: "../media/img_300x170.png" }, { type: "text", text: "Describe this image." }] }];
    const o = { greedy: true, maxNewTokens: 12, baseDir: fixture("cases") };
    const g = await vl.chat(img, o);
    assert.ok(new Set(g.ids).size < g.ids.length);
    for (const pen of [{ repetitionPenalty: 1e6 }, { presencePenalty: 1e6 }]) {
      const r = await vl.chat(img, { ...o, ...pen });
      assert.equal(new Set(r.ids).size, r.ids.length, `no token repeats with ${JSON.stringify(pen)}`);
    }
  });
});

describe("stop strings, abort, streaming", () => {
  it("stop strings cut exactly (the stop text and everything after it removed)", async () => {
    const full = await vl.chat(MESSAGES, { greedy: true, maxNewTokens: 24 });
    const cutAt = Math.floor(full.text.length / 2);
    const stop = full.text.slice(cutAt, cutAt + 2);
    const first = full.text.indexOf(stop);
    const r = await vl.chat(MESSAGES, { greedy: true, maxNewTokens: 24, stop: [stop] });
    assert.equal(r.text, full.text.slice(0, first));
    assert.equal(r.finishReason, "stop_string");
  });
  it("abort stops within one token", async () => {
    const ac = new AbortController();
    let seen = 0;
    let result;
    for await (const d of vl.chatStream(MESSAGES, { greedy: true, maxNewTokens: 200, signal: ac.signal })) {
      if (d.type === "done") result = d.result;
      else if (++seen === 1) ac.abort();
    }
    assert.ok(result);
    assert.equal(result.finishReason, "abort");
    assert.ok(result.ids.length <= 3, `stopped after ${result.ids.length} tokens`);
    const pre = new AbortController();
    pre.abort();
    const none = await vl.chat(MESSAGES, { greedy: true, signal: pre.signal });
    assert.equal(none.ids.length, 0);
  });
  it("streamed deltas join to the non-streamed text", async () => {
    const { deltas, result } = await collect(vl.chatStream(MESSAGES, { greedy: true, maxNewTokens: 20 }));
    const joined = deltas.filter((d) => d.type === "content").map((d) => (d as { text: string }).text).join("");
    const once = await vl.chat(MESSAGES, { greedy: true, maxNewTokens: 20 });
    assert.equal(joined, once.text);
    assert.equal(result.text, once.text);
    assert.equal(once.reasoning, null);
  });
});

describe("Thinking edition", () => {
  let thinking: Qwen3VL;
  before(async () => {
    const d = mkdtempSync(join(tmpdir(), "qwen3vl-think-"));
    cpSync(fixture("models", "tiny-qwen3-vl-dense"), d, { recursive: true });
    copyFileSync(fixture("templates", "qwen3_vl_thinking.jinja"), join(d, "chat_template.jinja"));
    thinking = await Qwen3VL.load(d);
  });
  it("the prompt opens <think>; a thinking budget closes it and the answer follows, split in both forms", async () => {
    const input = await thinking.prepare(MESSAGES);
    assert.ok(input.text.endsWith("<|im_start|>assistant\n<think>\n"));
    const budget = 5;
    const { deltas, result } = await collect(thinking.chatStream(MESSAGES, { greedy: true, maxNewTokens: 20, maxThinkingTokens: budget }));
    const tok = thinking.tokenizer;
    const close = tok.encode("\n</think>\n\n");
    assert.deepEqual(result.ids.slice(budget, budget + close.length), close, "budget forces </think>");
    const reasoningText = tok.decode(result.ids.slice(0, budget), { skipSpecialTokens: true }).replace(/^\n+|\n+$/g, "");
    assert.equal(result.reasoning, reasoningText);
    const streamedReasoning = deltas.filter((d) => d.type === "reasoning").map((d) => (d as { text: string }).text).join("");
    const streamedContent = deltas.filter((d) => d.type === "content").map((d) => (d as { text: string }).text).join("");
    assert.equal(streamedReasoning, result.reasoning);
    assert.equal(streamedContent, result.content);
    assert.ok(!result.content.includes("</think>") && !result.reasoning!.includes("</think>"));
    assert.equal(result.content, tok.decode(result.ids.slice(budget + close.length), { skipSpecialTokens: true }).replace(/^\n+/, ""));
  });
});

describe("tools", () => {
  it("tools are rendered into the prompt by the template", async () => {
    const tools = [{ type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
    const input = await vl.prepare(MESSAGES, { tools });
    assert.match(input.text, /<tools>\n\{"type": "function", "function": \{"name": "get_weather"/);
  });
});

describe("progress", () => {
  it("model loading reports bytes up to the checkpoint's weight bytes; the prefill reports vision + every layer", async () => {
    const seen: [number, number][] = [];
    const m = await Qwen3VL.load(fixture("models", "tiny-qwen3-vl-dense"), { onLoadProgress: (d, t) => seen.push([d, t]) });
    const last = seen.at(-1)!;
    assert.ok(seen.length > 50);
    assert.ok(last[0] > 0.99 * last[1] && last[0] <= last[1], `loaded ${last[0]} of ${last[1]}`);
    const steps: number[] = [];
    const img = [{ role: "user", content: [{ type: "image", image: "../media/img_224x224.png" }, { type: "text", text: "hi" }] }];
    await m.chat(img, { greedy: true, maxNewTokens: 1, baseDir: fixture("cases"), onPrefillProgress: (d, t) => { steps.push(d); assert.equal(t, 5); } });
    assert.deepEqual(steps, [1, 2, 3, 4, 5]);
  });
});

describe("pixel budgets", () => {
  it("minPixels/maxPixels shape image grids; fps/numFrames shape video sampling", async () => {
    const img = [{ role: "user", content: [{ type: "image", image: "../media/img_300x170.png" }, { type: "text", text: "hi" }] }];
    const base = { baseDir: fixture("cases") };
    const d = await vl.prepare(img, base);
    assert.deepEqual(d.images!.grids, [[1, 14, 22]]);
    // 300x170 under a 128·128 budget: beta = sqrt(300·170/16384) → floor to multiples of 32 → 96x160
    const small = await vl.prepare(img, { ...base, minPixels: 4 * 32 * 32, maxPixels: 128 * 128 });
    await assert.rejects(vl.prepare(img, { ...base, maxPixels: 128 * 128 }), /min_pixels \(65536\) is larger than max_pixels \(16384\)/);
    assert.deepEqual(small.images!.grids, [[1, 6, 10]]);
    const big = await vl.prepare(img, { ...base, minPixels: 512 * 512 });
    assert.ok(big.images!.grids[0]![1] * big.images!.grids[0]![2] * 256 >= 512 * 512);
    const vid = (extra: Record<string, unknown>) => [{ role: "user", content: [{ type: "video", video: "../media/vid_8f_128x96_fps2", fps: 2.0, ...extra }, { type: "text", text: "?" }] }];
    const v = await vl.prepare(vid({}), base);
    assert.deepEqual(v.videos!.grids, [[4, 6, 8]]);
    const n4 = await vl.prepare(vid({}), { ...base, numFrames: 4 });
    assert.deepEqual(n4.videos!.grids, [[2, 6, 8]]);
    assert.deepEqual(n4.videos!.frameIndices, [[0, 2, 5, 7]]);
    const f1 = await vl.prepare(vid({}), { ...base, fps: 1 });
    assert.deepEqual(f1.videos!.frameIndices[0]!.length, 4); // 4 s at 1 fps → 4 frames (min_frames 4)
  });
});

describe("sampling switch", () => {
  it("the tiny model's generation_config decodes greedily; a temperature or seed turns sampling on; temperature 0 is greedy", async () => {
    const g = await vl.chat(MESSAGES, { maxNewTokens: 12 });
    const greedy = await vl.chat(MESSAGES, { maxNewTokens: 12, greedy: true });
    assert.deepEqual(g.ids, greedy.ids);
    const t0 = await vl.chat(MESSAGES, { maxNewTokens: 12, temperature: 0 });
    assert.deepEqual(t0.ids, greedy.ids);
    const draws = await Promise.all([1, 2, 3].map((seed) => vl.chat(MESSAGES, { maxNewTokens: 12, temperature: 1.5, topK: 0, seed })));
    assert.ok(draws.some((d) => JSON.stringify(d.ids) !== JSON.stringify(greedy.ids)), "sampling differs from greedy for some seed");
  });
});
