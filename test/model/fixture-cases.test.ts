// The engine against the reference on the six fixture cases: every internal the reference
// recorded, positions, logits, and 12 greedy tokens decoded with the KV cache.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { SafetensorsFile } from "../../src/io/safetensors.js";
import { eosFromGenerationConfig, generate } from "../../src/generation/generate.js";
import { Qwen3VLModel, type VisualInput } from "../../src/model/qwen3-vl.js";
import type { Grid } from "../../src/model/vision/merge-window.js";
import type { Backend, Tensor, WeightFormat } from "../../src/tensor/backend.js";
import { WasmBackend } from "../../src/backends/wasm/index.js";
import { assertClose } from "../helpers/compare.js";
import { fixture } from "../helpers/paths.js";

const CASES = ["dense_text_only", "dense_one_image", "dense_two_images", "dense_one_video", "moe_one_image", "dense_image_and_video"];
// Tolerance of the issue: max|ours − ref| <= 1e-4 · max(1, max|ref|) for every float tensor.
const REL = 1e-4;

// Every case runs on the reference backend and on the wasm backend with f32 and with bf16
// matrix weights, all at the same tolerance.
interface BackendConfig {
  label: string;
  make: () => Promise<Backend>;
  matmulFormat?: WeightFormat;
}
const CONFIGS: BackendConfig[] = [
  { label: "reference", make: async () => new ReferenceBackend() },
  { label: "wasm f32", make: () => WasmBackend.create({ threads: 1 }), matmulFormat: "f32" },
  { label: "wasm bf16", make: () => WasmBackend.create({ threads: 2 }), matmulFormat: "bf16" },
];

function grids(f: SafetensorsFile, name: string): Grid[] {
  const v = f.readInts(name);
  const out: Grid[] = [];
  for (let i = 0; i < v.length; i += 3) out.push([v[i]!, v[i + 1]!, v[i + 2]!]);
  return out;
}

export function loadCaseInput(f: SafetensorsFile) {
  const inputIds = f.readInts("input_ids");
  const images: VisualInput | null = f.tensors.has("pixel_values") ? { pixelValues: f.readFloat32("pixel_values"), grids: grids(f, "image_grid_thw") } : null;
  const videos: VisualInput | null = f.tensors.has("pixel_values_videos")
    ? { pixelValues: f.readFloat32("pixel_values_videos"), grids: grids(f, "video_grid_thw") }
    : null;
  return { inputIds, images, videos };
}

for (const cfg of CONFIGS) {
describe(`fixture cases on ${cfg.label}`, () => {
  let backend: Backend;
  const models = new Map<string, ReturnType<typeof Qwen3VLModel.load>>();
  const model = (dir: string) => {
    let m = models.get(dir);
    if (!m) {
      m = Qwen3VLModel.load(fixture(dir), backend, cfg.matmulFormat ? { matmulFormat: cfg.matmulFormat } : {});
      models.set(dir, m);
    }
    return m;
  };
  before(async () => {
    backend = await cfg.make();
  });
  after(() => backend.dispose?.());

for (const name of CASES) {
  describe(`fixture case ${name} (${cfg.label})`, () => {
    const meta = JSON.parse(readFileSync(fixture("cases", `${name}.json`), "utf8")) as { model: string; generated_ids: number[] };
    const f = SafetensorsFile.open(fixture("cases", `${name}.safetensors`));
    const input = loadCaseInput(f);
    const m = () => model(meta.model);

    it("3-D position ids and rope delta are exact", () => {
      const p = m().positions(input);
      assert.deepEqual([...p.positions], f.readInts("position_ids"));
      assert.equal(p.ropeDelta, f.readInts("rope_deltas")[0]);
    });

    it("every vision and text internal, the final hidden state and the logits match", () => {
      const seen = new Map<string, Float32Array>();
      const probe = (n: string, t: Tensor) => {
        const key = n.startsWith("image_") || n.startsWith("video_") ? n : `text.${n}`;
        seen.set(key === "text.final_hidden_state" ? "final_hidden_state" : key, backend.toArray(t));
      };
      const session = m().newSession();
      const logitsT = m().forward(session, input, { allLogits: true, probe });
      const logits = backend.toArray(logitsT);
      const V = m().config.text.vocabSize, L = input.inputIds.length;
      let compared = 0;
      let worst = 0;
      for (const [key, info] of f.tensors) {
        if (info.dtype !== "F32" || key.startsWith("pixel_values") || key.startsWith("generation_step") || key.startsWith("logits_")) continue;
        const ours = seen.get(key);
        assert.ok(ours, `no internal recorded for reference tensor ${key}`);
        worst = Math.max(worst, assertClose(key, ours, f.readFloat32(key), REL));
        compared++;
      }
      assert.ok(compared >= (input.images || input.videos ? 20 : 10), `compared only ${compared} tensors`);
      assertClose("logits_last8", logits.subarray((L - 8) * V), f.readFloat32("logits_last8"), REL);
      const am = backend.argmaxRows(logitsT);
      assert.deepEqual([...am], f.readInts("logits_argmax_all"), "argmax at every position");
      const refMax = f.readFloat32("logits_max_all");
      const ourMax = new Float32Array(L);
      for (let i = 0; i < L; i++) ourMax[i] = logits[i * V + am[i]!]!;
      assertClose("logits_max_all", ourMax, refMax, REL);
      console.log(`${name} (${cfg.label}): ${compared} internal tensors within ${REL} (worst abs diff ${worst.toExponential(2)})`);
    });

    it("12 greedy tokens with the KV cache (one prefill, then one token per step)", async () => {
      const eos = eosFromGenerationConfig(m().generationConfig);
      const r = await generate(m(), input, { maxNewTokens: 12, eosTokenIds: eos });
      assert.deepEqual(r.ids, meta.generated_ids);
    });
  });
}
});
}
