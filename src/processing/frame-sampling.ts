// Which frames of a video are used (transformers Qwen3VLVideoProcessor.sample_frames):
// by fps (n = int(total / videoFps * fps), clamped to [minFrames, maxFrames] and total) or a
// fixed num_frames, spread with numpy.linspace(0, total - 1, n) rounded half to even.
import { QwenError } from "../errors.js";
import { roundHalfEven } from "./smart-resize.js";

/** The fps assumed when a video does not state its frame rate. */
export const DEFAULT_VIDEO_FPS = 24;

/** numpy.linspace(start, stop, num) with endpoint=True, in float64 like numpy. */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num <= 0) return [];
  if (num === 1) return [start];
  const div = num - 1;
  const delta = stop - start;
  const step = delta / div;
  const out = new Array<number>(num);
  if (step === 0) {
    for (let i = 0; i < num; i++) out[i] = (i / div) * delta + start;
  } else {
    for (let i = 0; i < num; i++) out[i] = i * step + start;
  }
  out[num - 1] = stop;
  return out;
}

export interface SamplingOptions {
  /** Frames per second to sample (default 2). Exclusive with numFrames. */
  fps?: number;
  /** Fixed number of frames to sample. Exclusive with fps. */
  numFrames?: number;
  minFrames?: number;
  maxFrames?: number;
}

/**
 * Sampled frame indices of a video of `totalFrames` frames at `videoFps` (null/undefined: 24).
 * @param what names the video in error messages
 */
export function sampleFrameIndices(totalFrames: number, videoFps: number | null | undefined, opts: SamplingOptions = {}, what = "the video"): number[] {
  if (!Number.isInteger(totalFrames) || totalFrames <= 0) throw new QwenError(`${what} has no frames`);
  if (opts.fps !== undefined && opts.numFrames !== undefined) {
    throw new QwenError(`${what}: give either fps or num_frames for frame sampling, not both`);
  }
  const minF = opts.minFrames ?? 4;
  const maxF = opts.maxFrames ?? 768;
  let n: number;
  if (opts.numFrames !== undefined) {
    if (!Number.isInteger(opts.numFrames) || opts.numFrames <= 0) throw new QwenError(`${what}: num_frames must be a positive integer, got ${opts.numFrames}`);
    n = opts.numFrames;
  } else {
    const fps = opts.fps ?? 2;
    if (!(fps > 0) || !Number.isFinite(fps)) throw new QwenError(`${what}: sampling fps must be a positive number, got ${fps}`);
    const vfps = videoFps ?? DEFAULT_VIDEO_FPS;
    if (!(vfps > 0) || !Number.isFinite(vfps)) throw new QwenError(`${what}: frame rate must be a positive number, got ${vfps}`);
    n = Math.trunc((totalFrames / vfps) * fps);
    n = Math.min(Math.max(n, minF), maxF, totalFrames);
  }
  return linspace(0, totalFrames - 1, n).map(roundHalfEven);
}
