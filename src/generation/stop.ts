/**
 * Stop strings: cut generated text exactly before the first stop string (the stop string and
 * everything after it are removed), and, for streaming, hold back the tail that could still turn
 * into a stop string once more tokens arrive (a stop string may be split across several tokens).
 */
import { QwenError } from "../errors.js";

export interface StopMatch {
  /** Offset of the stop string in the searched text. */
  index: number;
  /** The stop string that matched. */
  stop: string;
}

function checkStops(stops: readonly string[]): void {
  for (const s of stops) {
    if (typeof s !== "string" || s.length === 0) throw new QwenError(`stop strings must be non-empty strings, got ${JSON.stringify(s)}`);
  }
}

/**
 * The earliest occurrence of any stop string in `text` at or after `from`; on equal offsets the
 * longest stop string wins. null when none occurs.
 */
export function findStop(text: string, stops: readonly string[], from = 0): StopMatch | null {
  let best: StopMatch | null = null;
  for (const s of stops) {
    const i = text.indexOf(s, from);
    if (i < 0) continue;
    if (best === null || i < best.index || (i === best.index && s.length > best.stop.length)) best = { index: i, stop: s };
  }
  return best;
}

/** Cut `text` before the first stop string. `stop` is the string that matched (absent when none did). */
export function truncateAtStop(text: string, stops: readonly string[]): { text: string; stop?: string } {
  checkStops(stops);
  const m = findStop(text, stops);
  return m ? { text: text.slice(0, m.index), stop: m.stop } : { text };
}

/**
 * Length of the longest suffix of `text` that is a proper prefix of some stop string: the part a
 * streamer must hold back because the next tokens could complete a stop string.
 */
export function partialStopLength(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    const max = Math.min(s.length - 1, text.length);
    for (let len = max; len > best; len--) {
      if (text.endsWith(s.slice(0, len))) {
        best = len;
        break;
      }
    }
  }
  return best;
}

export interface StopStreamResult {
  /** Text that is safe to show now (never part of a stop string). */
  text: string;
  /** True once a stop string has been seen; later pushes are ignored. */
  stopped: boolean;
  /** The stop string that ended the stream. */
  stop?: string;
}

/**
 * Streaming stop-string filter. Feed decoded text deltas; each push returns the text that can be
 * emitted now. Text that might be the beginning of a stop string is held until it is resolved.
 * Concatenating all returned `text` plus `flush()` equals `truncateAtStop(fullText).text`.
 */
export class StopStringStream {
  private readonly stops: readonly string[];
  private pending = "";
  private done = false;
  private matched: string | undefined;

  constructor(stops: readonly string[]) {
    checkStops(stops);
    this.stops = [...stops];
  }

  /** True once a stop string has been found. */
  get stopped(): boolean {
    return this.done;
  }

  /** The stop string that was found, if any. */
  get stop(): string | undefined {
    return this.matched;
  }

  push(delta: string): StopStreamResult {
    if (this.done) return { text: "", stopped: true, stop: this.matched };
    const buf = this.pending + delta;
    const m = findStop(buf, this.stops);
    if (m) {
      this.done = true;
      this.matched = m.stop;
      this.pending = "";
      return { text: buf.slice(0, m.index), stopped: true, stop: m.stop };
    }
    let hold = partialStopLength(buf, this.stops);
    // never split a UTF-16 surrogate pair between emitted and held text
    if (hold < buf.length && hold > 0) {
      const c = buf.charCodeAt(buf.length - hold - 1);
      if (c >= 0xd800 && c <= 0xdbff) hold++;
    }
    this.pending = buf.slice(buf.length - hold);
    return { text: buf.slice(0, buf.length - hold), stopped: false };
  }

  /** End of generation: release whatever was held back (it did not become a stop string). */
  flush(): string {
    if (this.done) return "";
    const t = this.pending;
    this.pending = "";
    return t;
  }
}
