// Qwen3-VL configuration: config.json of `qwen3_vl` (dense) and `qwen3_vl_moe` checkpoints,
// validated so that a wrong or unsupported file fails here with a named field, not later
// as a shape error deep in a matmul.
import { QwenError } from "../errors.js";

export interface VisionConfig {
  depth: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  patchSize: number;
  temporalPatchSize: number;
  spatialMergeSize: number;
  inChannels: number;
  outHiddenSize: number;
  numPositionEmbeddings: number;
  deepstackVisualIndexes: number[];
  hiddenAct: string;
}

export interface TextConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKVHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  mropeSection: [number, number, number];
  mropeInterleaved: boolean;
  ropeType: "default" | "yarn";
  /** YaRN settings (rope_type "yarn" only). */
  yarn: YarnConfig | null;
  vocabSize: number;
  maxPositionEmbeddings: number;
  hiddenAct: string;
  attentionBias: boolean;
  // MoE (numExperts 0 for dense)
  numExperts: number;
  numExpertsPerTok: number;
  moeIntermediateSize: number;
  decoderSparseStep: number;
  mlpOnlyLayers: number[];
  normTopKProb: boolean;
}

export interface YarnConfig {
  factor: number;
  originalMaxPositionEmbeddings: number;
  betaFast: number;
  betaSlow: number;
  /** Explicit cos/sin scale; otherwise derived from factor (and mscale / mscale_all_dim). */
  attentionFactor: number | null;
  mscale: number | null;
  mscaleAllDim: number | null;
  truncate: boolean;
}

export interface Qwen3VLConfig {
  modelType: "qwen3_vl" | "qwen3_vl_moe";
  isMoe: boolean;
  text: TextConfig;
  vision: VisionConfig;
  tieWordEmbeddings: boolean;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
}

type Json = Record<string, unknown>;

class Reader {
  constructor(private readonly file: string, private readonly obj: Json, private readonly prefix: string) {}
  private where(key: string): string {
    return `${this.file}: field ${this.prefix}${key}`;
  }
  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }
  int(key: string, def?: number, min = 0): number {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (def === undefined) throw new QwenError(`${this.where(key)} is missing (expected an integer)`);
      return def;
    }
    if (typeof v !== "number" || !Number.isInteger(v)) throw new QwenError(`${this.where(key)}: expected an integer, found ${JSON.stringify(v)}`);
    if (v < min) throw new QwenError(`${this.where(key)}: expected an integer >= ${min}, found ${v}`);
    return v;
  }
  num(key: string, def?: number): number {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (def === undefined) throw new QwenError(`${this.where(key)} is missing (expected a number)`);
      return def;
    }
    if (typeof v !== "number" || !Number.isFinite(v)) throw new QwenError(`${this.where(key)}: expected a number, found ${JSON.stringify(v)}`);
    return v;
  }
  bool(key: string, def: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined || v === null) return def;
    if (typeof v !== "boolean") throw new QwenError(`${this.where(key)}: expected true or false, found ${JSON.stringify(v)}`);
    return v;
  }
  str(key: string, def?: string): string {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (def === undefined) throw new QwenError(`${this.where(key)} is missing (expected a string)`);
      return def;
    }
    if (typeof v !== "string") throw new QwenError(`${this.where(key)}: expected a string, found ${JSON.stringify(v)}`);
    return v;
  }
  ints(key: string, def?: number[]): number[] {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (def === undefined) throw new QwenError(`${this.where(key)} is missing (expected a list of integers)`);
      return def;
    }
    if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isInteger(x) && x >= 0)) {
      throw new QwenError(`${this.where(key)}: expected a list of non-negative integers, found ${JSON.stringify(v)}`);
    }
    return v as number[];
  }
  sub(key: string): Reader {
    const v = this.obj[key];
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new QwenError(`${this.where(key)} is missing (expected an object)`);
    return new Reader(this.file, v as Json, `${this.prefix}${key}.`);
  }
  optSub(key: string): Reader | null {
    return this.has(key) ? this.sub(key) : null;
  }
  raw(key: string): unknown {
    return this.obj[key];
  }
}

export function parseConfig(json: unknown, file = "config.json"): Qwen3VLConfig {
  if (!json || typeof json !== "object" || Array.isArray(json)) throw new QwenError(`${file}: expected a JSON object`);
  const r = new Reader(file, json as Json, "");
  const modelType = r.str("model_type");
  if (modelType !== "qwen3_vl" && modelType !== "qwen3_vl_moe") {
    throw new QwenError(`${file}: field model_type is "${modelType}"; qwen3-vl loads "qwen3_vl" (dense) and "qwen3_vl_moe" (MoE) checkpoints`);
  }
  const isMoe = modelType === "qwen3_vl_moe";
  const t = r.sub("text_config");
  const v = r.sub("vision_config");

  const hidden = t.int("hidden_size", undefined, 1);
  const numHeads = t.int("num_attention_heads", undefined, 1);
  const numKV = t.int("num_key_value_heads", numHeads, 1);
  if (numHeads % numKV !== 0) throw new QwenError(`${file}: text_config.num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKV})`);
  const headDim = t.int("head_dim", Math.floor(hidden / numHeads), 2);
  if (headDim % 2 !== 0) throw new QwenError(`${file}: text_config.head_dim must be even, found ${headDim}`);

  // transformers v5 moved rope settings into rope_parameters; accept both spellings.
  const rope = t.optSub("rope_parameters") ?? t.optSub("rope_scaling");
  const ropeTheta = t.has("rope_theta") ? t.num("rope_theta") : rope?.has("rope_theta") ? rope.num("rope_theta") : 5_000_000;
  let ropeType = rope?.str("rope_type", rope?.str("type", "default")) ?? "default";
  // Qwen2-VL-era configs spell the 3-D rotary "mrope"; transformers treats it as default.
  if (ropeType === "mrope") ropeType = "default";
  if (ropeType !== "default" && ropeType !== "yarn") {
    throw new QwenError(`${file}: text_config rope_type "${ropeType}" is not supported (expected "default" or "yarn")`);
  }
  const maxPos = t.int("max_position_embeddings", 262144, 1);
  let yarn: YarnConfig | null = null;
  if (ropeType === "yarn") {
    const y = rope!;
    const orig = y.has("original_max_position_embeddings") ? y.int("original_max_position_embeddings", undefined, 1) : maxPos;
    // As transformers v5: an explicit factor wins; without one, the ratio of the lengths.
    const factor = y.has("factor") ? y.num("factor") : maxPos / orig;
    if (!(factor >= 1)) throw new QwenError(`${file}: YaRN factor must be >= 1, found ${factor}`);
    yarn = {
      factor,
      originalMaxPositionEmbeddings: orig,
      betaFast: y.has("beta_fast") ? y.num("beta_fast") : 32,
      betaSlow: y.has("beta_slow") ? y.num("beta_slow") : 1,
      attentionFactor: y.has("attention_factor") ? y.num("attention_factor") : null,
      mscale: y.has("mscale") ? y.num("mscale") : null,
      mscaleAllDim: y.has("mscale_all_dim") ? y.num("mscale_all_dim") : null,
      truncate: y.bool("truncate", true),
    };
  }
  const sec = rope?.ints("mrope_section", [24, 20, 20]) ?? [24, 20, 20];
  if (sec.length !== 3) throw new QwenError(`${file}: mrope_section must have 3 entries (T, H, W), found ${JSON.stringify(sec)}`);
  if (sec[0]! + sec[1]! + sec[2]! !== headDim / 2) {
    throw new QwenError(`${file}: mrope_section ${JSON.stringify(sec)} sums to ${sec[0]! + sec[1]! + sec[2]!} but head_dim/2 is ${headDim / 2}`);
  }
  const mropeInterleaved = rope?.bool("mrope_interleaved", true) ?? true;
  if (!mropeInterleaved) throw new QwenError(`${file}: mrope_interleaved=false (chunked MRoPE, Qwen2.5-VL style) is not a Qwen3-VL layout`);

  const act = t.str("hidden_act", "silu");
  if (act !== "silu") throw new QwenError(`${file}: text_config.hidden_act "${act}" is not supported (Qwen3-VL uses silu)`);
  const text: TextConfig = {
    hiddenSize: hidden,
    numLayers: t.int("num_hidden_layers", undefined, 1),
    numHeads,
    numKVHeads: numKV,
    headDim,
    intermediateSize: t.int("intermediate_size", isMoe ? 0 : undefined, 0),
    rmsNormEps: t.num("rms_norm_eps", 1e-6),
    ropeTheta,
    mropeSection: [sec[0]!, sec[1]!, sec[2]!],
    mropeInterleaved,
    ropeType: ropeType as "default" | "yarn",
    yarn,
    vocabSize: t.int("vocab_size", undefined, 1),
    maxPositionEmbeddings: maxPos,
    hiddenAct: act,
    attentionBias: t.bool("attention_bias", false),
    numExperts: isMoe ? t.int("num_experts", undefined, 1) : 0,
    numExpertsPerTok: isMoe ? t.int("num_experts_per_tok", undefined, 1) : 0,
    moeIntermediateSize: isMoe ? t.int("moe_intermediate_size", undefined, 1) : 0,
    decoderSparseStep: isMoe ? t.int("decoder_sparse_step", 1, 1) : 1,
    mlpOnlyLayers: isMoe ? t.ints("mlp_only_layers", []) : [],
    normTopKProb: isMoe ? t.bool("norm_topk_prob", true) : true,
  };
  if (text.attentionBias) throw new QwenError(`${file}: text_config.attention_bias=true is not a Qwen3-VL layout`);
  if (isMoe && text.numExpertsPerTok > text.numExperts) {
    throw new QwenError(`${file}: num_experts_per_tok (${text.numExpertsPerTok}) exceeds num_experts (${text.numExperts})`);
  }

  const vHidden = v.int("hidden_size", undefined, 1);
  const vHeads = v.int("num_heads", undefined, 1);
  if (vHidden % vHeads !== 0 || (vHidden / vHeads) % 4 !== 0) {
    throw new QwenError(`${file}: vision_config.hidden_size ${vHidden} / num_heads ${vHeads} must give a head dim divisible by 4 (2-D rotary)`);
  }
  const depth = v.int("depth", undefined, 1);
  const ds = v.ints("deepstack_visual_indexes", []);
  for (const i of ds) if (i >= depth) throw new QwenError(`${file}: vision_config.deepstack_visual_indexes has ${i} but depth is ${depth}`);
  const npe = v.int("num_position_embeddings", undefined, 1);
  if (!Number.isInteger(Math.sqrt(npe))) throw new QwenError(`${file}: vision_config.num_position_embeddings ${npe} is not a square grid`);
  const vAct = v.str("hidden_act", "gelu_pytorch_tanh");
  if (vAct !== "gelu_pytorch_tanh") throw new QwenError(`${file}: vision_config.hidden_act "${vAct}" is not supported (Qwen3-VL uses gelu_pytorch_tanh)`);
  const vision: VisionConfig = {
    depth,
    hiddenSize: vHidden,
    intermediateSize: v.int("intermediate_size", undefined, 1),
    numHeads: vHeads,
    patchSize: v.int("patch_size", 16, 1),
    temporalPatchSize: v.int("temporal_patch_size", 2, 1),
    spatialMergeSize: v.int("spatial_merge_size", 2, 1),
    inChannels: v.int("in_channels", 3, 1),
    outHiddenSize: v.int("out_hidden_size", hidden, 1),
    numPositionEmbeddings: npe,
    deepstackVisualIndexes: ds,
    hiddenAct: vAct,
  };
  if (vision.outHiddenSize !== hidden) {
    throw new QwenError(`${file}: vision_config.out_hidden_size (${vision.outHiddenSize}) must equal text_config.hidden_size (${hidden})`);
  }
  const tie = r.has("tie_word_embeddings") ? r.bool("tie_word_embeddings", false) : t.bool("tie_word_embeddings", false);
  return {
    modelType,
    isMoe,
    text,
    vision,
    tieWordEmbeddings: tie,
    imageTokenId: r.int("image_token_id", 151655),
    videoTokenId: r.int("video_token_id", 151656),
    visionStartTokenId: r.int("vision_start_token_id", 151652),
    visionEndTokenId: r.int("vision_end_token_id", 151653),
  };
}

/** Whether decoder layer `l` uses the sparse MoE block (HF rule). */
export function isSparseLayer(t: TextConfig, l: number): boolean {
  return t.numExperts > 0 && !t.mlpOnlyLayers.includes(l) && (l + 1) % t.decoderSparseStep === 0;
}
