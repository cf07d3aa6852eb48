// Flags that choose and load a model, shared by the commands that run one.
import { QwenError } from "../errors.js";
import { Qwen3VL, type LoadModelOptions } from "../pipeline.js";
import type { WeightFormat } from "../tensor/backend.js";
import { defaultModel } from "./default-model.js";
import { formatBytes, progressBar } from "./progress.js";
import { numFlag } from "./sampling-flags.js";

export const MODEL_FLAGS = {
  model: { type: "string" },
  backend: { type: "string" },
  threads: { type: "string" },
  weights: { type: "string" },
} as const;

export const MODEL_HELP = `  --model DIR|REPO          checkpoint folder or Hugging Face repo id (default: $QWEN3VL_MODEL,
                            else the random-weight demo model)
  --backend wasm|reference  compute backend (default wasm: SIMD kernels on worker threads;
                            reference: plain TypeScript, exact and slow)
  --threads N               wasm threads (default: all cores, at most 8)
  --weights bf16|f32|q8|q4  matrix weight storage (default: as in the checkpoint; q8/q4 are
                            quantised at load, wasm only)`;

/** Loads the model the flags name, with a progress bar on a terminal. */
export async function loadModelFromFlags(values: { model?: string; backend?: string; threads?: string; weights?: string }): Promise<Qwen3VL> {
  const o: LoadModelOptions = {};
  if (values.backend !== undefined) {
    if (values.backend !== "wasm" && values.backend !== "reference") throw new QwenError(`--backend expects wasm or reference, got "${values.backend}"`);
    o.backend = values.backend;
  }
  const threads = numFlag(values.threads, "--threads", true);
  if (threads !== undefined) {
    if (threads < 1) throw new QwenError("--threads must be at least 1");
    o.threads = threads;
  }
  if (values.weights !== undefined) {
    if (!["bf16", "f32", "q8", "q4"].includes(values.weights)) throw new QwenError(`--weights expects bf16, f32, q8 or q4, got "${values.weights}"`);
    o.weightFormat = values.weights as WeightFormat;
  }
  const ref = values.model ?? (await defaultModel());
  const bar = progressBar("loading", process.stderr, formatBytes);
  if (bar) o.onLoadProgress = bar.update;
  try {
    return await Qwen3VL.load(ref, o);
  } finally {
    bar?.finish();
  }
}
