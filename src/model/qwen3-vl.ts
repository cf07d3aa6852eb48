// Qwen3-VL: the vision tower and the language model joined. Visual features replace the
// <|image_pad|> / <|video_pad|> embeddings (each kind in its own order), DeepStack features
// are injected after the first decoder layers, and 3-D positions come from get_rope_index.
import { QwenError } from "../errors.js";
import { openCheckpoint, type TensorStore } from "../io/checkpoint.js";
import type { Backend, KVCache, Tensor } from "../tensor/backend.js";
import { mediaKeys } from "./media-keys.js";
import { parseConfig, type Qwen3VLConfig } from "./config.js";
import type { DeepStackSource } from "./text/deepstack.js";
import { getRopeIndex } from "./text/rope-index.js";
import { TextModel } from "./text/text-model.js";
import type { Grid } from "./vision/merge-window.js";
import { VisionTower, type Probe, type VisionOutput } from "./vision/vision-tower.js";
import { WeightLoader, type LoadOptions } from "./weights.js";

/** Pixel rows (merge-window layout, [rows, C·T·P·P]) and one grid per image or video. */
export interface VisualInput {
  pixelValues: Float32Array;
  grids: Grid[];
  /** Features from an earlier encodeVision of the same pixels (kept by the caller, not released). */
  encoded?: VisionOutput;
}

export interface ModelInput {
  inputIds: ArrayLike<number>;
  images?: VisualInput | null;
  videos?: VisualInput | null;
}

/** Decoding state of one conversation: the KV cache and where positions continue. */
export class Session {
  /** Tokens in the cache. */
  length = 0;
  /** Decode positions are cacheIndex + ropeDelta. */
  ropeDelta = 0;
  /** Every token in the cache (prompt and generated), in order. */
  readonly tokens: number[] = [];
  /** Largest position (over T, H, W) used by tokens 0..i: what rewinding needs. */
  readonly maxPosition: number[] = [];
  /** Content keys of the images and videos whose features are in the cache, in prompt order. */
  readonly imageKeys: string[] = [];
  readonly videoKeys: string[] = [];
  private disposed = false;
  constructor(readonly cache: KVCache, private readonly backend: Backend) {}

  /** Frees the KV cache now (instead of whenever the garbage collector finds the session). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.backend.releaseKVCache?.(this.cache);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Forgets everything after the first n tokens (n must not cut a visual block). */
  truncate(n: number): void {
    if (n > this.length || n < 0) throw new QwenError(`cannot keep ${n} tokens of a ${this.length}-token session`);
    this.backend.kvTruncate(this.cache, n);
    this.length = n;
    this.tokens.length = n;
    this.maxPosition.length = n;
    this.ropeDelta = n === 0 ? 0 : this.maxPosition[n - 1]! + 1 - n;
  }
}

export interface ForwardOptions {
  /** Return logits for every position of the chunk, not only the last. */
  allLogits?: boolean;
  probe?: Probe;
  /** Progress of a chunk: steps done of total (vision encoders, then each decoder layer). */
  onProgress?: (done: number, total: number) => void;
}

export class Qwen3VLModel {
  readonly vision: VisionTower;
  readonly text: TextModel;

  constructor(readonly backend: Backend, readonly config: Qwen3VLConfig, store: TensorStore, opts: LoadOptions = {}) {
    const ld = new WeightLoader(store, backend, opts);
    this.vision = new VisionTower(backend, ld, config.vision);
    this.text = new TextModel(backend, ld, config.text, config.tieWordEmbeddings);
  }

  /** Loads a Hugging Face checkpoint directory (config.json + safetensors, single or sharded). */
  static load(dir: string, backend: Backend, opts: LoadOptions = {}): Qwen3VLModel & { dir: string; generationConfig: Record<string, unknown> | null } {
    const ck = openCheckpoint(dir);
    try {
      const cfg = parseConfig(ck.config, `${ck.dir}/config.json`);
      let done = 0;
      const o: LoadOptions = { ...opts };
      if (opts.onProgress) {
        o.onTensor = (name, bytes) => {
          opts.onTensor?.(name, bytes);
          done += bytes;
          opts.onProgress!(Math.min(done, ck.weightBytes), ck.weightBytes);
        };
      }
      const m = new Qwen3VLModel(backend, cfg, ck.store, o);
      return Object.assign(m, { dir: ck.dir, generationConfig: ck.generationConfig });
    } finally {
      ck.store.close?.();
    }
  }

  newSession(): Session {
    const c = this.config.text;
    return new Session(this.backend.createKVCache(c.numLayers, c.numKVHeads * c.headDim), this.backend);
  }

  encodeVision(v: VisualInput, probe?: Probe): VisionOutput {
    return this.vision.forward(v.pixelValues, v.grids, probe);
  }

  private placeholderRows(ids: ArrayLike<number>, token: number): Int32Array {
    const rows: number[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] === token) rows.push(i);
    return Int32Array.from(rows);
  }

  private checkCount(kind: string, rows: Int32Array, v: VisualInput | null | undefined): void {
    const m = this.config.vision.spatialMergeSize;
    const features = (v?.grids ?? []).reduce((a, [t, h, w]) => a + (t * h * w) / (m * m), 0);
    if (rows.length !== features) {
      throw new QwenError(
        `${kind} token count does not match the features: the prompt has ${rows.length} <|${kind}_pad|> tokens but the ${kind} grids ${JSON.stringify(v?.grids ?? [])} give ${features} features`,
      );
    }
  }

  /**
   * Runs a chunk of tokens (a prompt, a follow-up turn or one decoded token) through the
   * model, appending to the session's cache. Returns the logits of the last position
   * ([1, vocab]) or of every position with `allLogits`.
   */
  forward(session: Session, input: ModelInput, opts: ForwardOptions = {}): Tensor {
    const b = this.backend, cfg = this.config;
    if (session.isDisposed) throw new QwenError("this session was disposed (its KV cache is freed); start a new one");
    const ids = Int32Array.from(input.inputIds as ArrayLike<number>);
    if (ids.length === 0) throw new QwenError("cannot run the model on an empty token sequence");
    const imageRows = this.placeholderRows(ids, cfg.imageTokenId);
    const videoRows = this.placeholderRows(ids, cfg.videoTokenId);
    this.checkCount("image", imageRows, input.images);
    this.checkCount("video", videoRows, input.videos);

    const start = session.length;
    const rope = getRopeIndex(
      ids, cfg, cfg.vision.spatialMergeSize, input.images?.grids ?? [], input.videos?.grids ?? [],
      start + session.ropeDelta, start,
    );
    if (start + ids.length > cfg.text.maxPositionEmbeddings) {
      throw new QwenError(`the context would hold ${start + ids.length} tokens, more than max_position_embeddings ${cfg.text.maxPositionEmbeddings}`);
    }

    const h = this.text.embed(ids);
    const deepstack: DeepStackSource[] = [];
    const visual: Tensor[] = [];
    const addVisual = (kind: "image" | "video", rows: Int32Array, v: VisualInput | null | undefined) => {
      if (!v || rows.length === 0) return;
      const sub: Probe | undefined = opts.probe ? (n, t) => opts.probe!(`${kind}_vision.${n}`, t) : undefined;
      const out = v.encoded ?? this.encodeVision(v, sub);
      opts.probe?.(`${kind}_embeds`, out.embeds);
      out.deepstack.forEach((t, k) => opts.probe?.(`${kind}_deepstack.${k}`, t));
      b.scatterRows(h, rows, out.embeds);
      if (!v.encoded) visual.push(out.embeds, ...out.deepstack);
      deepstack.push({ rows, features: out.deepstack });
    };
    const steps = (input.images && imageRows.length ? 1 : 0) + (input.videos && videoRows.length ? 1 : 0) + cfg.text.numLayers;
    let step = 0;
    const tick = () => opts.onProgress?.(++step, steps);
    addVisual("image", imageRows, input.images);
    if (input.images && imageRows.length) tick();
    addVisual("video", videoRows, input.videos);
    if (input.videos && videoRows.length) tick();

    const hidden = this.text.forward(h, rope.positions, session.cache, start, deepstack, opts.probe, opts.onProgress ? tick : undefined);
    b.release(h, ...visual);
    session.length += ids.length;
    session.ropeDelta = rope.ropeDelta;
    const L = ids.length, P = rope.positions;
    let mx = session.maxPosition.length ? session.maxPosition[session.maxPosition.length - 1]! : -1;
    for (let i = 0; i < L; i++) {
      session.tokens.push(ids[i]!);
      mx = Math.max(mx, P[i]!, P[L + i]!, P[2 * L + i]!);
      session.maxPosition.push(mx);
    }
    if (input.images && imageRows.length) session.imageKeys.push(...mediaKeys(input.images));
    if (input.videos && videoRows.length) session.videoKeys.push(...mediaKeys(input.videos));

    const S = ids.length;
    const rows = opts.allLogits ? hidden : b.sliceRows(hidden, S - 1, S);
    const logits = this.text.logits(rows, opts.probe);
    b.release(hidden);
    return logits;
  }

  /** The 3-D positions a prompt gets (axis-major [3][L]) and its rope delta. */
  positions(input: ModelInput): { positions: Int32Array; ropeDelta: number } {
    const cfg = this.config;
    return getRopeIndex(input.inputIds, cfg, cfg.vision.spatialMergeSize, input.images?.grids ?? [], input.videos?.grids ?? []);
  }
}
