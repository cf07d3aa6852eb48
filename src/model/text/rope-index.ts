// 3-D position ids (the reference's get_rope_index). Text tokens advance T, H and W together;
// a visual block of gh x gw merged tokens sits at T = base, H = base + row, W = base + col,
// and the text after it resumes at base + max(t, gh, gw) (the sequence is "compressed").
// Videos are split per temporal patch (each has its own <t seconds> and vision block), so T
// restarts inside every block and time lives in the timestamp text.
import { QwenError } from "../../errors.js";
import type { Grid } from "../vision/merge-window.js";

export interface RopeTokens {
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
}

export interface RopeIndexResult {
  /** Axis-major [3][L]. */
  positions: Int32Array;
  /** max position + 1 − L: decode positions are cacheIndex + ropeDelta. */
  ropeDelta: number;
  /** The position the next token gets. */
  nextPosition: number;
}

/** Per-frame video grids: (t, h, w) becomes t copies of (1, h, w). */
export function splitVideoGrids(grids: readonly Grid[]): Grid[] {
  const out: Grid[] = [];
  for (const [t, h, w] of grids) for (let i = 0; i < t; i++) out.push([1, h, w]);
  return out;
}

/** A cursor over grids of one kind, consumed in prompt order. */
class GridQueue {
  i = 0;
  constructor(readonly kind: string, readonly grids: readonly Grid[]) {}
  next(): Grid {
    const g = this.grids[this.i++];
    if (!g) throw new QwenError(`the prompt has more ${this.kind} blocks than ${this.kind} grids (${this.grids.length})`);
    return g;
  }
}

function ropeIndexOne(
  ids: ArrayLike<number>, tok: RopeTokens, mergeSize: number, images: GridQueue, videos: GridQueue, start: number,
): { positions: Int32Array; max: number } {
  const L = ids.length;
  const pos = new Int32Array(3 * L);
  let next = start;
  let max = start - 1;
  let s = 0;
  while (s < L) {
    const id = ids[s]!;
    if (id !== tok.imageTokenId && id !== tok.videoTokenId) {
      pos[s] = pos[L + s] = pos[2 * L + s] = next;
      max = Math.max(max, next);
      next++;
      s++;
      continue;
    }
    const [t, h, w] = id === tok.imageTokenId ? images.next() : videos.next();
    const gh = h / mergeSize, gw = w / mergeSize;
    const n = t * gh * gw;
    if (s + n > L) throw new QwenError(`a visual block at token ${s} needs ${n} placeholder tokens but the prompt ends after ${L - s}`);
    for (let k = 0; k < n; k++) {
      if (ids[s + k] !== id) {
        throw new QwenError(`the visual block at token ${s} has ${k} placeholder tokens but its grid [${t}, ${h}, ${w}] needs ${n}`);
      }
    }
    let k = 0;
    for (let ti = 0; ti < t; ti++)
      for (let hi = 0; hi < gh; hi++)
        for (let wi = 0; wi < gw; wi++, k++) {
          pos[s + k] = next + ti; pos[L + s + k] = next + hi; pos[2 * L + s + k] = next + wi;
        }
    const top = next + Math.max(t, gh, gw) - 1;
    max = Math.max(max, top);
    next = top + 1;
    s += n;
  }
  return { positions: pos, max };
}

/**
 * One unpadded sequence. `start` continues an earlier chunk (multi-turn with a kept cache):
 * pass the previous nextPosition and the cache length as `offset` to get the right delta.
 */
export function getRopeIndex(
  ids: ArrayLike<number>, tok: RopeTokens, mergeSize: number,
  imageGrids: readonly Grid[] = [], videoGrids: readonly Grid[] = [],
  start = 0, offset = 0,
): RopeIndexResult {
  const images = new GridQueue("image", imageGrids), videos = new GridQueue("video", splitVideoGrids(videoGrids));
  const { positions, max } = ropeIndexOne(ids, tok, mergeSize, images, videos, start);
  if (images.i !== images.grids.length) throw new QwenError(`${images.grids.length} image grids were given but the prompt has ${images.i} image blocks`);
  if (videos.i !== videos.grids.length) throw new QwenError(`video grids describe ${videos.grids.length} temporal patches but the prompt has ${videos.i} video blocks`);
  return { positions, ropeDelta: max + 1 - (offset + ids.length), nextPosition: max + 1 };
}

/**
 * A left-padded batch: positions are computed on the unpadded tokens only, padded slots
 * keep 1, deltas use the padded length; grids are consumed across the batch in order.
 * Returns positions as [3][B][L].
 */
export function getRopeIndexBatch(
  ids: readonly (readonly number[])[], mask: readonly (readonly number[])[], tok: RopeTokens, mergeSize: number,
  imageGrids: readonly Grid[] = [], videoGrids: readonly Grid[] = [],
): { positions: number[][][]; ropeDeltas: number[] } {
  const images = new GridQueue("image", imageGrids), videos = new GridQueue("video", splitVideoGrids(videoGrids));
  const B = ids.length, L = ids[0]?.length ?? 0;
  const positions = [0, 1, 2].map(() => ids.map(() => new Array<number>(L).fill(1)));
  const ropeDeltas: number[] = [];
  for (let i = 0; i < B; i++) {
    if (ids[i]!.length !== L || mask[i]!.length !== L) throw new QwenError("every sequence of a batch and its attention mask must have the same length");
    const kept: number[] = [], where: number[] = [];
    for (let j = 0; j < L; j++) if (mask[i]![j]) { kept.push(ids[i]![j]!); where.push(j); }
    const r = ropeIndexOne(kept, tok, mergeSize, images, videos, 0);
    for (let a = 0; a < 3; a++) for (let k = 0; k < kept.length; k++) positions[a]![i]![where[k]!] = r.positions[a * kept.length + k]!;
    ropeDeltas.push(r.max + 1 - L);
  }
  return { positions, ropeDeltas };
}
