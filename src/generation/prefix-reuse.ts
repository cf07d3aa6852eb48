// Reusing a kept KV cache for the next request of a conversation: the longest prefix of the
// new token ids that is already in the cache, never cutting a visual block and never
// reusing features of an image or video whose pixels differ. Only the rest is computed.
import type { VisualInput, ModelInput, Session } from "../model/qwen3-vl.js";
import { mediaKeys } from "../model/media-keys.js";
import type { Grid } from "../model/vision/merge-window.js";

export interface ReuseTokens {
  imageTokenId: number;
  videoTokenId: number;
}

export interface ReusePlan {
  /** Tokens of the cache to keep. */
  keep: number;
  /** Whole images / videos inside the kept prefix. */
  images: number;
  videos: number;
}

/** Plans how much of `session` serves `input`; keep 0 means start over. */
export function planReuse(session: Session, input: ModelInput, tok: ReuseTokens): ReusePlan {
  const ids = input.inputIds;
  // Leave at least one token to run, so the last position's logits are computed.
  const limit = Math.min(session.length, ids.length - 1);
  let p = 0;
  while (p < limit && ids[p] === session.tokens[p]) p++;

  const imgKeys = input.images ? mediaKeys(input.images) : [];
  const vidKeys = input.videos ? mediaKeys(input.videos) : [];
  const vidBlocks = (input.videos?.grids ?? []).map(([t]) => t);
  let images = 0, videos = 0, vidBlock = 0;
  let keep = 0;
  let videoStart = -1; // first pad of the current video's first block
  let i = 0;
  while (i < p) {
    const id = ids[i]!;
    if (id !== tok.imageTokenId && id !== tok.videoTokenId) { i++; if (videoStart < 0) keep = i; continue; }
    let end = i;
    while (end < ids.length && ids[end] === id) end++;
    if (end > p) break; // the block is cut: stop before it
    if (id === tok.imageTokenId) {
      if (imgKeys[images] === undefined || imgKeys[images] !== session.imageKeys[images]) break;
      images++;
      i = end;
      if (videoStart < 0) keep = i;
    } else {
      if (vidBlock === 0) {
        if (vidKeys[videos] === undefined || vidKeys[videos] !== session.videoKeys[videos]) break;
        videoStart = i;
      }
      vidBlock++;
      i = end;
      if (vidBlock === vidBlocks[videos]) { videos++; vidBlock = 0; videoStart = -1; keep = i; }
    }
  }
  return { keep, images, videos };
}

function dropItems(v: VisualInput | null | undefined, n: number): VisualInput | null {
  if (!v) return null;
  if (n === 0) return v;
  if (n >= v.grids.length) return null;
  const rowsOf = (g: readonly Grid[]) => g.reduce((a, [t, h, w]) => a + t * h * w, 0);
  const width = v.pixelValues.length / rowsOf(v.grids);
  return { pixelValues: v.pixelValues.subarray(rowsOf(v.grids.slice(0, n)) * width), grids: v.grids.slice(n) };
}

/** Applies a plan: rewinds the session and returns the part of the input still to run. */
export function applyReuse(session: Session, input: ModelInput, plan: ReusePlan): ModelInput {
  session.truncate(plan.keep);
  session.imageKeys.length = plan.images;
  session.videoKeys.length = plan.videos;
  return {
    inputIds: Array.from(input.inputIds).slice(plan.keep),
    images: dropItems(input.images, plan.images),
    videos: dropItems(input.videos, plan.videos),
  };
}
