// The tiny model split into two shards with an index file loads and computes exactly what
// the single file does.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { encodeSafetensors, SafetensorsFile } from "../../src/io/safetensors.js";
import { Qwen3VLModel } from "../../src/model/qwen3-vl.js";
import { fixture } from "../helpers/paths.js";

it("sharded checkpoint (2 shards + model.safetensors.index.json) gives the same logits as the single file", () => {
  const src = fixture("models", "tiny-qwen3-vl-dense");
  const dir = mkdtempSync(join(tmpdir(), "qwen3vl-shard-"));
  for (const f of readdirSync(src)) if (!f.endsWith(".safetensors")) copyFileSync(join(src, f), join(dir, f));
  const st = SafetensorsFile.open(join(src, "model.safetensors"));
  const names = [...st.tensors.keys()];
  const half = Math.ceil(names.length / 2);
  const weightMap: Record<string, string> = {};
  [names.slice(0, half), names.slice(half)].forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    const chunks = encodeSafetensors(part.map((n) => {
      weightMap[n] = file;
      const info = st.info(n);
      return { name: n, dtype: info.dtype, shape: info.shape, data: st.readBytes(n) };
    }), { format: "pt" });
    writeFileSync(join(dir, file), Buffer.concat(chunks));
  });
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  st.close();

  const b = new ReferenceBackend();
  const ids = [151644, 872, 198, 9707, 11, 1879, 0, 151645, 198, 151644, 77091, 198];
  const run = (d: string) => b.toArray(Qwen3VLModel.load(d, b).forward(Qwen3VLModel.load(d, b).newSession(), { inputIds: ids }));
  const single = run(src), sharded = run(dir);
  assert.equal(sharded.length, 151936);
  assert.deepEqual(sharded, single);
});
