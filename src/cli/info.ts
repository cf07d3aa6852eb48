// `qwen3-vl info`: what a checkpoint is, read from its config.json and safetensors headers
// (no weights are loaded): architecture, sizes, parameter counts, dtypes, bytes and shards.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { QwenError } from "../errors.js";
import { readJsonFile } from "../io/checkpoint.js";
import { resolveModel } from "../io/hub.js";
import { SafetensorsFile } from "../io/safetensors.js";
import { parseConfig, type Qwen3VLConfig } from "../model/config.js";
import { expectedTensors } from "../model/tensor-names.js";
import { defaultModel } from "./default-model.js";

export const INFO_HELP = `qwen3-vl info: describe a Qwen3-VL checkpoint without loading its weights

Usage:
  qwen3-vl info [--model DIR|REPO] [--json]

Prints the model type (dense or MoE), parameter counts (text / vision, and active per
token for MoE), layers, hidden sizes, attention heads, head_dim, experts, vocabulary,
whether the output head is tied to the embeddings, the dtypes of the stored tensors, the
weight bytes on disk and the safetensors shards. Only config.json and the safetensors
headers are read.

Options:
  --model DIR|REPO   a checkpoint directory or a Hugging Face repo id (a repo is downloaded
                     in full into the hub cache first, once). Default: $QWEN3VL_MODEL,
                     else the built-in demo model.
  --json             one JSON object instead of the table
  -h, --help         this text

Examples:
  qwen3-vl info
  qwen3-vl info --model ~/models/Qwen3-VL-2B-Instruct
  qwen3-vl info --model Qwen/Qwen3-VL-30B-A3B-Instruct --json
`;

export interface ShardInfo {
  file: string;
  bytes: number;
  tensors: number;
}

export interface CheckpointInfo {
  dir: string;
  architecture: string | null;
  model_type: string;
  moe: boolean;
  parameters: { total: number; text: number; vision: number; active_per_token: number };
  text: {
    layers: number; hidden_size: number; intermediate_size: number; heads: number; kv_heads: number; head_dim: number;
    mrope_section: number[]; rope_theta: number; max_position_embeddings: number;
    experts: number; experts_per_token: number; moe_intermediate_size: number;
  };
  vision: {
    depth: number; hidden_size: number; intermediate_size: number; heads: number; head_dim: number; patch_size: number;
    spatial_merge_size: number; temporal_patch_size: number; deepstack_visual_indexes: number[]; out_hidden_size: number;
  };
  vocab_size: number;
  tie_word_embeddings: boolean;
  dtypes: Record<string, { tensors: number; bytes: number }>;
  weight_bytes: number;
  shards: ShardInfo[];
  tensors: number;
  missing_tensors: string[];
  unexpected_tensors: string[];
}

function weightFiles(dir: string): string[] {
  const indexPath = join(dir, "model.safetensors.index.json");
  if (existsSync(indexPath)) {
    const idx = readJsonFile(indexPath) as { weight_map?: Record<string, string> } | null;
    if (!idx || typeof idx.weight_map !== "object" || idx.weight_map === null) {
      throw new QwenError(`${indexPath}: field weight_map is missing (expected {tensor name: shard file})`);
    }
    const names = [...new Set(Object.values(idx.weight_map))].sort();
    for (const n of names) if (!existsSync(join(dir, n))) throw new QwenError(`${indexPath}: shard ${n} is missing from ${dir}`);
    return names;
  }
  if (existsSync(join(dir, "model.safetensors"))) return ["model.safetensors"];
  const files = readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort();
  if (files.length === 0) throw new QwenError(`${dir} has no model.safetensors, no model.safetensors.index.json and no *.safetensors files`);
  return files;
}

/** Describes the checkpoint in `dir` from config.json and the safetensors headers. */
export function describeCheckpoint(dir: string): CheckpointInfo {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new QwenError(`model directory ${dir} does not exist`);
  const cfgPath = join(dir, "config.json");
  if (!existsSync(cfgPath)) throw new QwenError(`${dir} has no config.json (is this a Hugging Face checkpoint directory?)`);
  const raw = readJsonFile(cfgPath) as Record<string, unknown>;
  const c: Qwen3VLConfig = parseConfig(raw, cfgPath);

  const dtypes: CheckpointInfo["dtypes"] = {};
  const shards: ShardInfo[] = [];
  const seen = new Set<string>();
  let text = 0, vision = 0, experts = 0;
  for (const file of weightFiles(dir)) {
    const path = join(dir, file);
    const f = SafetensorsFile.open(path);
    try {
      shards.push({ file, bytes: statSync(path).size, tensors: f.tensors.size });
      for (const t of f.tensors.values()) {
        if (seen.has(t.name)) continue;
        seen.add(t.name);
        const n = t.shape.reduce((a, x) => a * x, 1);
        const d = (dtypes[t.dtype] ??= { tensors: 0, bytes: 0 });
        d.tensors++;
        d.bytes += t.byteLength;
        if (t.name.startsWith("model.visual.")) vision += n;
        else text += n;
        if (t.name.includes(".mlp.experts.")) experts += n;
      }
    } finally {
      f.close();
    }
  }
  const want = new Set(expectedTensors(c).map((s) => s.name));
  // A tied checkpoint may still carry a copy of lm_head.weight.
  const optional = new Set(c.tieWordEmbeddings ? ["lm_head.weight"] : []);
  const missing = [...want].filter((n) => !seen.has(n));
  const unexpected = [...seen].filter((n) => !want.has(n) && !optional.has(n));
  const t = c.text, v = c.vision;
  const active = t.numExperts > 0 ? text + vision - experts + Math.round((experts * t.numExpertsPerTok) / t.numExperts) : text + vision;
  const arch = Array.isArray(raw["architectures"]) && typeof raw["architectures"][0] === "string" ? (raw["architectures"][0] as string) : null;
  return {
    dir,
    architecture: arch,
    model_type: c.modelType,
    moe: c.isMoe,
    parameters: { total: text + vision, text, vision, active_per_token: active },
    text: {
      layers: t.numLayers, hidden_size: t.hiddenSize, intermediate_size: t.intermediateSize, heads: t.numHeads, kv_heads: t.numKVHeads,
      head_dim: t.headDim, mrope_section: [...t.mropeSection], rope_theta: t.ropeTheta, max_position_embeddings: t.maxPositionEmbeddings,
      experts: t.numExperts, experts_per_token: t.numExpertsPerTok, moe_intermediate_size: t.moeIntermediateSize,
    },
    vision: {
      depth: v.depth, hidden_size: v.hiddenSize, intermediate_size: v.intermediateSize, heads: v.numHeads, head_dim: v.hiddenSize / v.numHeads,
      patch_size: v.patchSize, spatial_merge_size: v.spatialMergeSize, temporal_patch_size: v.temporalPatchSize,
      deepstack_visual_indexes: [...v.deepstackVisualIndexes], out_hidden_size: v.outHiddenSize,
    },
    vocab_size: t.vocabSize,
    tie_word_embeddings: c.tieWordEmbeddings,
    dtypes,
    weight_bytes: shards.reduce((a, s) => a + s.bytes, 0),
    shards,
    tensors: seen.size,
    missing_tensors: missing,
    unexpected_tensors: unexpected,
  };
}

/** 1234567 -> "1.23 M". */
export function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

export function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, x = n;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
  return i === 0 ? `${n} B` : `${x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)} ${units[i]}`;
}

export function formatInfo(i: CheckpointInfo): string {
  const rows: [string, string][] = [];
  const t = i.text, v = i.vision, p = i.parameters;
  rows.push(["model", i.dir]);
  rows.push(["type", `${i.model_type}${i.architecture ? ` (${i.architecture})` : ""}, ${i.moe ? "MoE" : "dense"}`]);
  rows.push(["parameters", `${humanCount(p.total)} (${p.total.toLocaleString("en-US")}): text ${humanCount(p.text)}, vision ${humanCount(p.vision)}` +
    (i.moe ? `; ${humanCount(p.active_per_token)} active per token` : "")]);
  rows.push(["text", `${t.layers} layers, hidden ${t.hidden_size}, ` +
    (i.moe ? `${t.experts} experts (${t.experts_per_token} per token, intermediate ${t.moe_intermediate_size})` : `intermediate ${t.intermediate_size}`)]);
  rows.push(["attention", `${t.heads} heads, ${t.kv_heads} KV heads, head_dim ${t.head_dim}, MRoPE sections [${t.mrope_section.join(", ")}], rope_theta ${t.rope_theta}`]);
  rows.push(["context", `${t.max_position_embeddings.toLocaleString("en-US")} positions`]);
  rows.push(["vision", `${v.depth} blocks, hidden ${v.hidden_size}, intermediate ${v.intermediate_size}, ${v.heads} heads (head_dim ${v.head_dim}), ` +
    `patch ${v.patch_size}, merge ${v.spatial_merge_size}x${v.spatial_merge_size}, DeepStack from blocks [${v.deepstack_visual_indexes.join(", ")}]`]);
  rows.push(["vocab", `${i.vocab_size.toLocaleString("en-US")} rows; output head ${i.tie_word_embeddings ? "tied to the embeddings" : "separate (lm_head.weight)"}`]);
  rows.push(["dtypes", Object.entries(i.dtypes).map(([d, x]) => `${d} (${x.tensors} tensors, ${humanBytes(x.bytes)})`).join(", ")]);
  rows.push(["weights", `${humanBytes(i.weight_bytes)} on disk in ${i.shards.length} file${i.shards.length === 1 ? "" : "s"}, ${i.tensors} tensors`]);
  for (const s of i.shards) rows.push(["", `${s.file}  ${humanBytes(s.bytes)}, ${s.tensors} tensors`]);
  if (i.missing_tensors.length) rows.push(["MISSING", `${i.missing_tensors.length} tensors the config needs, e.g. ${i.missing_tensors.slice(0, 3).join(", ")}`]);
  if (i.unexpected_tensors.length) rows.push(["extra", `${i.unexpected_tensors.length} tensors the model does not use, e.g. ${i.unexpected_tensors.slice(0, 3).join(", ")}`]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, val]) => `${k.padEnd(w)}  ${val}`).join("\n") + "\n";
}

export async function infoCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { model: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(INFO_HELP);
    return 0;
  }
  const ref = values.model ?? (await defaultModel());
  const dir = await resolveModel(ref);
  const info = describeCheckpoint(dir);
  process.stdout.write(values.json ? JSON.stringify(info) + "\n" : formatInfo(info));
  return 0;
}
