/**
 * Reasoning / answer split for the Thinking edition.
 *
 * The Thinking chat template ends the prompt with `<|im_start|>assistant\n<think>\n`, so the model
 * generates `reasoning\n</think>\n\nanswer`. Some outputs (or prompts rendered without the
 * opened tag) start with `<think>` themselves; both forms are handled. Like the template's
 * treatment of earlier turns, the reasoning is trimmed of surrounding newlines and the answer of
 * leading newlines; the split happens at the first `</think>`.
 */

export const THINK_OPEN = "<think>";
export const THINK_CLOSE = "</think>";

export interface SplitThinkingOptions {
  /**
   * The prompt ended with an opened `<think>` (Thinking edition generation prompt): text before
   * `</think>` (or all of it, when `</think>` never comes) is reasoning.
   * One-shot default (undefined): reasoning only if the text starts with `<think>` or contains
   * `</think>` (the chat template's own rule). Streaming default: false.
   */
  openedInPrompt?: boolean;
}

export interface ThinkingSplit {
  reasoning: string;
  content: string;
  /** True when `</think>` was seen (false: reasoning was cut off, or there was none). */
  thinkingClosed: boolean;
}

const stripNewlines = (s: string): string => s.replace(/^\n+/, "").replace(/\n+$/, "");
const LEADING_OPEN = /^\s*<think>/;

/** Split a complete generated text into reasoning and answer. */
export function splitThinking(text: string, options: SplitThinkingOptions = {}): ThinkingSplit {
  let rest = text;
  const lead = LEADING_OPEN.exec(text);
  if (lead) rest = text.slice(lead[0].length);
  const close = rest.indexOf(THINK_CLOSE);
  const reasoningMode = lead !== null || (options.openedInPrompt ?? close >= 0);
  if (!reasoningMode) return { reasoning: "", content: text, thinkingClosed: false };
  if (close < 0) return { reasoning: stripNewlines(rest), content: "", thinkingClosed: false };
  return {
    reasoning: stripNewlines(rest.slice(0, close)),
    content: rest.slice(close + THINK_CLOSE.length).replace(/^\n+/, ""),
    thinkingClosed: true,
  };
}

export interface ThinkingDelta {
  reasoning?: string;
  content?: string;
}

/** Longest suffix of `s` that is a proper prefix of `tag`. */
function partialTag(s: string, tag: string): number {
  for (let len = Math.min(tag.length - 1, s.length); len > 0; len--) {
    if (s.endsWith(tag.slice(0, len))) return len;
  }
  return 0;
}

type Phase = "start" | "reasoning" | "content";

/**
 * Streaming version of splitThinking: push decoded text deltas, get reasoning/content deltas.
 * A (possibly split) `<think>` / `</think>` tag never leaks into either stream: text that could be
 * the start of the tag is held until resolved, as are newlines that might turn out to precede
 * `</think>` (they are trimmed, as in the one-shot split). With `openedInPrompt` true, or output
 * starting with `<think>`, the concatenated deltas after `flush()` equal `splitThinking(full)`.
 */
export class ThinkingStreamSplitter {
  private phase: Phase = "start";
  private pending = "";
  /** Leading newlines of the current phase are still being dropped. */
  private atPhaseStart = true;
  private closed = false;
  private readonly opened: boolean;

  constructor(options: SplitThinkingOptions = {}) {
    this.opened = options.openedInPrompt ?? false;
  }

  /** True once `</think>` has been seen. */
  get thinkingClosed(): boolean {
    return this.closed;
  }

  /** "reasoning" or "content" once known ("start" while the first characters are undecided). */
  get state(): Phase {
    return this.phase;
  }

  push(delta: string): ThinkingDelta {
    const out: ThinkingDelta = {};
    this.pending += delta;
    this.process(out, false);
    return out;
  }

  /** End of generation: release held text (a partial tag that never completed is ordinary text). */
  flush(): ThinkingDelta {
    const out: ThinkingDelta = {};
    this.process(out, true);
    return out;
  }

  private emit(out: ThinkingDelta, key: "reasoning" | "content", text: string): void {
    if (text.length === 0) return;
    out[key] = (out[key] ?? "") + text;
  }

  private process(out: ThinkingDelta, final: boolean): void {
    for (;;) {
      if (this.phase === "start") {
        const buf = this.pending;
        const ws = /^\s*/.exec(buf)![0].length;
        const after = buf.slice(ws);
        if (after.startsWith(THINK_OPEN)) {
          this.pending = after.slice(THINK_OPEN.length);
          this.enter("reasoning");
          continue;
        }
        if (!final && THINK_OPEN.startsWith(after)) return; // still undecided (empty, whitespace or "<th")
        this.enter(this.opened ? "reasoning" : "content");
        continue;
      }
      if (this.phase === "reasoning") {
        let buf = this.pending;
        if (this.atPhaseStart) {
          buf = buf.replace(/^\n+/, "");
          if (buf.length > 0) this.atPhaseStart = false;
        }
        const close = buf.indexOf(THINK_CLOSE);
        if (close >= 0) {
          this.emit(out, "reasoning", buf.slice(0, close).replace(/\n+$/, ""));
          this.pending = buf.slice(close + THINK_CLOSE.length);
          this.closed = true;
          this.enter("content");
          continue;
        }
        if (final) {
          this.emit(out, "reasoning", buf.replace(/\n+$/, ""));
          this.pending = "";
          return;
        }
        let hold = partialTag(buf, THINK_CLOSE);
        while (hold < buf.length && buf[buf.length - hold - 1] === "\n") hold++;
        this.emit(out, "reasoning", buf.slice(0, buf.length - hold));
        this.pending = buf.slice(buf.length - hold);
        return;
      }
      // content
      let buf = this.pending;
      if (this.atPhaseStart && this.closed) {
        buf = buf.replace(/^\n+/, "");
        if (buf.length === 0) {
          this.pending = "";
          return;
        }
      }
      this.atPhaseStart = false;
      this.emit(out, "content", buf);
      this.pending = "";
      return;
    }
  }

  private enter(phase: Phase): void {
    this.phase = phase;
    this.atPhaseStart = true;
  }
}
