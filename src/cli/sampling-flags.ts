// Sampling flags shared by the commands that generate (generate, chat).
import { QwenError } from "../errors.js";
import type { ChatOptions } from "../pipeline.js";

export const SAMPLING_FLAGS = {
  "max-new-tokens": { type: "string" },
  greedy: { type: "boolean" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repetition-penalty": { type: "string" },
  "presence-penalty": { type: "string" },
  seed: { type: "string" },
  "max-thinking-tokens": { type: "string" },
} as const;

export const SAMPLING_HELP = `  --max-new-tokens N        most tokens to generate
  --greedy                  always the most likely token (ignores the sampling defaults)
  --temperature T, --top-k K, --top-p P, --min-p P
                            sampling (defaults: the checkpoint's generation_config.json)
  --repetition-penalty R, --presence-penalty P
  --seed S                  same seed, same answer
  --max-thinking-tokens N   Thinking models: close the reasoning after N tokens`;

export function numFlag(v: string | undefined, flag: string, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new QwenError(`${flag} expects ${integer ? "an integer" : "a number"}, got "${v}"`);
  }
  return n;
}

type Values = { [K in keyof typeof SAMPLING_FLAGS]?: (typeof SAMPLING_FLAGS)[K]["type"] extends "boolean" ? boolean : string };

/** Adds the sampling flags' values to chat options. */
export function applySamplingFlags(values: Values, o: ChatOptions): ChatOptions {
  const set = <K extends keyof ChatOptions>(k: K, v: ChatOptions[K] | undefined) => { if (v !== undefined) o[k] = v; };
  set("maxNewTokens", numFlag(values["max-new-tokens"], "--max-new-tokens", true));
  set("temperature", numFlag(values.temperature, "--temperature"));
  set("topK", numFlag(values["top-k"], "--top-k", true));
  set("topP", numFlag(values["top-p"], "--top-p"));
  set("minP", numFlag(values["min-p"], "--min-p"));
  set("repetitionPenalty", numFlag(values["repetition-penalty"], "--repetition-penalty"));
  set("presencePenalty", numFlag(values["presence-penalty"], "--presence-penalty"));
  set("seed", numFlag(values.seed, "--seed", true));
  set("maxThinkingTokens", numFlag(values["max-thinking-tokens"], "--max-thinking-tokens", true));
  if (values.greedy) o.greedy = true;
  if (o.maxNewTokens !== undefined && o.maxNewTokens < 1) throw new QwenError("--max-new-tokens must be at least 1");
  return o;
}
