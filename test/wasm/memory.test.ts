// Memory management of the wasm backend: the activation pool (released tensors' buffers are reused,
// never while a view of them is alive, without changing any result), explicit KV-cache release
// (Session.dispose frees the regions for the next cache), and KV growth with room to decode.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WasmBackend } from "../../src/backends/wasm/index.js";
import { QwenError } from "../../src/errors.js";
import { Qwen3VLModel } from "../../src/model/qwen3-vl.js";
import type { Weight } from "../../src/tensor/backend.js";
import { fixture } from "../helpers/paths.js";

const ids = (n: number, from = 100): number[] => Array.from({ length: n }, (_, i) => from + ((i * 37) % 500));

describe("wasm backend memory", () => {
  let backend: WasmBackend;
  let model: Qwen3VLModel;
  let w: Weight;
  before(async () => {
    backend = await WasmBackend.create({ threads: 2 });
    model = Qwen3VLModel.load(fixture("models/tiny-qwen3-vl-dense"), backend);
    const vals = new Float32Array(24 * 16).map((_, i) => Math.sin(i));
    w = backend.loadWeight({
      name: "w", dtype: "F32", shape: [24, 16],
      readInto: (dst) => dst.set(new Uint8Array(vals.buffer)),
      readRange: (off, dst) => dst.set(new Uint8Array(vals.buffer, off, dst.length)),
    });
  });
  after(() => backend.dispose());

  it("a released tensor's buffer is reused, but not while a view of it is alive", () => {
    const x = backend.fromArray(new Float32Array(8 * 16).map((_, i) => Math.cos(i)), [8, 16]);
    const y = backend.linear(x, w);
    const view = backend.sliceRows(y, 2, 4);
    const before = backend.toArray(view);
    backend.release(y);
    // same size as y: must not get y's buffer while `view` lives
    const z = backend.linear(backend.fromArray(new Float32Array(8 * 16).fill(3), [8, 16]), w);
    assert.deepEqual(backend.toArray(view), before, "the view kept its values");
    backend.release(view);
    backend.release(view); // a second release of the same tensor is a no-op, not a double free
    assert.throws(() => backend.toArray(view), /used after release/);
    const p0 = backend.pooledBytes;
    assert.ok(p0 >= 8 * 24 * 4, `y's buffer is pooled once its last view is released (pool ${p0} bytes)`);
    const u = backend.linear(x, w);
    assert.equal(backend.pooledBytes, p0 - 8 * 24 * 4, "the next op of that size takes it from the pool");
    const v = backend.linear(x, w);
    assert.notEqual(backend.toArray(u), backend.toArray(v));
    assert.deepEqual(backend.toArray(u), backend.toArray(v), "reused buffers give identical results");
    backend.release(u, v, z);
  });

  it("forward passes with pooled activations give identical logits", () => {
    const run = (): Float32Array => {
      const s = model.newSession();
      const l1 = model.forward(s, { inputIds: ids(40) }, { allLogits: true });
      const a = backend.toArray(l1);
      backend.release(l1);
      const l2 = model.forward(s, { inputIds: [7] });
      const b = backend.toArray(l2);
      backend.release(l2);
      s.dispose();
      const out = new Float32Array(a.length + b.length);
      out.set(a);
      out.set(b, a.length);
      return out;
    };
    const first = run();
    assert.ok(backend.pooledBytes > 0, "the forward released activations into the pool");
    const second = run();
    assert.deepEqual(second, first);
  });

  it("Session.dispose frees the KV cache for the next session, and a disposed session refuses to run", () => {
    const s1 = model.newSession();
    backend.release(model.forward(s1, { inputIds: ids(300) }));
    const used1 = backend.kernels.arenaUsage()[0]!;
    s1.dispose();
    s1.dispose(); // idempotent
    assert.throws(() => model.forward(s1, { inputIds: [5] }), (e: unknown) => e instanceof QwenError && /disposed/.test(e.message));
    const s2 = model.newSession();
    backend.release(model.forward(s2, { inputIds: ids(300, 200) }));
    assert.equal(backend.kernels.arenaUsage()[0], used1, "the second cache took the first one's regions (no new memory)");
    s2.dispose();
  });

  it("a prefill leaves room to decode: 96 decode steps after a 300-token prompt do not move the cache", () => {
    const s = model.newSession();
    backend.release(model.forward(s, { inputIds: ids(300) }));
    const used = backend.kernels.arenaUsage()[0]!;
    for (let i = 0; i < 96; i++) backend.release(model.forward(s, { inputIds: [10 + i] }));
    assert.equal(backend.kernels.arenaUsage()[0], used, "no region was reallocated");
    assert.equal(s.length, 396);
    s.dispose();
  });
});
