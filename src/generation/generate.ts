// Autoregressive generation over a Qwen3-VL session: one prefill of the prompt (text and
// pixels), then one token per step against the KV cache. Token choice is delegated to a
// `pick` function (greedy by default) so sampling lives in one place.
import { QwenError } from "../errors.js";
import type { ModelInput, Qwen3VLModel, Session } from "../model/qwen3-vl.js";

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

export async function generate(model: Qwen3VLModel, input: ModelInput, opts: GenerateOptions = {}): Promise<GenerateResult> {
  const max = opts.maxNewTokens ?? 256;
  if (!Number.isInteger(max) || max < 0) throw new QwenError(`maxNewTokens must be a non-negative integer, found ${max}`);
  const eos = new Set(opts.eosTokenIds ?? []);
  const pick = opts.pick ?? ((l: Float32Array) => argmax(l));
  const b = model.backend;
  const session = opts.session ?? model.newSession();
  const ids: number[] = [];
  const check = () => opts.signal?.aborted === true;
  if (check()) return { ids, promptTokens: input.inputIds.length, stopReason: "aborted", session };
  let logitsT = model.forward(session, input);
  let stopReason: GenerateResult["stopReason"] = "length";
  while (ids.length < max) {
    const logits = b.toArray(logitsT);
    b.release(logitsT);
    const id = pick(logits, ids);
    ids.push(id);
    if (opts.onToken?.(id, ids.length - 1) === false) { stopReason = "stopped"; break; }
    if (eos.has(id)) { stopReason = "eos"; break; }
    if (ids.length >= max) break;
    // Yield to the event loop between steps so abort signals and streams are serviced.
    await new Promise<void>((r) => setImmediate(r));
    if (check()) { stopReason = "aborted"; break; }
    logitsT = model.forward(session, { inputIds: [id] });
  }
  return { ids, promptTokens: input.inputIds.length, stopReason, session };
}
