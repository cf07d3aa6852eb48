// Row-chunked feed-forward (src/model/row-chunks.ts): chunking must not change a single value, on the
// reference and the wasm backend (whose GEMM rows are independent of the row count above 4 rows).
import assert from "node:assert/strict";
import { it } from "node:test";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { WasmBackend } from "../../src/backends/wasm/index.js";
import { addRowwise } from "../../src/model/row-chunks.js";
import type { Backend, Tensor, Weight } from "../../src/tensor/backend.js";

function weight(b: Backend, name: string, shape: number[], seed: number): Weight {
  const n = shape.reduce((p, q) => p * q, 1);
  const v = new Float32Array(n).map((_, i) => Math.sin(seed + i * 0.37));
  return b.loadWeight({
    name, dtype: "F32", shape,
    readInto: (d) => d.set(new Uint8Array(v.buffer)),
    readRange: (o, d) => d.set(new Uint8Array(v.buffer, o, d.length)),
  });
}

for (const make of [async () => new ReferenceBackend() as Backend, async () => (await WasmBackend.create({ threads: 2 })) as Backend]) {
  it("addRowwise: 23 rows in chunks of at most 8 (8+8+7, no short tail) equal one pass, bit for bit", async () => {
    const b = await make();
    try {
      const D = 8, I = 20, S = 23;
      const fc1 = weight(b, "fc1", [I, D], 1), fc2 = weight(b, "fc2", [D, I], 2);
      const f = (r: Tensor): Tensor => {
        const h = b.linear(r, fc1);
        const g = b.geluTanh(h);
        b.release(h);
        const y = b.linear(g, fc2);
        b.release(g);
        return y;
      };
      const xs = new Float32Array(S * D).map((_, i) => Math.cos(i * 0.11));
      const run = (rows: number): Float32Array => {
        const dst = b.fromArray(new Float32Array(S * D).fill(0.5), [S, D]);
        addRowwise(b, dst, b.fromArray(xs.slice(), [S, D]), f, rows);
        return b.toArray(dst);
      };
      const whole = run(1 << 20), chunked = run(8);
      assert.deepEqual(chunked, whole, `${b.name}: chunked rows differ`);
      assert.notDeepEqual(whole, new Float32Array(S * D).fill(0.5), "the block added something");
    } finally {
      b.dispose?.();
    }
  });
}
