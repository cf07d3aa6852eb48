// The library's front door: load a checkpoint (local directory or Hugging Face repo id),
// turn a conversation into ids and pixels, generate, and hand back text split into
// reasoning / content / tool calls, in one call or as a stream.
import { ReferenceBackend } from "./backends/reference/index.js";
import { QwenError } from "./errors.js";
import { decodeTokens, eosFromGenerationConfig } from "./generation/generate.js";
import { mergeSamplingOptions, Sampler, samplingDefaultsFromGenerationConfig, type SamplingOptions } from "./generation/sampler.js";
import { StopStringStream } from "./generation/stop.js";
import { splitThinking, ThinkingStreamSplitter, THINK_CLOSE } from "./generation/thinking.js";
import { parseToolCalls, type ToolCallEntry } from "./generation/tool-calls.js";
import { resolveModel, type ResolveModelOptions } from "./io/hub.js";
import { openCheckpoint } from "./io/checkpoint.js";
import { Qwen3VLModel, type ModelInput, type Session } from "./model/qwen3-vl.js";
import { applyReuse, planReuse } from "./generation/prefix-reuse.js";
import type { LoadOptions } from "./model/weights.js";
import type { WeightFormat, Backend } from "./tensor/backend.js";
import { Processor, type ProcessedInput, type ProcessOptions } from "./processing/processor.js";

export interface LoadModelOptions extends ResolveModelOptions {
  /**
   * "wasm" (default: WebAssembly SIMD kernels on worker threads), "reference" (plain
   * TypeScript, exact and slow: the oracle), or a backend instance.
   */
  backend?: Backend | "wasm" | "reference";
  /** Threads for the wasm backend (default: available parallelism, at most 8). */
  threads?: number;
  /** Storage of matrix weights (default: as in the checkpoint). */
  weightFormat?: WeightFormat;
  /** Called after each tensor is loaded. */
  onTensor?: (name: string, bytes: number) => void;
  /** Weight bytes loaded so far and in all. */
  onLoadProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface ChatOptions extends SamplingOptions {
  maxNewTokens?: number;
  /** Text that ends the answer (cut exactly, not included). */
  stop?: string[];
  signal?: AbortSignal;
  tools?: unknown[];
  /** Relative media paths resolve against this folder. */
  baseDir?: string;
  addVisionId?: boolean;
  /** Extra chat-template variables (e.g. enable_thinking). */
  templateKwargs?: Record<string, unknown>;
  minPixels?: number;
  maxPixels?: number;
  /** Video sampling rate and frame count. */
  fps?: number;
  numFrames?: number;
  videoMinPixels?: number;
  videoMaxPixels?: number;
  /** Thinking edition: after this many reasoning tokens, close </think> and answer. */
  maxThinkingTokens?: number;
  /** Greedy decoding regardless of the checkpoint's sampling defaults. */
  greedy?: boolean;
  /** Prompt processing progress (vision encoders and decoder layers of the prefill). */
  onPrefillProgress?: (done: number, total: number) => void;
  /**
   * Reuse the KV cache of the previous request for the prefix this one shares with it
   * (same tokens, same image and video pixels), as in a multi-turn chat (default true).
   */
  reuseCache?: boolean;
}

export type FinishReason = "stop" | "length" | "abort" | "stop_string";

export interface ChatResult {
  /** All generated text (special tokens skipped), after stop-string cutting. */
  text: string;
  /** The answer (reasoning and tool-call blocks removed). */
  content: string;
  /** Thinking edition: the reasoning before </think> (null when the turn had none). */
  reasoning: string | null;
  toolCalls: ToolCallEntry[];
  ids: number[];
  promptTokens: number;
  finishReason: FinishReason;
  /** Seed actually used (for reproducing a sampled answer). */
  seed: number;
}

export type ChatDelta =
  | { type: "reasoning"; text: string }
  | { type: "content"; text: string }
  | { type: "done"; result: ChatResult };

/** A backend by name, sized for the checkpoint in `dir` (the wasm backend reserves its memory up front). */
export async function createBackend(kind: "wasm" | "reference", dir: string, format?: WeightFormat, threads?: number): Promise<Backend> {
  if (kind === "reference") return new ReferenceBackend();
  if (kind !== "wasm") throw new QwenError(`unknown backend "${String(kind)}" (expected "wasm" or "reference")`);
  const { WasmBackend } = await import("./backends/wasm/index.js");
  const ck = openCheckpoint(dir);
  try {
    const tensors = ck.store.names().map((name) => ({ name, shape: ck.store.info(name).shape, dtype: ck.store.info(name).dtype }));
    const fmt = format ?? (tensors.every((t) => t.shape.length < 2 || t.dtype === "BF16") ? "bf16" : "f32");
    const o: { weightBytes: number; threads?: number } = { weightBytes: WasmBackend.estimateWeightBytes(tensors, fmt) };
    if (threads !== undefined) o.threads = threads;
    return await WasmBackend.create(o);
  } finally {
    ck.store.close?.();
  }
}

export class Qwen3VL {
  /** The cache of the last finished request, kept for prefix reuse. */
  private kept: Session | null = null;
  /** Tokens of the last request served from the kept cache (for tests and stats). */
  lastReusedTokens = 0;

  private constructor(
    readonly dir: string,
    readonly model: Qwen3VLModel,
    readonly processor: Processor,
    readonly generationConfig: Record<string, unknown> | null,
  ) {}

  /** Loads from a local checkpoint directory or a Hugging Face repo id (downloaded to the hub cache). */
  static async load(modelOrDir: string, opts: LoadModelOptions = {}): Promise<Qwen3VL> {
    const { backend, threads, weightFormat, onTensor, onLoadProgress, ...hub } = opts;
    const dir = await resolveModel(modelOrDir, hub);
    const processor = Processor.fromDir(dir);
    const be = typeof backend === "object" ? backend : await createBackend(backend ?? "wasm", dir, weightFormat, threads);
    const lo: LoadOptions = {};
    if (weightFormat) lo.matmulFormat = weightFormat;
    if (onTensor) lo.onTensor = onTensor;
    if (onLoadProgress) lo.onProgress = onLoadProgress;
    const m = Qwen3VLModel.load(dir, be, lo);
    return new Qwen3VL(dir, m, processor, m.generationConfig);
  }

  /** Drops the kept KV cache (frees its memory). */
  resetCache(): void {
    this.kept?.dispose();
    this.kept = null;
  }

  get tokenizer() {
    return this.processor.tokenizer;
  }

  /** Sampling defaults of the checkpoint (generation_config.json). */
  get samplingDefaults(): SamplingOptions {
    return samplingDefaultsFromGenerationConfig(this.generationConfig ?? {});
  }

  /** Messages → prompt text, token ids, pixel values and grids. */
  prepare(messages: unknown[], o: ChatOptions = {}): Promise<ProcessedInput> {
    const p: ProcessOptions = {};
    if (o.baseDir !== undefined) p.baseDir = o.baseDir;
    if (o.addVisionId !== undefined) p.addVisionId = o.addVisionId;
    if (o.tools !== undefined) p.tools = o.tools;
    if (o.templateKwargs !== undefined) p.templateKwargs = o.templateKwargs;
    const img: NonNullable<ProcessOptions["image"]> = {};
    if (o.minPixels !== undefined) img.minPixels = o.minPixels;
    if (o.maxPixels !== undefined) img.maxPixels = o.maxPixels;
    p.image = img;
    const vid: NonNullable<ProcessOptions["video"]> = {};
    if (o.fps !== undefined) vid.fps = o.fps;
    if (o.numFrames !== undefined) vid.numFrames = o.numFrames;
    if (o.videoMinPixels !== undefined) vid.minPixels = o.videoMinPixels;
    if (o.videoMaxPixels !== undefined) vid.maxPixels = o.videoMaxPixels;
    p.video = vid;
    return this.processor.process(messages, p);
  }

  /** One answer. */
  async chat(messages: unknown[], o: ChatOptions = {}): Promise<ChatResult> {
    let result: ChatResult | null = null;
    for await (const d of this.chatStream(messages, o)) if (d.type === "done") result = d.result;
    return result!;
  }

  /** The answer as it is generated: reasoning and content deltas, then the full result. */
  async *chatStream(messages: unknown[], o: ChatOptions = {}): AsyncGenerator<ChatDelta> {
    const input = await this.prepare(messages, o);
    yield* this.generateFrom(input, o);
  }

  /** Generation from already prepared input (ids + pixels). */
  async *generateFrom(input: ProcessedInput, o: ChatOptions = {}): AsyncGenerator<ChatDelta> {
    const model = this.model, tok = this.processor.tokenizer;
    const maxNew = o.maxNewTokens ?? 512;
    if (!Number.isInteger(maxNew) || maxNew < 1) throw new QwenError(`maxNewTokens must be a positive integer, found ${maxNew}`);
    const sampling = mergeSamplingOptions(this.samplingDefaults, o);
    // Asking for a temperature, top-k/p, min-p or a seed means sampling, even when the
    // checkpoint's generation_config decodes greedily; temperature 0 or `greedy` means greedy.
    if (o.doSample === undefined && [o.temperature, o.topK, o.topP, o.minP, o.seed].some((v) => v !== undefined)) sampling.doSample = true;
    if (o.greedy || o.temperature === 0) sampling.doSample = false;
    const sampler = new Sampler(sampling, input.inputIds);
    const eos = new Set(eosFromGenerationConfig(this.generationConfig));
    const eosTok = tok.tokenToId("<|im_end|>");
    if (eos.size === 0 && eosTok !== undefined) eos.add(eosTok);

    const opened = /<think>\s*$/.test(input.text);
    const thinking = new ThinkingStreamSplitter({ openedInPrompt: opened });
    const stops = new StopStringStream(o.stop ?? []);
    const decoder = tok.createStreamDecoder({ skipSpecialTokens: true });
    const closeIds = opened ? tok.encode(`\n${THINK_CLOSE}\n\n`) : [];
    let reasoningTokens = 0;
    const forced: number[] = [];

    const ids: number[] = [];
    let text = "";
    let finish: FinishReason = "length";
    const full: ModelInput = {
      inputIds: input.inputIds,
      images: input.images ? { pixelValues: input.images.pixelValues, grids: input.images.grids } : null,
      videos: input.videos ? { pixelValues: input.videos.pixelValues, grids: input.videos.grids } : null,
    };
    // Take the kept cache out while generating, so concurrent requests never share one.
    let session: Session | null = null;
    let run = full;
    const kept = this.kept;
    this.kept = null;
    this.lastReusedTokens = 0;
    if (kept && o.reuseCache !== false) {
      const plan = planReuse(kept, full, model.config);
      if (plan.keep > 0) {
        session = kept;
        run = applyReuse(kept, full, plan);
        this.lastReusedTokens = plan.keep;
      }
    }
    // A kept cache that is not continued is freed now, before this request allocates its own.
    if (kept && session !== kept) kept.dispose();
    session ??= model.newSession();
    const emit = function* (delta: string): Generator<ChatDelta> {
      if (!delta) return;
      const d = thinking.push(delta);
      if (d.reasoning) yield { type: "reasoning", text: d.reasoning };
      if (d.content) yield { type: "content", text: d.content };
    };

    const steps = decodeTokens(model, session, run, {
      eos, maxNewTokens: maxNew, signal: o.signal,
      forward: o.onPrefillProgress ? { onProgress: o.onPrefillProgress } : {},
      choose: (logits) => {
        const f = forced.shift();
        if (f === undefined) return sampler.next(logits());
        sampler.accept(f);
        return f;
      },
    });
    for await (const id of steps) {
      ids.push(id);
      if (eos.has(id)) { finish = "stop"; break; }
      if (opened && !thinking.thinkingClosed) {
        reasoningTokens++;
        if (o.maxThinkingTokens !== undefined && reasoningTokens >= o.maxThinkingTokens && forced.length === 0 && !closeIds.includes(id)) {
          forced.push(...closeIds);
        }
      }
      const s = stops.push(decoder.push(id));
      text += s.text;
      yield* emit(s.text);
      if (s.stopped) { finish = "stop_string"; break; }
    }
    if (finish === "length" && o.signal?.aborted) finish = "abort";
    if (o.reuseCache !== false) {
      // (a request that ran concurrently may have stored its cache meanwhile: only one is kept)
      const prev = this.kept as Session | null; // (set by another request while this one ran)
      this.kept = session;
      if (prev && prev !== session) prev.dispose();
    } else session.dispose();
    if (finish !== "stop_string") {
      const s = stops.push(decoder.flush());
      const tail = s.text + (s.stopped ? "" : stops.flush());
      text += tail;
      yield* emit(tail);
    }
    const last = thinking.flush();
    if (last.reasoning) yield { type: "reasoning", text: last.reasoning };
    if (last.content) yield { type: "content", text: last.content };

    const split = opened || text.includes(THINK_CLOSE) ? splitThinking(text, { openedInPrompt: opened }) : { reasoning: null, content: text };
    const tc = parseToolCalls(split.content);
    yield {
      type: "done",
      result: {
        text, content: tc.content, reasoning: opened || split.reasoning ? split.reasoning : null, toolCalls: tc.toolCalls, ids,
        promptTokens: input.inputIds.length, finishReason: finish, seed: sampler.seed,
      },
    };
  }
}
