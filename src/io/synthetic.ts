// Checkpoints with the exact shapes of the real Qwen3-VL models and deterministic random
// bf16 values: for tests that must run the real dimensions, for benchmarks (speed does not
// depend on the values), and for the demo model that ships with no download.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { QwenError } from "../errors.js";
import { parseConfig, type Qwen3VLConfig } from "../model/config.js";
import { expectedTensors, type TensorSpec } from "../model/tensor-names.js";
import type { TensorStore } from "./checkpoint.js";
import type { SafeDType } from "./safetensors.js";

const VISION_2B = {
  depth: 24, hidden_size: 1024, intermediate_size: 4096, num_heads: 16, out_hidden_size: 2048,
  deepstack_visual_indexes: [5, 11, 17],
};
const VISION_SO400M = { depth: 27, hidden_size: 1152, intermediate_size: 4304, num_heads: 16, deepstack_visual_indexes: [8, 16, 24] };

function denseConfig(hidden: number, layers: number, heads: number, kv: number, inter: number, tie: boolean, vision: Record<string, unknown>) {
  return {
    architectures: ["Qwen3VLForConditionalGeneration"], model_type: "qwen3_vl", tie_word_embeddings: tie,
    image_token_id: 151655, video_token_id: 151656, vision_start_token_id: 151652, vision_end_token_id: 151653,
    text_config: {
      model_type: "qwen3_vl_text", hidden_size: hidden, num_hidden_layers: layers, num_attention_heads: heads,
      num_key_value_heads: kv, head_dim: 128, intermediate_size: inter, rms_norm_eps: 1e-6, rope_theta: 5000000,
      rope_scaling: { rope_type: "default", mrope_interleaved: true, mrope_section: [24, 20, 20] },
      vocab_size: 151936, max_position_embeddings: 262144, hidden_act: "silu", attention_bias: false, tie_word_embeddings: tie,
      bos_token_id: 151643, eos_token_id: 151645,
    },
    vision_config: {
      model_type: "qwen3_vl", hidden_act: "gelu_pytorch_tanh", in_channels: 3, patch_size: 16, temporal_patch_size: 2,
      spatial_merge_size: 2, num_position_embeddings: 2304, out_hidden_size: hidden, ...vision,
    },
  };
}

/** config.json of the released models (spec section 1). */
export const REAL_CONFIGS: Record<string, () => Record<string, unknown>> = {
  "2b": () => denseConfig(2048, 28, 16, 8, 6144, true, VISION_2B),
  "4b": () => denseConfig(2560, 36, 32, 8, 9728, true, { ...VISION_2B, out_hidden_size: 2560 }),
  "8b": () => denseConfig(4096, 36, 32, 8, 12288, false, VISION_SO400M),
  "32b": () => denseConfig(5120, 64, 64, 8, 25600, false, VISION_SO400M),
  "30b-a3b": () => {
    const c = denseConfig(2048, 48, 32, 4, 6144, false, VISION_SO400M) as Record<string, any>;
    c.architectures = ["Qwen3VLMoeForConditionalGeneration"];
    c.model_type = "qwen3_vl_moe";
    c.vision_config.model_type = "qwen3_vl_moe";
    Object.assign(c.text_config, {
      model_type: "qwen3_vl_moe_text", num_experts: 128, num_experts_per_tok: 8, moe_intermediate_size: 768,
      decoder_sparse_step: 1, mlp_only_layers: [], norm_topk_prob: true,
    });
    return c;
  },
};

export function realConfig(name: string, overrides: { textLayers?: number; visionDepth?: number } = {}): Record<string, any> {
  const make = REAL_CONFIGS[name];
  if (!make) throw new QwenError(`unknown config "${name}" (known: ${Object.keys(REAL_CONFIGS).join(", ")})`);
  const c = make() as Record<string, any>;
  if (overrides.textLayers !== undefined) c.text_config.num_hidden_layers = overrides.textLayers;
  if (overrides.visionDepth !== undefined) c.vision_config.depth = overrides.visionDepth;
  return c;
}

/** 32-bit FNV-1a, for per-tensor seeds. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}

// A pool of random bf16 values with a prime length; a tensor is a window of the pool that
// starts at a name-dependent offset, so rows differ (the period is not a multiple of any
// row length) and filling gigabytes is a memory copy, not a random number per element.
const POOL = 1_048_583;
const pools = new Map<string, Uint16Array>();
function pool(kind: TensorSpec["kind"], scale: number): Uint16Array {
  const key = `${kind}:${scale}`;
  let p = pools.get(key);
  if (p) return p;
  p = new Uint16Array(POOL);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  let s = hash(key) | 1;
  const next = () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) / 4294967296; };
  for (let i = 0; i < POOL; i++) {
    // Sum of 3 uniforms: roughly normal, unit variance after scaling.
    const g = (next() + next() + next() - 1.5) * 2;
    let v: number;
    if (kind === "norm") v = 1 + 0.1 * g;
    else if (kind === "bias") v = 0.05 * g;
    else v = scale * g;
    f[0] = v;
    p[i] = u[0]! >>> 16;
  }
  pools.set(key, p);
  return p;
}

/** Fills dst with elements [start, start + dst.length) of the tensor. */
function fill(spec: TensorSpec, dst: Uint16Array, seed: string, start = 0): void {
  const scale = spec.kind === "embedding" ? 0.3 : spec.kind === "matrix" ? 1 / Math.sqrt(spec.fanIn) : 1;
  const p = pool(spec.kind, Number(scale.toPrecision(6)));
  let off = (hash(seed + spec.name) + (start % POOL)) % POOL;
  let i = 0;
  while (i < dst.length) {
    const n = Math.min(dst.length - i, POOL - off);
    dst.set(p.subarray(off, off + n), i);
    i += n;
    off = 0;
  }
}

/** A TensorStore that generates every tensor of a config on demand (nothing on disk). */
export class SyntheticStore implements TensorStore {
  private readonly specs = new Map<string, TensorSpec>();
  constructor(readonly config: Qwen3VLConfig, readonly seed = "qwen3-vl", readonly description = "synthetic checkpoint") {
    for (const s of expectedTensors(config)) this.specs.set(s.name, s);
  }
  names(): string[] { return [...this.specs.keys()]; }
  has(name: string): boolean { return this.specs.has(name); }
  info(name: string): { dtype: SafeDType; shape: readonly number[] } {
    const s = this.specs.get(name);
    if (!s) throw new QwenError(`${this.description}: missing tensor ${name}`);
    return { dtype: "BF16", shape: s.shape };
  }
  readInto(name: string, dst: Uint8Array): void {
    const s = this.specs.get(name)!;
    fill(s, new Uint16Array(dst.buffer, dst.byteOffset, dst.byteLength / 2), this.seed);
  }
  readRange(name: string, byteOffset: number, dst: Uint8Array): void {
    const s = this.specs.get(name)!;
    if (byteOffset % 2 || dst.byteLength % 2) throw new QwenError(`${this.description}: unaligned read of ${name}`);
    fill(s, new Uint16Array(dst.buffer, dst.byteOffset, dst.byteLength / 2), this.seed, byteOffset / 2);
  }
}

/**
 * Writes a full checkpoint directory (config.json, generation_config.json, safetensors
 * shards of at most `shardBytes`, and the index when there is more than one shard).
 */
export function writeSyntheticCheckpoint(
  dir: string, configJson: Record<string, unknown>, opts: { seed?: string; shardBytes?: number } = {},
): { bytes: number; files: string[] } {
  const cfg = parseConfig(configJson, "synthetic config");
  const specs = expectedTensors(cfg);
  const shardBytes = opts.shardBytes ?? 4 * 1024 ** 3;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(configJson, null, 2));
  writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ bos_token_id: 151643, eos_token_id: [151645, 151643], pad_token_id: 151643 }, null, 2));
  const shards: TensorSpec[][] = [[]];
  let cur = 0;
  for (const s of specs) {
    const b = s.shape.reduce((a, x) => a * x, 2);
    if (cur > 0 && cur + b > shardBytes) { shards.push([]); cur = 0; }
    shards[shards.length - 1]!.push(s);
    cur += b;
  }
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((list, i) => {
    const file = shards.length === 1 ? "model.safetensors" : `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
    files.push(file);
    const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
    let off = 0;
    for (const s of list) {
      const b = s.shape.reduce((a, x) => a * x, 2);
      header[s.name] = { dtype: "BF16", shape: s.shape, data_offsets: [off, off + b] };
      off += b;
      weightMap[s.name] = file;
    }
    let json = JSON.stringify(header);
    while ((8 + Buffer.byteLength(json)) % 8) json += " ";
    const fd = openSync(join(dir, file), "w");
    try {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
      writeSync(fd, len);
      writeSync(fd, json);
      for (const s of list) {
        const n = s.shape.reduce((a, x) => a * x, 1);
        // Written in slices so a 300M-element embedding never needs one 600 MB buffer.
        const slice = new Uint16Array(Math.min(n, 1 << 24));
        for (let o = 0; o < n; o += slice.length) {
          const part = slice.subarray(0, Math.min(slice.length, n - o));
          fill(s, part, opts.seed ?? "qwen3-vl", o);
          writeSync(fd, new Uint8Array(part.buffer, 0, part.byteLength));
        }
      }
      total += 8 + Buffer.byteLength(json) + off;
    } finally {
      closeSync(fd);
    }
  });
  if (files.length > 1) {
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  }
  return { bytes: total, files };
}
