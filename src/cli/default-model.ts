// The model used when --model is not given: $QWEN3VL_MODEL when set, else the demo model
// (small, random weights, real tokenizer and chat template), created on first use in
// $QWEN3VL_HOME (default ~/.cache/qwen3-vl) with no download.
import { ensureDemoModel } from "../io/demo-model.js";

export async function defaultModel(): Promise<string> {
  const env = process.env.QWEN3VL_MODEL;
  if (env) return env;
  const t0 = Date.now();
  const r = ensureDemoModel({
    onCreate: (dir) => process.stderr.write(`qwen3-vl: creating the demo model in ${dir} (first use, no download) ...\n`),
  });
  if (r.created) process.stderr.write(`qwen3-vl: demo model ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stderr.write(
    "qwen3-vl: no --model given, using the demo model (random weights: its answers are noise). " +
      "Pass --model DIR|REPO (e.g. Qwen/Qwen3-VL-2B-Instruct) or set QWEN3VL_MODEL for a real one.\n",
  );
  return r.dir;
}
