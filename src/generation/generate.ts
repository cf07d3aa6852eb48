// Autoregressive generation over a Qwen3-VL session: one prefill of the prompt (text and
// pixels), then one token per step against the KV cache. Token choice is delegated to a
// `pick` function (greedy by default) so sampling lives in one place.
import { QwenError } from "../errors.js";
import type { ForwardOptions, ModelInput, Qwen3VLModel, Session } from "../model/qwen3-vl.js";

export interface GenerateOptions {
  maxNewTokens?: number;
  /** Generation stops after emitting one of these (it is included in the result). */
  eosTokenIds?: readonly number[];
  /** Chooses the next token from the last position's logits; greedy argmax if absent. */
  pick?: (logits: Float32Array, generated: readonly number[]) => number;
  /** Called with each new token; return false to stop. */
  onToken?: (id: number, index: number) => boolean | void;
  signal?: AbortSignal;
  /** Continue an existing conversation (its cache is extended). */
  session?: Session;
}

export interface GenerateResult {
  ids: number[];
  promptTokens: number;
  stopReason: "eos" | "length" | "stopped" | "aborted";
  session: Session;
}

export function argmax(x: Float32Array): number {
  let best = 0, bv = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > bv) { bv = x[i]!; best = i; }
  return best;
}

/** Stop tokens from generation_config.json (eos_token_id: number or list). */
export function eosFromGenerationConfig(gen: Record<string, unknown> | null | undefined): number[] {
  const e = gen?.eos_token_id;
  if (typeof e === "number") return [e];
  if (Array.isArray(e)) return e.filter((x): x is number => typeof x === "number");
  return [];
}

export interface DecodeOptions {
  /** Chooses the next token; `logits()` copies the last position's logits out (only if called). */
  choose: (logits: () => Float32Array) => number;
  eos: ReadonlySet<number>;
  maxNewTokens: number;
  signal?: AbortSignal | undefined;
  forward?: ForwardOptions;
}

/**
 * The decoding loop shared by every caller: one forward of `input` (the prompt, or the part
 * of it not already in the session's cache), then one token per step. Yields each new token;
 * ends after an eos token, after maxNewTokens, or when the signal aborts (checked between
 * tokens, so an abort costs at most the step in flight). The last token is not fed back.
 */
export async function* decodeTokens(model: Qwen3VLModel, session: Session, input: ModelInput, o: DecodeOptions): AsyncGenerator<number> {
  if (o.signal?.aborted || o.maxNewTokens < 1) return;
  const b = model.backend;
  let logitsT = model.forward(session, input, o.forward ?? {});
  for (let n = 1; ; n++) {
    let copy: Float32Array | null = null;
    const t = logitsT;
    const id = o.choose(() => (copy ??= b.toArray(t)));
    b.release(logitsT);
    yield id;
    if (o.eos.has(id) || n >= o.maxNewTokens) return;
    // Let abort signals, timers and streams run between steps.
    await new Promise<void>((r) => setImmediate(r));
    if (o.signal?.aborted) return;
    logitsT = model.forward(session, { inputIds: [id] });
  }
}

export async function generate(model: Qwen3VLModel, input: ModelInput, opts: GenerateOptions = {}): Promise<GenerateResult> {
  const max = opts.maxNewTokens ?? 256;
  if (!Number.isInteger(max) || max < 0) throw new QwenError(`maxNewTokens must be a non-negative integer, found ${max}`);
  const eos = new Set(opts.eosTokenIds ?? []);
  const pick = opts.pick ?? ((l: Float32Array) => argmax(l));
  const session = opts.session ?? model.newSession();
  const ids: number[] = [];
  let stopReason: GenerateResult["stopReason"] = "length";
  const d: DecodeOptions = { choose: (logits) => pick(logits(), ids), eos, maxNewTokens: max, signal: opts.signal };
  for await (const id of decodeTokens(model, session, input, d)) {
    ids.push(id);
    if (opts.onToken?.(id, ids.length - 1) === false) { stopReason = "stopped"; break; }
  }
  if (stopReason !== "stopped") {
    if (ids.length && eos.has(ids[ids.length - 1]!)) stopReason = "eos";
    else if (opts.signal?.aborted) stopReason = "aborted";
  }
  return { ids, promptTokens: input.inputIds.length, stopReason, session };
}
