// Per-op profile of prefill, decode and a vision encode on a checkpoint directory:
//   node dist/src/bench/profile-run.js DIR FORMAT [threads] [promptTokens] [decodeTokens]
import { WasmBackend } from "../backends/wasm/index.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { parseConfig } from "../model/config.js";
import { Qwen3VLModel } from "../model/qwen3-vl.js";
import { expectedTensors } from "../model/tensor-names.js";
import type { WeightFormat } from "../tensor/backend.js";
import { formatTimes, profileBackend } from "./profile.js";

const [dir, format = "bf16", th = "2", pt = "128", dt = "16"] = process.argv.slice(2);
if (!dir) throw new Error("usage: profile-run.js DIR FORMAT [threads] [promptTokens] [decodeTokens]");
const ck = openCheckpoint(dir);
const cfg = parseConfig(ck.config, dir);
ck.store.close?.();
const raw = await WasmBackend.create({ threads: Number(th), weightBytes: WasmBackend.estimateWeightBytes(expectedTensors(cfg), format as WeightFormat) });
const { backend, times, reset } = profileBackend(raw);
const m = Qwen3VLModel.load(dir, backend, { matmulFormat: format as WeightFormat });
const P = Number(pt), D = Number(dt);
const ids = Array.from({ length: P }, (_, i) => 1000 + ((i * 7919) % 90000));
const s = m.newSession();
reset();
let t = performance.now();
let l = m.forward(s, { inputIds: ids });
backend.toArray(l);
let ms = performance.now() - t;
console.log(`== prefill ${P} tokens (${format}, ${th} threads): ${ms.toFixed(0)} ms, ${(P / ms * 1000).toFixed(1)} tok/s\n${formatTimes(times, ms)}`);
reset();
t = performance.now();
for (let i = 0; i < D; i++) { l = m.forward(s, { inputIds: [1000 + i] }); backend.toArray(l); }
ms = performance.now() - t;
console.log(`== decode ${D} tokens: ${ms.toFixed(0)} ms, ${(D / ms * 1000).toFixed(2)} tok/s\n${formatTimes(times, ms)}`);
const V = cfg.vision, w = V.inChannels * V.temporalPatchSize * V.patchSize * V.patchSize;
const px = new Float32Array(28 * 28 * w).map((_, i) => Math.sin(i) * 0.5);
reset();
t = performance.now();
m.encodeVision({ pixelValues: px, grids: [[1, 28, 28]] });
ms = performance.now() - t;
console.log(`== vision 448x448: ${ms.toFixed(0)} ms\n${formatTimes(times, ms)}`);
raw.dispose();
