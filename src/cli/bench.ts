// qwen3-vl bench: wasm backend throughput on a random-weight checkpoint with a real config's shapes.
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { compareReports, formatTable, loadBaseline, runBench } from "../bench/bench.js";
import { QwenError } from "../errors.js";
import { REAL_CONFIGS } from "../io/synthetic.js";
import type { WeightFormat } from "../tensor/backend.js";

export const BENCH_USAGE = `qwen3-vl bench [--config 2b|4b|8b|30b-a3b] [--formats bf16,q8,q4] [--threads N] [--repeat N]
               [--layers N] [--prompt-tokens N] [--decode-tokens N] [--no-vision-large] [--no-vision]
               [--keep] [--dir DIR] [--json] [--compare BASELINE.json]
  Builds a deterministic random-weight checkpoint with the exact shapes of a released config (in a temp
  dir, deleted afterwards unless --keep), loads it on the wasm backend once per format, each in a fresh
  child process, and reports decode tok/s (--decode-tokens, default 128, after the prompt), prefill
  tok/s (--prompt-tokens, default 512), vision encode ms for a 1024x768 (grid 1x48x64) and a 448x448
  (1x28x28) image, time to first token for the 448x448 image + a short question, peak RSS and weight
  bytes; medians over --repeat runs (default 3). --layers N uses N text layers and vision depth N
  (smoke runs). --json prints one JSON object as
  the last line; --compare FILE prints ratios against such a line stored in FILE.
`;

const FORMATS: readonly WeightFormat[] = ["f32", "bf16", "q8", "q4"];

function int(name: string, v: string | undefined, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new QwenError(`--${name} must be an integer >= ${min} (got ${v})`);
  return n;
}

export async function benchCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string", default: "2b" },
      formats: { type: "string", default: "bf16,q8,q4" },
      threads: { type: "string" },
      repeat: { type: "string" },
      layers: { type: "string" },
      "prompt-tokens": { type: "string" },
      "decode-tokens": { type: "string" },
      "no-vision-large": { type: "boolean", default: false },
      "no-vision": { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      dir: { type: "string" },
      json: { type: "boolean", default: false },
      compare: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  const config = values.config!;
  if (!REAL_CONFIGS[config]) throw new QwenError(`unknown --config "${config}" (known: ${Object.keys(REAL_CONFIGS).join(", ")})`);
  const formats = values.formats!.split(",").map((s) => s.trim()).filter(Boolean) as WeightFormat[];
  for (const f of formats) if (!FORMATS.includes(f)) throw new QwenError(`unknown format "${f}" in --formats (known: ${FORMATS.join(", ")})`);
  const baseline = values.compare ? loadBaseline(values.compare) : null;
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const report = await runBench({
    config, formats,
    threads: int("threads", values.threads, Math.min(8, availableParallelism()), 1),
    repeat: int("repeat", values.repeat, 3, 1),
    ...(values.layers !== undefined ? { layers: int("layers", values.layers, 0, 1) } : {}),
    promptTokens: int("prompt-tokens", values["prompt-tokens"], 512, 1),
    decodeTokens: int("decode-tokens", values["decode-tokens"], 128, 1),
    visionLarge: !values["no-vision-large"] && !values["no-vision"],
    vision: !values["no-vision"],
    keep: values.keep!,
    ...(values.dir ? { dir: values.dir } : {}),
    log,
  });
  process.stdout.write(`${formatTable(report)}\n`);
  if (baseline) process.stdout.write(`${compareReports(report, baseline)}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return 0;
}
